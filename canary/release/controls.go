package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The rollout controls a plan may carry beside its weights, with the
// meaning Flagger and Argo Rollouts users know: manual steps (pauses),
// webhooks, notifications, and header or cookie matching.

// StepPause holds the canary after a step has passed, at that step's
// weight, before the next one: until an operator resumes it (`promote
// canary resume`; For 0, Argo's `pause: {}`) or until For has elapsed
// (`pause: {duration: ...}`). The checks keep running while it holds: a
// failure still counts and may roll back.
type StepPause struct {
	// After is the index in Steps of the step it follows.
	After int           `json:"after"`
	For   time.Duration `json:"-"`
}

// HookType is when a webhook is called (Flagger's webhook types).
type HookType string

const (
	// HookPreRollout is called before any traffic reaches the candidate;
	// a non-2xx answer (after the retries) stops the canary.
	HookPreRollout HookType = "pre-rollout"
	// HookRollout is called at every tick while the canary progresses; a
	// non-2xx answer counts as a failed check.
	HookRollout HookType = "rollout"
	// HookConfirmRollout gates the start: the candidate stays at weight 0
	// until the hook answers 2xx (a manual or external approval).
	HookConfirmRollout HookType = "confirm-rollout"
	// HookConfirmPromotion gates the promotion: after the last step passed
	// the canary waits there until the hook answers 2xx.
	HookConfirmPromotion HookType = "confirm-promotion"
	// HookPostRollout is told once the canary ended (promoted, rolled back
	// or aborted); its answer changes nothing.
	HookPostRollout HookType = "post-rollout"
	// HookRollback is told when the canary is rolled back or aborted.
	HookRollback HookType = "rollback"
)

// HookTypes lists the webhook types, in the order of a release.
var HookTypes = []HookType{HookPreRollout, HookConfirmRollout, HookRollout, HookConfirmPromotion, HookPostRollout, HookRollback}

// Webhook is one webhook of a plan: a POST of a JSON body (model,
// versions, phase, weight, step, analysis) to URL, within Timeout, tried
// up to 1+Retries times.
type Webhook struct {
	Type    HookType      `json:"type"`
	Name    string        `json:"name"`
	URL     string        `json:"url"`
	Timeout time.Duration `json:"-"`
	Retries int           `json:"retries"`
}

// Hook defaults.
const (
	DefaultHookTimeout = 10 * time.Second
	DefaultHookRetries = 2
	maxHookRetries     = 10
)

// Notifier is where phase changes are announced: a generic JSON POST
// ("json") or a Slack-compatible incoming webhook ("slack", {"text": ...}).
type Notifier struct {
	Kind string `json:"kind"`
	URL  string `json:"url"`
}

// MatchRule routes the requests whose header (or cookie) Name has a value
// equal to Value, or matching Regex (anchored: the whole value), to the
// candidate whatever the weight
// (Flagger's A/B testing, Seldon's routing header), for as long as the
// canary is active. They are a cohort of their own in the analysis.
type MatchRule struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Value  string `json:"value,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// String is the rule as promote's --match takes it.
func (m MatchRule) String() string {
	kind, name := "header", m.Header
	if m.Cookie != "" {
		kind, name = "cookie", m.Cookie
	}
	if m.Regex != "" {
		return kind + ":" + name + "=~" + m.Regex
	}
	return kind + ":" + name + "=" + m.Value
}

// ParseMatch reads a rule: header:NAME=VALUE, header:NAME=~REGEX,
// cookie:NAME=VALUE or cookie:NAME=~REGEX.
func ParseMatch(s string) (MatchRule, error) {
	kind, rest, ok := strings.Cut(s, ":")
	name, value, ok2 := strings.Cut(rest, "=")
	if !ok || !ok2 || name == "" || (kind != "header" && kind != "cookie") {
		return MatchRule{}, fmt.Errorf("match %q: want header:NAME=VALUE, header:NAME=~REGEX, cookie:NAME=VALUE or cookie:NAME=~REGEX", s)
	}
	var m MatchRule
	if kind == "header" {
		m.Header = name
	} else {
		m.Cookie = name
	}
	if re, isRe := strings.CutPrefix(value, "~"); isRe {
		m.Regex = re
	} else {
		m.Value = value
	}
	return m, m.validate()
}

func (m MatchRule) validate() error {
	if (m.Header == "") == (m.Cookie == "") {
		return errors.New("a match rule names one header or one cookie")
	}
	if m.Regex != "" {
		if m.Value != "" {
			return errors.New("a match rule has a value or a regex, not both")
		}
		if _, err := regexp.Compile("^(?:" + m.Regex + ")$"); err != nil {
			return fmt.Errorf("match regex %q: %v", m.Regex, err)
		}
	} else if m.Value == "" {
		return errors.New("a match rule needs a value (or =~REGEX)")
	}
	return nil
}

// ParseSteps reads promote's --steps: weights in percent, with "pause"
// (until resumed) or "pause:DURATION" between or after them, e.g.
// "5,pause,25,pause:10m,50,100".
func ParseSteps(s string) ([]float64, []StepPause, error) {
	var weights []float64
	var pauses []StepPause
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if rest, ok := strings.CutPrefix(f, "pause"); ok {
			if len(weights) == 0 {
				return nil, nil, fmt.Errorf("steps %q: a pause follows a step; to hold before any traffic use a confirm-rollout webhook", s)
			}
			p := StepPause{After: len(weights) - 1}
			if d, ok := strings.CutPrefix(rest, ":"); ok {
				v, err := time.ParseDuration(d)
				if err != nil || v <= 0 {
					return nil, nil, fmt.Errorf("steps %q: pause:%s: want a positive duration such as pause:10m", s, d)
				}
				p.For = v
			} else if rest != "" {
				return nil, nil, fmt.Errorf("steps %q: %q: want pause or pause:DURATION", s, f)
			}
			pauses = append(pauses, p)
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f, "%"), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("steps %q: %q is neither a weight nor pause[:DURATION] (e.g. 5,pause,25,50,100)", s, f)
		}
		weights = append(weights, v)
	}
	return weights, pauses, nil
}

// FormatSteps is ParseSteps' inverse.
func FormatSteps(weights []float64, pauses []StepPause) string {
	var parts []string
	for i, w := range weights {
		parts = append(parts, strconv.FormatFloat(w, 'g', -1, 64))
		for _, p := range pauses {
			if p.After == i {
				if p.For > 0 {
					parts = append(parts, "pause:"+p.For.String())
				} else {
					parts = append(parts, "pause")
				}
			}
		}
	}
	return strings.Join(parts, ",")
}

// ParseWebhook reads promote's --webhook: TYPE=URL[,timeout=D][,retries=N][,name=NAME].
func ParseWebhook(s string) (Webhook, error) {
	typ, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Webhook{}, fmt.Errorf("webhook %q: want TYPE=URL[,timeout=10s][,retries=2][,name=NAME], TYPE one of %s", s, hookTypeList())
	}
	parts := strings.Split(rest, ",")
	h := Webhook{Type: HookType(typ), URL: parts[0], Timeout: DefaultHookTimeout, Retries: DefaultHookRetries}
	for _, opt := range parts[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return Webhook{}, fmt.Errorf("webhook %q: timeout=%s: %v", s, v, err)
			}
			h.Timeout = d
		case "retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				return Webhook{}, fmt.Errorf("webhook %q: retries=%s: want a number", s, v)
			}
			h.Retries = n
		case "name":
			h.Name = v
		default:
			return Webhook{}, fmt.Errorf("webhook %q: unknown option %q (timeout, retries, name)", s, k)
		}
	}
	if h.Name == "" {
		h.Name = string(h.Type)
	}
	return h, h.validate()
}

func hookTypeList() string {
	s := make([]string, len(HookTypes))
	for i, t := range HookTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func (h Webhook) validate() error {
	if !slices.Contains(HookTypes, h.Type) {
		return fmt.Errorf("webhook %q: type %q, want one of %s", h.Name, h.Type, hookTypeList())
	}
	if err := checkURL(h.URL); err != nil {
		return fmt.Errorf("webhook %q: %v", h.Name, err)
	}
	if h.Timeout <= 0 || h.Timeout > 5*time.Minute {
		return fmt.Errorf("webhook %q: timeout %s: want more than 0 and at most 5m", h.Name, h.Timeout)
	}
	if h.Retries < 0 || h.Retries > maxHookRetries {
		return fmt.Errorf("webhook %q: retries %d: want 0 to %d", h.Name, h.Retries, maxHookRetries)
	}
	return nil
}

// ParseNotifier reads promote's --notify: URL (a JSON POST) or slack=URL.
func ParseNotifier(s string) (Notifier, error) {
	n := Notifier{Kind: "json", URL: s}
	if k, u, ok := strings.Cut(s, "="); ok && (k == "slack" || k == "json") {
		n = Notifier{Kind: k, URL: u}
	}
	return n, n.validate()
}

func (n Notifier) validate() error {
	if n.Kind != "json" && n.Kind != "slack" {
		return fmt.Errorf("notifier kind %q: want json or slack", n.Kind)
	}
	if err := checkURL(n.URL); err != nil {
		return fmt.Errorf("notifier: %v", err)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http:// or https:// URL", s)
	}
	return nil
}

// validateControls reports the problems of the plan's controls.
func (p Plan) validateControls(bad func(format string, args ...any)) {
	seen := map[int]bool{}
	for _, ps := range p.Pauses {
		if ps.After < 0 || ps.After >= len(p.Steps) {
			bad("pauses: a pause after step %d, but the plan has %d steps", ps.After+1, len(p.Steps))
		}
		if seen[ps.After] {
			bad("pauses: two pauses after step %d", ps.After+1)
		}
		seen[ps.After] = true
		if ps.For < 0 {
			bad("pauses: a negative duration %s", ps.For)
		}
	}
	names := map[string]bool{}
	for _, h := range p.Webhooks {
		if err := h.validate(); err != nil {
			bad("%v", err)
		}
		key := string(h.Type) + "/" + h.Name
		if names[key] {
			bad("webhooks: two %s hooks named %q", h.Type, h.Name)
		}
		names[key] = true
	}
	for _, n := range p.Notify {
		if err := n.validate(); err != nil {
			bad("%v", err)
		}
	}
	for _, m := range p.Match {
		if err := m.validate(); err != nil {
			bad("match: %v", err)
		}
	}
}

// PauseAfter is the pause that follows step i, if any.
func (p Plan) PauseAfter(i int) (StepPause, bool) {
	for _, ps := range p.Pauses {
		if ps.After == i {
			return ps, true
		}
	}
	return StepPause{}, false
}

// Hooks returns the plan's webhooks of type t.
func (p Plan) Hooks(t HookType) []Webhook {
	var out []Webhook
	for _, h := range p.Webhooks {
		if h.Type == t {
			out = append(out, h)
		}
	}
	return out
}

// JSON forms with durations as strings ("10m0s").
type (
	stepPauseJSON struct {
		After int    `json:"after"`
		For   string `json:"for,omitempty"`
	}
	webhookJSON struct {
		Type    HookType `json:"type"`
		Name    string   `json:"name"`
		URL     string   `json:"url"`
		Timeout string   `json:"timeout"`
		Retries int      `json:"retries"`
	}
)

// MarshalJSON writes For as a duration string (absent: until resumed).
func (p StepPause) MarshalJSON() ([]byte, error) {
	v := stepPauseJSON{After: p.After}
	if p.For > 0 {
		v.For = p.For.String()
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads StepPause's JSON.
func (p *StepPause) UnmarshalJSON(data []byte) error {
	var v stepPauseJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*p = StepPause{After: v.After}
	if v.For != "" {
		d, err := time.ParseDuration(v.For)
		if err != nil {
			return fmt.Errorf("canary plan: pause for: %w", err)
		}
		p.For = d
	}
	return nil
}

// MarshalJSON writes Timeout as a duration string.
func (h Webhook) MarshalJSON() ([]byte, error) {
	return json.Marshal(webhookJSON{Type: h.Type, Name: h.Name, URL: h.URL, Timeout: h.Timeout.String(), Retries: h.Retries})
}

// UnmarshalJSON reads Webhook's JSON.
func (h *Webhook) UnmarshalJSON(data []byte) error {
	var v webhookJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	d, err := time.ParseDuration(v.Timeout)
	if err != nil {
		return fmt.Errorf("canary plan: webhook %q timeout: %w", v.Name, err)
	}
	*h = Webhook{Type: v.Type, Name: v.Name, URL: v.URL, Timeout: d, Retries: v.Retries}
	return nil
}
