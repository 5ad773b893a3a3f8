package server

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/wire"
)

// Drift is what the server needs from the live input statistics (package
// drift): Observe is called with the inputs of every request a version
// answered, on the request path, so it must be cheap.
type Drift interface {
	Observe(model, version string, inputs []wire.Tensor)
	Stats(model string) drift.ModelStats
}

// driftStats answers GET /v2/models/{m}/drift: the live input counts on
// each tracked version's profile bins, in the tracker's window.
func (s *Server) driftStats(c echo.Context) error {
	model := c.Param("model")
	if s.opts.Drift == nil {
		return &apiError{status: http.StatusNotFound, msg: "drift tracking is off in this gateway (drift.enabled: false)"}
	}
	if !s.opts.Catalog.Has(model) {
		return fmt.Errorf("%w: %q", catalog.ErrUnknownModel, model)
	}
	return c.JSON(http.StatusOK, s.opts.Drift.Stats(model))
}
