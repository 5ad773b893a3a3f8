package config

import (
	"reflect"
	"testing"
	"time"
)

func TestBatchingFile(t *testing.T) {
	c, err := load(t, "--config", "testdata/batching/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		model string
		want  Batching
	}{
		{"digits", Batching{MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxQueue: 256}},
		{"breast-cancer", Batching{MaxBatchSize: 0, MaxQueueDelay: 2 * time.Millisecond, MaxQueue: 256}},
		{"wide", Batching{MaxBatchSize: 32, MaxQueueDelay: time.Millisecond, MaxQueue: 64}},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			if got := c.Batching.For(tc.model); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBatchingDefaultsAndEnv(t *testing.T) {
	c, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Batching.For("any"); !reflect.DeepEqual(got, Batching{MaxBatchSize: 0, MaxQueueDelay: 500 * time.Microsecond, MaxQueue: 1024}) {
		t.Fatalf("documented defaults changed: %+v", got)
	}
	t.Setenv("MODELGATE_BATCHING_MAX_BATCH_SIZE", "16")
	t.Setenv("MODELGATE_BATCHING_MAX_QUEUE_DELAY", "250us")
	c, err = load(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.Batching.MaxBatchSize != 16 || c.Batching.MaxQueueDelay != 250*time.Microsecond {
		t.Fatalf("env not applied: %+v", c.Batching)
	}
}

func TestBatchingBadFiles(t *testing.T) {
	want := map[string]string{
		"negative-size.bad.yaml":        "batching.max_batch_size: must be between 0 (off) and 65536, got -1",
		"long-delay.bad.yaml":           "batching.max_queue_delay: must be between 0s and 1s",
		"zero-queue.bad.yaml":           "batching.max_queue: must be at least 1, got 0",
		"unknown-override-key.bad.yaml": "max_batch",
		"override-not-served.bad.yaml":  `batching.models: "iris" is not among the served models`,
		"bad-override.bad.yaml":         "batching.models.digits.max_queue_delay: must be between 0s and 1s",
	}
	checkBadFiles(t, "testdata/batching/*.bad.yaml", want)
}
