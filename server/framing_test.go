package server

import (
	"bytes"
	"encoding/json"
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
	fast := 0
	for _, s := range framingSeeds {
		if agreeFraming(t, []byte(s)) {
			fast++
		}
	}
	if fast < 8 {
		t.Fatalf("the fast path took only %d of the seeds", fast)
	}
}

func FuzzPredictFraming(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { agreeFraming(t, body) })
}

func agreeFraming(t *testing.T, body []byte) bool {
	t.Helper()
	feat, inst, ok := scanPredictFraming(body)
	if !ok {
		return false
	}
	var req struct {
		Features  json.RawMessage `json:"features"`
		Instances json.RawMessage `json:"instances"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		t.Fatalf("fast path took %q, encoding/json refuses it: %v", body, err)
	}
	if !bytes.Equal(feat, req.Features) || !bytes.Equal(inst, req.Instances) {
		t.Fatalf("%q: fast path %q %q, encoding/json %q %q", body, feat, inst, req.Features, req.Instances)
	}
	return true
}
