package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/wire"
)

func newLocalRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(b, registry.Options{})
}

func pushBytes(t *testing.T, r *registry.Registry, version string, model []byte) {
	t.Helper()
	spec := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}}
	if _, _, err := r.Push(context.Background(), registry.PushRequest{Name: "m", Version: version, Model: model, Inputs: spec, Outputs: spec}); err != nil {
		t.Fatal(err)
	}
}

func TestGateReports(t *testing.T) {
	ctx := context.Background()
	r := newLocalRegistry(t)
	pushBytes(t, r, "1", []byte("one"))
	if _, err := r.GatePassed(ctx, "m", "1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("never gated: %v", err)
	}
	if err := r.PutGateReport(ctx, "m", "1", []byte(`{"verdict":"fail"}`), []byte("# fail")); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.GatePassed(ctx, "m", "1"); err != nil || ok {
		t.Fatalf("failed report: %v %v", ok, err)
	}
	// Gating again replaces the report.
	if err := r.PutGateReport(ctx, "m", "1", []byte(`{"verdict":"pass","gates":[]}`), []byte("# pass")); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.GatePassed(ctx, "m", "1"); err != nil || !ok {
		t.Fatalf("passed report: %v %v", ok, err)
	}
	for _, bad := range []string{`not json`, `{"verdict":"maybe"}`, `{}`} {
		if err := r.PutGateReport(ctx, "m", "1", []byte(bad), nil); !errors.Is(err, registry.ErrInvalidRequest) {
			t.Fatalf("report %s: %v", bad, err)
		}
	}
	if err := r.PutGateReport(ctx, "m", "9", []byte(`{"verdict":"pass"}`), nil); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("report for a missing version: %v", err)
	}
	// The version itself is untouched and its listing unchanged.
	if vs, err := r.Versions(ctx, "m"); err != nil || len(vs) != 1 {
		t.Fatalf("versions %v %v", vs, err)
	}
	if b, _, err := r.Fetch(ctx, "m", "1"); err != nil || string(b) != "one" {
		t.Fatalf("fetch %q %v", b, err)
	}
}

func TestFetchUnverified(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, _ := registry.NewLocal(dir)
	r := registry.New(b, registry.Options{})
	pushBytes(t, r, "1", []byte("one"))
	if err := b.Upload(ctx, "models/m/versions/1/model.onnx", strings.NewReader("tampered")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Fetch(ctx, "m", "1"); !errors.Is(err, registry.ErrDigestMismatch) {
		t.Fatalf("Fetch: %v", err)
	}
	got, m, err := r.FetchUnverified(ctx, "m", "1")
	if err != nil || string(got) != "tampered" || m.Version != "1" {
		t.Fatalf("FetchUnverified: %q %+v %v", got, m, err)
	}
}
