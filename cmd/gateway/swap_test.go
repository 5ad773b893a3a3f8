package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
)

// startGateway runs serve() on a free port with cfg and returns its base
// URL once it listens; the gateway stops when the test ends.
func startGateway(t *testing.T, cfg config.Config) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("serve returned early: %v", err)
	}
	return ""
}

// waitFor polls cond every 10 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servingVersion is the stable version /readyz reports for model.
func servingVersion(base, model string) string {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st catalog.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	for _, m := range st.Models {
		if m.Name == model {
			return m.Version
		}
	}
	return ""
}

func pushModel(t *testing.T, reg releasetest.Registry, rt *serving.Runtime, name, version string, model []byte) {
	t.Helper()
	ins, outs, err := catalog.Signature(rt, model)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Push(context.Background(), registry.PushRequest{Name: name, Version: version, Model: model, Inputs: ins, Outputs: outs}); err != nil {
		t.Fatal(err)
	}
}

// flip is one change of the stable version: set in the registry at set,
// seen served by the gateway at seen.
type flip struct {
	version   string
	set, seen time.Time
}

// TestHotSwapUnderLoad: 32 clients call /predict while stable flips
// between two versions 100 times. Zero non-2xx answers, zero transport
// errors, and every answer's version was stable at some moment during its
// request (counting, for each flip, the window between the registry
// change and the gateway's swap as belonging to both versions).
func TestHotSwapUnderLoad(t *testing.T) {
	rt, err := serving.NewRuntime(serving.Options{Providers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	dir := t.TempDir()
	b, err := registry.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := releasetest.Wrap(registry.New(b, registry.Options{}), nil)
	pushModel(t, reg, rt, "m", "1", testmodels.Scaled(1))
	pushModel(t, reg, rt, "m", "2", testmodels.Scaled(-4))

	cfg := testConfig(t)
	cfg.Registry = dir
	cfg.PollInterval = 100 * time.Millisecond
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })

	const clients, flips = 32, 100
	var mu sync.Mutex
	history := []flip{{version: "1"}} // version 1 stable from the start
	type answer struct {
		version    string
		start, end time.Time
	}
	answers := make([][]answer, clients)
	var failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"features":[%d,1,-1,0.5]}`, c)
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Post(base+"/predict", "application/json", strings.NewReader(body))
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				var got struct{ Version string }
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				end := time.Now()
				if resp.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, raw))
					continue
				}
				answers[c] = append(answers[c], answer{got.Version, start, end})
			}
		}(c)
	}
	ctx := context.Background()
	for i := 0; i < flips; i++ {
		next := "2"
		if i%2 == 1 {
			next = "1"
		}
		set := time.Now()
		if _, err := reg.SetStable(ctx, "m", next, false, ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "swap to "+next, func() bool { return servingVersion(base, "m") == next })
		mu.Lock()
		history = append(history, flip{version: next, set: set, seen: time.Now()})
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d failed requests; first: %v", n, firstErr.Load())
	}
	// validAt reports whether version v was stable at some moment in [s, e].
	validAt := func(v string, s, e time.Time) bool {
		for i, f := range history {
			from := f.set // the new version may answer from the registry change on
			until := time.Now()
			if i+1 < len(history) {
				until = history[i+1].seen // and keeps answering until the next swap is seen
			}
			if f.version == v && !from.After(e) && !until.Before(s) {
				return true
			}
		}
		return false
	}
	total := 0
	for c := range answers {
		for _, a := range answers[c] {
			total++
			if !validAt(a.version, a.start, a.end) {
				t.Fatalf("client %d got version %s for a request [%s, %s] when it was not stable", c, a.version, a.start.Format(time.StampMicro), a.end.Format(time.StampMicro))
			}
		}
	}
	if total < clients*flips/4 {
		t.Fatalf("only %d answers over %d flips: the load was not sustained", total, flips)
	}
	t.Logf("%d answers, %d flips, 0 failures", total, flips)
}
