package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAnswersMatchEncodingJSON checks that the hand-written answers are
// byte for byte what encoding/json writes (as echo's c.JSON did before).
func TestAnswersMatchEncodingJSON(t *testing.T) {
	odd := "a<b>&\"\\\n\t\x01\u2028é\xff"
	cases := []struct {
		name           string
		model, version string
		id             string
		outs           []Tensor
	}{
		{"classifier", "breast-cancer", "1", "42", []Tensor{
			{Name: "label", Shape: []int64{2}, Data: []int64{0, 1}},
			{Name: "probabilities", Shape: []int64{2, 2}, Data: []float32{1, 3.8250483e-09, 3.3945057e-08, 1}},
		}},
		{"unsorted names and odd strings", "m", odd, odd, []Tensor{
			{Name: "z", Shape: []int64{1, 2, 2}, Data: []float64{1.5, -2, 1e300, 0}},
			{Name: odd, Shape: []int64{3}, Data: []bool{true, false, true}},
			{Name: "a", Shape: []int64{2, 1}, Data: []uint8{0, 255}},
		}},
		{"no id, no outputs", "m", "v", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := PredictResponse{Model: tc.model, Version: tc.version, Outputs: map[string]json.RawMessage{}}
			for i, o := range tc.outs {
				v := json.RawMessage(AppendData(nil, o, true))
				if i == 0 {
					want.Prediction = v
				}
				want.Outputs[o.Name] = v
			}
			check(t, want, AppendPredictResponse(nil, tc.model, tc.version, tc.outs))

			wantInfer := InferResponse{ModelName: tc.model, ModelVersion: tc.version, ID: tc.id, Outputs: make([]InferOutput, len(tc.outs))}
			for i, o := range tc.outs {
				wantInfer.Outputs[i] = InferOutput{Name: o.Name, Shape: o.Shape, Datatype: string(o.DType()), Data: AppendData(nil, o, false)}
			}
			check(t, wantInfer, AppendInferResponse(nil, tc.model, tc.version, tc.id, tc.outs))
		})
	}
}

func check(t *testing.T, want any, got []byte) {
	t.Helper()
	var ref bytes.Buffer
	if err := json.NewEncoder(&ref).Encode(want); err != nil {
		t.Fatal(err)
	}
	if string(got) != ref.String() {
		t.Fatalf("\n got %s\nwant %s", got, ref.Bytes())
	}
}
