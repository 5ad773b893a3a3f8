package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
)

// outage is how long MinIO stays down under load.
const outage = 30 * time.Second

// TestMinIOOutageUnderLoad: a gateway following a MinIO registry keeps
// answering while MinIO is killed for 30 s under load (zero failed
// requests, readiness unaffected), and picks up a new stable version once
// MinIO is back.
func TestMinIOOutageUnderLoad(t *testing.T) {
	srv, reg, location := minioRegistry(t, testmodels.Scaled(1), testmodels.Scaled(-4))

	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 200 * time.Millisecond
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(base+"/predict", "application/json", strings.NewReader(fmt.Sprintf(`{"features":[%d,1,2,3]}`, c)))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, body))
					continue
				}
				ok.Add(1)
			}
		}(c)
	}
	srv.Kill()
	// During the outage: keep loading, and readiness must stay 200.
	deadline := time.Now().Add(outage)
	notReady := 0
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			notReady++
		}
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(250 * time.Millisecond) // sampling readiness during a fixed-length outage
	}
	srv.Restart(t)
	okDuringOutage := ok.Load()
	if _, err := reg.SetStable(context.Background(), "m", "2", false, "after the outage"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "version 2 served after MinIO came back", func() bool { return servingVersion(base, "m") == "2" })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d failed requests; first: %v", n, firstErr.Load())
	}
	if notReady > 0 {
		t.Fatalf("readiness failed %d times during the registry outage", notReady)
	}
	if okDuringOutage < 100 {
		t.Fatalf("only %d requests answered during the outage: the load was not sustained", okDuringOutage)
	}
	t.Logf("%d requests answered (%d by the end of the %s outage), 0 failed; swap resumed after restart", ok.Load(), okDuringOutage, outage)
}

// TestStartWhileRegistryDown: a gateway started while MinIO is down is
// alive but not ready, keeps retrying, and becomes ready once MinIO is up.
func TestStartWhileRegistryDown(t *testing.T) {
	srv, _, location := minioRegistry(t, testmodels.Scaled(1))
	srv.Stop()

	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 200 * time.Millisecond
	base := startGateway(t, cfg)
	for i := 0; i < 5; i++ {
		if code := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("healthz with the registry down: %d", code)
		}
		if code := get(t, base+"/readyz"); code != 503 {
			t.Fatalf("readyz with the registry down: %d", code)
		}
	}
	srv.Restart(t)
	waitFor(t, 60*time.Second, "ready once MinIO is up", func() bool { return get(t, base+"/readyz") == 200 })
}

// minioRegistry starts a MinIO, points the S3 settings at it, and pushes
// models as versions 1, 2, ... of model "m" into a fresh bucket.
func minioRegistry(t *testing.T, models ...[]byte) (*miniotest.Server, releasetest.Registry, string) {
	t.Helper()
	srv := miniotest.Start(t)
	srv.Setenv(t)
	location := "s3://" + srv.NewBucket(t) + "/registry"
	return srv, pushVersions(t, location, models...), location
}

// pushVersions opens the registry at location and pushes models as
// versions 1, 2, ... of model "m".
func pushVersions(t *testing.T, location string, models ...[]byte) releasetest.Registry {
	t.Helper()
	opened, err := registry.Open(context.Background(), location, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := releasetest.Wrap(opened, nil)
	rt, err := serving.NewRuntime(serving.Options{Providers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for i, m := range models {
		pushModel(t, reg, rt, "m", fmt.Sprint(i+1), m)
	}
	return reg
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
