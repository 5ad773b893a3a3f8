package canary

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/internal/series"
	"github.com/prometheus/client_golang/prometheus"
)

// Roles of a version in a request, for the Recorder and the metrics.
const (
	// RoleStable: stable served the request.
	RoleStable = "stable"
	// RoleCandidate: the candidate served the request.
	RoleCandidate = "candidate"
	// RoleShadow: the candidate ran a copy of a stable-served request in
	// the background; its answer was only compared, never sent.
	RoleShadow = "shadow"
	// RoleMatched: the candidate served a request that a match rule of
	// the plan sent it, whatever the weight. Such requests are a cohort
	// of their own (Observations.Matched), not a random sample: they stay
	// out of the weighted comparison with stable.
	RoleMatched = "matched"
)

// Outcomes of a run, for the Recorder and the metrics.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"     // the model failed to run (a server error)
	OutcomeNonFinite = "nonfinite" // it answered NaN or Inf
)

// Latency histogram of the in-process source: latBuckets buckets whose
// upper bounds grow by 5 % from 50 µs (the last open above about 80 s), so
// a p99 is known within 5 %: the latency check, which takes every figure
// on the side of the bucket that favours the decision not taken, then
// holds only for a candidate within about 10 % of its limit.
const (
	latBuckets = 300
	latFirst   = 50 * time.Microsecond
	latGrowth  = 1.05
)

func latBucket(d time.Duration) int {
	if d <= latFirst {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(latFirst)) / math.Log(latGrowth)))
	return min(i, latBuckets-1)
}

func latBound(i int) time.Duration {
	return time.Duration(float64(latFirst) * math.Pow(latGrowth, float64(i)))
}

// Recorder is the in-process analysis source: per served model, counters
// of the current canary step (its epoch) for stable and candidate, the
// candidate's matched cohort apart, and the comparisons between them. It also exports the same figures as
// Prometheus metrics, which the Prometheus source queries when many
// replicas share the traffic. Memory is fixed per model. Safe for
// concurrent use; recording takes no lock on the hot path beyond a read
// lock of the model table.
type Recorder struct {
	mu     sync.RWMutex
	models map[string]*window

	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	comparisons *prometheus.CounterVec
	disagree    *prometheus.CounterVec

	distinctCompared, distinctDisagree *prometheus.CounterVec

	// The series every request updates, by label values.
	byRequests *series.Cache[[4]string, prometheus.Counter]
	byLatency  *series.Cache[[3]string, prometheus.Observer]
}

type window struct {
	epoch         string
	stable, cand  roleStats
	matched       roleStats // the candidate's runs for matched requests
	compared      atomic.Int64
	disagreements atomic.Int64

	// distinct holds each compared input's hash and whether the versions
	// ever disagreed on it, up to maxDistinct inputs a step.
	mu                    sync.Mutex
	distinct              map[uint64]bool
	distinctDisagreements int64
}

// maxDistinct caps the distinct inputs a step remembers (about 1.5 MiB a
// model): inputs first seen after the cap are counted in Compared but not
// among the distinct ones, so the disagreement test stops gaining samples
// for the rest of the step: clear verdicts come far sooner, but a
// candidate near the threshold may hold until the step changes.
const maxDistinct = 1 << 16

type roleStats struct {
	requests, errors, nonFinite atomic.Int64
	lat                         [latBuckets]atomic.Int64
}

// NewRecorder registers the canary request metrics on reg.
func NewRecorder(reg prometheus.Registerer) *Recorder {
	r := &Recorder{
		models: map[string]*window{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_canary_requests_total",
			Help: "Runs of a model version by role (stable, candidate, shadow; matched: the candidate serving a request a match rule sent it, a cohort apart from the weighted split) and outcome (ok, error, nonfinite), for canary analysis.",
		}, []string{"model", "version", "role", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_canary_request_duration_seconds",
			Help:    "Time to serve a request (decode, run, encode) by model version and role (stable, candidate, matched), for canary analysis.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"model", "version", "role"}),
		comparisons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_canary_shadow_comparisons_total",
			Help: "Requests scored by both stable and the candidate (shadow copies and compared split traffic), by candidate version.",
		}, []string{"model", "version"}),
		disagree: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_canary_shadow_disagreements_total",
			Help: "Compared requests on which the candidate disagreed with stable (top-1 label, or relative error for regressors).",
		}, []string{"model", "version"}),
	}
	r.distinctCompared = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_canary_distinct_comparisons_total",
		Help: "Distinct inputs (by hash) scored by both stable and the candidate, first seen in this replica's current canary step; summed over replicas, an input several replicas saw counts once per replica.",
	}, []string{"model", "version"})
	r.distinctDisagree = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_canary_distinct_disagreements_total",
		Help: "Distinct compared inputs on which the candidate disagreed with stable at least once, in this replica's current canary step.",
	}, []string{"model", "version"})
	reg.MustRegister(r.requests, r.latency, r.comparisons, r.disagree, r.distinctCompared, r.distinctDisagree)
	r.byRequests = series.New(func(k [4]string) prometheus.Counter { return r.requests.WithLabelValues(k[:]...) })
	r.byLatency = series.New(func(k [3]string) prometheus.Observer { return r.latency.WithLabelValues(k[:]...) })
	return r
}

// Begin starts a new window for model when epoch differs from the current
// one (a new step, a new candidate); the same epoch keeps the counts.
func (r *Recorder) Begin(model, epoch string) {
	r.mu.RLock()
	w := r.models[model]
	r.mu.RUnlock()
	if w != nil && w.epoch == epoch {
		return
	}
	r.mu.Lock()
	if w := r.models[model]; w == nil || w.epoch != epoch {
		r.models[model] = &window{epoch: epoch}
	}
	r.mu.Unlock()
}

func (r *Recorder) window(model string) *window {
	r.mu.RLock()
	w := r.models[model]
	r.mu.RUnlock()
	return w
}

// Observe records one run of version in role. served is false for runs
// nobody waited for (shadow copies): they count towards the version's
// errors and non-finite answers, not its latency. Runs in RoleMatched
// count in the matched cohort only.
func (r *Recorder) Observe(model, version, role, outcome string, took time.Duration, served bool) {
	r.byRequests.Get([4]string{model, version, role, outcome}).Inc()
	if served {
		r.byLatency.Get([3]string{model, version, role}).Observe(took.Seconds())
	}
	w := r.window(model)
	if w == nil {
		return
	}
	s := &w.cand
	switch role {
	case RoleStable:
		s = &w.stable
	case RoleMatched:
		s = &w.matched
	}
	s.requests.Add(1)
	switch outcome {
	case OutcomeError:
		s.errors.Add(1)
	case OutcomeNonFinite:
		s.nonFinite.Add(1)
	}
	if served {
		s.lat[latBucket(took)].Add(1)
	}
}

// Compare records one request scored by both versions: input is the
// hash of its inputs (InputHash), so that the analysis can count distinct
// inputs and repeated requests neither dilute nor inflate the
// disagreement rate.
func (r *Recorder) Compare(model, candidate string, input uint64, disagreed bool) {
	r.comparisons.WithLabelValues(model, candidate).Inc()
	if disagreed {
		r.disagree.WithLabelValues(model, candidate).Inc()
	}
	w := r.window(model)
	if w == nil {
		return
	}
	w.compared.Add(1)
	if disagreed {
		w.disagreements.Add(1)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.distinct == nil {
		w.distinct = map[uint64]bool{}
	}
	before, seen := w.distinct[input]
	switch {
	case !seen && len(w.distinct) >= maxDistinct:
		return // beyond the cap: counted in Compared only
	case !seen:
		w.distinct[input] = disagreed
		r.distinctCompared.WithLabelValues(model, candidate).Inc()
	case before || !disagreed:
		return
	default:
		w.distinct[input] = true // it agreed before: an input disagrees if it ever did
	}
	if disagreed {
		w.distinctDisagreements++
		r.distinctDisagree.WithLabelValues(model, candidate).Inc()
	}
}

// Observations returns model's counts in epoch; none when the current
// window is another epoch's.
func (r *Recorder) Observations(model, epoch string) release.Observations {
	w := r.window(model)
	if w == nil || w.epoch != epoch {
		return release.Observations{}
	}
	obs := release.Observations{
		Stable:        w.stable.stats(),
		Candidate:     w.cand.stats(),
		Matched:       w.matched.stats(),
		Compared:      w.compared.Load(),
		Disagreements: w.disagreements.Load(),
	}
	w.mu.Lock()
	obs.Distinct, obs.DistinctDisagreements = int64(len(w.distinct)), w.distinctDisagreements
	w.mu.Unlock()
	return obs
}

func (s *roleStats) stats() release.VersionStats {
	v := release.VersionStats{Requests: s.requests.Load(), Errors: s.errors.Load(), NonFinite: s.nonFinite.Load()}
	var counts [latBuckets]int64
	var n int64
	last := -1
	for i := range s.lat {
		counts[i] = s.lat[i].Load()
		n += counts[i]
		if counts[i] > 0 {
			last = i
		}
	}
	if n == 0 {
		return v
	}
	v.Latency = make([]release.LatencyBucket, last+1)
	for i := range v.Latency {
		v.Latency[i] = release.LatencyBucket{Le: latBound(i), Count: counts[i]}
	}
	if last == latBuckets-1 {
		v.Latency[last].Le = math.MaxInt64 // the last bucket has no upper end
	}
	rank := int64(math.Ceil(0.99 * float64(n)))
	var cum int64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			v.P99 = latBound(i)
			break
		}
	}
	return v
}
