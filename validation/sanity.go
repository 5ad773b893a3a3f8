package validation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// sanityBatch is the batch size of sanity's second dummy input.
const sanityBatch = 8

// sanityGate checks that the candidate's bytes match its manifest, load on
// the runtime's providers, and run on dummy inputs (free dimensions as 1,
// then a batch of 8) with finite outputs of the declared shapes, and that
// two runs on the same input agree exactly. It returns the session when the
// model loaded, even if a later check failed, so that contract can still
// read its signature; the caller closes it.
func sanityGate(ctx context.Context, o Options, m Model) (GateResult, *serving.Session) {
	g := GateResult{Name: GateSanity}
	problems := manifestProblems(m)
	if len(m.Bytes) == 0 {
		g.Message = strings.Join(append(problems, "the model is empty (0 bytes)"), "; ")
		return g, nil
	}
	start := time.Now()
	s, err := load(o.Runtime, m)
	if err != nil {
		g.Message = strings.Join(append(problems, "the model does not load: "+err.Error()), "; ")
		return g, nil
	}
	g.Metrics = map[string]float64{"load_ms": millis(time.Since(start))}
	problems = append(problems, runChecks(ctx, s)...)
	g.Passed = len(problems) == 0
	g.Message = strings.Join(problems, "; ")
	return g, s
}

// runChecks runs s on dummy inputs and returns what is wrong with the
// outputs.
func runChecks(ctx context.Context, s *serving.Session) []string {
	in, err := dummyInputs(s.Inputs(), 1)
	if err != nil {
		return []string{err.Error()}
	}
	first, err := s.Run(ctx, in, nil)
	if err != nil {
		return []string{"fails on a dummy input (free dimensions as 1): " + err.Error()}
	}
	problems := outputProblems(s.Outputs(), first, "free dimensions as 1")
	second, err := s.Run(ctx, in, nil)
	if err != nil {
		return append(problems, "fails when run a second time on the same input: "+err.Error())
	}
	if diff := firstDifference(first, second); diff != "" {
		problems = append(problems, "two runs on the same input disagree: "+diff)
	}
	if freeBatch(s.Inputs()) {
		in, err := dummyInputs(s.Inputs(), sanityBatch)
		if err != nil {
			return append(problems, err.Error())
		}
		out, err := s.Run(ctx, in, nil)
		if err != nil {
			return append(problems, fmt.Sprintf("fails on a dummy batch of %d: %v", sanityBatch, err))
		}
		problems = append(problems, outputProblems(s.Outputs(), out, fmt.Sprintf("batch of %d", sanityBatch))...)
	}
	return problems
}

// outputProblems checks outputs against their declared specs: the shape
// fits, and floating-point values are finite.
func outputProblems(specs []wire.TensorSpec, outs []wire.Tensor, input string) []string {
	var problems []string
	for i, t := range outs {
		if i < len(specs) && !wire.ShapeFits(specs[i].Shape, t.Shape) {
			problems = append(problems, fmt.Sprintf("output %q has shape %v, which does not fit the declared %v (%s)", t.Name, t.Shape, specs[i].Shape, input))
		}
		nan, inf := wire.CountNonFinite(t.Data)
		switch {
		case nan > 0 && inf > 0:
			problems = append(problems, fmt.Sprintf("output %q is not finite: %d NaN and %d infinite of %d values (%s)", t.Name, nan, inf, t.Len(), input))
		case nan > 0:
			problems = append(problems, fmt.Sprintf("output %q is not finite: %d NaN of %d values (%s)", t.Name, nan, t.Len(), input))
		case inf > 0:
			problems = append(problems, fmt.Sprintf("output %q is not finite: %d infinite of %d values (%s)", t.Name, inf, t.Len(), input))
		}
	}
	return problems
}
