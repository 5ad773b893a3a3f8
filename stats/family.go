package stats

import (
	"fmt"

	"github.com/modelgate/modelgate/internal/report"
)

// DefaultAlpha is the false-alarm rate of a data check or a drift verdict
// over all its features and tests: the chance that data drawn from the
// reference's own distribution fails.
const DefaultAlpha = 0.05

// The tests a feature is put to. Each gives a p-value: the chance, were the
// data drawn from the reference's distribution, of a result at least as
// extreme.
const (
	// TestShift: chi-square test of homogeneity of the data's and the
	// reference's counts on the profile's bins (adjacent bins merged until
	// each expects five values).
	TestShift = "shift"
	// TestMean: the difference of the means, Welch's t-test (check-data
	// only: a live window keeps counts, not sums). It assumes means near
	// normal: on small samples of a very skewed feature it is somewhat
	// liberal in the far tail.
	TestMean = "mean"
	// TestAbove and TestBelow: the number of values beyond the reference's
	// maximum (minimum), exact under exchangeability (ExceedP): a fresh
	// value exceeds the maximum of n reference values with probability
	// 1/(n+1), so a few are expected and many are not.
	TestAbove = "above_max"
	TestBelow = "below_min"
	// TestMissing: Fisher's exact test of the missing counts.
	TestMissing = "missing"
)

// FeatureTest is one test of one feature: its p-value, the p-value Holm's
// method adjusts for the number of tests made on the whole data set, and
// whether it rejected (adjusted p-value at most alpha).
type FeatureTest struct {
	Test     string  `json:"test"`
	P        float64 `json:"p"`
	Adjusted float64 `json:"p_adjusted"`
	Rejected bool    `json:"rejected"`
}

// holm adjusts the p-values of every test of every feature together
// (Holm–Bonferroni: the chance that any test rejects on data from the
// reference distribution is at most alpha, whatever the dependence
// between features), and marks the rejected ones.
func holm(tests [][]FeatureTest, alpha float64) {
	var ps []float64
	for _, ft := range tests {
		for _, t := range ft {
			ps = append(ps, t.P)
		}
	}
	adj := Holm(ps)
	i := 0
	for _, ft := range tests {
		for j := range ft {
			ft[j].Adjusted = adj[i]
			ft[j].Rejected = adj[i] <= alpha
			i++
		}
	}
}

// exceedTests are the out-of-range tests of n values of which above
// exceed the reference maximum and below fall short of its minimum, with m
// reference values.
func exceedTests(m, n int, below, above float64) []FeatureTest {
	return []FeatureTest{
		{Test: TestBelow, P: ExceedP(m, n, int(below))},
		{Test: TestAbove, P: ExceedP(m, n, int(above))},
	}
}

// describeTest says in words why a test rejected.
func describeTest(t FeatureTest, alpha float64) string {
	what := map[string]string{
		TestShift: "distribution shifted (chi-square on the profile's bins)", TestMean: "mean moved",
		TestAbove: "too many values above the reference maximum", TestBelow: "too many values below the reference minimum",
		TestMissing: "missing rate differs from the reference's",
	}[t.Test]
	return fmt.Sprintf("%s: p %s, %s adjusted for all tests ≤ alpha %s", what, report.FormatValue(t.P), report.FormatValue(t.Adjusted), report.FormatValue(alpha))
}
