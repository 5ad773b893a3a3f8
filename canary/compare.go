package canary

import (
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// Disagree reports whether the candidate's answer to one request differs
// from stable's, as sem (what the compared output means, from the
// versions' manifests: semantics.Resolve) reads it, row by row: labels
// must be equal, probabilities agree on their top-1 class, a probability
// on its side of the threshold, and a regression within atol + rtol·|s| of
// stable's answer s. A request disagrees when any row does; answers of
// different shapes disagree.
func Disagree(sem semantics.Output, candidate, stable wire.Tensor) bool {
	return semantics.Disagree(sem, candidate, stable)
}
