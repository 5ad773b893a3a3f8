package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// KServe v2 Open Inference Protocol, REST.

type tensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type modelMetadataResponse struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []tensorMetadata `json:"inputs"`
	Outputs  []tensorMetadata `json:"outputs"`
	// modelgate's additions: the version answering and where it runs, and
	// when the registry's stable version could not be swapped in, which
	// version that is and why.
	Version       string `json:"version"`
	Provider      string `json:"provider"`
	WantedVersion string `json:"wanted_version,omitempty"`
	LoadError     string `json:"load_error,omitempty"`
}

func (s *Server) serverMetadata(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"name":       s.opts.Name,
		"version":    s.opts.Version,
		"extensions": append([]string{}, s.extensions...),
	})
}

func specsMetadata(specs []wire.TensorSpec) []tensorMetadata {
	out := make([]tensorMetadata, len(specs))
	for i, sp := range specs {
		out[i] = tensorMetadata{Name: sp.Name, Datatype: string(sp.DType), Shape: sp.Shape}
	}
	return out
}

// acquire resolves the model and version of a request and records them for
// the metrics middleware. The caller must Release the session.
func (s *Server) acquire(c echo.Context, model, version string) (*serving.Session, error) {
	sess, err := s.opts.Catalog.Acquire(c.Request().Context(), model, version)
	if err != nil {
		return nil, err
	}
	s.label(c, sess)
	return sess, nil
}

// label records the session answering for the metrics middleware.
func (s *Server) label(c echo.Context, sess *serving.Session) {
	c.Set(ctxLabels, &requestLabels{sess.Name(), sess.Version(), sess.Provider()})
}

func (s *Server) modelMetadata(c echo.Context) error {
	sess, err := s.acquire(c, c.Param("model"), c.Param("version"))
	if err != nil {
		return err
	}
	defer sess.Release()
	versions, err := s.opts.Catalog.Versions(c.Request().Context(), sess.Name())
	if err != nil {
		s.log.Warn("listing versions", "model", sess.Name(), "err", err)
	}
	resp := modelMetadataResponse{
		Name:     sess.Name(),
		Versions: versions,
		Platform: "onnx_onnxv1",
		Inputs:   specsMetadata(sess.Inputs()),
		Outputs:  specsMetadata(sess.Outputs()),
		Version:  sess.Version(),
		Provider: sess.Provider(),
	}
	for _, ms := range s.opts.Catalog.Status().Models {
		if ms.Name == sess.Name() {
			resp.WantedVersion, resp.LoadError = ms.Wanted, ms.Error
		}
	}
	return c.JSON(http.StatusOK, resp)
}

func (s *Server) modelReady(c echo.Context) error {
	model, version := c.Param("model"), c.Param("version")
	sess, err := s.acquire(c, model, version)
	if err != nil {
		if errors.Is(err, catalog.ErrNotReady) {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"name": model, "ready": false, "error": err.Error()})
		}
		return err
	}
	defer sess.Release()
	return c.JSON(http.StatusOK, map[string]any{"name": sess.Name(), "version": sess.Version(), "ready": true})
}

// infer answers POST /v2/models/{m}[/versions/{v}]/infer, in JSON or with
// the binary tensor data extension (wire/binary.go): a body of a JSON part
// of Inference-Header-Content-Length bytes and then the inputs' binary
// data; outputs asked for as binary data are answered after the JSON
// response, with Inference-Header-Content-Length giving its length.
func (s *Server) infer(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := wire.DecodeInferBody(body, c.Request().Header.Get(wire.InferHeaderContentLength))
	if err != nil {
		return err
	}
	binary, err := wire.BinaryOutputs(req)
	if err != nil {
		return err
	}
	key := c.Request().Header.Get(KeyHeader)
	if key == "" && s.opts.KeyField != "" {
		if v, ok := req.Parameters[s.opts.KeyField]; ok {
			key = fmt.Sprint(v)
		}
	}
	pl := s.httpPayload(c, payloadlog.ProtocolV2, c.Param("model"), req.ID, nil)
	sess, outs, err := s.answer(c, c.Param("model"), c.Param("version"), key, pl.wrap(func(sess *serving.Session) ([]wire.Tensor, []string, error) {
		inputs, err := wire.InferTensors(req, sess.Inputs())
		if err != nil {
			return nil, nil, err
		}
		names, err := wire.InferOutputs(req, sess.Outputs())
		if err != nil {
			return nil, nil, err
		}
		return inputs, names, nil
	}))
	if err != nil {
		return err
	}
	defer sess.Release()
	pl.done(sess, outs)
	bp := respBufs.Get().(*[]byte)
	if slices.ContainsFunc(outs, func(o wire.Tensor) bool { return binary(o.Name) }) {
		return writeBinary(c, bp, wire.AppendInferBinaryHeader(*bp, sess.Name(), sess.Version(), req.ID, outs, binary), outs, binary)
	}
	return writeJSON(c, bp, wire.AppendInferResponse(*bp, sess.Name(), sess.Version(), req.ID, outs))
}

// run runs the session, times it and refuses non-finite outputs. The
// session counts the run (its rows, times and outcome) in its statistics,
// which the metrics read too (serving.NewStatsCollector).
func (s *Server) run(ctx context.Context, sess *serving.Session, inputs []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	start := time.Now()
	outs, err := sess.Run(ctx, inputs, outputs)
	s.metrics.byInference.Get([3]string{sess.Name(), sess.Version(), sess.Provider()}).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		if wire.FirstNonFinite(o.Data) >= 0 {
			s.metrics.nonFinite.WithLabelValues(sess.Name(), sess.Version()).Inc()
			return nil, &errNonFinite{model: sess.Name(), version: sess.Version(), output: o.Name}
		}
	}
	return outs, nil
}

// errNonFinite: a model produced NaN or Inf, which JSON cannot carry and a
// client must never mistake for a number.
type errNonFinite struct {
	model, version, output string
}

func (e *errNonFinite) Error() string {
	return fmt.Sprintf("model %s version %s produced a non-finite value (NaN or Inf) in output %q", e.model, e.version, e.output)
}

// The answers are written straight into a pooled buffer (see
// wire.AppendPredictResponse).
var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeJSON sends b as the 200 answer and gives the buffer back.
func writeJSON(c echo.Context, bp *[]byte, b []byte) error {
	return writeBlob(c, bp, echo.MIMEApplicationJSON, b)
}

// writeBinary sends a binary answer: the JSON header, then each binary
// output's data straight from the output's memory where the host's layout
// is the wire's (wire.RawView), else copied once. The whole length goes up
// front, not chunks: readers of the extension take Content-Length as the
// body, Inference-Header-Content-Length as its JSON part.
func writeBinary(c echo.Context, bp *[]byte, header []byte, outs []wire.Tensor, binary func(string) bool) error {
	parts := make([][]byte, 0, len(outs))
	size := len(header)
	for _, o := range outs {
		if !binary(o.Name) {
			continue
		}
		v, ok := wire.RawView(o)
		if !ok {
			v = wire.AppendRaw(make([]byte, 0, wire.RawLen(o)), o)
		}
		parts = append(parts, v)
		size += len(v)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
	h.Set(wire.InferHeaderContentLength, strconv.Itoa(len(header)))
	h.Set(echo.HeaderContentLength, strconv.Itoa(size))
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(header)
	for _, p := range parts {
		if err != nil {
			break
		}
		_, err = c.Response().Write(p)
	}
	if cap(header) <= 1<<20 {
		*bp = header[:0]
		respBufs.Put(bp)
	}
	return err
}

// writeBlob sends b as the 200 answer of the given content type and gives
// the buffer back.
func writeBlob(c echo.Context, bp *[]byte, contentType string, b []byte) error {
	err := c.Blob(http.StatusOK, contentType, b)
	if cap(b) <= 1<<20 { // keep no giant buffers
		*bp = b[:0]
		respBufs.Put(bp)
	}
	return err
}
