package wire

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// The answers of /predict and /v2 infer are appended to a caller's buffer,
// byte for byte what encoding/json would write for PredictResponse and
// InferResponse (keys in the same order, HTML-safe escaping, a final
// newline), without reflection and without encoding/json re-scanning the
// tensor data it is handed as json.RawMessage.

// AppendPredictResponse appends the answer of /predict: the first output
// as "prediction", every output by name (sorted, as encoding/json sorts map
// keys), one entry per row.
func AppendPredictResponse(b []byte, model, version string, outs []Tensor) []byte {
	b = append(b, `{"model":`...)
	b = AppendJSONString(b, model)
	b = append(b, `,"version":`...)
	b = AppendJSONString(b, version)
	b = append(b, `,"prediction":`...)
	if len(outs) == 0 {
		b = append(b, "null"...)
	} else {
		b = AppendData(b, outs[0], true)
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
		b = AppendJSONString(b, outs[i].Name)
		b = append(b, ':')
		b = AppendData(b, outs[i], true)
	}
	return append(b, "}}\n"...)
}

// AppendInferResponse appends the answer of /v2 infer.
func AppendInferResponse(b []byte, model, version, id string, outs []Tensor) []byte {
	return append(appendInferJSON(b, model, version, id, outs, nil), '\n')
}

// appendInferJSON appends the JSON object of an infer response; the
// outputs for which binary (when not nil) holds carry their binary data's
// size instead of their data (see AppendInferResponseBinary).
func appendInferJSON(b []byte, model, version, id string, outs []Tensor, binary func(string) bool) []byte {
	b = append(b, `{"model_name":`...)
	b = AppendJSONString(b, model)
	b = append(b, `,"model_version":`...)
	b = AppendJSONString(b, version)
	if id != "" {
		b = append(b, `,"id":`...)
		b = AppendJSONString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	for i, o := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = AppendJSONString(b, o.Name)
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
		b = AppendJSONString(b, string(o.DType()))
		if binary != nil && binary(o.Name) {
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(RawLen(o)), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":`...)
		b = AppendData(b, o, false)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping on (its default): <, > and & as \u003c, \u003e and
// \u0026, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func AppendJSONString(b []byte, s string) []byte {
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
