package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// runOutcome counts what says something about the version (server errors,
// NaN answers) and leaves out what does not (the client's mistakes, a
// request the client gave up on, load shedding).
func TestRunOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, canary.OutcomeOK},
		{"non-finite answer", &errNonFinite{model: "m", version: "2", output: "y"}, canary.OutcomeNonFinite},
		{"wrapped non-finite answer", fmt.Errorf("run: %w", &errNonFinite{model: "m", version: "2", output: "y"}), canary.OutcomeNonFinite},
		{"a model that fails to run", errors.New("onnxruntime: Non-zero status code returned while running Gemm node"), canary.OutcomeError},
		{"not ready", fmt.Errorf("%w: loading", catalog.ErrNotReady), canary.OutcomeError},
		{"timed out", context.DeadlineExceeded, canary.OutcomeError},
		{"an HTTP 500", echo.NewHTTPError(http.StatusInternalServerError, "boom"), canary.OutcomeError},
		{"client went away", context.Canceled, ""},
		{"wrapped cancellation", fmt.Errorf("run: %w", context.Canceled), ""},
		{"bad input", fmt.Errorf("%w: want 4 features", wire.ErrBadInput), ""},
		{"overloaded", serving.ErrOverloaded, ""},
		{"an HTTP 400", echo.NewHTTPError(http.StatusBadRequest, "bad"), ""},
		{"unknown version", catalog.ErrUnknownVersion, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runOutcome(tc.err); got != tc.want {
				t.Errorf("runOutcome(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
