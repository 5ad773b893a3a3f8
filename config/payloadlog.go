package config

import (
	"net/url"
	"sort"
	"time"

	"github.com/modelgate/modelgate/registry"
)

// PayloadLogging settings: a sampled share of the requests of opted-in
// models, with their answers, logged off the request path (package
// payloadlog) as CloudEvents to an HTTP sink (sink.url) or as JSON lines in
// the registry's storage (storage.prefix). Off while models is empty.
type PayloadLogging struct {
	// Models opt in: only their requests are logged.
	Models []string `mapstructure:"models"`
	// SampleRate is the share of an opted-in model's requests logged, in
	// [0, 1]; decided by a hash of the request id when there is one.
	SampleRate float64 `mapstructure:"sample_rate"`
	// SampleRates overrides SampleRate for some of Models.
	SampleRates map[string]float64 `mapstructure:"sample_rates"`
	// Sink is the HTTP sink of CloudEvents; Storage the JSON lines. Exactly
	// one of sink.url and storage.prefix is set when Models is not empty.
	Sink    PayloadSink    `mapstructure:"sink"`
	Storage PayloadStorage `mapstructure:"storage"`
	// QueueSize bounds the events waiting to be sent; beyond it they are
	// dropped (counted), never waited for.
	QueueSize int `mapstructure:"queue_size"`
	// Workers send events at once.
	Workers int `mapstructure:"workers"`
	// MaxPayloadBytes caps each of a request's two payloads once encoded
	// (the request's and the response's); a request over it is dropped
	// (counted).
	MaxPayloadBytes int `mapstructure:"max_payload_bytes"`
	// Timeout bounds one attempt to send (a POST, an object upload).
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries after a failed attempt, with backoff.
	Retries int `mapstructure:"retries"`
	// FlushTimeout bounds, at shutdown, the sending of what is queued and
	// buffered.
	FlushTimeout time.Duration `mapstructure:"flush_timeout"`
}

// PayloadSink is an HTTP endpoint that takes CloudEvents.
type PayloadSink struct {
	// URL, http:// or https://.
	URL string `mapstructure:"url"`
	// Mode is the CloudEvents content mode: binary (attributes in ce-
	// headers, KServe's logger's mode) or structured (one JSON object).
	Mode string `mapstructure:"mode"`
	// Source is the events' source attribute; empty: /modelgate/<host>.
	Source string `mapstructure:"source"`
	// Namespace, when set, is sent as the namespace extension attribute.
	Namespace string `mapstructure:"namespace"`
}

// PayloadStorage is a prefix of the registry's storage (its directory or
// bucket) that takes JSON lines, one object per model, hour and flush.
type PayloadStorage struct {
	// Prefix, such as "payloads", outside the registry's models/ tree.
	Prefix string `mapstructure:"prefix"`
	// FlushBytes: an object is written once it holds this many bytes.
	FlushBytes int `mapstructure:"flush_bytes"`
	// FlushInterval: an object is written once it is this old.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// defaultPayloadLogging is PayloadLogging's part of Default.
func defaultPayloadLogging() PayloadLogging {
	return PayloadLogging{
		SampleRate:      1,
		Sink:            PayloadSink{Mode: "binary"},
		Storage:         PayloadStorage{FlushBytes: 8 << 20, FlushInterval: time.Minute},
		QueueSize:       1024,
		Workers:         2,
		MaxPayloadBytes: 1 << 20,
		Timeout:         5 * time.Second,
		Retries:         3,
		FlushTimeout:    10 * time.Second,
	}
}

// Enabled reports whether any model opted in.
func (p PayloadLogging) Enabled() bool { return len(p.Models) > 0 }

// Rates is each opted-in model's sample rate.
func (p PayloadLogging) Rates() map[string]float64 {
	r := make(map[string]float64, len(p.Models))
	for _, m := range p.Models {
		r[m] = p.SampleRate
		if v, ok := p.SampleRates[m]; ok {
			r[m] = v
		}
	}
	return r
}

// Bounds of the payload logging settings.
const (
	maxPayloadQueue   = 1 << 20
	maxPayloadWorkers = 64
	maxPayloadRetries = 10
)

// validate checks the payload_logging section; served holds the configured
// models (empty: every model in the registry is served).
func (p PayloadLogging) validate(bad func(key, format string, args ...any), served map[string]bool) {
	opted := map[string]bool{}
	for _, m := range p.Models {
		if err := registry.ValidateName(m); err != nil {
			bad("payload_logging.models", "%v", err)
			continue
		}
		if opted[m] {
			bad("payload_logging.models", "%q is listed twice", m)
		}
		if len(served) > 0 && !served[m] {
			bad("payload_logging.models", "%q is not among the served models", m)
		}
		opted[m] = true
	}
	if !(p.SampleRate >= 0 && p.SampleRate <= 1) {
		bad("payload_logging.sample_rate", "must be a share of requests in [0, 1], got %g", p.SampleRate)
	}
	names := make([]string, 0, len(p.SampleRates))
	for m := range p.SampleRates {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if !opted[m] {
			bad("payload_logging.sample_rates", "%q is not among payload_logging.models %v: list it there to opt it in", m, p.Models)
		}
		if r := p.SampleRates[m]; !(r >= 0 && r <= 1) {
			bad("payload_logging.sample_rates."+m, "must be a share of requests in [0, 1], got %g", r)
		}
	}
	s := p.Sink
	if s.URL != "" {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("payload_logging.sink.url", "want an http:// or https:// URL with a host, e.g. http://message-dumper.default/, got %q", s.URL)
		}
	}
	if s.Mode != "binary" && s.Mode != "structured" {
		bad("payload_logging.sink.mode", "%q is not one of binary, structured", s.Mode)
	}
	st := p.Storage
	if st.Prefix != "" {
		if err := registry.ValidateKey(st.Prefix); err != nil || st.Prefix[0] == '/' {
			bad("payload_logging.storage.prefix", "want a relative key prefix such as \"payloads\", got %q", st.Prefix)
		} else if first := firstSegment(st.Prefix); first == "models" {
			bad("payload_logging.storage.prefix", "%q is inside the registry's models/ tree: pick another, such as \"payloads\"", st.Prefix)
		}
	}
	if p.Enabled() {
		switch {
		case s.URL == "" && st.Prefix == "":
			bad("payload_logging", "models %v opt in but no sink is set: set sink.url (CloudEvents over HTTP) or storage.prefix (JSON lines in the registry's storage)", p.Models)
		case s.URL != "" && st.Prefix != "":
			bad("payload_logging", "both sink.url and storage.prefix are set: pick one")
		}
	}
	if st.FlushBytes < 1024 || st.FlushBytes > 1<<30 {
		bad("payload_logging.storage.flush_bytes", "must be between 1024 and %d, got %d", 1<<30, st.FlushBytes)
	}
	if st.FlushInterval < time.Second {
		bad("payload_logging.storage.flush_interval", "must be at least 1s, got %s", st.FlushInterval)
	}
	if p.QueueSize < 1 || p.QueueSize > maxPayloadQueue {
		bad("payload_logging.queue_size", "must be between 1 and %d, got %d", maxPayloadQueue, p.QueueSize)
	}
	if p.Workers < 1 || p.Workers > maxPayloadWorkers {
		bad("payload_logging.workers", "must be between 1 and %d, got %d", maxPayloadWorkers, p.Workers)
	}
	if p.MaxPayloadBytes < 1024 || p.MaxPayloadBytes > 1<<30 {
		bad("payload_logging.max_payload_bytes", "must be between 1024 and %d, got %d", 1<<30, p.MaxPayloadBytes)
	}
	if p.Timeout <= 0 {
		bad("payload_logging.timeout", "must be a positive duration such as 5s, got %s", p.Timeout)
	}
	if p.Retries < 0 || p.Retries > maxPayloadRetries {
		bad("payload_logging.retries", "must be between 0 and %d, got %d", maxPayloadRetries, p.Retries)
	}
	if p.FlushTimeout <= 0 {
		bad("payload_logging.flush_timeout", "must be a positive duration such as 10s, got %s", p.FlushTimeout)
	}
}

// firstSegment is a key's first segment.
func firstSegment(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}
