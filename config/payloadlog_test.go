package config

import (
	"reflect"
	"testing"
	"time"
)

func TestPayloadLoggingFile(t *testing.T) {
	c, err := load(t, "--config", "testdata/payloadlog/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := PayloadLogging{
		Models:          []string{"fraud", "iris"},
		SampleRate:      0.1,
		SampleRates:     map[string]float64{"iris": 1},
		Sink:            PayloadSink{URL: "http://message-dumper.default/", Mode: "structured", Source: "/gateways/eu-1", Namespace: "prod"},
		Storage:         Default().PayloadLogging.Storage,
		QueueSize:       256,
		Workers:         4,
		MaxPayloadBytes: 64 << 10,
		Timeout:         2 * time.Second,
		Retries:         5,
		FlushTimeout:    20 * time.Second,
	}
	if !reflect.DeepEqual(c.PayloadLogging, want) {
		t.Fatalf("got  %+v\nwant %+v", c.PayloadLogging, want)
	}
	if got := c.PayloadLogging.Rates(); !reflect.DeepEqual(got, map[string]float64{"fraud": 0.1, "iris": 1}) {
		t.Fatalf("rates %v", got)
	}

	c, err = load(t, "--config", "testdata/payloadlog/storage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.PayloadLogging.Storage; s != (PayloadStorage{Prefix: "logs/payloads", FlushBytes: 1 << 20, FlushInterval: 30 * time.Second}) || c.PayloadLogging.Sink.URL != "" {
		t.Fatalf("storage %+v", c.PayloadLogging)
	}
}

func TestPayloadLoggingDefaultsAndEnv(t *testing.T) {
	c, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	p := c.PayloadLogging
	if p.Enabled() || p.SampleRate != 1 || p.Sink.Mode != "binary" || p.QueueSize != 1024 || p.Workers != 2 || p.MaxPayloadBytes != 1<<20 ||
		p.Timeout != 5*time.Second || p.Retries != 3 || p.FlushTimeout != 10*time.Second ||
		p.Storage != (PayloadStorage{FlushBytes: 8 << 20, FlushInterval: time.Minute}) {
		t.Fatalf("documented defaults changed: %+v", p)
	}
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_MODELS", "a,b")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_SAMPLE_RATE", "0.5")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_SINK_URL", "https://sink.example/events")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_SINK_MODE", "structured")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_QUEUE_SIZE", "64")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_TIMEOUT", "1s")
	if c, err = load(t); err != nil {
		t.Fatal(err)
	}
	p = c.PayloadLogging
	if !reflect.DeepEqual(p.Models, []string{"a", "b"}) || p.SampleRate != 0.5 || p.Sink.URL != "https://sink.example/events" || p.Sink.Mode != "structured" || p.QueueSize != 64 || p.Timeout != time.Second {
		t.Fatalf("env not applied: %+v", p)
	}
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_SINK_URL", "")
	t.Setenv("MODELGATE_PAYLOAD_LOGGING_STORAGE_PREFIX", "payloads")
	if c, err = load(t); err != nil || c.PayloadLogging.Storage.Prefix != "payloads" {
		t.Fatalf("storage prefix from env: %+v %v", c.PayloadLogging, err)
	}
}

func TestPayloadLoggingBadFiles(t *testing.T) {
	want := map[string]string{
		"no-sink.bad.yaml":        "payload_logging: models [fraud] opt in but no sink is set",
		"two-sinks.bad.yaml":      "payload_logging: both sink.url and storage.prefix are set",
		"sample-rate.bad.yaml":    "payload_logging.sample_rate: must be a share of requests in [0, 1], got 1.5",
		"rate-not-opted.bad.yaml": `payload_logging.sample_rates: "iris" is not among payload_logging.models [fraud]`,
		"mode.bad.yaml":           `payload_logging.sink.mode: "batched" is not one of binary, structured`,
		"url.bad.yaml":            `payload_logging.sink.url: want an http:// or https:// URL`,
		"models-prefix.bad.yaml":  `payload_logging.storage.prefix: "models/payloads" is inside the registry's models/ tree`,
		"not-served.bad.yaml":     `payload_logging.models: "fraud" is not among the served models`,
		"queue.bad.yaml":          "payload_logging.queue_size: must be between 1 and 1048576, got 0",
		"retries.bad.yaml":        "payload_logging.retries: must be between 0 and 10, got 11",
		"unknown-key.bad.yaml":    "format",
	}
	checkBadFiles(t, "testdata/payloadlog/*.bad.yaml", want)
}
