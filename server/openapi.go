package server

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3 description of every route the server
// serves, by hand (TestOpenAPIMatchesRoutes holds it to the router's
// routes, both ways).
//
//go:embed openapi.json
var openAPIDoc []byte

// routeOpenAPI serves the description at GET /openapi.json, its
// info.version the server's version.
func (s *Server) routeOpenAPI(e *echo.Echo) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		panic("server/openapi.json: " + err.Error()) // embedded: a test reads it
	}
	doc["info"].(map[string]any)["version"] = s.opts.Version
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
}
