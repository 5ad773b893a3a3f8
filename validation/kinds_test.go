package validation

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/serving"
)

// relabel is the demo holdout with every label 1 written as 2.
func relabel(t *testing.T) []byte {
	var b bytes.Buffer
	for i, line := range strings.Split(strings.TrimSpace(string(readDemo(t, "holdout.csv"))), "\n") {
		if i > 0 && strings.HasSuffix(line, ",1") {
			line = strings.TrimSuffix(line, ",1") + ",2"
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

func TestInferKinds(t *testing.T) {
	sigmoid := func(t *testing.T) []byte { return classifier{lr: retrain(t), probOnly: true}.build(t) }
	type want struct {
		output string
		kind   semantics.Kind
		why    string
	}
	cases := []struct {
		name    string
		model   func(t *testing.T) []byte
		holdout func(t *testing.T) []byte
		want    []want
		problem string
	}{
		{
			name:    "the demo model",
			model:   func(t *testing.T) []byte { return readDemo(t, "model.onnx") },
			holdout: func(t *testing.T) []byte { return readDemo(t, "holdout.csv") },
			want: []want{
				{"label", semantics.Label, "INT64 output: class labels"},
				{"probabilities", semantics.Probabilities, "2 values per row"},
			},
		},
		{
			name:    "a sigmoid on the holdout",
			model:   sigmoid,
			holdout: func(t *testing.T) []byte { return readDemo(t, "holdout.csv") },
			want:    []want{{"probability", semantics.Probability, "all in [0, 1] on the 113 holdout rows, whose labels are 0 or 1"}},
		},
		{
			name:  "a sigmoid without a holdout",
			model: sigmoid,
			want:  []want{{"probability", semantics.Regression, "no holdout run to tell a probability from a regression"}},
		},
		{
			name:    "a sigmoid on labels other than 0 and 1",
			model:   sigmoid,
			holdout: relabel,
			want:    []want{{"probability", semantics.Regression, `the holdout's labels "label" are not all 0 or 1`}},
		},
		{
			name:    "a holdout the model cannot run",
			model:   sigmoid,
			holdout: func(t *testing.T) []byte { return []byte("a,b,label\n1,2,0\n") },
			want:    []want{{"probability", semantics.Regression, "no holdout run"}},
			problem: `the holdout has 2 feature columns (besides the label "label"); input "features" takes 30`,
		},
		{
			name:    "an unreadable holdout",
			model:   sigmoid,
			holdout: func(t *testing.T) []byte { return []byte("a,b,label\n1,x,0\n") },
			want:    []want{{"probability", semantics.Regression, "no holdout run"}},
			problem: "unreadable holdout",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := testRT.NewSession(c.model(t), serving.SessionOptions{Name: "m"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var h []byte
			if c.holdout != nil {
				h = c.holdout(t)
			}
			kinds, problem, err := InferKinds(context.Background(), s, h, "")
			if err != nil {
				t.Fatal(err)
			}
			if (c.problem == "") != (problem == "") || !strings.Contains(problem, c.problem) {
				t.Errorf("problem %q, want %q", problem, c.problem)
			}
			if len(kinds) != len(c.want) {
				t.Fatalf("kinds %+v, want %+v", kinds, c.want)
			}
			for i, w := range c.want {
				k := kinds[i]
				if k.Output != w.output || k.Kind != semantics.Of(w.kind) || !strings.Contains(k.Why, w.why) {
					t.Errorf("output %d: %+v, want %s %s (%q)", i, k, w.output, w.kind, w.why)
				}
			}
		})
	}
}
