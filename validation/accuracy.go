package validation

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/modelgate/modelgate/internal/report"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// holdoutBatch is the number of holdout rows per run.
const holdoutBatch = 256

// regressionSlack absorbs floating-point noise when a metric is compared
// with a threshold, so that a candidate equal to its baseline never fails.
const regressionSlack = 1e-9

// Model kinds, as the accuracy gate reads them.
const (
	kindClassifier = "classifier"
	kindRegressor  = "regressor"
)

// probabilityNames are the output names (compared without case) taken to
// hold class probabilities or scores.
var probabilityNames = []string{"probabilities", "probability", "probs", "scores", "output_probability"}

// accuracyGate evaluates the candidate, and the baseline on the same rows,
// and holds the candidate to the thresholds. The error is only for a
// cancelled context.
func accuracyGate(ctx context.Context, o Options, h *holdout, cand *serving.Session, base *serving.Session, baseline *Model) (GateResult, error) {
	g := GateResult{Name: GateAccuracy}
	ev, problem := evaluate(ctx, cand, h)
	if err := ctx.Err(); err != nil {
		return g, err
	}
	if problem != "" {
		g.Message = problem
		return g, nil
	}
	g.Metrics = ev.metrics
	var problems []string
	thresholds := make(map[string][]string)

	if o.MinAccuracy > 0 {
		thresholds[MetricAccuracy] = append(thresholds[MetricAccuracy], describeThreshold(MetricAccuracy, o.MinAccuracy))
		if acc, ok := ev.metrics[MetricAccuracy]; !ok {
			problems = append(problems, fmt.Sprintf("a minimum accuracy of %s is set, but the model is a %s (set a Metric such as r2 or rmse instead)", report.FormatLimit(o.MinAccuracy), ev.kind))
		} else if acc < o.MinAccuracy-regressionSlack {
			problems = append(problems, fmt.Sprintf("accuracy %s is below the minimum %s", report.FormatAgainst(acc, o.MinAccuracy), report.FormatLimit(o.MinAccuracy)))
		}
	}
	if o.Metric != "" && o.MinMetric != 0 {
		thresholds[o.Metric] = append(thresholds[o.Metric], describeThreshold(o.Metric, o.MinMetric))
		v, ok := ev.metrics[o.Metric]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("metric %s is not computed for this %s (it has %s)", o.Metric, ev.kind, strings.Join(slices.Sorted(maps.Keys(ev.metrics)), ", ")))
		case lowerIsBetter(o.Metric) && v > o.MinMetric+regressionSlack:
			problems = append(problems, fmt.Sprintf("%s %s is above the maximum %s", o.Metric, report.FormatAgainst(v, o.MinMetric), report.FormatLimit(o.MinMetric)))
		case !lowerIsBetter(o.Metric) && v < o.MinMetric-regressionSlack:
			problems = append(problems, fmt.Sprintf("%s %s is below the minimum %s", o.Metric, report.FormatAgainst(v, o.MinMetric), report.FormatLimit(o.MinMetric)))
		}
	}

	if base != nil {
		who := "baseline " + baseline.Version
		check := o.MaxRegression >= 0
		primary := o.Metric
		if primary == "" {
			primary = MetricAccuracy
			if ev.kind == kindRegressor {
				primary = MetricR2
			}
		}
		if check {
			thresholds[primary] = append(thresholds[primary], fmt.Sprintf("worse by <= %s vs baseline", report.FormatLimit(o.MaxRegression)))
		}
		bev, problem := evaluate(ctx, base, h)
		if err := ctx.Err(); err != nil {
			return g, err
		}
		if bev != nil {
			g.Baseline = bev.metrics
		}
		got, okC := ev.metrics[primary]
		var was float64
		var okB bool
		if bev != nil {
			was, okB = bev.metrics[primary]
		}
		switch {
		case !check:
		case problem != "":
			problems = append(problems, fmt.Sprintf("%s cannot be evaluated on the holdout, so the regression check could not run: %s", who, problem))
		case bev.kind != ev.kind:
			problems = append(problems, fmt.Sprintf("%s is read as a %s and the candidate as a %s: not comparable", who, bev.kind, ev.kind))
		case !okC || !okB:
			problems = append(problems, fmt.Sprintf("%s is not computed for both the candidate and %s, so the regression check could not run", primary, who))
		default:
			if w := worsening(primary, was, got); w > o.MaxRegression+regressionSlack {
				problems = append(problems, fmt.Sprintf("%s is worse than %s's by %s (%s -> %s), more than the allowed %s",
					primary, who, report.FormatAgainst(w, o.MaxRegression), report.FormatAgainst(was, got), report.FormatAgainst(got, was), report.FormatLimit(o.MaxRegression)))
			}
		}
	}

	if len(thresholds) > 0 {
		g.Thresholds = make(map[string]string, len(thresholds))
		for k, v := range thresholds {
			g.Thresholds[k] = strings.Join(v, ", ")
		}
	}
	g.Passed = len(problems) == 0
	g.Message = strings.Join(append(problems, ev.note), "; ")
	return g, nil
}

// evaluation is a model's predictions on the holdout, read by the label
// rule, and the metrics they score.
type evaluation struct {
	kind    string
	note    string // how the outputs were read
	metrics map[string]float64
}

// evaluate runs s over the holdout and scores it. The second result, when
// not empty, says why the model cannot be evaluated.
func evaluate(ctx context.Context, s *serving.Session, h *holdout) (*evaluation, string) {
	outs, problem := predict(ctx, s, h)
	if problem != "" {
		return nil, problem
	}
	return score(outs, h, s.OutputKinds())
}

// rowOutput is one output over every holdout row: width values per row.
type rowOutput struct {
	spec  wire.TensorSpec
	rank  int
	width int
	vals  []float64
	bad   string // why it cannot be read per row (its values are then nil)
}

// predict feeds the holdout features to s's single input, holdoutBatch rows
// per run (or the input's fixed batch size, padding the last batch), and
// collects every output row by row.
func predict(ctx context.Context, s *serving.Session, h *holdout) ([]*rowOutput, string) {
	ins := s.Inputs()
	if len(ins) != 1 {
		names := make([]string, len(ins))
		for i, in := range ins {
			names[i] = fmt.Sprintf("%q", in.Name)
		}
		return nil, fmt.Sprintf("the accuracy gate needs a single-input model (it takes %d: %s)", len(ins), strings.Join(names, ", "))
	}
	in := ins[0]
	if !in.DType.IsFloat() {
		return nil, fmt.Sprintf("the accuracy gate feeds FP32 or FP64 features; input %q is %s", in.Name, in.DType)
	}
	if len(in.Shape) != 2 {
		return nil, fmt.Sprintf("the accuracy gate needs an input of shape [N, features]; input %q is %v", in.Name, in.Shape)
	}
	if in.Shape[1] >= 0 && in.Shape[1] != int64(h.cols) {
		return nil, fmt.Sprintf("the holdout has %d feature columns (besides the label %s); input %q takes %d (shape %v)", h.cols, h.labelName(), in.Name, in.Shape[1], in.Shape)
	}
	batch, padded := holdoutBatch, false
	if in.Shape[0] >= 1 {
		batch, padded = int(in.Shape[0]), true
	}
	specs := s.Outputs()
	outs := make([]*rowOutput, len(specs))
	for i, spec := range specs {
		outs[i] = &rowOutput{spec: spec}
	}
	n := h.rows()
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		size := rows
		if padded {
			size = batch
		}
		x := h.features[start*h.cols : (start+rows)*h.cols]
		var data any
		if in.DType == wire.FP32 {
			v := make([]float32, size*h.cols)
			for i, f := range x {
				v[i] = float32(f)
			}
			data = v
		} else {
			v := make([]float64, size*h.cols)
			copy(v, x)
			data = v
		}
		res, err := s.Run(ctx, []wire.Tensor{{Name: in.Name, Shape: []int64{int64(size), int64(h.cols)}, Data: data}}, nil)
		if err != nil {
			return nil, fmt.Sprintf("running holdout lines %d to %d: %v", h.lines[start], h.lines[start+rows-1], err)
		}
		for i, t := range res {
			outs[i].add(t, size, rows)
		}
	}
	return outs, ""
}

// add appends the first rows rows of t, an output of a run of size rows.
func (o *rowOutput) add(t wire.Tensor, size, rows int) {
	if o.bad != "" {
		return
	}
	vals, ok := wire.Floats(t.Data)
	switch {
	case !ok:
		o.bad = fmt.Sprintf("output %q is %s, not numeric", o.spec.Name, t.DType())
	case len(t.Shape) == 0 || t.Shape[0] != int64(size):
		o.bad = fmt.Sprintf("output %q has shape %v for a batch of %d: not one entry per row", o.spec.Name, t.Shape, size)
	case o.vals != nil && len(vals)/size != o.width:
		o.bad = fmt.Sprintf("output %q changes its width from batch to batch", o.spec.Name)
	}
	if o.bad != "" {
		o.vals = nil
		return
	}
	o.rank, o.width = len(t.Shape), len(vals)/size
	o.vals = append(o.vals, vals[:rows*o.width]...)
}

// score reads predictions from the outputs, by the first output's kind
// when the version stores kinds (scoreByKind), else by the label rule (see
// the package documentation), and computes the metrics against the
// holdout's labels.
func score(outs []*rowOutput, h *holdout, kinds map[string]semantics.Output) (*evaluation, string) {
	first := outs[0]
	if first.bad != "" {
		return nil, first.bad
	}
	n := h.rows()
	for _, o := range outs {
		if o.bad != "" || !o.spec.DType.IsFloat() {
			continue
		}
		for i, v := range o.vals {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Sprintf("output %q is %v on holdout line %d", o.spec.Name, v, h.lines[i/o.width])
			}
		}
	}
	if sem, ok := kinds[first.spec.Name]; ok {
		return scoreByKind(outs, h, kinds, sem)
	}
	perRow := first.width == 1 && (first.rank == 1 || first.rank == 2)
	switch {
	case first.spec.DType.IsInteger() && perRow:
		pred := make([]int64, n)
		for i, v := range first.vals {
			pred[i] = int64(v)
		}
		scores, probs, from := scoreOutput(outs[1:])
		note := fmt.Sprintf("classifier: labels from output %q", first.spec.Name)
		if from != "" {
			note += fmt.Sprintf(", scores from %q", from)
		}
		return classify(h, pred, scores, probs, note)

	case first.spec.DType.IsFloat() && first.rank == 2 && first.width >= 2:
		pred := make([]int64, n)
		scores := make([][]float64, n)
		for i := range n {
			row := first.vals[i*first.width : (i+1)*first.width]
			scores[i] = row
			pred[i] = int64(wire.Argmax(row))
		}
		return classify(h, pred, scores, areProbabilities(scores), fmt.Sprintf("classifier: labels are the argmax of output %q", first.spec.Name))

	case first.spec.DType.IsFloat() && perRow:
		if binaryLabels(h.labels) && inUnitInterval(first.vals) {
			pred := make([]int64, n)
			scores := make([][]float64, n)
			for i, p := range first.vals {
				scores[i] = []float64{1 - p, p}
				if p >= 0.5 {
					pred[i] = 1
				}
			}
			return classify(h, pred, scores, true, fmt.Sprintf("binary classifier: output %q is the probability of class 1, label 1 when >= 0.5", first.spec.Name))
		}
		return &evaluation{
			kind:    kindRegressor,
			note:    fmt.Sprintf("regressor: output %q is the prediction", first.spec.Name),
			metrics: regressorMetrics(h.labels, first.vals),
		}, ""
	}
	return nil, fmt.Sprintf("cannot read predictions from the first output %q (%s %v): the accuracy gate reads an integer label [N], class scores [N, k] with k >= 2, or one number per row [N] or [N, 1]",
		first.spec.Name, first.spec.DType, first.spec.Shape)
}

// scoreByKind reads predictions from the first output as its stored kind
// says: a label is the class; probabilities give the class by top-1 and
// are the scores; a probability is class 1 at or above its threshold, and
// the score of class 1; a regression is the prediction (one number per
// row). A label's scores come from the first other output stored as
// probabilities or probability.
func scoreByKind(outs []*rowOutput, h *holdout, kinds map[string]semantics.Output, sem semantics.Output) (*evaluation, string) {
	first := outs[0]
	sem = sem.For(first.spec.DType)
	stored := fmt.Sprintf("output %q, stored as %s", first.spec.Name, sem)
	n := h.rows()
	if n == 0 || len(first.vals) != n*first.width {
		return nil, fmt.Sprintf("%s, has %d values for %d holdout rows", stored, len(first.vals), n)
	}
	if !sem.Kind.Classifies() {
		if first.width != 1 {
			return nil, fmt.Sprintf("%s with %d values per row: the accuracy gate scores one prediction per row", stored, first.width)
		}
		return &evaluation{
			kind:    kindRegressor,
			note:    fmt.Sprintf("regressor: %s, is the prediction", stored),
			metrics: regressorMetrics(h.labels, first.vals),
		}, ""
	}
	if sem.Kind == semantics.Probability && !binaryLabels(h.labels) {
		return nil, fmt.Sprintf("%s, the probability of class 1 of a binary classifier, but the holdout's labels %s are not all 0 or 1", stored, h.labelName())
	}
	pred := make([]int64, n)
	var scores [][]float64
	if sem.Scores(first.vals[:first.width]) != nil {
		scores = make([][]float64, n)
	}
	for i := range n {
		row := first.vals[i*first.width : (i+1)*first.width]
		c, ok := sem.Class(row)
		if !ok {
			return nil, fmt.Sprintf("%s, but holds %v on holdout line %d: not one class per row", stored, row, h.lines[i])
		}
		pred[i] = c
		if scores != nil {
			scores[i] = sem.Scores(row)
		}
	}
	var note string
	probs := false
	switch sem.Kind {
	case semantics.Label:
		note = fmt.Sprintf("classifier: labels from %s", stored)
		for _, o := range outs[1:] {
			k, ok := kinds[o.spec.Name]
			if !ok || o.bad != "" || (k.Kind != semantics.Probabilities && k.Kind != semantics.Probability) || len(o.vals) != n*o.width {
				continue
			}
			scores = make([][]float64, n)
			for i := range n {
				scores[i] = k.Scores(o.vals[i*o.width : (i+1)*o.width])
			}
			if scores[0] == nil {
				scores = nil
				continue
			}
			probs = areProbabilities(scores)
			note += fmt.Sprintf(", scores from %q (%s)", o.spec.Name, k.Kind)
			break
		}
	case semantics.Probabilities:
		probs = areProbabilities(scores)
		note = fmt.Sprintf("classifier: labels are the top-1 of %s", stored)
	case semantics.Probability:
		probs = inUnitInterval(first.vals)
		note = fmt.Sprintf("binary classifier: %s: class 1 when >= %s", stored, strconv.FormatFloat(sem.Threshold, 'g', 6, 64))
	}
	return classify(h, pred, scores, probs, note)
}

// classify scores class predictions; the holdout's labels must be whole
// numbers.
func classify(h *holdout, pred []int64, scores [][]float64, probs bool, note string) (*evaluation, string) {
	truth := make([]int64, h.rows())
	for i, v := range h.labels {
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return nil, fmt.Sprintf("%s; but the holdout's label %s is %v on line %d: a classifier needs whole-number class labels", note, h.labelName(), v, h.lines[i])
		}
		truth[i] = int64(v)
	}
	if scores != nil && !probs {
		note += " (not probabilities: no log_loss)"
	}
	return &evaluation{kind: kindClassifier, note: note, metrics: classifierMetrics(truth, pred, scores, probs)}, ""
}

// scoreOutput picks the class scores among the outputs after the label:
// the first floating-point output named like probabilities (see
// probabilityNames), else the first with two or more values per row. A
// single value per row is the probability of class 1. It returns the scores
// per row, whether they are probabilities, and the output's name.
func scoreOutput(outs []*rowOutput) ([][]float64, bool, string) {
	usable := func(o *rowOutput) bool { return o.bad == "" && o.spec.DType.IsFloat() && o.width >= 1 }
	pick := -1
	for i, o := range outs {
		if usable(o) && slices.Contains(probabilityNames, strings.ToLower(o.spec.Name)) {
			pick = i
			break
		}
	}
	if pick < 0 {
		pick = slices.IndexFunc(outs, func(o *rowOutput) bool { return usable(o) && o.width >= 2 })
	}
	if pick < 0 {
		return nil, false, ""
	}
	o := outs[pick]
	n := len(o.vals) / o.width
	scores := make([][]float64, n)
	for i := range n {
		if o.width == 1 {
			p := o.vals[i]
			scores[i] = []float64{1 - p, p}
		} else {
			scores[i] = o.vals[i*o.width : (i+1)*o.width]
		}
	}
	probs := areProbabilities(scores)
	if o.width == 1 {
		probs = inUnitInterval(o.vals)
	}
	return scores, probs, o.spec.Name
}

// areProbabilities reports whether every row is a probability
// distribution: values in [0, 1] summing to 1 (within 1e-3).
func areProbabilities(rows [][]float64) bool {
	for _, r := range rows {
		if !inUnitInterval(r) {
			return false
		}
		var sum float64
		for _, v := range r {
			sum += v
		}
		if math.Abs(sum-1) > 1e-3 {
			return false
		}
	}
	return true
}

// inUnitInterval reports whether every value lies in [0, 1].
func inUnitInterval(vals []float64) bool {
	for _, v := range vals {
		if v < 0 || v > 1 {
			return false
		}
	}
	return true
}

// binaryLabels reports whether every label is 0 or 1.
func binaryLabels(labels []float64) bool {
	for _, v := range labels {
		if v != 0 && v != 1 {
			return false
		}
	}
	return true
}
