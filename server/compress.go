package server

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/wire"
)

// Compressed request bodies. A request's Content-Encoding lists the codings
// applied to its body, in the order they were applied (RFC 9110, section
// 8.4); modelgate undoes gzip (RFC 1952; "x-gzip" is the same, section
// 8.4.1.3) and deflate (section 8.4.1.2: the zlib format of RFC 1950; a raw
// RFC 1951 stream, which some clients send under that name, is taken too),
// and identity is no coding at all. Any other coding is refused with 415,
// the response's Accept-Encoding naming the codings taken (RFC 7694).
//
// The body limit (Options.MaxBodyBytes) holds twice: limitBody caps the
// bytes received, and the decompressed bytes are capped again as they are
// read, so that a small body that inflates past the limit is a 413 once the
// limit is reached, never the whole inflated body in memory.

// maxCodings bounds how many codings one body may stack.
const maxCodings = 4

// acceptedEncodings is what a 415 tells the client to use.
const acceptedEncodings = "gzip, deflate"

// decompress replaces the body of a request with a Content-Encoding by its
// decoded bytes, limited to the body limit.
func (s *Server) decompress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		codings, err := contentCodings(r.Header.Values("Content-Encoding"))
		if err != nil {
			c.Response().Header().Set("Accept-Encoding", acceptedEncodings)
			return err
		}
		if len(codings) == 0 {
			return next(c)
		}
		r.Body = decodeBody(r.Body, codings, s.opts.MaxBodyBytes)
		r.Header.Del("Content-Encoding")
		r.ContentLength = -1
		return next(c)
	}
}

// contentCodings parses Content-Encoding header values into the codings to
// undo, in the order they were applied, identity left out. An unknown
// coding is a 415, too many of them a 400.
func contentCodings(values []string) ([]string, error) {
	var codings []string
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			switch tok = strings.ToLower(strings.TrimSpace(tok)); tok {
			case "", "identity":
			case "gzip", "x-gzip":
				codings = append(codings, "gzip")
			case "deflate":
				codings = append(codings, "deflate")
			default:
				return nil, &apiError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Encoding %q is not supported: send the body as it is (identity) or compressed with gzip or deflate", clipHeader(tok))}
			}
		}
	}
	if len(codings) > maxCodings {
		return nil, badRequest("Content-Encoding lists %d codings; at most %d are undone", len(codings), maxCodings)
	}
	return codings, nil
}

func clipHeader(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// decodeBody undoes codings (applied in their order) over body, the result
// limited to limit bytes.
func decodeBody(body io.ReadCloser, codings []string, limit int64) io.ReadCloser {
	var r io.Reader = body
	for i := len(codings) - 1; i >= 0; i-- {
		r = &decoder{coding: codings[i], src: r}
	}
	return &decodedBody{limited: limited{r: r, left: limit, limit: limit}, body: body}
}

// decoder undoes one coding, opening its decompressor on the first Read
// (so that a bad header is an error of reading the body, with its status)
// and turning its errors into 400s that name the coding.
type decoder struct {
	coding string
	src    io.Reader
	dec    io.Reader
	err    error
}

func (d *decoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.dec == nil {
		dec, err := d.open()
		if err != nil {
			d.err = d.fail(err)
			return 0, d.err
		}
		d.dec = dec
	}
	n, err := d.dec.Read(p)
	if err != nil && err != io.EOF {
		d.err = d.fail(err)
		err = d.err
	}
	return n, err
}

func (d *decoder) open() (io.Reader, error) {
	if d.coding == "gzip" {
		return gzip.NewReader(d.src)
	}
	// deflate: the zlib format, whose two header bytes are a compression
	// method of 8 with a window of at most 32 KiB and a check making them
	// a multiple of 31 (RFC 1950, section 2.2); anything else is taken as
	// a raw deflate stream.
	br := bufio.NewReader(d.src)
	if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && h[0]>>4 <= 7 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// fail is a decompression error as the client reads it: a 413 or a read
// error of the body itself stays what it is, anything else is a 400.
func (d *decoder) fail(err error) error {
	var mbe *http.MaxBytesError
	var ae *apiError
	if errors.As(err, &mbe) || errors.As(err, &ae) {
		return err
	}
	if err == io.ErrUnexpectedEOF {
		err = errors.New("the compressed data ends early")
	}
	return badRequest("request body: cannot undo its Content-Encoding %s: %v", d.coding, err)
}

// limited reads at most limit bytes of r; reading past them is a 413.
type limited struct {
	r     io.Reader
	left  int64
	limit int64
	err   error
}

func (l *limited) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed tells a body at the limit from one past it
	}
	n, err := l.r.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		return n, err
	}
	n, l.left = int(l.left), 0
	l.err = &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the decompressed request body is larger than the limit of %d bytes", l.limit)}
	return n, l.err
}

// decodedBody is the decoded, limited body; Close closes the original.
type decodedBody struct {
	limited
	body io.Closer
}

func (b *decodedBody) Close() error { return b.body.Close() }

// readAll reads a request's body into one buffer of its Content-Length
// when it gives one (limitBody has capped it), instead of growing a buffer
// as the bytes come: a large tensor body is allocated once, not about
// twice over.
func readAll(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 {
		return io.ReadAll(r.Body)
	}
	// A binary body's tensors start after its JSON header: the buffer is
	// offset so that they start 8-byte aligned, and wire.FromRaw can use
	// them in place instead of copying them out.
	pad := 0
	if h, err := strconv.Atoi(r.Header.Get(wire.InferHeaderContentLength)); err == nil && h > 0 && int64(h) <= r.ContentLength {
		pad = (8 - h%8) % 8
	}
	b := make([]byte, pad, int64(pad)+r.ContentLength+1)[pad:] // one more byte, to see EOF without growing
	for {
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // longer than it said (the server stops that, a handler's caller may not)
			b = append(b, 0)[:len(b)]
		}
	}
}
