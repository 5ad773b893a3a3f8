package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// KeyHeader carries a request's routing key: with a key, a canary's split
// is sticky (the same key keeps its version as the weight grows).
const KeyHeader = "X-Modelgate-Key"

// requestRouter is a Catalog that routes by a request's headers too, for
// a canary's match rules (*catalog.Catalog is one); a Catalog that is not
// routes by the key alone.
type requestRouter interface {
	RouteRequest(ctx context.Context, model string, req canary.Request) (catalog.Routed, error)
}

// prepareFunc builds a request's inputs (and the outputs it asks for) for
// sess; each version decodes the request for its own signature.
type prepareFunc func(sess *serving.Session) ([]wire.Tensor, []string, error)

// answer serves one HTTP inference request: answerFor with the echo
// request's context and headers (a canary's match rules read them, and
// its cookies), labelling the session that answers for the metrics
// middleware.
func (s *Server) answer(c echo.Context, model, version, key string, prepare prepareFunc) (*serving.Session, []wire.Tensor, error) {
	req := c.Request()
	return s.answerFor(req.Context(), func(sess *serving.Session) { s.label(c, sess) }, model, version, canary.Request{Key: key, Header: req.Header}, prepare)
}

// answerFor serves one inference request, of either protocol, and returns
// the session that answered (acquired: the caller releases it) with its
// outputs. label is told each session that runs the request (the last one
// answered), for the request's metrics.
//
// A pinned version (non-empty version) is served as asked, match rules or
// not. Otherwise the catalog routes the request (rr: its routing key and
// headers): to the canary candidate when it matches one of the plan's
// match rules (canary.RoleMatched, recorded as a cohort of its own) or
// with its weight's probability, else to stable. A candidate that fails
// with a server error or a non-finite answer is counted against it (in
// its cohort), and stable answers the client instead; stable's run for a
// matched request is recorded nowhere, being neither of the weighted
// split nor of the cohort. When the catalog asks for a comparison, the
// other version scores the request in the background and never delays or
// fails the client.
func (s *Server) answerFor(ctx context.Context, label func(*serving.Session), model, version string, rr canary.Request, prepare prepareFunc) (*serving.Session, []wire.Tensor, error) {
	if version != "" {
		sess, err := s.opts.Catalog.Acquire(ctx, model, version)
		if err != nil {
			return nil, nil, err
		}
		label(sess)
		outs, err := s.prepareAndRun(ctx, sess, prepare)
		if err != nil {
			sess.Release()
			return nil, nil, err
		}
		return sess, outs, nil
	}
	var r catalog.Routed
	var err error
	if rt, ok := s.opts.Catalog.(requestRouter); ok {
		r, err = rt.RouteRequest(ctx, model, rr)
	} else {
		r, err = s.opts.Catalog.Route(ctx, model, rr.Key)
	}
	if err != nil {
		return nil, nil, err
	}
	label(r.Session)
	start := time.Now()
	outs, err := s.prepareAndRun(ctx, r.Session, prepare)
	outcome := runOutcome(err)
	s.observe(r.Session, r.Role, outcome, time.Since(start), true)
	if (r.Role == canary.RoleCandidate || r.Role == canary.RoleMatched) && (outcome == canary.OutcomeError || outcome == canary.OutcomeNonFinite) {
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
		s.log.Debug("canary candidate failed; stable answers", "model", cand.Name(), "candidate", cand.Version(), "role", r.Role, "err", err)
		cand.Release()
		matched := r.Role == canary.RoleMatched
		r = catalog.Routed{Session: stable, Role: canary.RoleStable}
		label(stable)
		start = time.Now()
		outs, err = s.prepareAndRun(ctx, stable, prepare)
		if !matched {
			s.observe(stable, canary.RoleStable, runOutcome(err), time.Since(start), true)
		}
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

func (s *Server) prepareAndRun(ctx context.Context, sess *serving.Session, prepare prepareFunc) ([]wire.Tensor, error) {
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
// compares the first output with the one the client got, as that output's
// kind reads it (comparedBy). Inputs are built now (the request's buffers
// are not used after the handler returns); when too many comparisons are
// running already, this one is skipped.
func (s *Server) compareLater(r catalog.Routed, prepare prepareFunc, served []wire.Tensor) {
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
	want := wire.Clone(served[0])
	cand, stable := other, r.Session // the candidate scores a copy
	role := canary.RoleShadow
	if r.Role == canary.RoleCandidate {
		cand, stable = r.Session, other
		role = "" // stable scores it, only to compare
	}
	candidate := cand.Version()
	sem := s.comparedBy(cand, stable, want)
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
		candOut, stableOut := got, want
		if r.Role == canary.RoleCandidate {
			candOut, stableOut = want, got
		}
		if s.opts.Recorder != nil {
			s.opts.Recorder.Compare(other.Name(), candidate, canary.InputHash(inputs), canary.Disagree(sem, candOut, stableOut))
		}
	}()
}

// comparedBy is what the compared output means: the kind the candidate's
// manifest stores for it, else stable's, else one inferred from the
// answer's type and shape (versions pushed before kinds were stored); an
// inferred regression is then within Options.RegressionTolerance
// (canary.regression_tolerance) of stable's answer.
func (s *Server) comparedBy(cand, stable *serving.Session, out wire.Tensor) semantics.Output {
	spec := wire.TensorSpec{Name: out.Name, DType: out.DType(), Shape: out.Shape}
	sem, stored := semantics.Resolve(spec, cand.OutputKinds(), stable.OutputKinds())
	if !stored && sem.Kind == semantics.Regression {
		sem.Rtol = s.opts.RegressionTolerance
	}
	return sem
}

// shadowTimeout bounds a background comparison run.
const shadowTimeout = 30 * time.Second
