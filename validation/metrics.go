package validation

import (
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/modelgate/modelgate/internal/report"
)

// Metric names computed by the accuracy gate, besides the per-class
// precision_<class>, recall_<class> and f1_<class>.
const (
	MetricAccuracy = "accuracy"
	MetricF1Macro  = "f1_macro"
	MetricROCAUC   = "roc_auc"
	MetricLogLoss  = "log_loss"
	MetricRMSE     = "rmse"
	MetricMAE      = "mae"
	MetricR2       = "r2"
	// MetricRows is the number of holdout rows evaluated.
	MetricRows = "rows"
)

// namedMetrics are the metrics a threshold can be set on by name.
var namedMetrics = []string{MetricAccuracy, MetricF1Macro, MetricROCAUC, MetricLogLoss, MetricRMSE, MetricMAE, MetricR2}

// perClassMetric matches precision_<class>, recall_<class> and f1_<class>.
var perClassMetric = regexp.MustCompile(`^(precision|recall|f1)_(-?[0-9]+)$`)

// knownMetric reports whether name is a metric the accuracy gate can
// compute.
func knownMetric(name string) bool {
	return slices.Contains(namedMetrics, name) || perClassMetric.MatchString(name)
}

// lowerIsBetter reports whether a smaller value of the metric is better.
func lowerIsBetter(name string) bool {
	return name == MetricLogLoss || name == MetricRMSE || name == MetricMAE
}

// probClip bounds probabilities away from 0 and 1 in the log loss, as
// scikit-learn does, so that one confident mistake gives a large but finite
// loss.
const probClip = 1e-15

// classifierMetrics computes accuracy, per-class precision, recall and F1,
// macro F1 and, when scores are given, ROC AUC (two classes) and log loss
// (scores that are probabilities). truth and pred are class labels; scores,
// when not nil, holds k scores per row (the score of class c in column c),
// and probs says whether they are probabilities.
//
// Per-class metrics cover every class seen in truth or pred; a class never
// predicted has precision 0, one never present recall 0 (scikit-learn's
// zero_division=0). Macro F1 is the mean F1 over those classes.
func classifierMetrics(truth, pred []int64, scores [][]float64, probs bool) map[string]float64 {
	m := map[string]float64{MetricRows: float64(len(truth))}
	if len(truth) == 0 {
		return m
	}
	classSet := make(map[int64]bool)
	correct := 0
	for i := range truth {
		classSet[truth[i]], classSet[pred[i]] = true, true
		if truth[i] == pred[i] {
			correct++
		}
	}
	m[MetricAccuracy] = float64(correct) / float64(len(truth))
	classes := make([]int64, 0, len(classSet))
	for c := range classSet {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var f1sum float64
	for _, c := range classes {
		var tp, fp, fn float64
		for i := range truth {
			switch {
			case truth[i] == c && pred[i] == c:
				tp++
			case pred[i] == c:
				fp++
			case truth[i] == c:
				fn++
			}
		}
		p, r := ratio(tp, tp+fp), ratio(tp, tp+fn)
		f1 := ratio(2*p*r, p+r)
		name := strconv.FormatInt(c, 10)
		m["precision_"+name], m["recall_"+name], m["f1_"+name] = p, r, f1
		f1sum += f1
	}
	m[MetricF1Macro] = f1sum / float64(len(classes))
	if scores == nil {
		return m
	}
	if auc, ok := binaryAUC(truth, scores); ok {
		m[MetricROCAUC] = auc
	}
	if probs {
		if ll, ok := logLoss(truth, scores); ok {
			m[MetricLogLoss] = ll
		}
	}
	return m
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// binaryAUC is the area under the ROC curve when truth holds exactly two
// classes a < b: the probability that a row of class b scores higher than
// a row of class a on the score of class b (ties count half), computed
// from average ranks (Mann–Whitney U). False when truth does not hold
// exactly two classes or the scores have no column for b.
func binaryAUC(truth []int64, scores [][]float64) (float64, bool) {
	var classes []int64
	for _, t := range truth {
		if !slices.Contains(classes, t) {
			if len(classes) == 2 {
				return 0, false
			}
			classes = append(classes, t)
		}
	}
	if len(classes) != 2 {
		return 0, false
	}
	pos := max(classes[0], classes[1])
	if pos < 0 {
		return 0, false
	}
	type row struct {
		score float64
		pos   bool
	}
	rows := make([]row, len(truth))
	for i, t := range truth {
		if int(pos) >= len(scores[i]) {
			return 0, false
		}
		rows[i] = row{scores[i][pos], t == pos}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].score < rows[j].score })
	var rankSum, nPos float64
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].score == rows[i].score {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1 … j, averaged
		for k := i; k < j; k++ {
			if rows[k].pos {
				rankSum += avg
				nPos++
			}
		}
		i = j
	}
	nNeg := float64(len(rows)) - nPos
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg), true
}

// logLoss is the mean negative log probability of the true class, with
// probabilities clipped to [probClip, 1-probClip]. False when a true label
// has no column in the scores.
func logLoss(truth []int64, probs [][]float64) (float64, bool) {
	var sum float64
	for i, t := range truth {
		if t < 0 || int(t) >= len(probs[i]) {
			return 0, false
		}
		p := min(max(probs[i][t], probClip), 1-probClip)
		sum -= math.Log(p)
	}
	return sum / float64(len(truth)), true
}

// regressorMetrics computes RMSE, MAE and R² (1 − SSres/SStot; left out
// when the truth is constant, where it is undefined).
func regressorMetrics(truth, pred []float64) map[string]float64 {
	m := map[string]float64{MetricRows: float64(len(truth))}
	if len(truth) == 0 {
		return m
	}
	var mean float64
	for _, t := range truth {
		mean += t
	}
	mean /= float64(len(truth))
	var se, ae, ss float64
	for i, t := range truth {
		d := pred[i] - t
		se += d * d
		ae += math.Abs(d)
		ss += (t - mean) * (t - mean)
	}
	n := float64(len(truth))
	m[MetricRMSE] = math.Sqrt(se / n)
	m[MetricMAE] = ae / n
	if ss > 0 {
		m[MetricR2] = 1 - se/ss
	}
	return m
}

// worsening is how much worse got is than base on metric: positive when
// got is worse, in the metric's units.
func worsening(metric string, base, got float64) float64 {
	if lowerIsBetter(metric) {
		return got - base
	}
	return base - got
}

// describeThreshold renders "accuracy >= 0.95" or "log_loss <= 0.3".
func describeThreshold(metric string, limit float64) string {
	if lowerIsBetter(metric) {
		return "<= " + report.FormatLimit(limit)
	}
	return ">= " + report.FormatLimit(limit)
}
