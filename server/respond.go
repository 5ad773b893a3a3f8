package server

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/serving"
)

// The answers of /predict and /v2 infer are written straight into a pooled
// buffer, byte for byte what encoding/json would write for predictResponse
// and inferResponse (keys in the same order, HTML-safe escaping, a final
// newline), without reflection and without encoding/json re-scanning the
// tensor data it is handed as json.RawMessage.

var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeJSON sends b as the 200 answer and gives the buffer back.
func writeJSON(c echo.Context, bp *[]byte, b []byte) error {
	err := c.JSONBlob(http.StatusOK, b)
	if cap(b) <= 1<<20 { // keep no giant buffers
		*bp = b[:0]
		respBufs.Put(bp)
	}
	return err
}

// writePredict answers /predict: the first output as "prediction", every
// output by name (sorted, as encoding/json sorts map keys), one entry per row.
func writePredict(c echo.Context, model, version string, outs []serving.Tensor) error {
	bp := respBufs.Get().(*[]byte)
	b := append(*bp, `{"model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, version)
	b = append(b, `,"prediction":`...)
	if len(outs) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendData(b, outs[0], true)
	}
	b = append(b, `,"outputs":{`...)
	order := make([]int, len(outs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		switch {
		case outs[x].Name < outs[y].Name:
			return -1
		case outs[x].Name > outs[y].Name:
			return 1
		}
		return 0
	})
	for n, i := range order {
		if n > 0 && outs[i].Name == outs[order[n-1]].Name {
			continue // a map holds a name once
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, outs[i].Name)
		b = append(b, ':')
		b = appendData(b, outs[i], true)
	}
	b = append(b, "}}\n"...)
	return writeJSON(c, bp, b)
}

// writeInfer answers /v2 infer.
func writeInfer(c echo.Context, model, version, id string, outs []serving.Tensor) error {
	bp := respBufs.Get().(*[]byte)
	b := append(*bp, `{"model_name":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, version)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	for i, o := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, o.Name)
		b = append(b, `,"shape":`...)
		if o.Shape == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for j, d := range o.Shape {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, d, 10)
			}
			b = append(b, ']')
		}
		b = append(b, `,"datatype":`...)
		b = appendJSONString(b, string(o.DType()))
		b = append(b, `,"data":`...)
		b = appendData(b, o, false)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	return writeJSON(c, bp, b)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping on (its default): <, > and & as \u003c, \u003e and
// \u0026, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
