package canary_test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
)

// keys are the routing keys the split tests use: user ids as a client
// would send them.
func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}

func TestBucketRange(t *testing.T) {
	for _, k := range append(keys(10000), "", "a", "\x00", "a much longer routing key than most clients send") {
		b := canary.Bucket(k)
		if b < 0 || b >= 100 || math.IsNaN(b) {
			t.Fatalf("Bucket(%q) = %v, want a point in [0, 100)", k, b)
		}
		if again := canary.Bucket(k); again != b {
			t.Fatalf("Bucket(%q) = %v then %v: not stable", k, b, again)
		}
	}
}

// The share of keys routed to the candidate follows the weight: within
// two points for 10,000 keys (the binomial standard deviation at 50 % is
// half a point).
func TestKeyedSplitFollowsWeight(t *testing.T) {
	ks := keys(10000)
	for _, w := range []float64{5, 25, 50} {
		t.Run(fmt.Sprintf("%g%%", w), func(t *testing.T) {
			n := 0
			for _, k := range ks {
				if canary.ToCandidate(k, w) {
					n++
				}
			}
			got := 100 * float64(n) / float64(len(ks))
			if math.Abs(got-w) > 2 {
				t.Fatalf("%.2f%% of keys on the candidate at weight %g%%", got, w)
			}
		})
	}
}

// A key on the candidate stays on it as the weight grows, and a key on
// stable at a higher weight was on stable at every lower one.
func TestKeyedSplitIsSticky(t *testing.T) {
	weights := []float64{5, 25, 50, 100}
	moved := 0
	for _, k := range keys(10000) {
		for i := 1; i < len(weights); i++ {
			lo, hi := canary.ToCandidate(k, weights[i-1]), canary.ToCandidate(k, weights[i])
			if lo && !hi {
				t.Fatalf("key %q is on the candidate at %g%% but not at %g%%", k, weights[i-1], weights[i])
			}
			if lo != hi {
				moved++
			}
		}
		for range 3 {
			if canary.ToCandidate(k, 25) != (canary.Bucket(k) < 25) {
				t.Fatalf("key %q: ToCandidate(25) disagrees with its bucket %v", k, canary.Bucket(k))
			}
		}
	}
	if moved == 0 {
		t.Fatal("no key moved to the candidate as the weight grew")
	}
}

func TestWeightEdges(t *testing.T) {
	for _, k := range append(keys(1000), "") {
		for _, w := range []float64{0, -5} {
			if canary.ToCandidate(k, w) {
				t.Fatalf("ToCandidate(%q, %g) = true, want stable", k, w)
			}
		}
		for _, w := range []float64{100, 150} {
			if !canary.ToCandidate(k, w) {
				t.Fatalf("ToCandidate(%q, %g) = false, want the candidate", k, w)
			}
		}
	}
}

// Without a key the split is random; over 20,000 requests it is within
// two points of the weight (four standard deviations at 50 %).
func TestKeylessSplitFollowsWeight(t *testing.T) {
	const n = 20000
	for _, w := range []float64{5, 25, 50} {
		hits := 0
		for range n {
			if canary.ToCandidate("", w) {
				hits++
			}
		}
		if got := 100 * float64(hits) / n; math.Abs(got-w) > 2 {
			t.Errorf("keyless: %.2f%% on the candidate at weight %g%%", got, w)
		}
	}
}

// matcher compiles rules given as promote's --match takes them.
func matcher(t *testing.T, rules ...string) *canary.Matcher {
	t.Helper()
	var parsed []release.MatchRule
	for _, r := range rules {
		m, err := release.ParseMatch(r)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, m)
	}
	m, err := canary.NewMatcher(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// httpHeader is a header as net/http keeps a request's, from lines
// "Name: value".
func httpHeader(lines ...string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ": ")
		h.Add(k, v)
	}
	return h
}

// A request matching a rule goes to the candidate whatever the weight and
// its key; one that does not is split by weight as before.
func TestChooseMatchRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		req   canary.Request
		want  bool
	}{
		{"header exact", []string{"header:x-beta-user=true"}, canary.Request{Header: httpHeader("X-Beta-User: true")}, true},
		{"header exact, other value", []string{"header:x-beta-user=true"}, canary.Request{Header: httpHeader("X-Beta-User: TRUE")}, false},
		{"header exact, a second field line", []string{"header:X-Beta-User=true"}, canary.Request{Header: httpHeader("X-Beta-User: no", "X-Beta-User: true")}, true},
		{"header absent", []string{"header:x-beta-user=true"}, canary.Request{Header: httpHeader("X-Other: true")}, false},
		{"header regex", []string{"header:x-tenant=~acme-(eu|us)"}, canary.Request{Header: httpHeader("X-Tenant: acme-eu")}, true},
		{"header regex is anchored", []string{"header:x-tenant=~acme-(eu|us)"}, canary.Request{Header: httpHeader("X-Tenant: acme-eu-2")}, false},
		{"header regex is anchored at the start", []string{"header:x-tenant=~acme"}, canary.Request{Header: httpHeader("X-Tenant: not-acme")}, false},
		{"gRPC metadata", []string{"header:X-Beta-User=true"}, canary.Request{Metadata: map[string][]string{"x-beta-user": {"true"}}}, true},
		{"gRPC metadata, other value", []string{"header:x-beta-user=true"}, canary.Request{Metadata: map[string][]string{"x-beta-user": {"false"}}}, false},
		{"cookie exact", []string{"cookie:cohort=beta"}, canary.Request{Header: httpHeader("Cookie: session=abc; cohort=beta")}, true},
		{"cookie regex", []string{"cookie:cohort=~beta-.*"}, canary.Request{Header: httpHeader("Cookie: cohort=beta-7; lang=en")}, true},
		{"cookie regex, no match", []string{"cookie:cohort=~beta-.*"}, canary.Request{Header: httpHeader("Cookie: cohort=alpha-7")}, false},
		{"cookie name is case-sensitive", []string{"cookie:cohort=beta"}, canary.Request{Header: httpHeader("Cookie: Cohort=beta")}, false},
		{"cookie in a second Cookie line", []string{"cookie:cohort=beta"}, canary.Request{Header: httpHeader("Cookie: a=1", "Cookie: cohort=beta")}, true},
		{"cookie is not a header", []string{"cookie:cohort=beta"}, canary.Request{Header: httpHeader("Cohort: beta")}, false},
		{"header is not a cookie", []string{"header:cohort=beta"}, canary.Request{Header: httpHeader("Cookie: cohort=beta")}, false},
		{"a malformed cookie beside", []string{"cookie:cohort=beta"}, canary.Request{Header: httpHeader(`Cookie: bad"name=1; cohort=beta`)}, true},
		{"gRPC cookie metadata", []string{"cookie:cohort=beta"}, canary.Request{Metadata: map[string][]string{"cookie": {"cohort=beta"}}}, true},
		{"any of several rules", []string{"header:x-beta-user=true", "cookie:cohort=beta"}, canary.Request{Header: httpHeader("Cookie: cohort=beta")}, true},
		{"none of several rules", []string{"header:x-beta-user=true", "cookie:cohort=beta"}, canary.Request{Header: httpHeader("X-Beta-User: false", "Cookie: cohort=alpha")}, false},
		{"no headers at all", []string{"header:x-beta-user=true", "cookie:cohort=beta"}, canary.Request{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := matcher(t, tc.rules...)
			if got := m.Match(tc.req); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
			for _, w := range []float64{0, 5, 50, 100} {
				for _, k := range append(keys(200), "") {
					req := tc.req
					req.Key = k
					got := canary.Choose(req, w, m)
					want := canary.RoleStable
					switch {
					case tc.want:
						want = canary.RoleMatched
					case canary.ToCandidate(k, w) && (k != "" || w == 0 || w == 100):
						want = canary.RoleCandidate
					case k == "" && w > 0 && w < 100:
						continue // keyless: random
					}
					if got != want {
						t.Fatalf("Choose(key %q, weight %g) = %s, want %s", k, w, got, want)
					}
				}
			}
		})
	}
}

// Without rules (a nil Matcher) Choose is the weighted split, sticky by
// key, and allocates nothing; a header rule's check allocates nothing
// either.
func TestChooseWithoutRules(t *testing.T) {
	if m, err := canary.NewMatcher(nil); m != nil || err != nil {
		t.Fatalf("NewMatcher(nil) = %v, %v; want nil", m, err)
	}
	h := httpHeader("X-Beta-User: true", "Cookie: cohort=beta")
	for _, w := range []float64{0, 5, 25, 100} {
		for _, k := range keys(2000) {
			want := canary.RoleStable
			if canary.ToCandidate(k, w) {
				want = canary.RoleCandidate
			}
			if got := canary.Choose(canary.Request{Key: k, Header: h}, w, nil); got != want {
				t.Fatalf("Choose(%q, %g, no rules) = %s, want %s", k, w, got, want)
			}
		}
	}
	req := canary.Request{Key: "user-1", Header: h}
	if n := testing.AllocsPerRun(100, func() { canary.Choose(req, 25, nil) }); n != 0 {
		t.Errorf("Choose without rules: %g allocations a request", n)
	}
	m := matcher(t, "header:x-beta-user=false", "header:x-tenant=~acme-.*")
	if n := testing.AllocsPerRun(100, func() { canary.Choose(req, 25, m) }); n != 0 {
		t.Errorf("Choose with header rules: %g allocations a request", n)
	}
}

// Rules Plan.Validate would refuse are refused here too.
func TestNewMatcherRefusesBadRules(t *testing.T) {
	for _, r := range []release.MatchRule{
		{Header: "x", Regex: "("},
		{Value: "v"},
		{Header: "x", Cookie: "y", Value: "v"},
	} {
		if _, err := canary.NewMatcher([]release.MatchRule{r}); err == nil {
			t.Errorf("NewMatcher(%+v) accepted", r)
		}
	}
}
