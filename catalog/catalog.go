// Package catalog keeps the model versions a gateway serves: for each
// served model, the stable version named by the registry's release state,
// loaded, warmed up and swapped in atomically when the release changes,
// plus versions that requests pin explicitly, loaded on demand within a cap.
//
// It sits between the registry (where bytes and release state come from)
// and serving (sessions on ONNX Runtime); the HTTP layer asks it for a
// session with Acquire and gives the session back when the request is done.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/signing"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors of the catalog, mapped to HTTP statuses by the server.
var (
	// ErrUnknownModel: the model is not served by this gateway.
	ErrUnknownModel = errors.New("unknown model")
	// ErrUnknownVersion: the model has no such version in the registry.
	ErrUnknownVersion = errors.New("unknown version")
	// ErrNotReady: the model is served but no version is loaded yet.
	ErrNotReady = errors.New("model not ready")
	// ErrModelRequired: the request names no model and there is no default.
	ErrModelRequired = errors.New("model required")
)

// Source is the part of the registry the catalog reads.
type Source interface {
	Models(ctx context.Context) ([]string, error)
	ReleaseJSON(ctx context.Context, name string) ([]byte, error)
	Manifest(ctx context.Context, name, version string) (registry.Manifest, error)
	Fetch(ctx context.Context, name, version string) ([]byte, registry.Manifest, error)
}

// SignedSource is a Source that checks signatures: a registry, whose
// FetchSigned returns a version's bytes only once they verify against its
// signature under trust. Options.Trust needs one.
type SignedSource interface {
	Source
	FetchSigned(ctx context.Context, trust *signing.Trust, name, version string) ([]byte, registry.Manifest, signing.Verified, error)
}

// Loader loads model bytes into a Model; *serving.Runtime is one (the
// tests use servingtest.Loader). The catalog puts each model in service
// as a serving.Session with the model's SessionOptions.
type Loader interface {
	Load(model []byte, o serving.ModelOptions) (serving.Model, error)
}

// Options configure a Catalog.
type Options struct {
	Source Source
	Loader Loader
	// SessionOptions, when set, gives the session options of a model (its
	// batching).
	SessionOptions func(model string) serving.SessionOptions
	// Models narrows what is served; empty serves every model in the registry.
	Models []string
	// DefaultModel answers requests that name no model; empty: the only
	// served model, when there is exactly one.
	DefaultModel string
	// MaxPinned caps the versions other than stable kept loaded for pinned
	// requests; the least recently used goes first. 0 means 4; negative
	// disables loading pinned versions on demand.
	MaxPinned int
	// MaxPinnedBytes caps the summed model size of those versions (the
	// ONNX bytes, a floor for what a session holds); 0 means no cap.
	MaxPinnedBytes int64
	// PollInterval is how often Run re-reads the registry; 0 means 5 s.
	// After registry errors Run retries sooner, then backs off up to six
	// intervals.
	PollInterval time.Duration
	// Recorder, when set, starts a new analysis window whenever a model's
	// canary moves to a new step (see release.Canary.Epoch).
	Recorder *canary.Recorder
	// ShadowFraction is the fraction of stable-served requests that also
	// run on the canary candidate in the background, for comparison.
	ShadowFraction float64
	// CompareSplit also scores candidate-served requests on stable, in the
	// background, so that split traffic counts towards disagreement.
	CompareSplit bool
	// Trust, when set, checks every version's signature before its bytes
	// reach the Loader (Source must be a SignedSource): a version that is
	// signed by no trusted key, whose signature is for another version, or
	// whose manifest or model differs from what was signed is refused like
	// a version that fails to load, so the version serving keeps serving,
	// Status says why and modelgate_signature_refusals_total counts it.
	// The keys are read again at every load: a removed key refuses the
	// versions only it signed from their next load on, while a session
	// already serving keeps serving until a swap replaces it.
	Trust *signing.Trust
	// RequireSignature refuses unsigned versions (with Trust); without it
	// an unsigned version loads with a warning and a signed one must still
	// verify.
	RequireSignature bool
	Logger           *slog.Logger
	Registerer       prometheus.Registerer
	Now              func() time.Time
}

// Catalog is safe for concurrent use.
type Catalog struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	mu      sync.RWMutex
	models  map[string]*entry
	synced  bool  // one Sync has completed
	syncErr error // the last Sync's registry error, if any

	loadMu sync.Mutex    // serialises loads so that one version is not loaded twice
	syncMu sync.Mutex    // one Sync (or loader pass) at a time, so that an older one never swaps in late
	wake   chan struct{} // a release state was offered: the loader looks (watch.go)

	errLog  logLimiter   // registry errors, rate limited
	history historyGuard // release histories accepted (history.go)
}

type entry struct {
	name   string
	stable slot // the stable version the release state names
	cand   slot // the candidate of a canary in progress
	pinned map[string]*pinned

	// The canary as last applied, and the candidate's weight in effect (0
	// until the candidate is loaded).
	canary  *release.Canary
	weight  float64
	applied time.Time // Updated of the last release state applied
	// The canary's match rules, compiled when a release state with other
	// rules is applied (nil: none, or none in effect), and the candidate
	// version they send requests to.
	match      *canary.Matcher
	matchFor   string
	matchRules []release.MatchRule

	// The last release state offered by the watcher, and whether the loader
	// has yet to converge on it.
	latest *release.State
	dirty  bool
}

type pinned struct {
	sess     *serving.Session
	size     int64
	lastUsed time.Time
}

// New returns a Catalog; call Sync or Watch to load models.
func New(opts Options) *Catalog {
	if opts.MaxPinned == 0 {
		opts.MaxPinned = 4
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	c := &Catalog{opts: opts, log: opts.Logger, now: opts.Now, models: map[string]*entry{}, wake: make(chan struct{}, 1)}
	c.metrics = newMetrics(opts.Registerer, c)
	for _, m := range opts.Models {
		c.models[m] = &entry{name: m, pinned: map[string]*pinned{}}
	}
	return c
}

// errRegistry marks errors reading the registry (as opposed to a version
// that does not load).
var errRegistry = errors.New("registry unavailable")

// Sync reads the registry's models and release states once and loads every
// version they name that is not loaded yet, swapping it in when it is warm.
// A version that fails to fetch, verify, load or warm up never replaces the
// serving one; the reason is kept for Status and the metrics. A gateway
// keeps up with the registry with Watch; Sync is the same in one pass that
// waits for its loads.
func (c *Catalog) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.pass(ctx, func(name string, rel release.State) error { return c.converge(ctx, name, rel) })
}

// pass lists the served models and reads each one's release state once,
// handing each state to visit. The errors of the pass come back joined; a
// registry that could not be read (errRegistry) is recorded for Status,
// the metrics and the log, and one read completely clears that.
func (c *Catalog) pass(ctx context.Context, visit func(name string, rel release.State) error) error {
	names, err := c.servedNames(ctx)
	if err != nil {
		err = fmt.Errorf("%w: %w", errRegistry, err)
		c.registryError(err)
		return err
	}
	var errs []error
	regErr := false
	for _, name := range names {
		rel, err := c.readRelease(ctx, name)
		if err == nil {
			err = visit(name, rel)
		}
		if err != nil {
			errs = append(errs, err)
			regErr = regErr || errors.Is(err, errRegistry)
		}
	}
	c.mu.Lock()
	c.synced = true
	c.mu.Unlock()
	err = errors.Join(errs...)
	if regErr {
		c.registryError(err)
	} else {
		c.setSyncErr(nil)
		c.metrics.registryOK(c.now())
		c.errLog.recovered(c.log)
	}
	return err
}

// registryError records a failed registry read for Status, the metrics
// and the (rate-limited) log.
func (c *Catalog) registryError(err error) {
	c.setSyncErr(err)
	c.metrics.registryErrors.Inc()
	c.errLog.log(c.log, c.now(), err)
}

func (c *Catalog) setSyncErr(err error) {
	c.mu.Lock()
	c.syncErr = err
	c.mu.Unlock()
}

// servedNames is the configured list, or every model in the registry.
func (c *Catalog) servedNames(ctx context.Context) ([]string, error) {
	if len(c.opts.Models) > 0 {
		return c.opts.Models, nil
	}
	names, err := c.opts.Source.Models(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing models: %w", err)
	}
	c.mu.Lock()
	for _, n := range names {
		if c.models[n] == nil {
			c.models[n] = &entry{name: n, pinned: map[string]*pinned{}}
		}
	}
	c.mu.Unlock()
	return names, nil
}

// readRelease reads a model's release state. What is loaded keeps serving
// when it cannot be read; the error shows in Status.
func (c *Catalog) readRelease(ctx context.Context, name string) (release.State, error) {
	rel, err := store.Read(ctx, c.opts.Source, name)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			err = fmt.Errorf("model %s: no release state in the registry: %w", name, err)
		} else {
			err = fmt.Errorf("%w: model %s: reading release state: %w", errRegistry, name, err)
		}
		c.setModelErr(name, "", err)
		return release.State{}, err
	}
	if reason, err := c.history.check(name, rel); err != nil {
		c.metrics.releaseRefused(name, reason)
		if c.history.firstLog(name, err) {
			c.log.Error("release state refused; serving what was loaded", "model", name, "reason", reason, "err", err)
		}
		c.setModelErr(name, "", err)
		return release.State{}, err
	}
	return rel, nil
}

// converge brings a model in line with its release state: the routing at
// once, and its stable version, and the candidate of a canary in
// progress, loaded (each slot with its own failure backoff).
func (c *Catalog) converge(ctx context.Context, name string, rel release.State) error {
	if rel.Stable == "" {
		err := fmt.Errorf("model %s: the release state names no stable version", name)
		c.setModelErr(name, "", err)
		return err
	}
	c.mu.Lock()
	e := c.models[name]
	c.mu.Unlock()
	err := c.syncSlot(ctx, e, roleStable, rel.Stable)
	c.ApplyRelease(rel)
	if rel.Canary.Active() {
		if cerr := c.syncSlot(ctx, e, roleCandidate, rel.Canary.Progress.Candidate); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	c.ApplyRelease(rel)
	return err
}

// setModelErr records why a model's stable version is not served (a
// registry read, a release state without one).
func (c *Catalog) setModelErr(name, version string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.models[name]; e != nil {
		e.stable.err = err
		if version != "" {
			e.stable.want = version
		}
	}
}

// load fetches (digest verified), creates and warms up a session.
func (c *Catalog) load(ctx context.Context, name, version string) (*serving.Session, error) {
	start := c.now()
	sess, err := c.loadSession(ctx, name, version)
	c.metrics.loaded(name, version, err, c.now().Sub(start))
	if err != nil {
		c.log.Error("loading model version failed", "model", name, "version", version, "err", err)
		return nil, err
	}
	return sess, nil
}

func (c *Catalog) loadSession(ctx context.Context, name, version string) (*serving.Session, error) {
	b, man, err := c.fetch(ctx, name, version)
	if err != nil {
		return nil, err
	}
	var so serving.SessionOptions
	if c.opts.SessionOptions != nil {
		so = c.opts.SessionOptions(name)
	}
	so.OutputKinds = man.OutputKinds // what the outputs mean, for the canary's comparisons
	m, err := c.opts.Loader.Load(b, serving.ModelOptions{Name: name, Version: version})
	if err != nil {
		return nil, fmt.Errorf("model %s version %s: load: %w", name, version, err)
	}
	if so.Logger == nil {
		so.Logger = c.log
	}
	sess := serving.NewSession(m, so)
	if err := sess.WarmUp(ctx); err != nil {
		sess.Close()
		return nil, fmt.Errorf("model %s version %s: %w", name, version, warmUpError{err})
	}
	return sess, nil
}

// fetch reads a version's bytes and manifest: verified against its
// signature when the catalog has trusted keys, else against the
// manifest's digest alone.
func (c *Catalog) fetch(ctx context.Context, name, version string) ([]byte, registry.Manifest, error) {
	if c.opts.Trust == nil {
		b, man, err := c.opts.Source.Fetch(ctx, name, version)
		if err != nil {
			return nil, registry.Manifest{}, fmt.Errorf("model %s version %s: fetch: %w", name, version, err)
		}
		return b, man, nil
	}
	src, ok := c.opts.Source.(SignedSource)
	if !ok {
		return nil, registry.Manifest{}, fmt.Errorf("model %s version %s: trusted keys are configured but the source (%T) cannot check signatures", name, version, c.opts.Source)
	}
	b, man, v, err := src.FetchSigned(ctx, c.opts.Trust, name, version)
	if errors.Is(err, signing.ErrUnsigned) && !c.opts.RequireSignature {
		c.log.Warn("loading an unsigned model version: security.require_signature is off", "model", name, "version", version)
		b, man, err = c.opts.Source.Fetch(ctx, name, version)
		if err != nil {
			return nil, registry.Manifest{}, fmt.Errorf("model %s version %s: fetch: %w", name, version, err)
		}
		return b, man, nil
	}
	if err != nil {
		if signing.IsRefusal(err) {
			reason := signing.Reason(err)
			c.metrics.signatureRefusals.WithLabelValues(name, reason).Inc()
			return nil, registry.Manifest{}, fmt.Errorf("model %s version %s: refused, signature check failed (%s): %w", name, version, reason, err)
		}
		return nil, registry.Manifest{}, fmt.Errorf("model %s version %s: fetch: %w", name, version, err)
	}
	c.log.Info("model version signature verified", "model", name, "version", version, "key", v.KeyID)
	return b, man, nil
}

// warmUpError marks a version that loaded but failed its warm-up run, for
// the failure metric's "warmup" reason; its message is err's.
type warmUpError struct{ error }

func (e warmUpError) Unwrap() error { return e.error }

// Acquire returns a referenced session for model and version: the stable
// version when version is empty, else that exact version (loaded on demand
// when it is not the stable one). The caller must call Release on it.
// An empty model means the default model.
func (c *Catalog) Acquire(ctx context.Context, model, version string) (*serving.Session, error) {
	if model == "" {
		model = c.DefaultModel()
		if model == "" {
			c.mu.RLock()
			synced := c.synced
			c.mu.RUnlock()
			if !synced {
				return nil, fmt.Errorf("%w: the gateway is starting and has not read the registry yet", ErrNotReady)
			}
			return nil, fmt.Errorf("%w: this gateway serves %d models; name one with ?model=", ErrModelRequired, len(c.Names()))
		}
	}
	for {
		c.mu.Lock()
		e := c.models[model]
		if e == nil {
			synced := c.synced
			names := c.namesLocked()
			c.mu.Unlock()
			if !synced {
				return nil, fmt.Errorf("%w: the gateway is starting and has not read the registry yet", ErrNotReady)
			}
			return nil, fmt.Errorf("%w: %q is not served here (served: %v)", ErrUnknownModel, model, names)
		}
		var sess *serving.Session
		if version == "" || e.stable.serves(version) {
			if e.stable.sess == nil {
				err := e.stable.err
				c.mu.Unlock()
				if err == nil {
					return nil, fmt.Errorf("%w: %s is loading", ErrNotReady, model)
				}
				return nil, fmt.Errorf("%w: %s: %v", ErrNotReady, model, err)
			}
			sess = e.stable.sess
		} else if e.cand.serves(version) {
			sess = e.cand.sess
		} else if p := e.pinned[version]; p != nil {
			p.lastUsed = c.now()
			sess = p.sess
		}
		c.mu.Unlock()
		if sess == nil {
			sess, err := c.loadPinned(ctx, model, version)
			if err != nil {
				return nil, err
			}
			if sess != nil {
				return sess, nil // loaded and acquired for us
			}
			continue // someone else loaded it meanwhile
		}
		if sess.Acquire() {
			return sess, nil
		}
		// Closed between lookup and Acquire (a swap): look again.
	}
}

// loadPinned loads a version other than stable for pinned requests and
// returns it acquired, or nil when it turns out to be loaded already.
func (c *Catalog) loadPinned(ctx context.Context, model, version string) (*serving.Session, error) {
	if err := registry.ValidateName(version); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnknownVersion, err)
	}
	m, err := c.opts.Source.Manifest(ctx, model, version)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("%w: model %s has no version %q", ErrUnknownVersion, model, version)
		}
		return nil, fmt.Errorf("%w: model %s version %s: %v", ErrNotReady, model, version, err)
	}
	if c.opts.MaxPinned < 0 {
		return nil, fmt.Errorf("%w: version %s of %s is not loaded and loading pinned versions is disabled", ErrNotReady, version, model)
	}
	if c.opts.MaxPinnedBytes > 0 && m.Size > c.opts.MaxPinnedBytes {
		return nil, fmt.Errorf("%w: version %s of %s (%d bytes) is larger than the pinned-version memory budget (%d bytes)", ErrNotReady, version, model, m.Size, c.opts.MaxPinnedBytes)
	}
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	c.mu.RLock()
	e := c.models[model]
	loaded := e.pinned[version] != nil || e.stable.serves(version) || e.cand.serves(version)
	c.mu.RUnlock()
	if loaded {
		return nil, nil
	}
	sess, err := c.load(ctx, model, version)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	sess.Acquire() // for the caller, before eviction can see it
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &pinned{sess: sess, size: m.Size, lastUsed: c.now()}
	e.pinned[version] = p
	c.metrics.pinnedLoaded(model, sess)
	c.evictLocked(p)
	return sess, nil
}

// evictLocked unloads the least recently used pinned versions (never keep)
// while more are loaded than MaxPinned or their sizes exceed
// MaxPinnedBytes. Evicted sessions are destroyed after their last request.
func (c *Catalog) evictLocked(keep *pinned) {
	type ref struct {
		e       *entry
		version string
		p       *pinned
	}
	var all []ref
	var total int64
	for _, e := range c.models {
		for v, p := range e.pinned {
			total += p.size
			if p != keep {
				all = append(all, ref{e, v, p})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].p.lastUsed.Before(all[j].p.lastUsed) })
	count := len(all) + 1
	for _, r := range all {
		overCount := count > c.opts.MaxPinned
		overBytes := c.opts.MaxPinnedBytes > 0 && total > c.opts.MaxPinnedBytes
		if !overCount && !overBytes {
			break
		}
		delete(r.e.pinned, r.version)
		c.metrics.unloaded(r.e.name, r.p.sess)
		r.p.sess.Close()
		count--
		total -= r.p.size
		c.log.Info("unloaded pinned version", "model", r.e.name, "version", r.version)
	}
}

// DefaultModel is the configured default, else the only served model.
func (c *Catalog) DefaultModel() string {
	if c.opts.DefaultModel != "" {
		return c.opts.DefaultModel
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.models) == 1 {
		for n := range c.models {
			return n
		}
	}
	return ""
}

// Names lists the served models, sorted.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.namesLocked()
}

func (c *Catalog) namesLocked() []string {
	names := make([]string, 0, len(c.models))
	for n := range c.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether model is served.
func (c *Catalog) Has(model string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.models[model] != nil
}

// Versions lists a served model's versions in the registry, oldest first.
func (c *Catalog) Versions(ctx context.Context, model string) ([]string, error) {
	if !c.Has(model) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, model)
	}
	type lister interface {
		Versions(ctx context.Context, name string) ([]registry.Manifest, error)
	}
	l, ok := c.opts.Source.(lister)
	if !ok {
		return nil, nil
	}
	ms, err := l.Versions(ctx, model)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out, nil
}

// Loaded lists a served model's loaded versions' sessions: stable, the
// canary candidate, then pinned versions by version, each version once.
// They are not acquired: callers read their Info and Stats, which are
// safe on a session that is closing, and never Run them.
func (c *Catalog) Loaded(model string) ([]*serving.Session, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.models[model]
	if e == nil {
		if !c.synced {
			return nil, fmt.Errorf("%w: the gateway is starting and has not read the registry yet", ErrNotReady)
		}
		return nil, fmt.Errorf("%w: %q is not served here (served: %v)", ErrUnknownModel, model, c.namesLocked())
	}
	return e.loadedLocked(), nil
}

func (e *entry) loadedLocked() []*serving.Session {
	var out []*serving.Session
	add := func(s *serving.Session) {
		if s != nil && !slices.ContainsFunc(out, func(o *serving.Session) bool { return o.Version() == s.Version() }) {
			out = append(out, s)
		}
	}
	add(e.stable.sess)
	add(e.cand.sess)
	for _, v := range slices.Sorted(maps.Keys(e.pinned)) {
		add(e.pinned[v].sess)
	}
	return out
}

// allLoaded lists every served model's loaded sessions (Loaded), models
// by name.
func (c *Catalog) allLoaded() []*serving.Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*serving.Session
	for _, name := range c.namesLocked() {
		out = append(out, c.models[name].loadedLocked()...)
	}
	return out
}

// ModelStatus is one served model's state, as /readyz shows it.
type ModelStatus struct {
	Name     string   `json:"name"`
	State    string   `json:"state"` // "ready", "loading" or "failed"
	Version  string   `json:"version,omitempty"`
	Provider string   `json:"provider,omitempty"`
	Wanted   string   `json:"wanted_version,omitempty"` // stable per the registry, when it differs from Version
	Pinned   []string `json:"pinned_versions,omitempty"`
	Error    string   `json:"error,omitempty"`
	// ProviderChoice is how ort.providers auto chose Provider (warm-up
	// times per provider, the reason); absent with a configured order.
	ProviderChoice *serving.ProviderChoice `json:"provider_choice,omitempty"`
	// The canary, while one is in progress: its candidate, the weight in
	// effect here and the phase.
	Candidate      string  `json:"candidate,omitempty"`
	CandidateError string  `json:"candidate_error,omitempty"`
	Weight         float64 `json:"candidate_weight,omitempty"`
	Phase          string  `json:"canary_phase,omitempty"`
}

// Status is the catalog's readiness: Ready when at least one model is
// served and every served model has a loaded, warmed-up version.
type Status struct {
	Ready  bool          `json:"ready"`
	Models []ModelStatus `json:"models"`
	Error  string        `json:"error,omitempty"`
}

// Status reports each served model's state.
func (c *Catalog) Status() Status {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := Status{Ready: c.synced && len(c.models) > 0}
	if c.syncErr != nil {
		st.Error = c.syncErr.Error()
	}
	if c.synced && len(c.models) == 0 {
		st.Error = "the registry holds no models: push one with `promote push`"
	}
	for _, name := range c.namesLocked() {
		e := c.models[name]
		ms := ModelStatus{Name: name, State: "loading"}
		if e.stable.sess != nil {
			ms.State, ms.Version, ms.Provider = "ready", e.stable.sess.Version(), e.stable.sess.Provider()
			ms.ProviderChoice = e.stable.sess.Info().ProviderChoice
			if e.stable.want != "" && e.stable.want != ms.Version {
				ms.Wanted = e.stable.want
			}
		} else {
			st.Ready = false
			ms.Wanted = e.stable.want
			if e.stable.err != nil {
				ms.State = "failed"
			}
		}
		if e.stable.err != nil {
			ms.Error = e.stable.err.Error()
		}
		for v := range e.pinned {
			ms.Pinned = append(ms.Pinned, v)
		}
		slices.Sort(ms.Pinned)
		if e.canary.Active() {
			ms.Candidate, ms.Weight, ms.Phase = e.canary.Progress.Candidate, e.weight, string(e.canary.Progress.Phase)
			if e.cand.err != nil && e.cand.want == ms.Candidate {
				ms.CandidateError = e.cand.err.Error()
			}
		}
		st.Models = append(st.Models, ms)
	}
	return st
}

// Close unloads every session; the catalog must not be used afterwards.
// Sessions still referenced are destroyed when their last request ends.
func (c *Catalog) Close() {
	c.mu.Lock()
	var all []*serving.Session
	for _, e := range c.models {
		if e.stable.sess != nil {
			all = append(all, e.stable.sess)
			e.stable.sess = nil
		}
		if e.cand.sess != nil {
			all = append(all, e.cand.sess)
			e.cand.sess, e.weight = nil, 0
		}
		for v, p := range e.pinned {
			all = append(all, p.sess)
			delete(e.pinned, v)
		}
	}
	c.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
	for _, s := range all {
		<-s.Done()
	}
}
