package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// TestMain closes the ONNX Runtime that TestProbesAgainstRealGateway starts.
func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

var overlays = []string{"staging", "production", "gpu"}

// ServiceMonitor is the Prometheus Operator's CRD (monitoring.coreos.com/v1),
// reduced to the fields these manifests may use. It is a local struct rather
// than the operator's Go module (which would pull in its whole dependency
// tree): decoded strictly like every other kind, a field that is misspelt or
// not listed here fails the test, so a new field has to be added on purpose
// (after checking it against the CRD's schema).
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

type ServiceMonitorSpec struct {
	JobLabel          string               `json:"jobLabel,omitempty"`
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector *NamespaceSelector   `json:"namespaceSelector,omitempty"`
	Endpoints         []MonitoringEndpoint `json:"endpoints"`
	TargetLabels      []string             `json:"targetLabels,omitempty"`
	PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
	SampleLimit       *int64               `json:"sampleLimit,omitempty"`
}

type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

type MonitoringEndpoint struct {
	Port          string `json:"port,omitempty"`
	Path          string `json:"path,omitempty"`
	Scheme        string `json:"scheme,omitempty"`
	Interval      string `json:"interval,omitempty"`
	ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool   `json:"honorLabels,omitempty"`
}

// kinds maps each apiVersion/kind the manifests may hold to its Go type; any
// other kind fails the test.
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &ServiceMonitor{} },
}

// objects of one built overlay, by kind.
type objects struct {
	name           string
	all            []any
	deployment     *appsv1.Deployment
	statefulSets   []*appsv1.StatefulSet
	configMap      *corev1.ConfigMap
	services       []*corev1.Service
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *ServiceMonitor
	secrets        []*corev1.Secret
	namespaces     []*corev1.Namespace
}

// build runs kustomize on overlays/name over the real filesystem and decodes
// every object strictly into its API type.
func build(t *testing.T, name string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("overlays", name))
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", name, err)
	}
	objs := &objects{name: name}
	for _, r := range resMap.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(data, &tm); err != nil {
			t.Fatalf("overlays/%s: %v", name, err)
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		newObj, ok := kinds[gvk]
		if !ok {
			t.Errorf("overlays/%s: unexpected kind %s (%s): add it to kinds with its Go type", name, gvk, r.GetName())
			continue
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Errorf("overlays/%s: %s %s does not decode strictly into %T: %v", name, gvk, r.GetName(), obj, err)
			continue
		}
		objs.all = append(objs.all, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if objs.deployment != nil {
				t.Errorf("overlays/%s: two Deployments", name)
			}
			objs.deployment = o
		case *appsv1.StatefulSet:
			objs.statefulSets = append(objs.statefulSets, o)
		case *corev1.ConfigMap:
			if objs.configMap != nil {
				t.Errorf("overlays/%s: two ConfigMaps", name)
			}
			objs.configMap = o
		case *corev1.Service:
			objs.services = append(objs.services, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			objs.hpa = o
		case *policyv1.PodDisruptionBudget:
			objs.pdb = o
		case *ServiceMonitor:
			objs.serviceMonitor = o
		case *corev1.Secret:
			objs.secrets = append(objs.secrets, o)
		case *corev1.Namespace:
			objs.namespaces = append(objs.namespaces, o)
		}
	}
	if objs.deployment == nil || objs.configMap == nil || objs.hpa == nil || objs.pdb == nil || objs.serviceMonitor == nil {
		t.Fatalf("overlays/%s: missing a Deployment, ConfigMap, HPA, PDB or ServiceMonitor", name)
	}
	return objs
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  replica: 2\n")
	if err := yaml.UnmarshalStrict(bad, &appsv1.Deployment{}); err == nil {
		t.Error("UnmarshalStrict accepted spec.replica")
	}
	badSM := []byte("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  selector: {}\n  endpoints:\n    - port: http\n      pth: /metrics\n")
	if err := yaml.UnmarshalStrict(badSM, &ServiceMonitor{}); err == nil {
		t.Error("UnmarshalStrict accepted a ServiceMonitor endpoint's pth")
	}
}

// gateway is the container named gateway of the Deployment.
func gateway(t *testing.T, o *objects) *corev1.Container {
	t.Helper()
	for i := range o.deployment.Spec.Template.Spec.Containers {
		if c := &o.deployment.Spec.Template.Spec.Containers[i]; c.Name == "gateway" {
			return c
		}
	}
	t.Fatalf("overlays/%s: no container named gateway", o.name)
	return nil
}

func podSpecs(o *objects) map[string]*corev1.PodSpec {
	specs := map[string]*corev1.PodSpec{"Deployment/" + o.deployment.Name: &o.deployment.Spec.Template.Spec}
	for _, s := range o.statefulSets {
		specs["StatefulSet/"+s.Name] = &s.Spec.Template.Spec
	}
	return specs
}

// An image is name:tag or name@sha256:..., never latest and never untagged.
var (
	digestRef = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	shaTag    = regexp.MustCompile(`^sha-[0-9a-f]{7,40}$`)
)

func imageTag(image string) (string, bool) {
	if digestRef.MatchString(image) {
		return "", true
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return "", false
	}
	return image[colon+1:], true
}

func TestImagesPinned(t *testing.T) {
	for _, ov := range overlays {
		o := build(t, ov)
		for where, spec := range podSpecs(o) {
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				tag, ok := imageTag(c.Image)
				switch {
				case !ok:
					t.Errorf("overlays/%s %s: image %q has no tag or digest", ov, where, c.Image)
				case tag == "latest":
					t.Errorf("overlays/%s %s: image %q uses latest", ov, where, c.Image)
				}
				if c.ImagePullPolicy == corev1.PullAlways {
					t.Errorf("overlays/%s %s: imagePullPolicy Always suggests a moving tag", ov, where)
				}
			}
		}
		// The gateway's own image is tagged by git SHA (or pinned by digest).
		img := gateway(t, o).Image
		if tag, _ := imageTag(img); !digestRef.MatchString(img) && !shaTag.MatchString(tag) {
			t.Errorf("overlays/%s: gateway image %q is not tagged sha-<git sha>", ov, img)
		}
		want := "/modelgate:"
		if ov == "gpu" {
			want = "/modelgate-cuda:"
		}
		if !strings.Contains(img, want) {
			t.Errorf("overlays/%s: gateway image %q, want ...%s", ov, img, want)
		}
	}
	for img, ok := range map[string]bool{
		"ghcr.io/x/modelgate:sha-0000000": true, "ghcr.io/x/modelgate": false, "localhost:5000/modelgate": false,
		"quay.io/minio/minio:latest": true /* has a tag; latest is checked apart */, "x@sha256:" + strings.Repeat("a", 64): true,
	} {
		if _, got := imageTag(img); got != ok {
			t.Errorf("imageTag(%q) ok = %v, want %v", img, got, ok)
		}
	}
}

// loadGatewayConfig validates the ConfigMap's gateway.yaml with the gateway's
// own loader, as `gateway --config /etc/modelgate/gateway.yaml` would.
func loadGatewayConfig(t *testing.T, o *objects) config.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "MODELGATE_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	text, ok := o.configMap.Data["gateway.yaml"]
	if !ok {
		t.Fatalf("overlays/%s: ConfigMap %s has no gateway.yaml", o.name, o.configMap.Name)
	}
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	config.Flags(fs)
	if err := fs.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs)
	if err != nil {
		t.Fatalf("overlays/%s: gateway.yaml fails the gateway's validation: %v\n%s", o.name, err, text)
	}
	return cfg
}

func TestGatewayConfig(t *testing.T) {
	for _, ov := range overlays {
		o := build(t, ov)
		cfg := loadGatewayConfig(t, o)
		c := gateway(t, o)
		// The file is mounted where --config points.
		if !slices.Equal(c.Args, []string{"--config", "/etc/modelgate/gateway.yaml"}) {
			t.Errorf("overlays/%s: args %q, want --config /etc/modelgate/gateway.yaml", ov, c.Args)
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
		}
		vols := map[string]corev1.Volume{}
		for _, v := range o.deployment.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
		}
		if v := vols[mounts["/etc/modelgate"].Name]; v.ConfigMap == nil || v.ConfigMap.Name != o.configMap.Name {
			t.Errorf("overlays/%s: /etc/modelgate is not the ConfigMap %s", ov, o.configMap.Name)
		}
		// cache_dir is a writable emptyDir (the root filesystem is read-only).
		if cfg.CacheDir != "/var/cache/modelgate" {
			t.Errorf("overlays/%s: cache_dir %q, want /var/cache/modelgate", ov, cfg.CacheDir)
		}
		if m, ok := mounts[cfg.CacheDir]; !ok || m.ReadOnly || vols[m.Name].EmptyDir == nil {
			t.Errorf("overlays/%s: cache_dir %s is not a writable emptyDir mount", ov, cfg.CacheDir)
		}
		// S3 credentials from the Secret modelgate-s3.
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			e := env[k]
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "modelgate-s3" {
				t.Errorf("overlays/%s: %s is not a secretKeyRef to modelgate-s3", ov, k)
			}
		}
		// A non-empty MODELGATE_<KEY> would override gateway.yaml (only S3 settings belong in env).
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "MODELGATE_") && !strings.HasPrefix(e.Name, "MODELGATE_S3_") && (e.Value != "" || e.ValueFrom != nil) {
				t.Errorf("overlays/%s: env %s overrides gateway.yaml", ov, e.Name)
			}
		}
		for _, k := range []string{"MODELGATE_LISTEN", "MODELGATE_REGISTRY", "MODELGATE_CACHE_DIR", "MODELGATE_ORT_PROVIDERS"} {
			if _, ok := env[k]; !ok {
				t.Errorf("overlays/%s: env %s is not blanked: the image's ENV would override gateway.yaml", ov, k)
			}
		}
		if !strings.HasPrefix(cfg.Registry, "s3://") {
			t.Errorf("overlays/%s: registry %q, want s3://", ov, cfg.Registry)
		}
		switch ov {
		case "staging":
			if cfg.Registry != "s3://models/registry" || env["MODELGATE_S3_ENDPOINT"].Value != "minio:9000" || env["MODELGATE_S3_INSECURE"].Value != "true" {
				t.Errorf("staging: registry %q endpoint %q insecure %q", cfg.Registry, env["MODELGATE_S3_ENDPOINT"].Value, env["MODELGATE_S3_INSECURE"].Value)
			}
			minio := false
			for _, s := range o.services {
				for _, p := range s.Spec.Ports {
					minio = minio || (s.Name == "minio" && p.Port == 9000)
				}
			}
			if !minio || len(o.statefulSets) != 1 {
				t.Error("staging: no MinIO StatefulSet and Service minio:9000")
			}
		case "gpu":
			if !slices.Equal(cfg.ORT.Providers, []string{"cuda", "cpu"}) || !cfg.ORT.RequireGPU {
				t.Errorf("gpu: ort.providers %v require_gpu %v, want [cuda cpu] true", cfg.ORT.Providers, cfg.ORT.RequireGPU)
			}
		}
		// Only staging may carry a Secret, and only the marked placeholder.
		for _, s := range o.secrets {
			if ov != "staging" || s.Labels["modelgate.dev/placeholder"] != "true" {
				t.Errorf("overlays/%s: Secret %s is committed; create it out of band (k8s/README.md)", ov, s.Name)
			}
		}
	}
}

func TestShutdownTiming(t *testing.T) {
	for _, ov := range overlays {
		o := build(t, ov)
		cfg := loadGatewayConfig(t, o)
		c := gateway(t, o)
		spec := o.deployment.Spec.Template.Spec
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("overlays/%s: no lifecycle.preStop.sleep", ov)
		}
		preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if preStop != cfg.HTTP.DrainDelay {
			t.Errorf("overlays/%s: preStop sleep %s != http.drain_delay %s", ov, preStop, cfg.HTTP.DrainDelay)
		}
		if spec.TerminationGracePeriodSeconds == nil {
			t.Fatalf("overlays/%s: no terminationGracePeriodSeconds", ov)
		}
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		// The kubelet's clock starts before preStop; SIGTERM comes after it,
		// then the gateway drains and shuts down.
		if need := preStop + cfg.HTTP.DrainDelay + cfg.HTTP.ShutdownTimeout; grace <= need {
			t.Errorf("overlays/%s: terminationGracePeriodSeconds %s <= preStop %s + drain_delay %s + shutdown_timeout %s",
				ov, grace, preStop, cfg.HTTP.DrainDelay, cfg.HTTP.ShutdownTimeout)
		}
	}
}

func TestSecurityContext(t *testing.T) {
	for _, ov := range overlays {
		o := build(t, ov)
		for where, spec := range podSpecs(o) {
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				sc := c.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("overlays/%s %s/%s: no securityContext", ov, where, c.Name)
					continue
				case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
					t.Errorf("overlays/%s %s/%s: runAsNonRoot is not true", ov, where, c.Name)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("overlays/%s %s/%s: readOnlyRootFilesystem is not true", ov, where, c.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("overlays/%s %s/%s: allowPrivilegeEscalation is not false", ov, where, c.Name)
				case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
					t.Errorf("overlays/%s %s/%s: capabilities do not drop ALL", ov, where, c.Name)
				}
			}
		}
		c := gateway(t, o)
		uid := c.SecurityContext.RunAsUser
		if uid == nil {
			uid = o.deployment.Spec.Template.Spec.SecurityContext.RunAsUser
		}
		if uid == nil || *uid != 10001 {
			t.Errorf("overlays/%s: gateway runs as %v, want uid 10001", ov, uid)
		}
	}
}

func TestWorkloadShape(t *testing.T) {
	for _, ov := range overlays {
		o := build(t, ov)
		d := o.deployment
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("overlays/%s: replicas %v, want 2 or more", ov, d.Spec.Replicas)
		}
		c := gateway(t, o)
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
				t.Errorf("overlays/%s: %s request %s limit %s", ov, r, req.String(), lim.String())
			}
		}
		if h := o.hpa; h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name ||
			h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas ||
			len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("overlays/%s: HPA does not scale Deployment %s on CPU from 2 replicas", ov, d.Name)
		}
		if p := o.pdb; p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() < 1 || p.Spec.MinAvailable.IntValue() >= int(*o.hpa.Spec.MinReplicas) {
			t.Errorf("overlays/%s: PDB minAvailable %v (at least 1, below the minimum replicas)", ov, p.Spec.MinAvailable)
		}
		selected := func(sel *metav1.LabelSelector) bool {
			s, err := metav1.LabelSelectorAsSelector(sel)
			return err == nil && !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels))
		}
		if !selected(o.pdb.Spec.Selector) || !selected(&o.serviceMonitor.Spec.Selector) {
			t.Errorf("overlays/%s: PDB or ServiceMonitor selector misses the gateway pods", ov)
		}
		// Service port 80 -> the named port http -> 8080 (the ServiceMonitor scrapes /metrics
		// there); Service port 8081 -> the named port grpc -> 8081.
		var svc *corev1.Service
		for _, s := range o.services {
			if s.Name == "modelgate" {
				svc = s
			}
		}
		if svc == nil {
			t.Fatalf("overlays/%s: no Service modelgate", ov)
		}
		if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort != intstr.FromString("http") || svc.Spec.Ports[0].Name != "http" ||
			svc.Spec.Ports[1].Port != 8081 || svc.Spec.Ports[1].TargetPort != intstr.FromString("grpc") || svc.Spec.Ports[1].Name != "grpc" {
			t.Errorf("overlays/%s: Service ports %+v, want http 80 -> http and grpc 8081 -> grpc", ov, svc.Spec.Ports)
		}
		if !labelSet(svc.Spec.Selector).matches(d.Spec.Template.Labels) || !labelSet(o.serviceMonitor.Spec.Selector.MatchLabels).matches(svc.Labels) {
			t.Errorf("overlays/%s: Service or ServiceMonitor selects the wrong objects", ov)
		}
		if eps := o.serviceMonitor.Spec.Endpoints; len(eps) != 1 || eps[0].Port != "http" || eps[0].Path != "/metrics" {
			t.Errorf("overlays/%s: ServiceMonitor endpoints %+v, want port http path /metrics", ov, eps)
		}
		gpu := c.Resources.Limits["nvidia.com/gpu"]
		tolerated := slices.ContainsFunc(d.Spec.Template.Spec.Tolerations, func(t corev1.Toleration) bool {
			return t.Key == "nvidia.com/gpu" && (t.Operator == corev1.TolerationOpExists || t.Operator == corev1.TolerationOpEqual)
		})
		if ov == "gpu" {
			if gpu.Cmp(resource.MustParse("1")) != 0 || !tolerated {
				t.Errorf("gpu: nvidia.com/gpu limit %s, toleration %v; want 1 and a toleration", gpu.String(), tolerated)
			}
		} else if !gpu.IsZero() || tolerated {
			t.Errorf("overlays/%s: asks for a GPU", ov)
		}
	}
	prod, staging := build(t, "production"), build(t, "staging")
	if *prod.deployment.Spec.Replicas <= *staging.deployment.Spec.Replicas || *prod.hpa.Spec.MinReplicas <= *staging.hpa.Spec.MinReplicas {
		t.Error("production does not run more replicas than staging")
	}
	pc, sc := gateway(t, prod).Resources.Requests[corev1.ResourceCPU], gateway(t, staging).Resources.Requests[corev1.ResourceCPU]
	if pc.Cmp(sc) <= 0 {
		t.Errorf("production CPU request %s is not above staging's %s", pc.String(), sc.String())
	}
}

type labelSet map[string]string

// matches: every label of the selector l is in labels, and l is not empty.
func (l labelSet) matches(ls map[string]string) bool {
	if len(l) == 0 {
		return false
	}
	for k, v := range l {
		if ls[k] != v {
			return false
		}
	}
	return true
}

// probe is one probe of the gateway container.
type probe struct {
	kind string
	p    *corev1.Probe
	want string
}

// TestProbesAgainstRealGateway builds the gateway's handler the way
// cmd/gateway does (server.New over catalog.New, a real registry and ONNX
// Runtime, the demo model) and GETs each probe's path read from the
// manifests: the paths must be the gateway's real routes, and the named port
// they use must be the gateway's default listen port.
func TestProbesAgainstRealGateway(t *testing.T) {
	srv := startGateway(t)
	defPort, defGRPCPort := listenPort(t, config.Default().Listen), listenPort(t, config.Default().GRPC.Listen)
	for _, ov := range overlays {
		o := build(t, ov)
		cfg := loadGatewayConfig(t, o)
		c := gateway(t, o)
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if ports["http"] != int32(defPort) || listenPort(t, cfg.Listen) != defPort {
			t.Errorf("overlays/%s: containerPort http %d, listen %q; the gateway's default port is %d", ov, ports["http"], cfg.Listen, defPort)
		}
		if ports["grpc"] != int32(defGRPCPort) || cfg.GRPC.Listen == "" || listenPort(t, cfg.GRPC.Listen) != defGRPCPort {
			t.Errorf("overlays/%s: containerPort grpc %d, grpc.listen %q; the gateway's default gRPC port is %d", ov, ports["grpc"], cfg.GRPC.Listen, defGRPCPort)
		}
		for _, pr := range []probe{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/readyz"}} {
			if pr.p == nil || pr.p.HTTPGet == nil {
				t.Errorf("overlays/%s: no httpGet %s probe", ov, pr.kind)
				continue
			}
			g := pr.p.HTTPGet
			if g.Path != pr.want {
				t.Errorf("overlays/%s: %s probe path %q, want %q", ov, pr.kind, g.Path, pr.want)
			}
			if g.Port != intstr.FromString("http") {
				t.Errorf("overlays/%s: %s probe port %s, want the named port http", ov, pr.kind, g.Port.String())
			}
			if code := get(t, srv, g.Path); code != http.StatusOK {
				t.Errorf("overlays/%s: %s probe GET %s on the real gateway: %d, want 200", ov, pr.kind, g.Path, code)
			}
		}
		// Model loading takes time: the startup probe allows at least a minute
		// before the liveness probe can restart the container.
		if s := c.StartupProbe; s != nil && s.FailureThreshold*max(s.PeriodSeconds, 1) < 60 {
			t.Errorf("overlays/%s: startup probe allows only %ds", ov, s.FailureThreshold*s.PeriodSeconds)
		}
	}
}

func listenPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func get(t *testing.T, srv *httptest.Server, path string) int {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// startGateway serves the demo model from a local registry, as cmd/gateway
// serves a configured one. Readiness is 503 until the catalog has synced.
func startGateway(t *testing.T) *httptest.Server {
	t.Helper()
	testRT := ortest.Runtime(t) // the smoke row's answer is the demo model's
	ctx := context.Background()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(b, registry.Options{CacheDir: t.TempDir()})
	model, err := os.ReadFile(filepath.Join("..", "examples", "breast-cancer", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ins, outs, err := catalog.Signature(testRT, model)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Push(ctx, reg, registry.PushRequest{Name: "breast-cancer", Version: "1", Model: model, Inputs: ins, Outputs: outs}, time.Now()); err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	d := config.Default()
	cat := catalog.New(catalog.Options{
		Source: reg, Loader: testRT, MaxPinned: d.MaxPinnedVersions, MaxPinnedBytes: d.MaxPinnedBytes,
		PollInterval: d.PollInterval, Registerer: metrics,
	})
	h := server.New(server.Options{Catalog: cat, MaxBodyBytes: d.HTTP.MaxBodyBytes, Registerer: metrics, Gatherer: metrics})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cat.Close()
	})
	if code := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before sync: %d, want 200 (liveness never depends on models)", code)
	}
	if code := get(t, srv, "/readyz"); code == http.StatusOK {
		t.Error("/readyz is 200 before the model is loaded")
	}
	if err := cat.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// The smoke test's row (deploy.yaml) predicts on this gateway.
	body, _ := json.Marshal(map[string]any{"features": smokeRow})
	resp, err := srv.Client().Post(srv.URL+"/predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"prediction":[0]`) {
		t.Errorf("/predict with the smoke row: %d %s", resp.StatusCode, out)
	}
	return srv
}

// smokeRow is examples/breast-cancer/holdout.csv's first row (label 0), the
// row the deploy workflow's smoke test posts.
var smokeRow = []float64{13, 21.82, 87.5, 519.8, 0.1273, 0.1932, 0.1859, 0.09353, 0.235, 0.07389, 0.3063, 1.002, 2.406, 24.32, 0.005731, 0.03502, 0.03553, 0.01226, 0.02143, 0.003749, 15.49, 30.73, 106.2, 739.3, 0.1703, 0.5401, 0.539, 0.206, 0.4378, 0.1072}

// TestSmokeRowInWorkflow: the deploy workflow posts smokeRow.
func TestSmokeRowInWorkflow(t *testing.T) {
	wf, err := os.ReadFile(filepath.Join("..", ".github", "workflows", "deploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(smokeRow))
	for i, v := range smokeRow {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	if row := fmt.Sprintf("[%s]", strings.Join(parts, ",")); !bytes.Contains(wf, []byte(row)) {
		t.Errorf("deploy.yaml's smoke test does not post %s", row)
	}
}
