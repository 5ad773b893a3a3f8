package canary_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/modelgate/modelgate/canary"
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
