package main

import (
	"context"
	"fmt"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
)

// comparison is how the gateways compare the candidate's answers with
// stable's for the disagreement check, by the rule the server applies: the
// first output (what /predict answers with) read by the kind the
// candidate's manifest stores for it, else stable's, else one inferred
// from the signature.
type comparison struct {
	Output    string           `json:"output"`
	Semantics semantics.Output `json:"semantics"`
	// StoredWith is the version whose manifest stores the kind; empty when
	// it is inferred (then a regression's rtol is the gateways'
	// canary.regression_tolerance, not Semantics.Rtol).
	StoredWith string `json:"stored_with,omitempty"`
}

// comparisonOf reads the manifests of rel's canary candidate and stable
// version; nil without a canary or when the candidate's manifest cannot be
// read.
func comparisonOf(ctx context.Context, r *registry.Registry, rel release.State) *comparison {
	if rel.Canary == nil {
		return nil
	}
	cand := rel.Canary.Progress.Candidate
	cm, err := r.Manifest(ctx, rel.Model, cand)
	if err != nil || len(cm.Outputs) == 0 {
		return nil
	}
	var stableKinds map[string]semantics.Output
	if rel.Stable != "" && rel.Stable != cand {
		if sm, err := r.Manifest(ctx, rel.Model, rel.Stable); err == nil {
			stableKinds = sm.OutputKinds
		}
	}
	spec := cm.Outputs[0]
	c := &comparison{Output: spec.Name}
	var stored bool
	c.Semantics, stored = semantics.Resolve(spec, cm.OutputKinds, stableKinds)
	switch _, ok := cm.OutputKinds[spec.Name]; {
	case ok:
		c.StoredWith = cand
	case stored:
		c.StoredWith = rel.Stable
	}
	return c
}

// String is the status line: `by probability (threshold 0.5) on output
// "probability", the kind stored with version 2`.
func (c *comparison) String() string {
	if c.StoredWith != "" {
		return fmt.Sprintf("by %s on output %q, the kind stored with version %s", c.Semantics, c.Output, c.StoredWith)
	}
	kind := c.Semantics.String()
	if c.Semantics.Kind == semantics.Regression {
		kind = fmt.Sprintf("regression (atol %g, rtol: the gateways' canary.regression_tolerance)", c.Semantics.Atol)
	}
	return fmt.Sprintf("by %s on output %q, inferred from the signature (no kind stored with either version)", kind, c.Output)
}
