// Package rollout runs canary releases in the gateway: it is told each
// served model's release state by the catalog's watcher (catalog.Watch, a
// gateway's one reader of the release states) and, for a canary in
// progress, gathers the step's observations, asks release.Decide what
// comes next and records the tick (release.Tick) in the release state with
// compare-and-swap. Any number of replicas may run
// it: a tick is recorded only if the state is still the one it was
// decided on and no other replica ticked in the last tick period, so
// replicas take one transition per tick between them, and a replica
// restarted mid-canary carries on from what the state says.
package rollout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Registry is where the release states are (store.Registry): the
// controller records its ticks there with compare-and-swap.
type Registry = store.Registry

// Catalog is the part of the catalog a controller drives.
type Catalog interface {
	ApplyRelease(rel release.State)
	CandidateError(model string) error
}

// Options configure a Controller.
type Options struct {
	Registry Registry
	Catalog  Catalog
	// Source gives the observations; default: none (every tick holds).
	Source canary.Source
	// Tick is the time between ticks while a canary is in progress; 0
	// means a quarter of the plan's interval, between 100 ms and 15 s.
	Tick time.Duration
	// Replica names this gateway in the recorded analysis; default: the
	// host name.
	Replica    string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Controller ticks the canaries of the served models.
type Controller struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	client  *http.Client
	// background runs the told webhooks and notifications (hooks.go).
	background sync.WaitGroup
}

// Wait waits for the notifications and told webhooks under way.
func (c *Controller) Wait() { c.background.Wait() }

// New returns a Controller; catalog.Watch tells it the release states.
func New(opts Options) *Controller {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Replica == "" {
		opts.Replica, _ = os.Hostname()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	return &Controller{opts: opts, log: opts.Logger, now: opts.Now, metrics: newMetrics(opts.Registerer), client: &http.Client{}}
}

// TickFor is the tick period of a plan.
func (c *Controller) TickFor(p release.Plan) time.Duration {
	if c.opts.Tick > 0 {
		return c.opts.Tick
	}
	return min(max(p.Interval/4, 100*time.Millisecond), 15*time.Second)
}

// OnRelease is told a model's release state and, when its canary is
// progressing, decides and records one tick (catalog.Listener). It returns
// the canary's tick period while one is in progress, else 0.
func (c *Controller) OnRelease(ctx context.Context, rel release.State) time.Duration {
	d, _ := c.Tick(ctx, rel)
	return d
}

// Tick decides and records one tick of rel's canary, if it is progressing.
// It returns the canary's tick period and whether a canary is in progress.
func (c *Controller) Tick(ctx context.Context, rel release.State) (time.Duration, bool) {
	name := rel.Model
	var err error
	c.metrics.state(name, rel.Canary)
	c.tell(ctx, rel)
	if !rel.Canary.Active() {
		return 0, false
	}
	plan := rel.Canary.Plan
	tick := c.TickFor(plan)
	if rel.Canary.Progress.Phase != release.Progressing {
		return tick, true
	}
	now := c.now()
	notBefore := now.Add(-tick * 8 / 10)
	if rel.Canary.ChangedSince(notBefore) {
		return tick, true // another replica changed the state moments ago
	}
	epoch := rel.Canary.Epoch()
	a := release.Analysis{Time: now.UTC(), Replica: c.opts.Replica}
	var obs release.Observations
	if cerr := c.opts.Catalog.CandidateError(name); cerr != nil {
		obs.Err = cerr // a candidate that does not load fails its checks
	} else if c.opts.Source != nil {
		a.Source = c.opts.Source.Name()
		obs, err = c.opts.Source.Observations(ctx, canary.Query{
			Model: name, Stable: rel.Stable, Candidate: rel.Canary.Progress.Candidate,
			Epoch: epoch, Since: rel.Canary.Progress.StepStart, Now: now,
		})
		if err != nil {
			obs.Err = err
		}
	}
	if hooks := askedHooks(rel.Canary); len(hooks) > 0 {
		// One replica per tick period calls the webhooks and decides.
		if !c.claimHooks(ctx, rel, notBefore, now) {
			return tick, true
		}
		obs.Hooks = c.callHooks(ctx, rel, hooks)
	}
	d := release.Decide(plan, rel.Canary.Progress, obs, now)
	a.Observations, a.Checks, a.Reason = obs, d.Checks, d.Reason
	if obs.Err != nil {
		a.Error = obs.Err.Error()
	}
	if d.Next.Phase == release.RolledBack {
		// Weight 0 here at once, before the state is written: the
		// candidate is unloaded after its last request.
		out := rel
		rb := *rel.Canary
		rb.Progress = d.Next
		out.Canary = &rb
		c.opts.Catalog.ApplyRelease(out)
	}
	written, err := store.Change(ctx, c.opts.Registry, name, release.Tick{Epoch: epoch, NotBefore: notBefore, Decision: d, Analysis: a}, now)
	switch {
	case errors.Is(err, release.ErrStaleTick):
		return tick, true
	case err != nil:
		c.log.Warn("canary: recording the tick failed", "model", name, "err", err)
		return tick, true
	}
	c.metrics.decided(name, d)
	c.opts.Catalog.ApplyRelease(written)
	c.tell(ctx, written)
	c.metrics.state(name, written.Canary)
	if d.Changed {
		level := slog.LevelInfo
		if d.Next.Phase == release.RolledBack || d.Next.Failures > rel.Canary.Progress.Failures {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "canary "+string(d.Next.Phase), "model", name, "candidate", rel.Canary.Progress.Candidate,
			"weight", d.Next.Weight, "reason", d.Reason)
	}
	return tick, written.Canary.Active()
}

type metrics struct {
	weight    *prometheus.GaugeVec
	phase     *prometheus.GaugeVec
	value     *prometheus.GaugeVec
	bound     *prometheus.GaugeVec
	threshold *prometheus.GaugeVec
	decisions *prometheus.CounterVec
	hooks     *prometheus.CounterVec
	notices   *prometheus.CounterVec
}

var phases = []release.Phase{release.Idle, release.Progressing, release.Paused, release.Promoted, release.RolledBack, release.Aborted}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_canary_weight",
			Help: "The canary candidate's share of traffic in percent, per the release state.",
		}, []string{"model"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_canary_phase",
			Help: "1 for the canary's current phase (Idle, Progressing, Paused, Promoted, RolledBack, Aborted), 0 for the others.",
		}, []string{"model", "phase"}),
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_canary_check_value",
			Help: "The last analysis' estimate of each canary check (error_rate_increase, p99_latency, nonfinite_rate, disagreement).",
		}, []string{"model", "metric"}),
		bound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_canary_check_bound",
			Help: "The last analysis' confidence bounds on each canary check's true value: lower (at the plan's alpha; the check fails above the threshold) and upper (at its beta; it passes at or below).",
		}, []string{"model", "metric", "bound"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modelgate_canary_check_threshold",
			Help: "The plan's threshold of each canary check.",
		}, []string{"model", "metric"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelgate_canary_decisions_total",
			Help: "Canary ticks recorded by this replica, by decision: hold, fail_check, step, promote, rollback.",
		}, []string{"model", "decision"}),
	}
	m.hooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_canary_webhook_calls_total",
		Help: "Canary webhooks this replica called, by type (pre-rollout, confirm-rollout, rollout, confirm-promotion, post-rollout, rollback) and result (ok: a 2xx answer within the timeout and retries; failed).",
	}, []string{"model", "type", "result"})
	m.notices = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modelgate_canary_notifications_total",
		Help: "Canary notifications this replica sent, by kind (json, slack) and result (ok, failed).",
	}, []string{"model", "kind", "result"})
	reg.MustRegister(m.weight, m.phase, m.value, m.bound, m.threshold, m.decisions, m.hooks, m.notices)
	return m
}

func (m *metrics) state(model string, r *release.Canary) {
	phase, weight := release.Idle, 0.0
	if r != nil {
		phase, weight = r.Progress.Phase, r.Progress.Weight
		if phase == release.RolledBack || phase == release.Aborted {
			weight = 0
		}
	}
	m.weight.WithLabelValues(model).Set(weight)
	for _, p := range phases {
		v := 0.0
		if p == phase {
			v = 1
		}
		m.phase.WithLabelValues(model, string(p)).Set(v)
	}
}

func result(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}

func (m *metrics) hookCalled(model string, t release.HookType, ok bool) {
	m.hooks.WithLabelValues(model, string(t), result(ok)).Inc()
}

func (m *metrics) notified(model, kind string, ok bool) {
	m.notices.WithLabelValues(model, kind, result(ok)).Inc()
}

func (m *metrics) decided(model string, d release.Decision) {
	for _, ch := range d.Checks {
		m.value.WithLabelValues(model, ch.Metric).Set(ch.Value)
		m.bound.WithLabelValues(model, ch.Metric, "lower").Set(ch.Lower)
		m.bound.WithLabelValues(model, ch.Metric, "upper").Set(ch.Upper)
		m.threshold.WithLabelValues(model, ch.Metric).Set(ch.Threshold)
	}
	decision := "hold"
	switch {
	case !d.Changed:
	case d.Next.Phase == release.Promoted:
		decision = "promote"
	case d.Next.Phase == release.RolledBack:
		decision = "rollback"
	case d.Next.Failures > 0:
		decision = "fail_check"
	default:
		decision = "step"
	}
	m.decisions.WithLabelValues(model, decision).Inc()
}
