package catalog_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

// seeds gives each test version its own weights, so that versions answer
// differently: with the input below, seed 1 says label 0 and seed -1 label 1.
var seeds = map[string]float32{"1": 1, "2": -1, "3": 2, "4": -2, "5": 3}

// modelBytes is the (fake) model of a test version.
func modelBytes(version string) []byte {
	s, ok := seeds[version]
	if !ok {
		panic("no seed for version " + version)
	}
	return servingtest.Scaled(s)
}

// input is what every test sends to a Scaled model.
func input() []wire.Tensor {
	return []wire.Tensor{{Name: "features", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
}

// answer is a Scaled model's output for input().
type answer struct {
	label int64
	probs []float32
}

func (a answer) equal(b answer) bool {
	if a.label != b.label || len(a.probs) != len(b.probs) {
		return false
	}
	for i := range a.probs {
		if math.Abs(float64(a.probs[i]-b.probs[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// run runs s on input(); the caller holds a reference.
func run(ctx context.Context, s *serving.Session) (answer, error) {
	out, err := s.Run(ctx, input(), []string{"label", "probabilities"})
	if err != nil {
		return answer{}, err
	}
	return answer{label: out[0].Data.([]int64)[0], probs: out[1].Data.([]float32)}, nil
}

func mustRun(t *testing.T, s *serving.Session) answer {
	t.Helper()
	a, err := run(t.Context(), s)
	if err != nil {
		t.Fatalf("run version %s: %v", s.Version(), err)
	}
	return a
}

// reference is a version's answer, computed on a session of its own,
// outside the catalog.
func reference(t *testing.T, version string) answer {
	t.Helper()
	m, err := servingtest.Load(modelBytes(version), serving.ModelOptions{Name: "ref", Version: version})
	if err != nil {
		t.Fatal(err)
	}
	s := serving.NewSession(m, serving.SessionOptions{})
	defer func() { s.Close(); <-s.Done() }()
	return mustRun(t, s)
}

// fixture is a real local registry in a temporary directory and a catalog
// over it, on fake models (servingtest) unless an option sets the Loader.
type fixture struct {
	t       *testing.T
	loader  catalog.Loader
	root    string
	bucket  *registry.LocalBucket
	reg     releasetest.Registry
	metrics *prometheus.Registry
	cat     *catalog.Catalog
}

// newFixture pushes versions ("model/version", the first of each model
// becomes stable) and creates the catalog; it does not sync.
func newFixture(t *testing.T, versions []string, opts ...func(*catalog.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), metrics: prometheus.NewRegistry()}
	b, err := registry.NewLocal(f.root)
	if err != nil {
		t.Fatal(err)
	}
	f.bucket = b
	f.reg = releasetest.Wrap(registry.New(b, registry.Options{}), nil)
	co := catalog.Options{Source: f.reg.Registry, Loader: &servingtest.Loader{}, Registerer: f.metrics, Now: stepClock()}
	for _, o := range opts {
		o(&co)
	}
	f.loader = co.Loader
	for _, nv := range versions {
		name, version, _ := strings.Cut(nv, "/")
		f.push(name, version, modelBytes(version))
	}
	f.cat = catalog.New(co)
	t.Cleanup(func() {
		// Close waits for held sessions; a test that failed holding one
		// must not hang the run.
		closed := make(chan struct{})
		go func() {
			f.cat.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Error("Close did not return: a session was never released")
		}
	})
	return f
}

// stepClock is a clock that moves 1 ms on each reading, so that two
// readings are never equal (the LRU order of pinned versions depends on it).
func stepClock() func() time.Time {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// push stores model as name/version, with the signature of a valid model
// (model itself when it loads, else version 1's), so that bytes the loader
// refuses can be stored with a consistent manifest.
func (f *fixture) push(name, version string, model []byte) {
	f.t.Helper()
	ins, outs, err := catalog.Signature(f.loader, model)
	if err != nil {
		ins, outs, err = catalog.Signature(f.loader, modelBytes("1"))
		if err != nil {
			f.t.Fatal(err)
		}
	}
	if _, _, err := f.reg.Push(f.t.Context(), registry.PushRequest{Name: name, Version: version, Model: model, Inputs: ins, Outputs: outs}); err != nil {
		f.t.Fatalf("push %s/%s: %v", name, version, err)
	}
}

func (f *fixture) setStable(name, version string) {
	f.t.Helper()
	if _, err := f.reg.SetStable(f.t.Context(), name, version, false, "test"); err != nil {
		f.t.Fatalf("set stable %s/%s: %v", name, version, err)
	}
}

func (f *fixture) sync() {
	f.t.Helper()
	if err := f.cat.Sync(f.t.Context()); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

// modelFile is where the local bucket keeps a version's model bytes.
func (f *fixture) modelFile(name, version string) string {
	return filepath.Join(f.root, "models", name, "versions", version, "model.onnx")
}

// acquire is Acquire that must succeed with the given version.
func (f *fixture) acquire(model, version, wantVersion string) *serving.Session {
	f.t.Helper()
	// A deadline turns a catalog that keeps loading and evicting into a
	// failure rather than a hung test.
	ctx, cancel := context.WithTimeout(f.t.Context(), 10*time.Second)
	defer cancel()
	s, err := f.cat.Acquire(ctx, model, version)
	if err != nil {
		f.t.Fatalf("Acquire(%q, %q): %v", model, version, err)
	}
	if s.Version() != wantVersion {
		s.Release()
		f.t.Fatalf("Acquire(%q, %q) gave version %s, want %s", model, version, s.Version(), wantVersion)
	}
	return s
}

func (f *fixture) modelStatus(name string) catalog.ModelStatus {
	f.t.Helper()
	for _, ms := range f.cat.Status().Models {
		if ms.Name == name {
			return ms
		}
	}
	f.t.Fatalf("Status has no model %q: %+v", name, f.cat.Status())
	return catalog.ModelStatus{}
}

// series returns the values of a metric family by label set, written
// "k=v,k=v" in label-name order.
func series(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// isDone reports whether a session has been destroyed, without waiting.
func isDone(s *serving.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// waitDone waits for a session to be destroyed, failing after a while
// rather than hanging the test.
func waitDone(t *testing.T, s *serving.Session) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("session of %s version %s was not destroyed", s.Name(), s.Version())
	}
}
