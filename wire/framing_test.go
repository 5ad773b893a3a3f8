package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var framingSeeds = []string{
	`{"features":[1,2,3,4]}`, ` { "instances" : [ [1, 2.5e3] , [-0.5,4E-2] ] } `, `{"instances":[]}`,
	`{"features":[[1,2],[3,4]]}`, `{"features":[1,2,3,4],"instances":[[1]]}`, `{"feature":[1]}`,
	`{"features":[1e39,2,3,4]}`, `{}`, ``, `{"features":[1,2]}x`, `{"features":[1,,2]}`, `{"features":[01]}`,
	`{"features":null}`, `{"Features":[1]}`, `{"features":[1],"features":[2]}`, `{"features":[true]}`,
	`{"features":["1"]}`, `{"features":[1.]}`, `{"features":[1]`, `[1]`, `{"features":[[[[]]]]}`,
}

// TestPredictFramingAgreesWithEncodingJSON: where the fast path answers,
// it answers what encoding/json does.
func TestPredictFramingAgreesWithEncodingJSON(t *testing.T) {
	if fast := agreeingSeeds(t, framingSeeds, agreePredictFraming); fast < 8 {
		t.Fatalf("the fast path took only %d of the seeds", fast)
	}
}

func FuzzPredictFraming(f *testing.F) {
	addSeeds(f, framingSeeds)
	f.Fuzz(func(t *testing.T, body []byte) { agreePredictFraming(t, body) })
}

// predictFrames is what /predict's framing yields.
type predictFrames struct {
	Features  json.RawMessage `json:"features"`
	Instances json.RawMessage `json:"instances"`
}

func agreePredictFraming(t *testing.T, body []byte) bool {
	t.Helper()
	return agreesWithJSON(t, body, true, func(b []byte) (predictFrames, bool) {
		f, i, ok := scanPredictFraming(b)
		return predictFrames{f, i}, ok
	})
}

// agreesWithJSON reports whether fast answered body, and fails the test
// when encoding/json (with unknown fields refused when strict) does not
// decode the very same T from it.
func agreesWithJSON[T any](t *testing.T, body []byte, strict bool, fast func([]byte) (T, bool)) bool {
	t.Helper()
	got, ok := fast(body)
	if !ok {
		return false
	}
	var want T
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&want); err != nil || dec.More() {
		t.Fatalf("fast path took %q, encoding/json refuses it: %v", body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast path     %#v\nencoding/json %#v", body, got, want)
	}
	return true
}

// agreeingSeeds checks every seed and counts those the fast path took.
func agreeingSeeds(t *testing.T, seeds []string, agree func(*testing.T, []byte) bool) int {
	t.Helper()
	fast := 0
	for _, s := range seeds {
		if agree(t, []byte(s)) {
			fast++
		}
	}
	return fast
}

func addSeeds(f *testing.F, seeds []string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

var inferFramingSeeds = []string{
	`{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
	` { "id" : "r-1", "inputs" : [ { "name" : "x", "shape" : [ 2, 2 ], "datatype" : "INT64", "data" : [[1,2],[3,4]] } ], "outputs" : [ { "name" : "y" } ] } `,
	`{"inputs":[]}`, `{"inputs":[],"outputs":[]}`, `{}`, `{"id":""}`,
	`{"inputs":[{"name":"a","shape":[],"datatype":"FP32","data":[]}]}`,
	`{"inputs":[{"name":"a","shape":[-1,3],"datatype":"FP64","data":[1e308,-0.5,2E-3]},{"name":"b","shape":[1],"datatype":"FP32","data":[0]}]}`,
	`{"inputs":[{"name":"a","datatype":"FP32","data":[1]}]}`, `{"inputs":[{}]}`, `{"outputs":[{}]}`,
	// Every one of these must go to encoding/json.
	`{"inputs":[{"name":"a","shape":[1.0],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","shape":[1e2],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","shape":[99999999999999999999],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"BOOL","data":[true]}]}`,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"BYTES","data":["x"]}]}`,
	`{"inputs":[{"name":"a\u00e9","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"parameters":{}}]}`,
	`{"inputs":[{"Name":"a","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","name":"b","shape":[1],"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[],"inputs":[{"name":"a"}]}`, `{"parameters":{"k":"v"},"inputs":[]}`,
	`{"inputs":[{"name":"a","shape":null,"datatype":"FP32","data":[1]}]}`,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":null}]}`,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}x`, `{"inputs":[`, `[]`, `null`, ``,
	`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[01]}]}`, `{"id":1,"inputs":[]}`,
	`{"outputs":[{"name":"y","parameters":{"binary_data":false}}]}`,
}

// TestInferFramingAgreesWithEncodingJSON: where the fast path answers, it
// answers what encoding/json does, and it answers the usual requests.
func TestInferFramingAgreesWithEncodingJSON(t *testing.T) {
	if fast := agreeingSeeds(t, inferFramingSeeds, agreeInferFraming); fast != 11 {
		t.Fatalf("the fast path took %d of the seeds, want the first 11", fast)
	}
}

func FuzzInferFraming(f *testing.F) {
	addSeeds(f, inferFramingSeeds)
	f.Fuzz(func(t *testing.T, body []byte) { agreeInferFraming(t, body) })
}

func agreeInferFraming(t *testing.T, body []byte) bool {
	t.Helper()
	return agreesWithJSON(t, body, false, func(b []byte) (InferRequest, bool) {
		r, ok := scanInferFraming(b)
		if !ok {
			return InferRequest{}, false
		}
		return *r, true
	})
}
