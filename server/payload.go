package server

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
	"google.golang.org/grpc/metadata"
)

// PayloadLog is what the server needs from payload logging (package
// payloadlog): Sampled decides, on the request path, whether a request of
// a model (or, for "", of any model) with a given payloadlog.Draw is
// logged; Log takes the answered request and never blocks.
type PayloadLog interface {
	Sampled(model string, draw float64) bool
	Log(e *payloadlog.Event)
}

// RequestIDHeader and RequestIDMetadata carry a request's id when the
// request itself has none (the OIP's "id"); payload logging sends it as the
// events' id, and makes one up for a request without.
const (
	RequestIDHeader   = "X-Request-Id"
	RequestIDMetadata = "x-request-id"
)

// payloadRecord follows one request that payload logging may log: it
// remembers the inputs each session's prepare built, so that the session
// that answered is logged with its own, and hands the logger the event
// once the answer is ready. A nil record logs nothing and costs nothing.
type payloadRecord struct {
	log      PayloadLog
	protocol string
	id       string
	draw     float64 // payloadlog.Draw(id)
	body     []byte
	// decided: sampled already (the model was known before routing);
	// otherwise the answering session's model decides.
	decided  bool
	prepared []preparedInputs
}

type preparedInputs struct {
	sess   *serving.Session
	inputs []wire.Tensor
}

// httpPayload starts the record of an HTTP request for model ("" for
// /predict's default model) whose own id (the OIP's) is id; nil when
// payload logging is off or the request is not sampled.
func (s *Server) httpPayload(c echo.Context, protocol, model, id string, body []byte) *payloadRecord {
	if s.opts.PayloadLog == nil {
		return nil
	}
	if id == "" {
		id = c.Request().Header.Get(RequestIDHeader)
	}
	return s.payloadFor(protocol, model, id, body)
}

// grpcPayload is httpPayload for ModelInfer.
func (s *Server) grpcPayload(ctx context.Context, req *grpcapi.ModelInferRequest) *payloadRecord {
	if s.opts.PayloadLog == nil {
		return nil
	}
	id := req.GetId()
	if id == "" {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(RequestIDMetadata); len(v) > 0 {
				id = v[0]
			}
		}
	}
	return s.payloadFor(payloadlog.ProtocolGRPC, req.GetModelName(), id, nil)
}

// payloadFor draws the request's place in the sample; a request in no
// sample is not followed (model "": in no opted-in model's).
func (s *Server) payloadFor(protocol, model, id string, body []byte) *payloadRecord {
	draw := payloadlog.Draw(id)
	if !s.opts.PayloadLog.Sampled(model, draw) {
		return nil
	}
	return &payloadRecord{log: s.opts.PayloadLog, protocol: protocol, id: id, draw: draw, body: body, decided: model != ""}
}

// wrap is prepare, remembering the inputs it builds for each session.
func (p *payloadRecord) wrap(prepare prepareFunc) prepareFunc {
	if p == nil {
		return prepare
	}
	return func(sess *serving.Session) ([]wire.Tensor, []string, error) {
		inputs, names, err := prepare(sess)
		if err == nil {
			p.prepared = append(p.prepared, preparedInputs{sess, inputs})
		}
		return inputs, names, err
	}
}

// done hands the logger the answered request: sess answered it with outs.
func (p *payloadRecord) done(sess *serving.Session, outs []wire.Tensor) {
	if p == nil || (!p.decided && !p.log.Sampled(sess.Name(), p.draw)) {
		return
	}
	e := &payloadlog.Event{
		Protocol: p.protocol,
		ID:       p.id,
		Model:    sess.Name(),
		Version:  sess.Version(),
		Time:     time.Now(),
		Outputs:  outs,
		Body:     p.body,
	}
	for _, pi := range p.prepared {
		if pi.sess == sess {
			e.Inputs = pi.inputs
		}
	}
	if e.ID == "" {
		e.ID = payloadlog.NewID()
	}
	p.log.Log(e)
}
