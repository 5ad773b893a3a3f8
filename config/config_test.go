package config

import (
	"github.com/modelgate/modelgate/canary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestMain runs the tests without the caller's MODELGATE_* settings, so
// that they do not depend on the environment they run in.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "MODELGATE_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

func load(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs)
}

func TestDefaults(t *testing.T) {
	c, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("no file, env or flags:\n got %+v\nwant %+v", c, Default())
	}
	if c.Listen != ":8080" || !reflect.DeepEqual(c.ORT.Providers, []string{"cuda", "cpu"}) || c.HTTP.MaxBodyBytes != 64<<20 {
		t.Fatalf("documented defaults changed: %+v", c)
	}
}

func TestGoodFile(t *testing.T) {
	c, err := load(t, "--config", "testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: "127.0.0.1:9090", Registry: "file:///var/lib/modelgate/registry",
		Models: []string{"breast-cancer", "iris"}, DefaultModel: "breast-cancer",
		PollInterval: 10 * time.Second, MaxPinnedVersions: 2, MaxPinnedBytes: 1 << 30, CacheDir: "/var/cache/modelgate",
		HTTP: HTTP{MaxBodyBytes: 1 << 20, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 20 * time.Second, IdleTimeout: time.Minute, DrainDelay: 5 * time.Second, ShutdownTimeout: 25 * time.Second},
		GRPC: GRPC{Listen: "127.0.0.1:9091", MaxMessageBytes: 4 << 20},
		ORT:  ORT{Providers: []string{"cpu"}, IntraOpThreads: 2, InterOpThreads: 1},
		Log:  Log{Level: "debug", Format: "json"},
		Canary: Canary{Source: "prometheus", PrometheusURL: "http://prometheus:9090",
			PrometheusQueries: canary.PromQueries{P99: `histogram_quantile(0.99, sum by (le) (rate(modelgate_canary_request_duration_seconds_bucket{model="{{.Model}}",version="{{.Version}}"}[{{.Window}}])))`},
			Tick:              5 * time.Second, ShadowFraction: 0.25, CompareSplit: false, ShadowConcurrency: 4, KeyField: "user_id", RegressionTolerance: 0.1},
	}
	want.Batching = Default().Batching             // batching_test.go reads a batching section
	want.Drift = Default().Drift                   // drift_test.go reads a drift section
	want.PayloadLogging = Default().PayloadLogging // payloadlog_test.go reads a payload_logging section
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestBadFiles(t *testing.T) {
	want := map[string]string{
		"unknown-key.bad.yaml":              "listne",
		"canary-source.bad.yaml":            "canary.prometheus_url: source prometheus needs the Prometheus URL",
		"unknown-nested-key.bad.yaml":       "provider",
		"bad-provider.bad.yaml":             `ort.providers: unknown provider "tpu"`,
		"require-gpu-without-cuda.bad.yaml": "ort.require_gpu: is true but ort.providers [cpu] does not include cuda",
		"auto-mixed.bad.yaml":               "ort.providers: auto measures cuda and cpu itself and must be alone, got [auto cpu]",
		"bad-listen.bad.yaml":               `listen: "8080" is not host:port`,
		"bad-duration.bad.yaml":             "poll_interval",
		"bad-model-name.bad.yaml":           "models:",
		"default-not-served.bad.yaml":       `default_model: "wine" is not among models [iris]`,
		"bad-registry-scheme.bad.yaml":      `registry: scheme "gs" is not supported`,
		"not-yaml.bad.yaml":                 "reading testdata/not-yaml.bad.yaml",
		"grpc-listen.bad.yaml":              `grpc.listen: "9091" is not host:port`,
		"grpc-port-clash.bad.yaml":          `grpc.listen: ":8080" takes the port of listen ":8080"`,
		"grpc-message.bad.yaml":             "grpc.max_message_bytes: must be 0 (http.max_body_bytes) or between 1024",
	}
	checkBadFiles(t, "testdata/*.bad.yaml", want)
}

func TestPrecedence(t *testing.T) {
	// file < env < flags
	t.Setenv("MODELGATE_LISTEN", "127.0.0.1:7070")
	t.Setenv("MODELGATE_ORT_PROVIDERS", "cpu")
	t.Setenv("MODELGATE_HTTP_MAX_BODY_BYTES", "2048")
	t.Setenv("MODELGATE_POLL_INTERVAL", "3s")
	c, err := load(t, "--config", "testdata/good.yaml", "--registry", "/tmp/flag-registry")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7070" {
		t.Errorf("env did not override the file: listen = %q", c.Listen)
	}
	if c.Registry != "/tmp/flag-registry" {
		t.Errorf("flag did not override the file: registry = %q", c.Registry)
	}
	if c.HTTP.MaxBodyBytes != 2048 || c.PollInterval != 3*time.Second || !reflect.DeepEqual(c.ORT.Providers, []string{"cpu"}) {
		t.Errorf("env values not applied: %+v", c)
	}
	if c.Log.Format != "json" {
		t.Errorf("file value lost: log.format = %q", c.Log.Format)
	}
	t.Setenv("MODELGATE_LISTEN", "127.0.0.1:7070")
	c, err = load(t, "--listen", ":6060")
	if err != nil || c.Listen != ":6060" {
		t.Fatalf("flag did not override env: %q, %v", c.Listen, err)
	}
}

func TestEnvValidated(t *testing.T) {
	t.Setenv("MODELGATE_ORT_PROVIDERS", "gpu")
	if _, err := load(t); err == nil || !strings.Contains(err.Error(), `unknown provider "gpu"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestProvidersAuto: auto is accepted alone from the file (with
// require_gpu, which then keeps every model on CUDA), the environment and
// the flag, and refused beside another provider from each of them.
func TestProvidersAuto(t *testing.T) {
	c, err := load(t, "--config", "testdata/auto-require-gpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.ORT.Providers, []string{"auto"}) || !c.ORT.RequireGPU {
		t.Errorf("file: ort = %+v, want providers [auto] and require_gpu", c.ORT)
	}
	t.Setenv("MODELGATE_ORT_PROVIDERS", "auto")
	if c, err := load(t); err != nil || !reflect.DeepEqual(c.ORT.Providers, []string{"auto"}) {
		t.Errorf("env: providers %v, err %v; want [auto]", c.ORT.Providers, err)
	}
	t.Setenv("MODELGATE_ORT_PROVIDERS", "auto,cuda")
	if _, err := load(t); err == nil || !strings.Contains(err.Error(), "ort.providers: auto measures cuda and cpu itself and must be alone, got [auto cuda]") {
		t.Errorf("env auto,cuda: err = %v", err)
	}
	t.Setenv("MODELGATE_ORT_PROVIDERS", "")
	if c, err := load(t, "--providers", "auto"); err != nil || !reflect.DeepEqual(c.ORT.Providers, []string{"auto"}) {
		t.Errorf("flag: providers %v, err %v; want [auto]", c.ORT.Providers, err)
	}
	if _, err := load(t, "--providers", "auto,auto"); err == nil || !strings.Contains(err.Error(), "must be alone") {
		t.Errorf("flag auto,auto: err = %v", err)
	}
	if _, err := load(t, "--providers", "automatic"); err == nil || !strings.Contains(err.Error(), `unknown provider "automatic" (want cuda or cpu, or auto alone)`) {
		t.Errorf("flag automatic: err = %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := load(t, "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) && !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// The example configuration shipped in the repository must load.
func TestExampleConfig(t *testing.T) {
	if _, err := load(t, "--config", "../examples/gateway.yaml"); err != nil {
		t.Fatal(err)
	}
}

// An empty MODELGATE_* variable counts as unset: the Kubernetes manifests
// blank the image's defaults this way so that the mounted gateway.yaml
// decides.
func TestEmptyEnvironmentIsUnset(t *testing.T) {
	t.Setenv("MODELGATE_REGISTRY", "")
	t.Setenv("MODELGATE_ORT_PROVIDERS", "")
	c, err := load(t, "--config", "testdata/good.yaml")
	if err != nil || c.Registry != "file:///var/lib/modelgate/registry" || !reflect.DeepEqual(c.ORT.Providers, []string{"cpu"}) {
		t.Fatalf("%+v %v", c, err)
	}
}

// checkBadFiles loads every file matching glob and checks that it is
// refused with an error containing want[its base name]; every file needs
// an expectation.
func checkBadFiles(t *testing.T, glob string, want map[string]string) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := load(t, "--config", f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if w := want[filepath.Base(f)]; !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		})
	}
}
