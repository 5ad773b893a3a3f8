// Package drift keeps statistics of the gateway's live inputs, per model
// version, on the bins of the version's data profile (package validation),
// so that they can be compared with the data the version was trained on.
//
// For each (model, version) a Tracker counts, per feature, the values in
// each profile bin, the missing ones, and those below the reference minimum
// or above its maximum. The counters are fixed-size arrays of atomics sized
// by the profile (features × (bins + 3)), so memory does not grow with
// traffic; at most Options.MaxVersions versions are tracked (the least
// recently observed is dropped). Observe takes no lock and allocates
// nothing; with Options.SampleRate below 1 only that share of requests is
// counted at all.
//
// Windows. The counters are cumulative since the version was first seen,
// which is what Prometheus wants (modelgate_drift_bin_total and friends are
// counters: sum them across replicas, and take increase() over any window).
// The JSON view (Stats) reports a rolling window instead: the tracker keeps
// a copy of the counters every Window/Buckets, and the window's counts are
// the current counters minus the newest copy at least Window old. A copy is
// taken by the first observation after it is due, before counting it, so
// periods without traffic need none and the window's start is exact to a
// bucket.
//
// Profiles are read from a Source (the registry) the first time a version
// is observed, in the background: observations before the profile arrives
// are not counted. A version without a profile is not tracked; it is asked
// for again after Options.RetryInterval, so `promote profile` takes effect
// without a restart. A profile once read is kept while the version is
// tracked.
package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/stats"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Source gives a version's profile as JSON (profile.json); ErrNotFound
// (the registry's) when it has none. *registry.Registry is one.
type Source interface {
	Profile(ctx context.Context, model, version string) ([]byte, error)
}

// Options configure a Tracker.
type Options struct {
	Source Source
	// SampleRate is the share of requests whose inputs are counted, in
	// (0, 1]; 0 means DefaultSampleRate.
	SampleRate float64
	// Window is the span of the rolling window Stats reports; 0 means
	// DefaultWindow. Buckets is its resolution (copies kept); 0 means
	// DefaultBuckets.
	Window  time.Duration
	Buckets int
	// MaxVersions caps the versions tracked; 0 means DefaultMaxVersions.
	MaxVersions int
	// RetryInterval is how long a version without a profile (or whose
	// profile could not be read) waits before it is asked for again; 0
	// means DefaultRetryInterval.
	RetryInterval time.Duration
	Logger        *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultSampleRate    = 1.0
	DefaultWindow        = 24 * time.Hour
	DefaultBuckets       = 24
	DefaultMaxVersions   = 16
	DefaultRetryInterval = time.Minute
)

// Tracker counts live inputs per version. It is safe for concurrent use.
type Tracker struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	threshold uint64 // a request is sampled when a random uint64 is below it; 0: always
	bucket    time.Duration

	// entries is replaced, never changed, so that Observe reads it
	// without a lock; mu serialises the replacements.
	entries atomic.Pointer[map[key]*entry]
	mu      sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type key struct{ model, version string }

// Profile states of an entry.
const (
	stateLoading int32 = iota
	stateReady
	stateNone // no profile, or it could not be read: retry after retryAt
)

// entry is one tracked version.
type entry struct {
	key      key
	state    atomic.Int32
	retryAt  atomic.Int64 // unix nanoseconds
	reason   atomic.Pointer[string]
	lastSeen atomic.Int64 // unix nanoseconds
	tally    atomic.Pointer[tally]
	loaded   chan struct{} // closed when the first read has finished
	once     sync.Once
}

// tally is a version's counters on its profile's bins.
type tally struct {
	profile *stats.Profile
	since   time.Time
	// offsets[j] is where feature j's counters start in counts: its bins,
	// then missing, below and above.
	offsets []int
	counts  []atomic.Uint64
	rows    atomic.Uint64
	// Snapshots of counts (with rows last) for the rolling window, taken
	// under snapMu by the observation that finds one due.
	nextSnap atomic.Int64
	snapMu   sync.Mutex
	snaps    []snapshot // oldest first, at most Buckets+1
}

// snapshot is a copy of the counters (rows last) taken at `at` by the
// first observation after the copy was due at `from`: no observation
// happened in [from, at), so the counters held these values all that time.
type snapshot struct {
	from, at time.Time
	counts   []uint64
}

// New returns a Tracker. Close stops its background profile reads.
func New(opts Options) *Tracker {
	if opts.SampleRate <= 0 || opts.SampleRate > 1 || math.IsNaN(opts.SampleRate) {
		opts.SampleRate = DefaultSampleRate
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Buckets <= 0 {
		opts.Buckets = DefaultBuckets
	}
	if opts.MaxVersions <= 0 {
		opts.MaxVersions = DefaultMaxVersions
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	t := &Tracker{opts: opts, log: opts.Logger, now: opts.Now, bucket: opts.Window / time.Duration(opts.Buckets)}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if opts.SampleRate < 1 {
		t.threshold = uint64(opts.SampleRate * (1 << 63) * 2)
	}
	m := map[key]*entry{}
	t.entries.Store(&m)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(collector{t})
	}
	return t
}

// Close stops the background profile reads and waits for them.
func (t *Tracker) Close() {
	t.cancel()
	t.wg.Wait()
}

// SampleRate is the share of requests counted.
func (t *Tracker) SampleRate() float64 { return t.opts.SampleRate }

// Observe counts the inputs of one request that version of model
// answered. Only single-input models whose input is [rows, features] with
// the profile's feature count are tracked; anything else is ignored.
func (t *Tracker) Observe(model, version string, inputs []wire.Tensor) {
	if t.threshold != 0 && rand.Uint64() >= t.threshold {
		return
	}
	if len(inputs) != 1 {
		return
	}
	e := (*t.entries.Load())[key{model, version}]
	if e == nil {
		t.track(key{model, version})
		return
	}
	now := t.now()
	e.lastSeen.Store(now.UnixNano())
	switch e.state.Load() {
	case stateReady:
	case stateNone:
		if now.UnixNano() >= e.retryAt.Load() && e.state.CompareAndSwap(stateNone, stateLoading) {
			t.load(e)
		}
		return
	default:
		return
	}
	s := e.tally.Load()
	in := inputs[0]
	if len(in.Shape) != 2 || in.Shape[1] != int64(len(s.profile.Features)) {
		return
	}
	if n := now.UnixNano(); n >= s.nextSnap.Load() {
		t.snapshot(s, now)
	}
	count(s, in)
}

// count adds the rows of in, of len(s.profile.Features) values each, to
// the counters.
func count(s *tally, in wire.Tensor) {
	feats := s.profile.Features
	width := len(feats)
	rows := in.Len() / width
	n, j, base := 0, 0, 0
	wire.Each(in.Data, func(x float64) {
		if n >= rows*width {
			return // a partial row at the end
		}
		n++
		f := &feats[j]
		nb := len(f.Counts)
		switch {
		case x != x: // NaN: missing
			s.counts[base+nb].Add(1)
		default:
			s.counts[base+stats.BinOf(f.Edges, x)].Add(1)
			if x < f.Min {
				s.counts[base+nb+1].Add(1)
			} else if x > f.Max {
				s.counts[base+nb+2].Add(1)
			}
		}
		if j++; j == width {
			j, base = 0, 0
		} else {
			base = s.offsets[j]
		}
	})
	s.rows.Add(uint64(rows))
}

// snapshot keeps a copy of the counters for the rolling window, if one is
// still due.
func (t *Tracker) snapshot(s *tally, now time.Time) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if now.UnixNano() < s.nextSnap.Load() {
		return
	}
	var reuse []uint64
	if len(s.snaps) > t.opts.Buckets {
		reuse = s.snaps[0].counts
		s.snaps = slices.Delete(s.snaps, 0, 1)
	}
	s.snaps = append(s.snaps, snapshot{from: time.Unix(0, s.nextSnap.Load()), at: now, counts: s.read(reuse)})
	s.nextSnap.Store(now.Add(t.bucket).UnixNano())
}

// read copies the counters (rows last) into buf, reallocated if short.
func (s *tally) read(buf []uint64) []uint64 {
	if cap(buf) < len(s.counts)+1 {
		buf = make([]uint64, len(s.counts)+1)
	}
	buf = buf[:len(s.counts)+1]
	for i := range s.counts {
		buf[i] = s.counts[i].Load()
	}
	buf[len(s.counts)] = s.rows.Load()
	return buf
}

// track starts tracking a version and reads its profile in the
// background.
func (t *Tracker) track(k key) {
	if e, created := t.add(k); created {
		t.load(e)
	}
}

// add returns k's entry, adding it (dropping the least recently observed
// one beyond MaxVersions) if there is none; created says it did. A new
// entry is in stateLoading: its creator reads the profile.
func (t *Tracker) add(k key) (e *entry, created bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.entries.Load()
	if e := old[k]; e != nil {
		return e, false
	}
	next := make(map[key]*entry, len(old)+1)
	for k, e := range old {
		next[k] = e
	}
	for len(next) >= t.opts.MaxVersions {
		var oldest *entry
		for _, e := range next {
			if oldest == nil || e.lastSeen.Load() < oldest.lastSeen.Load() {
				oldest = e
			}
		}
		delete(next, oldest.key)
		t.log.Info("drift: no longer tracking a version (too many tracked)", "model", oldest.key.model, "version", oldest.key.version, "max_versions", t.opts.MaxVersions)
	}
	e = &entry{key: k, loaded: make(chan struct{})}
	e.lastSeen.Store(t.now().UnixNano())
	reason := "reading the profile"
	e.reason.Store(&reason)
	next[k] = e
	t.entries.Store(&next)
	return e, true
}

// load reads e's profile in the background; e is in stateLoading.
func (t *Tracker) load(e *entry) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_ = t.loadNow(t.ctx, e)
	}()
}

// loadTimeout bounds one profile read.
const loadTimeout = 30 * time.Second

// loadNow reads e's profile and makes e ready, or marks it for a retry.
func (t *Tracker) loadNow(ctx context.Context, e *entry) error {
	defer e.once.Do(func() { close(e.loaded) })
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	p, err := t.readProfile(ctx, e.key)
	if err != nil {
		reason := err.Error()
		e.reason.Store(&reason)
		e.retryAt.Store(t.now().Add(t.opts.RetryInterval).UnixNano())
		e.state.Store(stateNone)
		if errors.Is(err, registry.ErrNotFound) {
			t.log.Info("drift: version has no data profile; its inputs are not tracked", "model", e.key.model, "version", e.key.version)
		} else {
			t.log.Warn("drift: reading the data profile", "model", e.key.model, "version", e.key.version, "err", err)
		}
		return err
	}
	s := &tally{profile: p, since: t.now().UTC()}
	n := 0
	for _, f := range p.Features {
		s.offsets = append(s.offsets, n)
		n += len(f.Counts) + 3
	}
	s.counts = make([]atomic.Uint64, n)
	s.snaps = append(make([]snapshot, 0, t.opts.Buckets+1), snapshot{from: s.since, at: s.since, counts: make([]uint64, n+1)})
	s.nextSnap.Store(s.since.Add(t.bucket).UnixNano())
	e.tally.Store(s)
	e.reason.Store(nil)
	e.state.Store(stateReady)
	t.log.Info("drift: tracking live inputs", "model", e.key.model, "version", e.key.version, "features", len(p.Features))
	return nil
}

func (t *Tracker) readProfile(ctx context.Context, k key) (*stats.Profile, error) {
	if t.opts.Source == nil {
		return nil, fmt.Errorf("%w: no profile source", registry.ErrNotFound)
	}
	b, err := t.opts.Source.Profile(ctx, k.model, k.version)
	if err != nil {
		return nil, err
	}
	return stats.ParseProfile(b)
}

// Prepare starts tracking a version and reads its profile now (or waits
// for the read under way), returning the error that leaves it untracked
// (ErrNotFound without a profile). The gateway need not call it: Observe
// starts tracking by itself.
func (t *Tracker) Prepare(ctx context.Context, model, version string) error {
	e, created := t.add(key{model, version})
	if created {
		return t.loadNow(ctx, e)
	}
	select {
	case <-e.loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.state.CompareAndSwap(stateNone, stateLoading) {
		return t.loadNow(ctx, e)
	}
	return nil
}

// ModelStats is the JSON answer of GET /v2/models/{m}/drift: per tracked
// version, the counts of live inputs on the profile's bins in the window.
type ModelStats struct {
	Model string `json:"model"`
	// SampleRate is the share of requests counted.
	SampleRate float64 `json:"sample_rate"`
	// WindowSeconds is the configured window.
	WindowSeconds float64        `json:"window_seconds"`
	Versions      []VersionStats `json:"versions"`
}

// VersionStats are one version's live statistics.
type VersionStats struct {
	Version string `json:"version"`
	// Profile says whether the version's profile was read; without it
	// nothing is counted and Reason says why.
	Profile bool   `json:"profile"`
	Reason  string `json:"reason,omitempty"`
	// Start and End bound the window the counts cover (Start is exact to
	// a bucket; see the package documentation).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Rows counted in the window; RowsTotal since Since.
	Rows      uint64         `json:"rows"`
	RowsTotal uint64         `json:"rows_total"`
	Since     time.Time      `json:"since,omitzero"`
	Features  []FeatureStats `json:"features,omitempty"`
}

// FeatureStats are one feature's counts in the window.
type FeatureStats struct {
	Name string `json:"name"`
	// Edges are the profile's inner bin edges; Counts the values per bin
	// (len(Edges)+1).
	Edges  []float64 `json:"edges"`
	Counts []uint64  `json:"counts"`
	// Missing values (NaN), and values below the reference minimum or
	// above its maximum (also counted in the first or last bin).
	Missing uint64 `json:"missing"`
	Below   uint64 `json:"below"`
	Above   uint64 `json:"above"`
}

// Stats reports a model's tracked versions, ordered by version.
func (t *Tracker) Stats(model string) ModelStats {
	out := ModelStats{Model: model, SampleRate: t.opts.SampleRate, WindowSeconds: t.opts.Window.Seconds(), Versions: []VersionStats{}}
	now := t.now()
	for k, e := range *t.entries.Load() {
		if k.model != model {
			continue
		}
		vs := VersionStats{Version: k.version}
		s := e.tally.Load()
		if e.state.Load() != stateReady || s == nil {
			if r := e.reason.Load(); r != nil {
				vs.Reason = *r
			}
			out.Versions = append(out.Versions, vs)
			continue
		}
		vs.Profile, vs.Since, vs.End = true, s.since, now.UTC()
		cur := s.read(nil)
		base, start := t.windowBase(s, now)
		vs.Start = start.UTC()
		vs.RowsTotal = cur[len(cur)-1]
		vs.Rows = cur[len(cur)-1] - base.counts[len(cur)-1]
		for j, f := range s.profile.Features {
			o, nb := s.offsets[j], len(f.Counts)
			fs := FeatureStats{Name: f.Name, Edges: f.Edges, Counts: make([]uint64, nb)}
			for b := range nb {
				fs.Counts[b] = cur[o+b] - base.counts[o+b]
			}
			fs.Missing = cur[o+nb] - base.counts[o+nb]
			fs.Below = cur[o+nb+1] - base.counts[o+nb+1]
			fs.Above = cur[o+nb+2] - base.counts[o+nb+2]
			vs.Features = append(vs.Features, fs)
		}
		out.Versions = append(out.Versions, vs)
	}
	slices.SortFunc(out.Versions, func(a, b VersionStats) int {
		if a.Version < b.Version {
			return -1
		}
		if a.Version > b.Version {
			return 1
		}
		return 0
	})
	return out
}

// windowBase returns the counters at the start of the window, and when
// that is: the window's cut (now − Window) when a snapshot knows the
// counters then, else the time of the newest snapshot before the cut, or
// of the first one (the window is then longer, by less than a bucket, or
// the version is younger than the window).
func (t *Tracker) windowBase(s *tally, now time.Time) (snapshot, time.Time) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	cut := now.Add(-t.opts.Window)
	base, start := s.snaps[0], s.snaps[0].at
	for _, sn := range s.snaps {
		if sn.from.After(cut) {
			break
		}
		base, start = sn, sn.at
		if !cut.After(sn.at) {
			start = cut
		}
	}
	return snapshot{from: base.from, at: base.at, counts: slices.Clone(base.counts)}, start
}

// Footprint is the number of counters and snapshot values held, a measure
// of the tracker's memory (8 bytes each) that does not grow with traffic.
func (t *Tracker) Footprint() int {
	n := 0
	for _, e := range *t.entries.Load() {
		s := e.tally.Load()
		if s == nil {
			continue
		}
		s.snapMu.Lock()
		n += len(s.counts) + 1
		for _, sn := range s.snaps {
			n += len(sn.counts)
		}
		s.snapMu.Unlock()
	}
	return n
}

// Metrics. The bin label is the bin's index (0 up to the feature's bin
// count, at most the profile's bins, so that the series are bounded by
// versions × features × bins).
var (
	descBins = prometheus.NewDesc("modelgate_drift_bin_total",
		"Live input values per model version, feature and profile bin (sampled; see modelgate_drift_sample_rate).",
		[]string{"model", "version", "feature", "bin"}, nil)
	descMissing = prometheus.NewDesc("modelgate_drift_missing_total",
		"Live input values that were missing (NaN), per model version and feature.",
		[]string{"model", "version", "feature"}, nil)
	descRange = prometheus.NewDesc("modelgate_drift_out_of_range_total",
		"Live input values below the profile's minimum or above its maximum, per model version and feature.",
		[]string{"model", "version", "feature", "side"}, nil)
	descRows = prometheus.NewDesc("modelgate_drift_rows_total",
		"Live input rows counted for drift, per model version (sampled).",
		[]string{"model", "version"}, nil)
	descProfile = prometheus.NewDesc("modelgate_drift_profile_loaded",
		"1 when a tracked version's data profile was read, 0 when it has none (its inputs are not counted).",
		[]string{"model", "version"}, nil)
	descRef = prometheus.NewDesc("modelgate_drift_reference_ratio",
		"The share of a version's training data in each profile bin, per feature, smoothed as PSI smooths it ((count + 0.5) / (rows + 0.5 × bins)), so that PSI can be computed in PromQL.",
		[]string{"model", "version", "feature", "bin"}, nil)
	descRate = prometheus.NewDesc("modelgate_drift_sample_rate",
		"The share of requests whose inputs are counted for drift.", nil, nil)
)

type collector struct{ t *Tracker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBins, descMissing, descRange, descRows, descProfile, descRef, descRate} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, c.t.opts.SampleRate)
	for k, e := range *c.t.entries.Load() {
		s := e.tally.Load()
		if e.state.Load() != stateReady || s == nil {
			ch <- prometheus.MustNewConstMetric(descProfile, prometheus.GaugeValue, 0, k.model, k.version)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descProfile, prometheus.GaugeValue, 1, k.model, k.version)
		ch <- prometheus.MustNewConstMetric(descRows, prometheus.CounterValue, float64(s.rows.Load()), k.model, k.version)
		for j, f := range s.profile.Features {
			o, nb := s.offsets[j], len(f.Counts)
			for b := range nb {
				bin := strconv.Itoa(b)
				ch <- prometheus.MustNewConstMetric(descBins, prometheus.CounterValue, float64(s.counts[o+b].Load()), k.model, k.version, f.Name, bin)
				ref := (float64(f.Counts[b]) + 0.5) / (float64(f.Count) + 0.5*float64(nb))
				ch <- prometheus.MustNewConstMetric(descRef, prometheus.GaugeValue, ref, k.model, k.version, f.Name, bin)
			}
			ch <- prometheus.MustNewConstMetric(descMissing, prometheus.CounterValue, float64(s.counts[o+nb].Load()), k.model, k.version, f.Name)
			ch <- prometheus.MustNewConstMetric(descRange, prometheus.CounterValue, float64(s.counts[o+nb+1].Load()), k.model, k.version, f.Name, "below")
			ch <- prometheus.MustNewConstMetric(descRange, prometheus.CounterValue, float64(s.counts[o+nb+2].Load()), k.model, k.version, f.Name, "above")
		}
	}
}
