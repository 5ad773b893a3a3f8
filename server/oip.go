package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
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
		"extensions": []string{},
	})
}

func specsMetadata(specs []serving.TensorSpec) []tensorMetadata {
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

type inferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

type inferOutputRequest struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type inferRequest struct {
	ID         string               `json:"id,omitempty"`
	Parameters map[string]any       `json:"parameters,omitempty"`
	Inputs     []inferInput         `json:"inputs"`
	Outputs    []inferOutputRequest `json:"outputs,omitempty"`
}

type inferOutput struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

type inferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	ID           string        `json:"id,omitempty"`
	Outputs      []inferOutput `json:"outputs"`
}

// decodeInferRequest parses an infer request body and checks its framing.
// Data stays raw: its element type comes from the request's datatype.
func decodeInferRequest(body []byte) (*inferRequest, error) {
	req, ok := scanInferFraming(body)
	if !ok {
		req = &inferRequest{}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(req); err != nil {
			return nil, badRequest("malformed JSON: %v", jsonErr(err))
		}
		if dec.More() {
			return nil, badRequest("malformed JSON: unexpected data after the request object")
		}
	}
	if len(req.Inputs) == 0 {
		return nil, badRequest(`"inputs" is missing or empty`)
	}
	for i, in := range req.Inputs {
		if in.Name == "" {
			return nil, badRequest("inputs[%d]: \"name\" is missing", i)
		}
		if in.Datatype == "" {
			return nil, badRequest("input %q: \"datatype\" is missing", in.Name)
		}
		if in.Shape == nil {
			return nil, badRequest("input %q: \"shape\" is missing", in.Name)
		}
		if len(in.Data) == 0 || string(in.Data) == "null" {
			return nil, badRequest("input %q: \"data\" is missing", in.Name)
		}
	}
	return req, nil
}

// tensorsFromInfer turns the request's inputs into tensors for sess.
func tensorsFromInfer(req *inferRequest, sess *serving.Session) ([]serving.Tensor, error) {
	specs := sess.Inputs()
	tensors := make([]serving.Tensor, 0, len(req.Inputs))
	for _, in := range req.Inputs {
		i := slices.IndexFunc(specs, func(sp serving.TensorSpec) bool { return sp.Name == in.Name })
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown input %q (the model takes %s)", serving.ErrBadInput, in.Name, inputNames(sess))
		}
		spec := specs[i]
		d := serving.DType(in.Datatype)
		if !d.Known() {
			return nil, badRequest("input %q: unknown datatype %q (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES)", in.Name, in.Datatype)
		}
		if !d.Supported() {
			return nil, badRequest("input %q: datatype %s is not supported by modelgate (the model takes %s)", in.Name, d, spec.DType)
		}
		if d != spec.DType {
			return nil, fmt.Errorf("%w: input %q: datatype %s does not match the model's %s", serving.ErrBadInput, in.Name, d, spec.DType)
		}
		size, ok := serving.ShapeSize(in.Shape)
		if !ok {
			return nil, badRequest("input %q: shape %v has a negative or too large dimension", in.Name, in.Shape)
		}
		data, nest, err := decodeData(in.Data, d, size)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		n := int64(lenOf(data))
		if len(nest) > 1 && !slices.Equal(nest, in.Shape) {
			return nil, badRequest("input %q: nested data has shape %v but \"shape\" says %v", in.Name, nest, in.Shape)
		}
		if n != size {
			return nil, badRequest("input %q: shape %v needs %d values, data has %d", in.Name, in.Shape, size, n)
		}
		if n == 0 {
			return nil, badRequest("input %q: shape %v holds no values", in.Name, in.Shape)
		}
		tensors = append(tensors, serving.Tensor{Name: in.Name, Shape: in.Shape, Data: data})
	}
	return tensors, nil
}

func (s *Server) infer(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := decodeInferRequest(body)
	if err != nil {
		return err
	}
	key := c.Request().Header.Get(KeyHeader)
	if key == "" && s.opts.KeyField != "" {
		if v, ok := req.Parameters[s.opts.KeyField]; ok {
			key = fmt.Sprint(v)
		}
	}
	sess, outs, err := s.answer(c, c.Param("model"), c.Param("version"), key, func(sess *serving.Session) ([]serving.Tensor, []string, error) {
		inputs, err := tensorsFromInfer(req, sess)
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, o := range req.Outputs {
			if o.Name == "" {
				return nil, nil, badRequest("outputs: an entry has no \"name\"")
			}
			if _, ok := sess.Output(o.Name); !ok {
				return nil, nil, fmt.Errorf("%w: unknown output %q (the model has %s)", serving.ErrBadInput, o.Name, outputNames(sess))
			}
			names = append(names, o.Name)
		}
		return inputs, names, nil
	})
	if err != nil {
		return err
	}
	defer sess.Release()
	return writeInfer(c, sess.Name(), sess.Version(), req.ID, outs)
}

// run runs the session, times it and refuses non-finite outputs.
func (s *Server) run(ctx context.Context, sess *serving.Session, inputs []serving.Tensor, outputs []string) ([]serving.Tensor, error) {
	start := time.Now()
	outs, err := sess.Run(ctx, inputs, outputs)
	s.metrics.byInference.Get([3]string{sess.Name(), sess.Version(), sess.Provider()}).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		s.metrics.byRows.Get([2]string{sess.Name(), sess.Version()}).Add(float64(inputs[0].Shape[0]))
	}
	for _, o := range outs {
		if checkFinite(o.Data) >= 0 {
			s.metrics.nonFinite.WithLabelValues(sess.Name(), sess.Version()).Inc()
			return nil, &errNonFinite{model: sess.Name(), version: sess.Version(), output: o.Name}
		}
	}
	return outs, nil
}

func inputNames(sess *serving.Session) string  { return quoteNames(sess.Inputs()) }
func outputNames(sess *serving.Session) string { return quoteNames(sess.Outputs()) }

func quoteNames(specs []serving.TensorSpec) string {
	var b bytes.Buffer
	for i, sp := range specs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", sp.Name)
	}
	return b.String()
}

func lenOf(data any) int { return serving.Tensor{Data: data}.Len() }

// jsonErr shortens encoding/json's messages.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", te.Type, te.Value)
	}
	return err.Error()
}
