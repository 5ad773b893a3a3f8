package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
)

// The binary tensor data extension, end to end. Request bodies are put
// together byte by byte from the extension's description (a JSON header of
// Inference-Header-Content-Length bytes, then each binary input's bytes in
// input order: little-endian, row-major, BOOL one byte, BYTES a 4-byte
// little-endian length before each element), and answers are taken apart
// the same way, so that nothing here leans on the codec under test.

// Little-endian bytes, written out by shifting.
func binLE(v uint64, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func binLE32f(fs ...float32) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, binLE(uint64(math.Float32bits(f)), 4)...)
	}
	return b
}

// binStrings is BYTES data: each element's length, 4 bytes little-endian,
// then the element.
func binStrings(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = append(b, binLE(uint64(len(e)), 4)...)
		b = append(b, e...)
	}
	return b
}

// binBody is a JSON header followed by binary data, and the header's
// length.
func binBody(header string, data ...[]byte) ([]byte, string) {
	b := []byte(header)
	for _, d := range data {
		b = append(b, d...)
	}
	return b, strconv.Itoa(len(header))
}

// binPost sends body with the given headers ("" values are left out) and
// returns the answer.
func (g *gateway) binPost(path string, body []byte, headers ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, err := http.NewRequest("POST", g.http.URL+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := g.http.Client().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp, out
}

// binAnswer is an infer answer taken apart: the JSON header and, by
// output name, the binary data of the outputs sent as binary.
type binAnswer struct {
	Header struct {
		ModelName string `json:"model_name"`
		ID        string `json:"id"`
		Outputs   []struct {
			Name       string           `json:"name"`
			Shape      []int64          `json:"shape"`
			Datatype   string           `json:"datatype"`
			Parameters map[string]int64 `json:"parameters"`
			Data       json.RawMessage  `json:"data"`
		} `json:"outputs"`
	}
	Binary map[string][]byte
}

// binSplit takes a binary answer apart by Inference-Header-Content-Length
// and the outputs' binary_data_size, checking that the sizes account for
// every byte.
func binSplit(t *testing.T, resp *http.Response, body []byte) binAnswer {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Fatalf("content type %q", ct)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Fatalf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
	}
	n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
	if err != nil || n < 0 || n > len(body) {
		t.Fatalf("Inference-Header-Content-Length %q for %d bytes", resp.Header.Get("Inference-Header-Content-Length"), len(body))
	}
	var a binAnswer
	if err := json.Unmarshal(body[:n], &a.Header); err != nil {
		t.Fatalf("JSON header %q: %v", body[:n], err)
	}
	a.Binary = map[string][]byte{}
	rest := body[n:]
	for _, o := range a.Header.Outputs {
		size, ok := o.Parameters["binary_data_size"]
		if !ok {
			if len(o.Data) == 0 {
				t.Fatalf("output %q has neither data nor binary_data_size", o.Name)
			}
			continue
		}
		if len(o.Data) != 0 {
			t.Fatalf("output %q has data and binary_data_size", o.Name)
		}
		if size > int64(len(rest)) {
			t.Fatalf("output %q: binary_data_size %d, %d bytes left", o.Name, size, len(rest))
		}
		a.Binary[o.Name], rest = rest[:size], rest[size:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last binary output", len(rest))
	}
	return a
}

// TestBinaryMixedRequest: one input as binary data, the other as JSON;
// one output asked for as binary data, the other as JSON.
func TestBinaryMixedRequest(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"sumprod", "1", servingtest.SumProd()}})
	header := `{"id":"r1","inputs":[` +
		`{"name":"a","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}},` +
		`{"name":"b","shape":[2,3],"datatype":"FP32","data":[1,1,1,2,2,2]}],` +
		`"outputs":[{"name":"sum","parameters":{"binary_data":true}},{"name":"prod"}]}`
	// a = 1, 2, 3, 4, 5, 6 as FP32: 0x3f800000, 0x40000000, ...
	a := []byte{
		0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40,
		0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40, 0x00, 0x00, 0xc0, 0x40,
	}
	body, hl := binBody(header, a)
	resp, out := g.binPost("/v2/models/sumprod/infer", body, "Inference-Header-Content-Length", hl)
	ans := binSplit(t, resp, out)
	if ans.Header.ID != "r1" || ans.Header.ModelName != "sumprod" || len(ans.Header.Outputs) != 2 {
		t.Fatalf("header %+v", ans.Header)
	}
	sum := ans.Header.Outputs[0]
	if sum.Name != "sum" || sum.Datatype != "FP32" || !reflect.DeepEqual(sum.Shape, []int64{2, 3}) || sum.Parameters["binary_data_size"] != 24 {
		t.Fatalf("sum: %+v", sum)
	}
	if want := binLE32f(2, 3, 4, 6, 7, 8); !bytes.Equal(ans.Binary["sum"], want) {
		t.Fatalf("sum: % x, want % x", ans.Binary["sum"], want)
	}
	if prod := ans.Header.Outputs[1]; prod.Name != "prod" || string(prod.Data) != "[1,2,3,8,10,12]" {
		t.Fatalf("prod: %+v %s", prod, prod.Data)
	}

	// binary_data_output: every output binary, unless it says otherwise.
	header = `{"parameters":{"binary_data_output":true},"inputs":[` +
		`{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}},` +
		`{"name":"b","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}`
	body, hl = binBody(header, binLE32f(1, 2, 3), binLE32f(4, 5, 6))
	resp, out = g.binPost("/v2/models/sumprod/infer", body, "Inference-Header-Content-Length", hl)
	ans = binSplit(t, resp, out)
	if !bytes.Equal(ans.Binary["sum"], binLE32f(5, 7, 9)) || !bytes.Equal(ans.Binary["prod"], binLE32f(4, 10, 18)) {
		t.Fatalf("all binary: %+v", ans)
	}
	header = `{"parameters":{"binary_data_output":true},"inputs":[` +
		`{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},` +
		`{"name":"b","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],` +
		`"outputs":[{"name":"prod","parameters":{"binary_data":false}},{"name":"sum"}]}`
	body, hl = binBody(header, binLE32f(4, 5, 6))
	resp, out = g.binPost("/v2/models/sumprod/infer", body, "Inference-Header-Content-Length", hl)
	ans = binSplit(t, resp, out)
	if string(ans.Header.Outputs[0].Data) != "[4,10,18]" || !bytes.Equal(ans.Binary["sum"], binLE32f(5, 7, 9)) {
		t.Fatalf("binary_data false overrides: %+v", ans)
	}

	// Binary inputs, JSON outputs: a plain JSON answer.
	header = `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}},` +
		`{"name":"b","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}`
	body, hl = binBody(header, binLE32f(1, 2, 3), binLE32f(1, 1, 1))
	resp, out = g.binPost("/v2/models/sumprod/infer", body, "Inference-Header-Content-Length", hl)
	want := `{"model_name":"sumprod","model_version":"1","outputs":[{"name":"sum","shape":[1,3],"datatype":"FP32","data":[2,3,4]},{"name":"prod","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`
	if resp.StatusCode != 200 || strings.TrimSpace(string(out)) != want || resp.Header.Get("Inference-Header-Content-Length") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %q %v\n got %s\nwant %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, out, want)
	}

	// An Inference-Header-Content-Length as long as the body: JSON alone.
	header = `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,1,1]}]}`
	resp, out = g.binPost("/v2/models/sumprod/infer", []byte(header), "Inference-Header-Content-Length", strconv.Itoa(len(header)))
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"data":[2,3,4]`) {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
}

// binTypes: for each datatype, four elements written out as the protocol
// says, the ONNX type of an identity model over them, and their JSON.
var binTypes = []struct {
	dt   wire.DType
	onnx onnx.DataType
	raw  []byte
	json string
}{
	{wire.BOOL, onnx.Bool, []byte{1, 0, 0, 1}, `[true,false,false,true]`},
	{wire.UINT8, onnx.Uint8, []byte{0, 1, 0x80, 0xff}, `[0,1,128,255]`},
	{wire.INT8, onnx.Int8, []byte{0x80, 0xff, 0, 0x7f}, `[-128,-1,0,127]`},
	{wire.UINT16, onnx.Uint16, []byte{0, 0, 1, 0, 0, 0x80, 0xff, 0xff}, `[0,1,32768,65535]`},
	{wire.INT16, onnx.Int16, []byte{0, 0x80, 0xff, 0xff, 0, 0, 0xff, 0x7f}, `[-32768,-1,0,32767]`},
	{wire.UINT32, onnx.Uint32, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff}, `[0,1,2147483648,4294967295]`},
	{wire.INT32, onnx.Int32, []byte{0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, `[-2147483648,-1,0,2147483647]`},
	{wire.UINT64, onnx.Uint64, bytes.Join([][]byte{binLE(0, 8), binLE(1, 8), binLE(1<<63, 8), binLE(math.MaxUint64, 8)}, nil), `[0,1,9223372036854775808,18446744073709551615]`},
	{wire.INT64, onnx.Int64, bytes.Join([][]byte{{0, 0, 0, 0, 0, 0, 0, 0x80}, binLE(math.MaxUint64, 8), binLE(0, 8), binLE(math.MaxInt64, 8)}, nil), `[-9223372036854775808,-1,0,9223372036854775807]`},
	// binary16: 1 is 0x3c00, -2 is 0xc000, 65504 is 0x7bff, 2^-24 is 0x0001.
	{wire.FP16, onnx.Float16, []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00}, `[1,-2,65500,6e-08]`}, // the fewest digits that read back as the same FP16, as numpy prints them
	// bfloat16: 1 is 0x3f80, -2.5 is 0xc020, 0.5 is 0x3f00, 2^-133 is 0x0001.
	{wire.BF16, onnx.BFloat16, []byte{0x80, 0x3f, 0x20, 0xc0, 0x00, 0x3f, 0x01, 0x00}, `[1,-2.5,0.5,9e-41]`},
	{wire.FP32, onnx.Float, binLE32f(-1.5, 0, math.MaxFloat32, math.SmallestNonzeroFloat32), `[-1.5,0,3.4028235e+38,1e-45]`},
	{wire.FP64, onnx.Double, bytes.Join([][]byte{binLE(math.Float64bits(-1.5), 8), binLE(0, 8), binLE(math.Float64bits(math.MaxFloat64), 8), binLE(1, 8)}, nil), `[-1.5,0,1.7976931348623157e+308,5e-324]`},
	{wire.BYTES, onnx.String, binStrings("a", "", "h\xc3\xa9llo", "two words"), `["a","","héllo","two words"]`},
}

// TestBinaryEveryDatatype: every datatype in binary and back, and from
// binary to JSON, through identity models: the fakes always, ONNX Runtime
// but under -short.
func TestBinaryEveryDatatype(t *testing.T) {
	var fakes, real []pushSpec
	for _, c := range binTypes {
		name := strings.ToLower(string(c.dt))
		fakes = append(fakes, pushSpec{name, "1", servingtest.Identity(c.dt, -1, 2)})
		real = append(real, pushSpec{name, "1", testmodels.Identity(c.onnx, -1, 2)})
	}
	t.Run("fake", func(t *testing.T) { testBinaryEveryDatatype(t, newGateway(t, true, fakes)) })
	t.Run("onnxruntime", func(t *testing.T) { testBinaryEveryDatatype(t, newGateway(t, true, real, withORT(t))) })
}

func testBinaryEveryDatatype(t *testing.T, g *gateway) {
	for _, c := range binTypes {
		t.Run(string(c.dt), func(t *testing.T) {
			path := "/v2/models/" + strings.ToLower(string(c.dt)) + "/infer"
			header := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[2,2],"datatype":%q,"parameters":{"binary_data_size":%d}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`, c.dt, len(c.raw))
			body, hl := binBody(header, c.raw)
			resp, out := g.binPost(path, body, "Inference-Header-Content-Length", hl)
			ans := binSplit(t, resp, out)
			o := ans.Header.Outputs[0]
			if o.Name != "y" || o.Datatype != string(c.dt) || !reflect.DeepEqual(o.Shape, []int64{2, 2}) || !bytes.Equal(ans.Binary["y"], c.raw) {
				t.Fatalf("%+v\n got % x\nwant % x", o, ans.Binary["y"], c.raw)
			}
			// Binary in, JSON out.
			header = fmt.Sprintf(`{"inputs":[{"name":"x","shape":[2,2],"datatype":%q,"parameters":{"binary_data_size":%d}}]}`, c.dt, len(c.raw))
			body, hl = binBody(header, c.raw)
			resp, out = g.binPost(path, body, "Inference-Header-Content-Length", hl)
			want := fmt.Sprintf(`{"model_name":%q,"model_version":"1","outputs":[{"name":"y","shape":[2,2],"datatype":%q,"data":%s}]}`, strings.ToLower(string(c.dt)), c.dt, c.json)
			if resp.StatusCode != 200 || strings.TrimSpace(string(out)) != want {
				t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, out, want)
			}
			// JSON in, binary out.
			header = fmt.Sprintf(`{"parameters":{"binary_data_output":true},"inputs":[{"name":"x","shape":[2,2],"datatype":%q,"data":%s}]}`, c.dt, c.json)
			resp, out = g.binPost(path, []byte(header))
			if ans := binSplit(t, resp, out); !bytes.Equal(ans.Binary["y"], c.raw) {
				t.Fatalf("JSON in, binary out:\n got % x\nwant % x", ans.Binary["y"], c.raw)
			}
		})
	}
}

// TestBinaryBytesWithNUL: BYTES elements may hold any byte; a NUL cannot
// be handed to ONNX Runtime through onnxruntime_go, which is a clear 400
// there, and goes through the fakes unharmed.
func TestBinaryBytesWithNUL(t *testing.T) {
	raw := binStrings("a\x00b", "\x00")
	header := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}`, len(raw))
	body, hl := binBody(header, raw)
	g := newGateway(t, true, []pushSpec{{"bytes", "1", servingtest.Identity(wire.BYTES, -1)}})
	resp, out := g.binPost("/v2/models/bytes/infer", body, "Inference-Header-Content-Length", hl)
	if ans := binSplit(t, resp, out); !bytes.Equal(ans.Binary["y"], raw) {
		t.Fatalf("fake: % x", ans.Binary["y"])
	}
	g = newGateway(t, true, []pushSpec{{"bytes", "1", testmodels.Identity(onnx.String, -1)}}, withORT(t))
	resp, out = g.binPost("/v2/models/bytes/infer", body, "Inference-Header-Content-Length", hl)
	if resp.StatusCode != 400 || !strings.Contains(string(out), "BYTES element 0 holds a NUL byte") {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
}

// TestBinaryBadRequests: every way a binary request can be wrong is a 400
// that says what is wrong.
func TestBinaryBadRequests(t *testing.T) {
	g := newGateway(t, true, []pushSpec{
		{"sumprod", "1", servingtest.SumProd()},
		{"bool", "1", servingtest.Identity(wire.BOOL, -1)},
		{"bytes", "1", servingtest.Identity(wire.BYTES, -1)},
	})
	in := func(name, params string) string {
		return fmt.Sprintf(`{"name":%q,"shape":[1,3],"datatype":"FP32","parameters":%s}`, name, params)
	}
	jsonB := `{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}`
	req := func(inputs ...string) string { return `{"inputs":[` + strings.Join(inputs, ",") + `]}` }
	twelve := binLE32f(1, 2, 3)
	cases := []struct {
		name   string
		path   string
		header string
		data   []byte
		hl     string // "" for len(header); "-" for no header
		want   string
	}{
		{"size short of the shape", "sumprod", req(in("a", `{"binary_data_size":8}`), jsonB), twelve[:8], "", `FP32 data of shape [1 3] is 12 bytes (3 × 4), got 8`},
		{"size past the shape", "sumprod", req(in("a", `{"binary_data_size":16}`), jsonB), append(binLE32f(1, 2, 3), 0, 0, 0, 0), "", `FP32 data of shape [1 3] is 12 bytes (3 × 4), got 16`},
		{"data short of the sizes", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve[:10], "", `binary_data_size is 12, but only 10 bytes of binary data remain`},
		{"trailing bytes", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), append(binLE32f(1, 2, 3), 9), "", `the body has 13 bytes after the`},
		{"binary data no input declares", "sumprod", req(in("a", `{}`), jsonB), twelve, "", `the body has 12 bytes after the 133-byte JSON header, the inputs' binary_data_size add up to 0`},
		{"header length past the body", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "100000", `Inference-Header-Content-Length is 100000 but the body has only`},
		{"negative header length", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "-1", `Inference-Header-Content-Length must be a non-negative whole number of bytes, got "-1"`},
		{"non-numeric header length", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "ten", `got "ten"`},
		{"header length with a sign", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "+5", `got "+5"`},
		{"huge header length", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "99999999999999999999999", `is 99999999999999999999999 but the body has only`},
		{"header length cuts the JSON", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "10", `malformed JSON`},
		{"no header", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), twelve, "-", `has parameters.binary_data_size but the request has no Inference-Header-Content-Length header`},
		{"negative size", "sumprod", req(in("a", `{"binary_data_size":-12}`), jsonB), twelve, "", `binary_data_size must be a non-negative whole number of bytes, got -12`},
		{"fractional size", "sumprod", req(in("a", `{"binary_data_size":11.5}`), jsonB), twelve, "", `got 11.5`},
		{"size as a string", "sumprod", req(in("a", `{"binary_data_size":"12"}`), jsonB), twelve, "", `got "12"`},
		{"data and binary", "sumprod", req(`{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3],"parameters":{"binary_data_size":12}}`, jsonB), twelve, "", `has both "data" and binary data`},
		{"binary_data not a boolean", "sumprod", `{"inputs":[` + in("a", `{"binary_data_size":12}`) + `,` + jsonB + `],"outputs":[{"name":"sum","parameters":{"binary_data":1}}]}`, twelve, "", `output "sum": parameters.binary_data must be true or false, got 1`},
		{"binary_data_output not a boolean", "sumprod", `{"parameters":{"binary_data_output":"yes"},"inputs":[` + in("a", `{"binary_data_size":12}`) + `,` + jsonB + `]}`, twelve, "", `parameters.binary_data_output must be true or false, got "yes"`},
		{"empty tensor", "sumprod", req(`{"name":"a","shape":[0,3],"datatype":"FP32","parameters":{"binary_data_size":0}}`, jsonB), nil, "", `holds no values`},
		{"negative dimension", "sumprod", req(`{"name":"a","shape":[-1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}`, jsonB), twelve, "", `negative or too large dimension`},
		{"wrong datatype", "sumprod", req(`{"name":"a","shape":[1,3],"datatype":"INT32","parameters":{"binary_data_size":12}}`, jsonB), twelve, "", `datatype INT32 does not match the model's FP32`},
		{"NaN in binary data", "sumprod", req(in("a", `{"binary_data_size":12}`), jsonB), binLE32f(1, float32(math.NaN()), 3), "", `input "a": invalid tensor data: element 1 is NaN or infinite`},
		{"BOOL byte not 0 or 1", "bool", `{"inputs":[{"name":"x","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}]}`, []byte{1, 0, 2}, "", `BOOL element 2 is the byte 2, want 0 or 1`},
		{"BYTES length past the data", "bytes", `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]}`, []byte{9, 0, 0, 0, 'a', 'b'}, "", `BYTES element 0 is 9 bytes long, only 2 bytes remain`},
		{"BYTES cut in a length", "bytes", `{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":8}}]}`, []byte{1, 0, 0, 0, 'a', 0, 0, 0}, "", `BYTES element 1: the data ends inside its 4-byte length`},
		{"BYTES with bytes left", "bytes", `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]}`, []byte{1, 0, 0, 0, 'a', 'b'}, "", `1 bytes follow it`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hl := c.hl
			switch hl {
			case "":
				hl = strconv.Itoa(len(c.header))
			case "-":
				hl = ""
			}
			body, _ := binBody(c.header, c.data)
			resp, out := g.binPost("/v2/models/"+c.path+"/infer", body, "Inference-Header-Content-Length", hl)
			var e struct{ Error string }
			if resp.StatusCode != 400 || json.Unmarshal(out, &e) != nil || !strings.Contains(e.Error, c.want) {
				t.Fatalf("%d %s, want 400 saying %q", resp.StatusCode, out, c.want)
			}
		})
	}
}
