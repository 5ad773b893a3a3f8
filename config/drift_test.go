package config

import (
	"testing"
	"time"
)

func TestDriftFile(t *testing.T) {
	c, err := load(t, "--config", "testdata/drift/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Drift{Enabled: true, SampleRate: 0.25, Window: 6 * time.Hour, MaxVersions: 4}); c.Drift != want {
		t.Fatalf("got %+v, want %+v", c.Drift, want)
	}
}

func TestDriftDefaultsAndEnv(t *testing.T) {
	c, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Drift{Enabled: true, SampleRate: 1, Window: 24 * time.Hour, MaxVersions: 16}); c.Drift != want {
		t.Fatalf("documented defaults changed: %+v", c.Drift)
	}
	t.Setenv("MODELGATE_DRIFT_ENABLED", "false")
	t.Setenv("MODELGATE_DRIFT_SAMPLE_RATE", "0.1")
	if c, err = load(t); err != nil || c.Drift.Enabled || c.Drift.SampleRate != 0.1 {
		t.Fatalf("env not applied: %+v %v", c.Drift, err)
	}
}

func TestDriftBadFiles(t *testing.T) {
	want := map[string]string{
		"sample-rate.bad.yaml":  "drift.sample_rate: must be a share of requests in (0, 1], got 1.5",
		"short-window.bad.yaml": "drift.window: must be at least 1m, got 10s",
		"no-versions.bad.yaml":  "drift.max_versions: must be between 1 and 1024, got 0",
		"unknown-key.bad.yaml":  "sample",
	}
	checkBadFiles(t, "testdata/drift/*.bad.yaml", want)
}
