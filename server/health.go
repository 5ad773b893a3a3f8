package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
)

// healthz is liveness: the process answers. It never looks at models, so
// that Kubernetes does not restart a gateway that is only waiting for its
// registry.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// live is the protocol's liveness route.
func (s *Server) live(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]bool{"live": true})
}

type readiness struct {
	Ready    bool                  `json:"ready"`
	Draining bool                  `json:"draining,omitempty"`
	Error    string                `json:"error,omitempty"`
	Models   []catalog.ModelStatus `json:"models"`
}

func (s *Server) readiness() (int, readiness) {
	st := s.opts.Catalog.Status()
	r := readiness{Ready: st.Ready, Error: st.Error, Models: st.Models}
	if r.Models == nil {
		r.Models = []catalog.ModelStatus{}
	}
	if s.isDraining() {
		r.Ready, r.Draining = false, true
	}
	if !r.Ready {
		return http.StatusServiceUnavailable, r
	}
	return http.StatusOK, r
}

// readyz is readiness: every served model has a loaded, warmed-up version,
// and the server is not draining. The body lists each model's state.
func (s *Server) readyz(c echo.Context) error {
	code, r := s.readiness()
	return c.JSON(code, r)
}

// ready is the protocol's readiness route: the same rule as /readyz.
func (s *Server) ready(c echo.Context) error {
	code, r := s.readiness()
	return c.JSON(code, r)
}
