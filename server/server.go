// Package server is modelgate's HTTP layer: the /predict API, the KServe v2
// Open Inference Protocol under /v2, health and readiness probes, and
// Prometheus metrics, on labstack/echo. It turns requests into tensors,
// asks the catalog for a session, and maps every error to one status in
// one table (errorStatus). The same inference path is served over gRPC
// (grpc.go: Triton's inference.GRPCInferenceService, grpc.health.v1 and
// reflection), its errors mapped to codes from the same table.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/buildinfo"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Catalog is what the server needs from the model catalog.
type Catalog interface {
	Acquire(ctx context.Context, model, version string) (*serving.Session, error)
	Route(ctx context.Context, model, key string) (catalog.Routed, error)
	Versions(ctx context.Context, model string) ([]string, error)
	Has(model string) bool
	Names() []string
	Status() catalog.Status
	// Loaded lists a served model's loaded versions, for statistics.
	Loaded(model string) ([]*serving.Session, error)
}

// Options configure a Server.
type Options struct {
	Catalog Catalog
	// MaxBodyBytes limits request bodies; 0 means 64 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Registerer and Gatherer: the metrics registry (never the global one).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Name and Version describe the server in GET /v2.
	Name    string
	Version string
	// Recorder receives each routed run and comparison for canary
	// analysis; nil records nothing.
	Recorder *canary.Recorder
	// KeyField names the routing key's field in a request body: a
	// top-level field of /predict, a request parameter of /v2 infer. The
	// X-Modelgate-Key header takes precedence. Empty: header only.
	KeyField string
	// ShadowConcurrency caps background comparison runs; beyond it they
	// are skipped (counted). 0 means 2.
	ShadowConcurrency int
	// RegressionTolerance is the rtol of a compared output read as a
	// regression when neither version's manifest stores its kind (versions
	// pushed before output kinds): the answers disagree beyond
	// atol + RegressionTolerance·|stable's answer|. Stored kinds carry
	// their own tolerances. 0 means 0.05.
	RegressionTolerance float64
	// Drift receives the inputs of every answered request, for live input
	// statistics per version (GET /v2/models/{m}/drift); nil tracks none.
	Drift Drift
	// PayloadLog receives a sampled share of answered requests of the
	// models that opted in, with their inputs and outputs (payload.go);
	// nil logs none.
	PayloadLog PayloadLog
	// Extra routes, for tests of the middleware (e.g. a handler that panics).
	Extra func(e *echo.Echo)
}

// DefaultMaxBodyBytes is the request body limit when none is configured.
const DefaultMaxBodyBytes = 64 << 20

// Server is an http.Handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics
	// draining is set on shutdown so that readiness fails at once.
	draining chan struct{}
	// Background comparison runs: slots bound them, the group waits.
	shadowSlots chan struct{}
	shadowWG    sync.WaitGroup
	// extensions are the protocol extensions served, for GET /v2: each
	// feature adds its own as it registers its routes (provide).
	extensions []string
}

// New builds the router.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Registerer == nil {
		r := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = r, r
	}
	if opts.Name == "" {
		opts.Name = "modelgate"
	}
	if opts.Version == "" {
		opts.Version = buildinfo.Version
	}
	if opts.ShadowConcurrency <= 0 {
		opts.ShadowConcurrency = 2
	}
	if opts.RegressionTolerance <= 0 {
		opts.RegressionTolerance = 0.05
	}
	s := &Server{opts: opts, log: opts.Logger, draining: make(chan struct{}), shadowSlots: make(chan struct{}, opts.ShadowConcurrency)}
	s.metrics = newMetrics(opts.Registerer)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.instrument) // outermost: counts panics recovered below as 500s
	e.Use(s.recoverPanics)
	e.Use(s.limitBody)
	e.Use(s.decompress) // compress.go: gzip and deflate bodies, limited again once decoded

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{Registry: opts.Registerer})))
	e.POST("/predict", s.predict)

	e.GET("/v2", s.serverMetadata)
	e.GET("/v2/health/live", s.live)
	e.GET("/v2/health/ready", s.ready)
	e.GET("/v2/models/:model", s.modelMetadata)
	e.GET("/v2/models/:model/versions/:version", s.modelMetadata)
	e.GET("/v2/models/:model/ready", s.modelReady)
	e.GET("/v2/models/:model/versions/:version/ready", s.modelReady)
	e.GET("/v2/models/:model/drift", s.driftStats)
	e.POST("/v2/models/:model/infer", s.infer)
	e.POST("/v2/models/:model/versions/:version/infer", s.infer)
	s.provide(extBinaryTensorData) // infer reads and writes binary tensors (wire/binary.go)
	s.routeTriton(e)               // triton.go: model configuration, statistics, repository index
	s.routeOpenAPI(e)              // openapi.go: GET /openapi.json, every route described
	if opts.Extra != nil {
		opts.Extra(e)
	}
	s.echo = e
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Drain makes readiness fail from now on (the first step of a graceful
// shutdown), while every other route keeps serving.
func (s *Server) Drain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

// WaitBackground waits for background comparison runs to finish (each is
// bounded by a timeout), so that sessions can be closed after it.
func (s *Server) WaitBackground() { s.shadowWG.Wait() }

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// apiError is a client-facing error with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// errorStatus is the one table from errors to HTTP statuses.
func errorStatus(err error) int {
	var ae *apiError
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	var nf *errNonFinite
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, wire.ErrBadInput), errors.Is(err, wire.ErrData), errors.Is(err, wire.ErrRequest), errors.Is(err, catalog.ErrModelRequired):
		return http.StatusBadRequest
	case errors.Is(err, catalog.ErrUnknownModel), errors.Is(err, catalog.ErrUnknownVersion):
		return http.StatusNotFound
	case errors.Is(err, serving.ErrOverloaded):
		return http.StatusTooManyRequests
	case errors.Is(err, catalog.ErrNotReady):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499 // the client went away; nobody reads this
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.As(err, &nf):
		return http.StatusInternalServerError
	case errors.As(err, &he):
		return he.Code
	}
	return http.StatusInternalServerError
}

// handleError is echo's central error handler: every error becomes
// {"error": "..."} with the status from errorStatus.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := errorStatus(err)
	msg := err.Error()
	if status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "1") // a batch takes milliseconds; a second is ample
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg = fmt.Sprint(he.Message)
		if status == http.StatusNotFound {
			msg = fmt.Sprintf("no route for %s %s", c.Request().Method, c.Request().URL.Path)
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		msg = fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)
	}
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
		if status == http.StatusInternalServerError {
			var nf *errNonFinite
			if !errors.As(err, &nf) && !errors.Is(err, errPanic) {
				msg = "internal error: " + msg
			}
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, map[string]string{"error": msg})
}

var errPanic = errors.New("internal error: the request handler panicked; the server keeps serving")

// recoverPanics turns a panic in a handler into a 500 and logs its stack.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in handler", "path", c.Request().URL.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				s.metrics.panics.Inc()
				err = errPanic
			}
		}()
		return next(c)
	}
}

// limitBody caps the request body; reading past it fails with a 413.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.opts.MaxBodyBytes {
			return &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.opts.MaxBodyBytes)}
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, s.opts.MaxBodyBytes)
		return next(c)
	}
}

// readBody reads the whole request body.
func readBody(c echo.Context) ([]byte, error) {
	b, err := readAll(c.Request()) // compress.go
	if err != nil {
		var mbe *http.MaxBytesError
		var ae *apiError // from decompress: a 413 or a 400 of its own
		if errors.As(err, &mbe) || errors.As(err, &ae) {
			return nil, err
		}
		return nil, badRequest("reading request body: %v", err)
	}
	return b, nil
}

// HTTPServer wraps h in an http.Server with the given timeouts.
func HTTPServer(addr string, h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    1 << 20,
	}
}

// Timeouts of the HTTP server.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}
