package catalog

import (
	"errors"
	"time"

	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/signing"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	registryErrors  prometheus.Counter
	registrySuccess prometheus.Gauge
	loads           *prometheus.CounterVec
	failures        *prometheus.CounterVec
	// signatureRefusals counts versions refused by the signature check,
	// by reason (signing.Reason).
	signatureRefusals *prometheus.CounterVec
	// releaseRefusals counts release states not believed (history.go).
	releaseRefusals *prometheus.CounterVec
	loadTime        *prometheus.HistogramVec
	sessions        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, c *Catalog) *metrics {
	m := &metrics{
		registryErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelgate_registry_errors_total",
			Help: "Registry reads (model list, release state) that failed; loaded versions keep serving.",
		}),
		registrySuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modelgate_registry_last_success_timestamp_seconds",
			Help: "When the registry was last read completely (Unix time).",
		}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_model_loads_total",
			Help: "Model version loads (fetch, verify, session, warm-up), by result.",
		}, []string{"model", "version", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_model_load_failures_total",
			Help: "Model version loads that failed, by reason: signature, digest, fetch, invalid_model, warmup, other.",
		}, []string{"model", "reason"}),
		signatureRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_signature_refusals_total",
			Help: "Model version loads refused by the signature check (security.trusted_keys), by reason: unsigned, untrusted_key, bad_signature, other_version, digest_mismatch, not_signed, malformed, no_trusted_keys.",
		}, []string{"model", "reason"}),
		releaseRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_release_refusals_total",
			Help: "Release states (release.json) read and not believed, by reason: rewound (an older release.json put back, or events removed), broken_chain (the history's hash chain broken), inconsistent (stable or candidate edited without a history event). What was loaded keeps serving.",
		}, []string{"model", "reason"}),
		loadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_model_load_duration_seconds",
			Help:    "Time to fetch, verify, create and warm up a model version.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
		}, []string{"model"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_model_loaded",
			Help: "1 for each loaded model version, with its role (stable or pinned) and execution provider.",
		}, []string{"model", "version", "role", "provider"}),
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "modelgate_ready",
		Help: "1 when every served model has a loaded, warmed-up version.",
	}, func() float64 {
		if c.Status().Ready {
			return 1
		}
		return 0
	})
	// The inference statistics of every loaded version, from the counters
	// the statistics extension reads too (serving.Session.Stats).
	stats := serving.NewStatsCollector(c.allLoaded)
	reg.MustRegister(m.registryErrors, m.registrySuccess, m.loads, m.failures, m.signatureRefusals, m.releaseRefusals, m.loadTime, m.sessions, ready, stats,
		warmupCollector{c.allLoaded})
	return m
}

// warmupDesc is modelgate_provider_warmup_seconds: what ort.providers auto
// measured for each loaded version, one series per provider measured.
var warmupDesc = prometheus.NewDesc("modelgate_provider_warmup_seconds",
	"Median warm-up run of each loaded model version on each execution provider that ort.providers auto measured at load; the version runs on the faster (modelgate_model_loaded's provider). No series for versions loaded with a configured provider order.",
	[]string{"model", "version", "provider"}, nil)

// warmupCollector reads the measurements from the loaded sessions at each
// scrape, as the statistics collector does, so that a version's series go
// when it unloads without any bookkeeping on swaps and role changes.
type warmupCollector struct{ loaded func() []*serving.Session }

func (w warmupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- warmupDesc }

func (w warmupCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range w.loaded() {
		choice := s.Info().ProviderChoice
		if choice == nil {
			continue
		}
		for p, d := range choice.Warmup {
			ch <- prometheus.MustNewConstMetric(warmupDesc, prometheus.GaugeValue, d.Seconds(), s.Name(), s.Version(), p)
		}
	}
}

func (m *metrics) releaseRefused(model, reason string) {
	m.releaseRefusals.WithLabelValues(model, reason).Inc()
}

func (m *metrics) setSession(model string, s *serving.Session, role string, on bool) {
	if !on {
		m.sessions.DeleteLabelValues(model, s.Version(), role, s.Provider())
		return
	}
	m.sessions.WithLabelValues(model, s.Version(), role, s.Provider()).Set(1)
}

func (m *metrics) serving(model string, old, s *serving.Session) {
	if old != nil {
		m.setSession(model, old, "stable", false)
	}
	m.setSession(model, s, "stable", true)
}

func (m *metrics) pinnedLoaded(model string, s *serving.Session) {
	m.setSession(model, s, "pinned", true)
}

func (m *metrics) unloaded(model string, s *serving.Session) { m.setSession(model, s, "pinned", false) }

func (m *metrics) loaded(model, version string, err error, d time.Duration) {
	if err == nil {
		m.loads.WithLabelValues(model, version, "ok").Inc()
		m.loadTime.WithLabelValues(model).Observe(d.Seconds())
		return
	}
	m.loads.WithLabelValues(model, version, "error").Inc()
	m.failures.WithLabelValues(model, failureReason(err)).Inc()
}

func failureReason(err error) string {
	switch {
	case signing.IsRefusal(err):
		return "signature"
	case errors.Is(err, registry.ErrDigestMismatch):
		return "digest"
	case errors.Is(err, registry.ErrNotFound):
		return "fetch"
	case errors.Is(err, serving.ErrInvalidModel), errors.Is(err, wire.ErrUnsupportedType):
		return "invalid_model"
	case errors.Is(err, wire.ErrBadInput), errors.As(err, new(warmUpError)):
		return "warmup"
	}
	return "other"
}

func (m *metrics) registryOK(now time.Time) {
	m.registrySuccess.Set(float64(now.UnixNano()) / 1e9)
}
