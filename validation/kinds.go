package validation

import (
	"context"
	"fmt"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// InferredKind is what one output was inferred to mean, and why.
type InferredKind struct {
	Output string
	Kind   semantics.Output
	Why    string
}

// InferKinds infers what each output of s means (semantics.Infer), in
// signature order: from the output's type and shape and, when holdoutCSV
// is not nil, from the model's outputs on the holdout's rows, run as the
// accuracy gate runs them (labelColumn as Options.LabelColumn). One number
// per row is a probability only when every holdout value lies in [0, 1]
// and every holdout label is 0 or 1; otherwise, or without a holdout, a
// regression. promote push stores the result in the manifest.
//
// The second result says why the holdout could not be used (it does not
// parse, or the model cannot run on it); the kinds then come from the
// signature alone. The error is only for a cancelled context.
func InferKinds(ctx context.Context, s *serving.Session, holdoutCSV []byte, labelColumn string) ([]InferredKind, string, error) {
	var (
		outs    []*rowOutput
		h       *holdout
		problem string
	)
	if holdoutCSV != nil {
		var err error
		if h, err = parseHoldout(holdoutCSV, labelColumn); err != nil {
			problem = err.Error()
		} else if outs, problem = predict(ctx, s, h); problem != "" {
			outs = nil
		}
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
	}
	specs := s.Outputs()
	kinds := make([]InferredKind, len(specs))
	for i, spec := range specs {
		var o *rowOutput
		if outs != nil && outs[i].bad == "" && outs[i].rank <= 2 {
			o = outs[i]
		}
		kinds[i] = inferKind(spec, o, h)
	}
	return kinds, problem, nil
}

// inferKind infers one output's kind from its spec and, when o is not
// nil, its values on the holdout h.
func inferKind(spec wire.TensorSpec, o *rowOutput, h *holdout) InferredKind {
	var sample *wire.Tensor
	if o != nil {
		shape := []int64{int64(h.rows())}
		if o.rank == 2 {
			shape = append(shape, int64(o.width))
		}
		sample = &wire.Tensor{Name: spec.Name, Shape: shape, Data: o.vals}
	}
	k := InferredKind{Output: spec.Name, Kind: semantics.Infer(spec, sample)}
	switch k.Kind.Kind {
	case semantics.Label:
		k.Why = fmt.Sprintf("%s output: class labels", spec.DType)
	case semantics.Probabilities:
		width := spec.Shape[len(spec.Shape)-1]
		if width < 0 && sample != nil {
			width = sample.Shape[len(sample.Shape)-1]
		}
		k.Why = fmt.Sprintf("%d values per row: class probabilities or scores, read by their top-1", width)
	case semantics.Probability:
		if binaryLabels(h.labels) {
			k.Why = fmt.Sprintf("one value per row, all in [0, 1] on the %d holdout rows, whose labels are 0 or 1", h.rows())
			break
		}
		k.Kind = semantics.Of(semantics.Regression)
		k.Why = fmt.Sprintf("one value per row, in [0, 1] on the holdout, but the holdout's labels %s are not all 0 or 1", h.labelName())
	case semantics.Regression:
		perRow := len(spec.Shape) == 1 || (len(spec.Shape) == 2 && spec.Shape[1] == 1)
		switch {
		case perRow && sample != nil:
			k.Why = "one value per row, not all in [0, 1] on the holdout"
		case perRow:
			k.Why = "one value per row, and no holdout run to tell a probability from a regression"
		default:
			k.Why = fmt.Sprintf("%s output of shape %v", spec.DType, spec.Shape)
		}
	}
	return k
}
