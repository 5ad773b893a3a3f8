package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/internal/buildinfo"
	"github.com/modelgate/modelgate/internal/series"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inference *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	nonFinite *prometheus.CounterVec
	panics    prometheus.Counter
	// background comparisons skipped because too many were running
	shadowSkipped *prometheus.CounterVec

	// The series the request path updates, by label values.
	bySeries                   *series.Cache[[6]string, requestSeries] // model, version, provider, route, code, protocol
	httpInFlight, grpcInFlight prometheus.Gauge
	byInference                *series.Cache[[3]string, prometheus.Observer]
}

// requestSeries are one request series' count and latency.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// requestLabels are saved by handlers for the middleware (on the echo
// context; for gRPC, in the request's context): the model version that
// answered.
type requestLabels struct{ model, version, provider string }

const ctxLabels = "modelgate.labels"

func newMetrics(reg prometheus.Registerer) *metrics {
	// protocol is "http" or "grpc": both front ends count their requests in
	// the same series, as their statuses' classes (a gRPC code by its HTTP
	// equivalent), so that a sum over protocol is every request.
	labels := []string{"model", "version", "provider", "route", "code", "protocol"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_http_requests_total",
			Help: "Requests by model, version, execution provider, route (an HTTP route's pattern or a gRPC method), status class (2xx, 4xx, 5xx; a gRPC code by its HTTP equivalent) and protocol (http, grpc).",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_http_request_duration_seconds",
			Help:    "Request latency from the first byte read to the response written (gRPC: the unary call's handling), by the labels of modelgate_http_requests_total.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, labels),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_inference_duration_seconds",
			Help:    "Time spent in ONNX Runtime per request.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"model", "version", "provider"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_http_requests_in_flight",
			Help: "Requests being served, by protocol (http, grpc: unary calls).",
		}, []string{"protocol"}),
		nonFinite: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_nonfinite_outputs_total",
			Help: "Requests refused because the model produced NaN or Inf.",
		}, []string{"model", "version"}),
		shadowSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_canary_shadow_skipped_total",
			Help: "Background comparison runs skipped because server.shadow_concurrency were already running.",
		}, []string{"model"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelgate_http_panics_total",
			Help: "Handler panics recovered into a 500 (gRPC: Internal).",
		}),
	}
	m.httpInFlight, m.grpcInFlight = m.inFlight.WithLabelValues("http"), m.inFlight.WithLabelValues("grpc")
	m.bySeries = series.New(func(k [6]string) requestSeries {
		return requestSeries{m.requests.WithLabelValues(k[:]...), m.latency.WithLabelValues(k[:]...)}
	})
	m.byInference = series.New(func(k [3]string) prometheus.Observer { return m.inference.WithLabelValues(k[:]...) })
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "modelgate_build_info",
		Help:        "Build information: version, git revision and Go version, as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version, "revision": buildinfo.Revision, "goversion": buildinfo.GoVersion()},
	})
	info.Set(1)
	reg.MustRegister(m.requests, m.latency, m.inference, m.inFlight, m.nonFinite, m.panics, m.shadowSkipped, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument counts and times every request. The route label is the
// route's pattern (bounded); model, version and provider come from the
// handler, and stay empty when the request never reached a model (so that
// unknown model names cannot blow up the label set).
func (s *Server) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		s.metrics.httpInFlight.Inc()
		err := next(c)
		if err != nil {
			s.handleError(err, c)
		}
		s.metrics.httpInFlight.Dec()
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		var l requestLabels
		if p, ok := c.Get(ctxLabels).(*requestLabels); ok {
			l = *p
		}
		rs := s.metrics.bySeries.Get([6]string{l.model, l.version, l.provider, route, statusClass(status), "http"})
		rs.count.Inc()
		rs.latency.Observe(time.Since(start).Seconds())
		return nil
	}
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		code = http.StatusInternalServerError
	}
	return statusClasses[code/100-1]
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
