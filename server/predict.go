package server

import (
	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// predict serves POST /predict (see wire.DecodePredictRequest): the model
// comes from ?model= (else the default model) and ?version= pins a version.
func (s *Server) predict(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := wire.DecodePredictRequest(body, s.opts.KeyField)
	if err != nil {
		return err
	}
	key := c.Request().Header.Get(KeyHeader)
	if key == "" {
		key = req.Key
	}
	pl := s.httpPayload(c, payloadlog.ProtocolPredict, c.QueryParam("model"), "", body)
	sess, outs, err := s.answer(c, c.QueryParam("model"), c.QueryParam("version"), key, pl.wrap(func(sess *serving.Session) ([]wire.Tensor, []string, error) {
		if len(sess.Inputs()) != 1 {
			return nil, nil, badRequest("model %s takes %d inputs (%s); /predict serves single-input models: use POST /v2/models/%s/infer", sess.Name(), len(sess.Inputs()), wire.Names(sess.Inputs()), sess.Name())
		}
		in, err := wire.PredictTensor(req, sess.Inputs()[0])
		if err != nil {
			return nil, nil, err
		}
		return []wire.Tensor{in}, nil, nil
	}))
	if err != nil {
		return err
	}
	defer sess.Release()
	pl.done(sess, outs)
	bp := respBufs.Get().(*[]byte)
	return writeJSON(c, bp, wire.AppendPredictResponse(*bp, sess.Name(), sess.Version(), outs))
}
