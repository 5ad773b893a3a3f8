package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
)

// KeyHeader carries a request's routing key: with a key, a canary's split
// is sticky (the same key keeps its version as the weight grows).
const KeyHeader = "X-Modelgate-Key"

// prepareFunc builds a request's inputs (and the outputs it asks for) for
// sess; each version decodes the request for its own signature.
type prepareFunc func(sess *serving.Session) ([]serving.Tensor, []string, error)

// answer serves one inference request and returns the session that
// answered (acquired: the caller releases it) with its outputs.
//
// A pinned version (non-empty version) is served as asked. Otherwise the
// catalog routes the request: to the canary candidate with its weight's
// probability, else to stable. A candidate that fails with a server error
// or a non-finite answer is counted against it, and stable answers the
// client instead. When the catalog asks for a comparison, the other
// version scores the request in the background and never delays or fails
// the client.
func (s *Server) answer(c echo.Context, model, version, key string, prepare prepareFunc) (*serving.Session, []serving.Tensor, error) {
	ctx := c.Request().Context()
	if version != "" {
		sess, err := s.acquire(c, model, version)
		if err != nil {
			return nil, nil, err
		}
		outs, err := s.prepareAndRun(ctx, sess, prepare)
		if err != nil {
			sess.Release()
			return nil, nil, err
		}
		return sess, outs, nil
	}
	r, err := s.opts.Catalog.Route(ctx, model, key)
	if err != nil {
		return nil, nil, err
	}
	s.label(c, r.Session)
	start := time.Now()
	outs, err := s.prepareAndRun(ctx, r.Session, prepare)
	outcome := runOutcome(err)
	s.observe(r.Session, r.Role, outcome, time.Since(start), true)
	if r.Role == canary.RoleCandidate && (outcome == canary.OutcomeError || outcome == canary.OutcomeNonFinite) {
		// The candidate failed where stable may not: stable answers.
		cand := r.Session
		stable := r.Compare
		if stable == nil {
			var aerr error
			if stable, aerr = s.opts.Catalog.Acquire(ctx, cand.Name(), ""); aerr != nil {
				cand.Release()
				return nil, nil, err
			}
		}
		s.log.Debug("canary candidate failed; stable answers", "model", cand.Name(), "candidate", cand.Version(), "err", err)
		cand.Release()
		r = catalog.Routed{Session: stable, Role: canary.RoleStable}
		s.label(c, stable)
		start = time.Now()
		outs, err = s.prepareAndRun(ctx, stable, prepare)
		s.observe(stable, canary.RoleStable, runOutcome(err), time.Since(start), true)
	}
	if err != nil {
		r.Release()
		return nil, nil, err
	}
	if r.Compare != nil {
		s.compareLater(r, prepare, outs)
	}
	return r.Session, outs, nil
}

func (s *Server) prepareAndRun(ctx context.Context, sess *serving.Session, prepare prepareFunc) ([]serving.Tensor, error) {
	inputs, names, err := prepare(sess)
	if err != nil {
		return nil, err
	}
	outs, err := s.run(ctx, sess, inputs, names)
	if err == nil && s.opts.Drift != nil {
		s.opts.Drift.Observe(sess.Name(), sess.Version(), inputs)
	}
	return outs, err
}

// runOutcome classifies a run for canary analysis: "" for errors that are
// the client's (they say nothing about the version) or a cancelled request.
func runOutcome(err error) string {
	var nf *errNonFinite
	switch {
	case err == nil:
		return canary.OutcomeOK
	case errors.As(err, &nf):
		return canary.OutcomeNonFinite
	case errors.Is(err, context.Canceled):
		return ""
	case errorStatus(err) >= http.StatusInternalServerError:
		return canary.OutcomeError
	}
	return ""
}

func (s *Server) observe(sess *serving.Session, role, outcome string, took time.Duration, served bool) {
	if s.opts.Recorder == nil || outcome == "" {
		return
	}
	s.opts.Recorder.Observe(sess.Name(), sess.Version(), role, outcome, took, served)
}

// compareLater scores the request on r.Compare in the background and
// compares the first output with the one the client got. Inputs are built
// now (the request's buffers are not used after the handler returns);
// when too many comparisons are running already, this one is skipped.
func (s *Server) compareLater(r catalog.Routed, prepare prepareFunc, served []serving.Tensor) {
	other := r.Compare
	select {
	case s.shadowSlots <- struct{}{}:
	default:
		s.metrics.shadowSkipped.WithLabelValues(other.Name()).Inc()
		other.Release()
		return
	}
	inputs, names, err := prepare(other)
	if err != nil || len(served) == 0 {
		<-s.shadowSlots
		other.Release()
		return
	}
	want := cloneTensor(served[0])
	candidate := other.Version()
	if r.Role == canary.RoleCandidate {
		candidate = r.Session.Version()
	}
	role := canary.RoleShadow // the candidate scores a copy
	if r.Role == canary.RoleCandidate {
		role = "" // stable scores it, only to compare
	}
	s.shadowWG.Add(1)
	go func() {
		defer s.shadowWG.Done()
		defer func() { <-s.shadowSlots }()
		defer other.Release()
		ctx, cancel := context.WithTimeout(context.Background(), shadowTimeout)
		defer cancel()
		start := time.Now()
		outs, err := s.run(ctx, other, inputs, names)
		if role != "" {
			s.observe(other, role, runOutcome(err), time.Since(start), false)
		}
		if err != nil {
			return
		}
		got := outs[0]
		for _, o := range outs {
			if o.Name == want.Name {
				got = o
			}
		}
		if s.opts.Recorder != nil {
			s.opts.Recorder.Compare(other.Name(), candidate, Disagree(want, got, s.opts.RegressionTolerance))
		}
	}()
}

// shadowTimeout bounds a background comparison run.
const shadowTimeout = 30 * time.Second

func cloneTensor(t serving.Tensor) serving.Tensor {
	c := serving.Tensor{Name: t.Name, Shape: append([]int64(nil), t.Shape...)}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32(nil), d...)
	case []float64:
		c.Data = append([]float64(nil), d...)
	case []int64:
		c.Data = append([]int64(nil), d...)
	case []int32:
		c.Data = append([]int32(nil), d...)
	default:
		c.Data = toFloat64(t) // other types compare as numbers
	}
	return c
}

// Disagree reports whether two answers to one request differ, row by row:
// integer outputs (class labels) must be equal; float outputs of shape
// [rows, k>1] are compared by their top-1 index (class scores), others
// (regressors) by relative error above tol. A shape mismatch disagrees.
func Disagree(a, b serving.Tensor, tol float64) bool {
	if len(a.Shape) != len(b.Shape) {
		return true
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return true
		}
	}
	x, y := toFloat64(a), toFloat64(b)
	if len(x) != len(y) {
		return true
	}
	isFloat := func(t serving.Tensor) bool {
		switch t.Data.(type) {
		case []float32, []float64:
			return true
		}
		return false
	}
	if !isFloat(a) && !isFloat(b) {
		for i := range x {
			if x[i] != y[i] {
				return true
			}
		}
		return false
	}
	if len(a.Shape) >= 2 && a.Shape[len(a.Shape)-1] > 1 {
		k := int(a.Shape[len(a.Shape)-1])
		for row := 0; row+k <= len(x); row += k {
			if argmax(x[row:row+k]) != argmax(y[row:row+k]) {
				return true
			}
		}
		return false
	}
	for i := range x {
		scale := math.Max(math.Max(math.Abs(x[i]), math.Abs(y[i])), 1e-6)
		if math.Abs(x[i]-y[i])/scale > tol {
			return true
		}
	}
	return false
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// toFloat64 widens a tensor's numbers for comparison.
func toFloat64(t serving.Tensor) []float64 {
	switch d := t.Data.(type) {
	case []float64:
		return d
	case []float32:
		return widen(d)
	case []int64:
		return widen(d)
	case []int32:
		return widen(d)
	case []int16:
		return widen(d)
	case []int8:
		return widen(d)
	case []uint64:
		return widen(d)
	case []uint32:
		return widen(d)
	case []uint16:
		return widen(d)
	case []uint8:
		return widen(d)
	case []bool:
		out := make([]float64, len(d))
		for i, b := range d {
			if b {
				out[i] = 1
			}
		}
		return out
	}
	panic(fmt.Sprintf("server: no comparison for %T", t.Data))
}

func widen[T int64 | int32 | int16 | int8 | uint64 | uint32 | uint16 | uint8 | float32](d []T) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}
