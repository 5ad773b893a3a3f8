package validation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// contractGate compares the candidate's signature, as ONNX Runtime reads it
// from the model, with the signature its manifest records (they must be
// identical) and with the baseline's (nothing a client relies on may
// change: an added output is the one change allowed).
func contractGate(cand *serving.Session, m Model, base *serving.Session, baseline *Model) GateResult {
	g := GateResult{Name: GateContract}
	var problems, notes []string

	man := m.Manifest
	if len(man.Inputs) == 0 && len(man.Outputs) == 0 {
		notes = append(notes, "no manifest signature to compare with")
	} else {
		var diffs []string
		for _, side := range []struct {
			kind           string
			manifest, have []wire.TensorSpec
		}{
			{"input", man.Inputs, cand.Inputs()},
			{"output", man.Outputs, cand.Outputs()},
		} {
			d := diffSpecs(side.kind, side.manifest, side.have)
			diffs = append(diffs, d.changes...)
			for _, a := range d.added {
				diffs = append(diffs, fmt.Sprintf("%s %s is not in the manifest", side.kind, describe(a)))
			}
		}
		if len(diffs) > 0 {
			problems = append(problems, "the manifest does not describe the model (manifest -> model): "+strings.Join(diffs, ", "))
		}
	}

	if base != nil {
		who := "baseline " + baseline.Version
		var diffs []string
		in := diffSpecs("input", base.Inputs(), cand.Inputs())
		diffs = append(diffs, in.changes...)
		for _, a := range in.added {
			diffs = append(diffs, fmt.Sprintf("input %s added: clients do not send it", describe(a)))
		}
		out := diffSpecs("output", base.Outputs(), cand.Outputs())
		diffs = append(diffs, out.changes...)
		if p := firstOutputChange(base.Outputs(), cand.Outputs()); p != "" {
			diffs = append(diffs, p)
		}
		if len(diffs) > 0 {
			problems = append(problems, fmt.Sprintf("breaking changes from %s (baseline -> candidate): %s", who, strings.Join(diffs, ", ")))
		}
		for _, a := range out.added {
			notes = append(notes, fmt.Sprintf("output %s added (allowed: clients of %s ignore it)", describe(a), who))
		}
	}

	g.Passed = len(problems) == 0
	g.Message = strings.Join(append(problems, notes...), "; ")
	return g
}

// specDiff is how a signature differs from a reference: changes that break
// clients (removed, renamed, retyped, reshaped), and added tensors.
type specDiff struct {
	changes []string
	added   []wire.TensorSpec
}

// diffSpecs compares the specs have with the reference want. A tensor of
// want missing from have is reported as renamed when have gained one of the
// same datatype and shape (preferring the same position), else as removed.
func diffSpecs(kind string, want, have []wire.TensorSpec) specDiff {
	var d specDiff
	var removed []int
	for i, w := range want {
		j := slices.IndexFunc(have, func(h wire.TensorSpec) bool { return h.Name == w.Name })
		if j < 0 {
			removed = append(removed, i)
			continue
		}
		h := have[j]
		if w.DType != h.DType {
			d.changes = append(d.changes, fmt.Sprintf("%s %q: datatype %s -> %s", kind, w.Name, w.DType, h.DType))
		}
		if !slices.Equal(w.Shape, h.Shape) {
			d.changes = append(d.changes, fmt.Sprintf("%s %q: shape %v -> %v", kind, w.Name, w.Shape, h.Shape))
		}
	}
	var added []int
	for j, h := range have {
		if !slices.ContainsFunc(want, func(w wire.TensorSpec) bool { return w.Name == h.Name }) {
			added = append(added, j)
		}
	}
	for _, i := range removed {
		w := want[i]
		same := func(j int) bool { return have[j].DType == w.DType && slices.Equal(have[j].Shape, w.Shape) }
		k := slices.IndexFunc(added, func(j int) bool { return j == i && same(j) })
		if k < 0 {
			k = slices.IndexFunc(added, same)
		}
		if k < 0 {
			d.changes = append(d.changes, fmt.Sprintf("%s %q removed", kind, w.Name))
			continue
		}
		d.changes = append(d.changes, fmt.Sprintf("%s %q renamed to %q", kind, w.Name, have[added[k]].Name))
		added = slices.Delete(added, k, k+1)
	}
	for _, j := range added {
		d.added = append(d.added, have[j])
	}
	return d
}

// firstOutputChange reports a change of the first output when the old
// first output still exists: /predict answers with the first output as
// "prediction", so reordering the outputs changes what clients read.
func firstOutputChange(old, cur []wire.TensorSpec) string {
	if len(old) == 0 || len(cur) == 0 || old[0].Name == cur[0].Name {
		return ""
	}
	if !slices.ContainsFunc(cur, func(s wire.TensorSpec) bool { return s.Name == old[0].Name }) {
		return "" // removed or renamed: reported as such
	}
	return fmt.Sprintf("first output %q -> %q: /predict's \"prediction\" would change", old[0].Name, cur[0].Name)
}

// describe names a spec with its datatype and shape.
func describe(s wire.TensorSpec) string {
	return fmt.Sprintf("%q (%s %v)", s.Name, s.DType, s.Shape)
}
