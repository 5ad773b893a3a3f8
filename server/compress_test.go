package server

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zlibbed(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// gzipBomb is 1 GiB of zeros gzipped (1024 gzip members of 1 MiB each,
// which a gzip reader reads as one stream: about 1 MB), and that gzipped
// again (a few KB): a small body that inflates a hundred thousand times.
func gzipBomb(t testing.TB) (inner, bomb []byte) {
	bombOnce.Do(func() {
		member := gzipped(t, make([]byte, 1<<20))
		bombInner = bytes.Repeat(member, 1<<10)
		bombOuter = gzipped(t, bombInner)
	})
	return bombInner, bombOuter
}

var (
	bombOnce             sync.Once
	bombInner, bombOuter []byte
)

// TestCompressedRequests: gzip and deflate bodies (zlib, as RFC 9110 has
// it, and raw deflate, as some clients send it) are undone on /predict and
// /v2 infer, JSON and binary alike; identity is no coding.
func TestCompressedRequests(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}, {"sumprod", "1", servingtest.SumProd()}})
	predict := []byte(`{"features":[1,2,3,4]}`)
	_, want := g.raw("POST", "/predict?model=lin", predict)
	infer := []byte(`{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	_, wantInfer := g.raw("POST", "/v2/models/lin/infer", infer)
	for _, c := range []struct {
		encoding string
		encode   func(testing.TB, []byte) []byte
	}{
		{"gzip", gzipped},
		{"x-gzip", gzipped},
		{"GZip", gzipped},
		{"deflate", zlibbed},
		{"deflate", deflated},
		{"identity", func(_ testing.TB, b []byte) []byte { return b }},
		{"gzip, identity", gzipped},
		{"deflate, gzip", func(t testing.TB, b []byte) []byte { return gzipped(t, zlibbed(t, b)) }},
	} {
		resp, out := g.binPost("/predict?model=lin", c.encode(t, predict), "Content-Encoding", c.encoding, "Content-Type", "application/json")
		if resp.StatusCode != 200 || !bytes.Equal(out, want) {
			t.Errorf("/predict, %s: %d %s, want %s", c.encoding, resp.StatusCode, out, want)
		}
		resp, out = g.binPost("/v2/models/lin/infer", c.encode(t, infer), "Content-Encoding", c.encoding)
		if resp.StatusCode != 200 || !bytes.Equal(out, wantInfer) {
			t.Errorf("/v2 infer, %s: %d %s, want %s", c.encoding, resp.StatusCode, out, wantInfer)
		}
	}
	// A binary request, gzipped: Inference-Header-Content-Length counts the
	// decompressed body.
	header := `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,1,1]}],"parameters":{"binary_data_output":true}}`
	body, hl := binBody(header, binLE32f(1, 2, 3))
	resp, out := g.binPost("/v2/models/sumprod/infer", gzipped(t, body), "Content-Encoding", "gzip", "Inference-Header-Content-Length", hl)
	if ans := binSplit(t, resp, out); !bytes.Equal(ans.Binary["sum"], binLE32f(2, 3, 4)) {
		t.Fatalf("gzipped binary request: % x", ans.Binary["sum"])
	}
}

// TestCompressedRequestLimits: the body limit holds for the decompressed
// bytes (a gzip bomb is a 413 once the limit is read, not a gigabyte in
// memory); an unknown coding is a 415 naming the ones taken; broken
// compressed data is a 400.
func TestCompressedRequestLimits(t *testing.T) {
	const limit = 64 << 10
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}}, withMaxBody(limit))

	inner, bomb := gzipBomb(t)
	if len(bomb) > 16<<10 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	for _, c := range []struct {
		name, encoding string
		body           []byte
	}{
		{"gzip bomb", "gzip, gzip", bomb},
		{"one layer of it", "gzip", inner[:limit/2]}, // cut short, but inflating past the limit first
		{"deflate past the limit", "deflate", zlibbed(t, bytes.Repeat([]byte(" "), limit+1))},
	} {
		resp, out := g.binPost("/predict?model=lin", c.body, "Content-Encoding", c.encoding)
		var e struct{ Error string }
		if resp.StatusCode != 413 || json.Unmarshal(out, &e) != nil || e.Error != "the decompressed request body is larger than the limit of 65536 bytes" {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, out)
		}
	}
	// At the limit exactly: not too large (and then not a valid request).
	atLimit := append([]byte(`{"features":[1,2,3,4]}`), bytes.Repeat([]byte(" "), limit-22)...)
	resp, out := g.binPost("/predict?model=lin", gzipped(t, atLimit), "Content-Encoding", "gzip")
	if resp.StatusCode != 200 {
		t.Errorf("a body of exactly the limit: %d %s", resp.StatusCode, out)
	}
	// The compressed bytes are limited too.
	resp, _ = g.binPost("/predict?model=lin", bytes.Repeat([]byte{0}, limit+1), "Content-Encoding", "gzip")
	if resp.StatusCode != 413 {
		t.Errorf("compressed body past the limit: %d", resp.StatusCode)
	}

	for _, c := range []struct {
		name, encoding string
		body           []byte
		status         int
		want           string
	}{
		{"brotli", "br", []byte("x"), 415, `Content-Encoding "br" is not supported: send the body as it is (identity) or compressed with gzip or deflate`},
		{"compress", "gzip, compress", []byte("x"), 415, `Content-Encoding "compress" is not supported`},
		{"not gzip", "gzip", []byte(`{"features":[1,2,3,4]}`), 400, "cannot undo its Content-Encoding gzip: gzip: invalid header"},
		{"gzip cut short", "gzip", gzipped(t, []byte(`{"features":[1,2,3,4]}`))[:20], 400, "cannot undo its Content-Encoding gzip: the compressed data ends early"},
		{"gzip with garbage after", "gzip", append(gzipped(t, []byte(`{"features":[1,2,3,4]}`)), "garbage after the stream"...), 400, "gzip: invalid header"},
		{"not deflate", "deflate", []byte{0xff, 0xff, 0xff}, 400, "cannot undo its Content-Encoding deflate"},
		{"too many codings", "gzip, gzip, gzip, gzip, gzip", []byte("x"), 400, "lists 5 codings; at most 4 are undone"},
	} {
		resp, out := g.binPost("/predict?model=lin", c.body, "Content-Encoding", c.encoding)
		var e struct{ Error string }
		if resp.StatusCode != c.status || json.Unmarshal(out, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, resp.StatusCode, out, c.status, c.want)
		}
		if c.status == 415 && resp.Header.Get("Accept-Encoding") != "gzip, deflate" {
			t.Errorf("%s: Accept-Encoding %q", c.name, resp.Header.Get("Accept-Encoding"))
		}
	}
}

// TestDecompressDoesNotInflateTheBomb: reading a bomb through the decoder
// stops at the limit: what it hands over is the limit and one read's worth
// at most, however far the data would inflate.
func TestDecompressDoesNotInflateTheBomb(t *testing.T) {
	_, bomb := gzipBomb(t)
	body := decodeBody(io.NopCloser(bytes.NewReader(bomb)), []string{"gzip", "gzip"}, 1<<20)
	n, err := io.Copy(io.Discard, body)
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusRequestEntityTooLarge || n != 1<<20 {
		t.Fatalf("read %d bytes, err %v", n, err)
	}
}

// FuzzDecompress: whatever the body and coding, undoing it yields at most
// the limit, and every failure is a 400 or a 413; nothing panics.
func FuzzDecompress(f *testing.F) {
	msg := []byte(`{"features":[1,2,3,4]}`)
	f.Add(gzipped(f, msg), "gzip")
	f.Add(zlibbed(f, msg), "deflate")
	f.Add(deflated(f, msg), "deflate")
	f.Add(gzipped(f, bytes.Repeat([]byte("a"), 5000)), "gzip")
	f.Add(gzipped(f, gzipped(f, msg)), "gzip, gzip")
	f.Add(msg, "identity")
	f.Add(msg, "br")
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, "gzip")
	const limit = 4096
	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		codings, err := contentCodings([]string{encoding})
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != 415 && ae.status != 400) {
				t.Fatalf("%q: %v", encoding, err)
			}
			return
		}
		out, err := io.ReadAll(decodeBody(io.NopCloser(bytes.NewReader(body)), codings, limit))
		if len(out) > limit {
			t.Fatalf("%d bytes past the limit of %d", len(out), limit)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != 400 && ae.status != 413) {
				t.Fatalf("%q: %v", encoding, err)
			}
		}
		if len(codings) == 0 && (err != nil || !bytes.Equal(out, body[:min(len(body), limit)])) && len(body) <= limit {
			t.Fatalf("identity changed the body")
		}
	})
}

// TestReadAllAlignsBinaryData: a binary body is read so that its tensor
// data, after the JSON header, starts 8-byte aligned, whatever the
// header's length, and the bytes are the body's.
func TestReadAllAlignsBinaryData(t *testing.T) {
	for h := 1; h <= 17; h++ {
		body := bytes.Repeat([]byte{'x'}, h+16)
		r := httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", bytes.NewReader(body))
		r.Header.Set(wire.InferHeaderContentLength, strconv.Itoa(h))
		got, err := readAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("header %d: read %q", h, got)
		}
		if p := uintptr(unsafe.Pointer(&got[h])); p%8 != 0 {
			t.Errorf("header of %d bytes: the data starts at %#x, not 8-aligned", h, p)
		}
	}
}
