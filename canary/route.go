package canary

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/modelgate/modelgate/canary/release"
)

// Bucket maps a routing key to a point in [0, 100). A key's point never
// changes, so the keys below a weight stay below it as the weight grows:
// a key on the candidate at 5 % is still on it at 25 %.
func Bucket(key string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	// FNV's low bits are weak for short keys; finish with a 64-bit mixer
	// (splitmix64's) before taking the point.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53) * 100
}

// ToCandidate reports whether a request goes to the candidate when it
// takes weight percent of the traffic. With a key the choice is sticky
// (Bucket(key) < weight); without one it is random.
func ToCandidate(key string, weight float64) bool {
	switch {
	case weight <= 0:
		return false
	case weight >= 100:
		return true
	case key != "":
		return Bucket(key) < weight
	default:
		return rand.Float64()*100 < weight
	}
}

// Request is what the router reads of a request that pins no version:
// its routing key and, for a canary's match rules, its headers.
type Request struct {
	Key string
	// Header is an HTTP request's header (net/http's canonical keys),
	// Metadata a gRPC request's metadata (lower-case keys, as gRPC keeps
	// them); either may be nil.
	Header   http.Header
	Metadata map[string][]string
}

// Choose is where a request goes while a canary's candidate takes weight
// percent of the traffic and m holds the plan's match rules: RoleMatched
// when the request matches one of them, whatever the weight (0 too);
// otherwise RoleCandidate or RoleStable as ToCandidate splits. A nil m
// routes by weight alone, as ToCandidate does, without allocating.
func Choose(r Request, weight float64, m *Matcher) string {
	switch {
	case m.Match(r):
		return RoleMatched
	case ToCandidate(r.Key, weight):
		return RoleCandidate
	}
	return RoleStable
}

// Matcher is a canary plan's match rules (release.MatchRule), compiled
// once: a request whose header or cookie matches any of them goes to the
// candidate (Flagger's A/B testing, Seldon's routing header). A nil
// Matcher matches nothing.
type Matcher struct {
	rules []matchRule
}

type matchRule struct {
	header, meta string // the header's name as net/http and as gRPC key it
	cookie       string
	value        string
	re           *regexp.Regexp // anchored: the whole value
}

// NewMatcher compiles rules; nil when there are none.
func NewMatcher(rules []release.MatchRule) (*Matcher, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	m := &Matcher{rules: make([]matchRule, len(rules))}
	for i, r := range rules {
		mr := matchRule{cookie: r.Cookie, value: r.Value}
		if r.Header != "" {
			mr.header, mr.meta = textproto.CanonicalMIMEHeaderKey(r.Header), strings.ToLower(r.Header)
		}
		if (r.Header == "") == (r.Cookie == "") {
			return nil, fmt.Errorf("canary: match rule %s: want one header or one cookie", r)
		}
		if r.Regex != "" {
			re, err := regexp.Compile("^(?:" + r.Regex + ")$")
			if err != nil {
				return nil, fmt.Errorf("canary: match rule %s: %w", r, err)
			}
			mr.re = re
		}
		m.rules[i] = mr
	}
	return m, nil
}

// Match reports whether r matches one of the rules: a value of the named
// header (each field line as sent, any of them), or of the named cookie in
// the Cookie header (as net/http parses it), equal to the rule's value or
// wholly matching its regex. Headers are looked up in both r.Header and
// r.Metadata; a gRPC client's cookies are its "cookie" metadata.
func (m *Matcher) Match(r Request) bool {
	if m == nil {
		return false
	}
	var cookies []*http.Cookie
	parsed := false
	for i := range m.rules {
		mr := &m.rules[i]
		if mr.cookie == "" {
			if mr.any(r.Header[mr.header]) || mr.any(r.Metadata[mr.meta]) {
				return true
			}
			continue
		}
		if !parsed {
			cookies, parsed = requestCookies(r), true
		}
		for _, c := range cookies {
			if c.Name == mr.cookie && mr.is(c.Value) {
				return true
			}
		}
	}
	return false
}

func (mr *matchRule) any(values []string) bool {
	for _, v := range values {
		if mr.is(v) {
			return true
		}
	}
	return false
}

func (mr *matchRule) is(v string) bool {
	if mr.re != nil {
		return mr.re.MatchString(v)
	}
	return v == mr.value
}

// requestCookies parses r's Cookie header lines (HTTP's, and gRPC's
// "cookie" metadata) as net/http does, skipping malformed cookies.
func requestCookies(r Request) []*http.Cookie {
	lines := r.Header["Cookie"]
	if md := r.Metadata["cookie"]; len(md) > 0 {
		lines = append(lines[:len(lines):len(lines)], md...)
	}
	if len(lines) == 0 {
		return nil
	}
	return (&http.Request{Header: http.Header{"Cookie": lines}}).Cookies()
}
