package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

// gateway is a real router over a real catalog and registry, on fake
// models (servingtest) unless withORT puts the real ONNX Runtime under it.
type gateway struct {
	t       *testing.T
	loader  catalog.Loader
	reg     releasetest.Registry
	cat     *catalog.Catalog
	srv     *Server
	http    *httptest.Server
	metrics *prometheus.Registry
}

type gwOption func(*catalog.Options, *Options)

func withMaxBody(n int64) gwOption {
	return func(_ *catalog.Options, o *Options) { o.MaxBodyBytes = n }
}

func withExtra(f func(e *echo.Echo)) gwOption {
	return func(_ *catalog.Options, o *Options) { o.Extra = f }
}

// withORT serves the models on the real ONNX Runtime (skipped by -short).
func withORT(t *testing.T) gwOption {
	rt := ortest.Runtime(t)
	return func(c *catalog.Options, _ *Options) { c.Loader = rt }
}

func withModels(names ...string) gwOption {
	return func(c *catalog.Options, _ *Options) { c.Models = names }
}

// newGateway pushes models (name → version → model bytes, first version
// pushed of each model becomes stable) and starts the gateway. It syncs
// once unless sync is false.
func newGateway(t *testing.T, sync bool, models []pushSpec, opts ...gwOption) *gateway {
	t.Helper()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, reg: releasetest.Wrap(registry.New(b, registry.Options{}), nil), metrics: prometheus.NewRegistry()}
	co := catalog.Options{Source: g.reg.Registry, Loader: &servingtest.Loader{}, Registerer: g.metrics}
	so := Options{Registerer: g.metrics, Gatherer: g.metrics}
	for _, o := range opts {
		o(&co, &so)
	}
	g.loader = co.Loader
	for _, m := range models {
		g.push(m.name, m.version, m.model)
	}
	g.cat = catalog.New(co)
	so.Catalog = g.cat
	g.srv = New(so)
	g.http = httptest.NewServer(g.srv)
	t.Cleanup(func() {
		g.http.Close()
		g.cat.Close()
	})
	if sync {
		if err := g.cat.Sync(context.Background()); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	return g
}

type pushSpec struct {
	name, version string
	model         []byte
}

func (g *gateway) push(name, version string, model []byte) {
	g.t.Helper()
	ins, outs, err := catalog.Signature(g.loader, model)
	if err != nil {
		g.t.Fatalf("signature of %s/%s: %v", name, version, err)
	}
	if _, _, err := g.reg.Push(context.Background(), registry.PushRequest{Name: name, Version: version, Model: model, Inputs: ins, Outputs: outs}); err != nil {
		g.t.Fatalf("push %s/%s: %v", name, version, err)
	}
}

// do sends a request and decodes a JSON answer into a generic map.
func (g *gateway) do(method, path string, body any) (int, map[string]any) {
	g.t.Helper()
	code, raw := g.raw(method, path, body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		g.t.Fatalf("%s %s: answer is not a JSON object (%d): %q", method, path, code, raw)
	}
	return code, m
}

func (g *gateway) raw(method, path string, body any) (int, []byte) {
	g.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, g.http.URL+path, r)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Client().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); len(out) > 0 && ct != "application/json" && ct != "application/json; charset=UTF-8" && path != "/metrics" {
		g.t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	return resp.StatusCode, out
}
