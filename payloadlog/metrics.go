package payloadlog

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of a Logger. The series of every opted-in model exist from the
// start (at 0), so that rate() and alerts see them before the first drop.
type metrics struct {
	sent        map[string]prometheus.Counter
	dropped     map[string]*[len(reasons)]prometheus.Counter
	sendSeconds prometheus.Histogram
	failures    prometheus.Counter
	// shutdowns counts the drops with reason shutdown, for Close's error.
	shutdowns atomic.Int64
}

func newMetrics(reg prometheus.Registerer, models []string, queueLen func() float64) (*metrics, error) {
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_payload_log_sent_total",
		Help: "Logged requests (a request and its response) the payload log's sink took, by model: both CloudEvents accepted, or the JSON line in an object written.",
	}, []string{"model"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_payload_log_dropped_total",
		Help: "Sampled requests whose payloads were not logged, by model and reason: queue_full (the queue was full; the request was not slowed), too_large (a payload over payload_logging.max_payload_bytes), sink_error (the sink refused them or every attempt failed), shutdown (unsent at the gateway's shutdown deadline).",
	}, []string{"model", "reason"})
	sendSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "modelgate_payload_log_send_seconds",
		Help:    "Duration of one attempt to send to the payload log's sink: a CloudEvent POST or an object upload, failed ones included.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "modelgate_payload_log_send_failures_total",
		Help: "Attempts to send to the payload log's sink that failed (an error, a timeout or a status other than 2xx), retried or not.",
	})
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "modelgate_payload_log_queue_length",
		Help: "Events waiting in the payload log's queue (at most payload_logging.queue_size).",
	}, queueLen)
	for _, c := range []prometheus.Collector{sent, dropped, sendSeconds, failures, queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		sent:        make(map[string]prometheus.Counter, len(models)),
		dropped:     make(map[string]*[len(reasons)]prometheus.Counter, len(models)),
		sendSeconds: sendSeconds,
		failures:    failures,
	}
	for _, model := range models {
		m.sent[model] = sent.WithLabelValues(model)
		var d [len(reasons)]prometheus.Counter
		for i, r := range reasons {
			d[i] = dropped.WithLabelValues(model, r)
		}
		m.dropped[model] = &d
	}
	return m, nil
}

// add counts n drops of one model (its counters d) for reason (an i*
// index).
func (m *metrics) add(d *[len(reasons)]prometheus.Counter, reason, n int) {
	d[reason].Add(float64(n))
	if reason == iShutdown {
		m.shutdowns.Add(int64(n))
	}
}
