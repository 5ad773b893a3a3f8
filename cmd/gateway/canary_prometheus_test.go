package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/internal/testmodels"
)

// startPrometheus runs a real Prometheus server (the Debian package;
// MODELGATE_PROMETHEUS_BIN or prometheus on PATH; make test installs it)
// scraping targets every 250 ms, and returns its URL once it is ready.
func startPrometheus(t *testing.T, targets ...string) string {
	t.Helper()
	bin := os.Getenv("MODELGATE_PROMETHEUS_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("prometheus"); err != nil {
			t.Fatalf("the Prometheus server is needed for this test (make test installs it: apt-get install prometheus): %v", err)
		}
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: modelgate\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=error")
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	url := "http://" + addr
	waitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return url
}

// Two gateways judge a canary on the traffic of both, summed by a real
// Prometheus that scrapes them: a good candidate is promoted, a NaN one
// rolled back, and every recorded analysis came from Prometheus.
func TestCanaryPrometheusSource(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood(), testmodels.CanaryNaN())
	addrs := []string{freePort(t), freePort(t)}
	promURL := startPrometheus(t, addrs...)
	var bases []string
	for _, addr := range addrs {
		cfg := canaryConfig(t, dir)
		cfg.Listen = addr
		cfg.Canary.Source = "prometheus"
		cfg.Canary.PrometheusURL = promURL
		base, _ := startGatewayCancel(t, cfg)
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
		bases = append(bases, base)
	}
	tr := startTraffic(t, 4, bases...)
	ctx := context.Background()

	plan := testPlan(3 * time.Second)
	if _, err := reg.StartCanary(ctx, "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	rel := waitTerminal(t, reg, 120*time.Second)
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("good candidate: %s (%s)", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
	a := rel.Canary.Analysis
	if a == nil || a.Source != "prometheus" || a.Observations.Candidate.Requests < plan.MinSamples {
		t.Fatalf("last analysis of the good candidate: %+v", a)
	}
	t.Logf("good candidate promoted; last analysis from %s: %+v", a.Source, a.Observations)

	// Version 2 is stable now; version 3 answers NaN.
	waitFor(t, 30*time.Second, "version 2 served on both", func() bool {
		return servingVersion(bases[0], "m") == "2" && servingVersion(bases[1], "m") == "2"
	})
	if _, err := reg.StartCanary(ctx, "m", "3", plan, true, "test"); err != nil {
		t.Fatal(err)
	}
	rel = waitTerminal(t, reg, 120*time.Second)
	tr.Stop()
	st := rel.Canary.Progress
	if st.Phase != release.RolledBack || rel.Stable != "2" || !strings.Contains(st.Reason, "nonfinite_rate") {
		t.Fatalf("NaN candidate: %s (%s), stable %s", st.Phase, st.Reason, rel.Stable)
	}
	if a := rel.Canary.Analysis; a == nil || a.Source != "prometheus" || a.Observations.Candidate.NonFinite == 0 {
		t.Fatalf("last analysis of the NaN candidate: %+v", a)
	}
	if n := tr.failed.Load(); n > 0 {
		t.Fatalf("%d requests failed; first: %v", n, tr.firstErr.Load())
	}
}
