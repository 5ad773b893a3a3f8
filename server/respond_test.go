package server

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/serving"
)

// TestAnswersMatchEncodingJSON checks that the hand-written answers are
// byte for byte what echo's c.JSON (encoding/json) wrote before.
func TestAnswersMatchEncodingJSON(t *testing.T) {
	odd := "a<b>&\"\\\n\t\x01\u2028é\xff"
	cases := []struct {
		name           string
		model, version string
		id             string
		outs           []serving.Tensor
	}{
		{"classifier", "breast-cancer", "1", "42", []serving.Tensor{
			{Name: "label", Shape: []int64{2}, Data: []int64{0, 1}},
			{Name: "probabilities", Shape: []int64{2, 2}, Data: []float32{1, 3.8250483e-09, 3.3945057e-08, 1}},
		}},
		{"unsorted names and odd strings", "m", odd, odd, []serving.Tensor{
			{Name: "z", Shape: []int64{1, 2, 2}, Data: []float64{1.5, -2, 1e300, 0}},
			{Name: odd, Shape: []int64{3}, Data: []bool{true, false, true}},
			{Name: "a", Shape: []int64{2, 1}, Data: []uint8{0, 255}},
		}},
		{"no id, no outputs", "m", "v", "", nil},
	}
	e := echo.New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := predictResponse{Model: tc.model, Version: tc.version, Outputs: map[string]json.RawMessage{}}
			for i, o := range tc.outs {
				v := json.RawMessage(appendData(nil, o, true))
				if i == 0 {
					want.Prediction = v
				}
				want.Outputs[o.Name] = v
			}
			check(t, e, want, func(c echo.Context) error { return writePredict(c, tc.model, tc.version, tc.outs) })

			wantInfer := inferResponse{ModelName: tc.model, ModelVersion: tc.version, ID: tc.id, Outputs: make([]inferOutput, len(tc.outs))}
			for i, o := range tc.outs {
				wantInfer.Outputs[i] = inferOutput{Name: o.Name, Shape: o.Shape, Datatype: string(o.DType()), Data: appendData(nil, o, false)}
			}
			check(t, e, wantInfer, func(c echo.Context) error { return writeInfer(c, tc.model, tc.version, tc.id, tc.outs) })
		})
	}
}

func check(t *testing.T, e *echo.Echo, want any, write func(echo.Context) error) {
	t.Helper()
	ref := httptest.NewRecorder()
	if err := e.NewContext(httptest.NewRequest("POST", "/", nil), ref).JSON(200, want); err != nil {
		t.Fatal(err)
	}
	got := httptest.NewRecorder()
	if err := write(e.NewContext(httptest.NewRequest("POST", "/", nil), got)); err != nil {
		t.Fatal(err)
	}
	if got.Body.String() != ref.Body.String() || got.Header().Get("Content-Type") != ref.Header().Get("Content-Type") || got.Code != ref.Code {
		t.Fatalf("\n got %d %q %s\nwant %d %q %s", got.Code, got.Header().Get("Content-Type"), got.Body, ref.Code, ref.Header().Get("Content-Type"), ref.Body)
	}
}
