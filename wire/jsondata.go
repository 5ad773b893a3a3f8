package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Tensor data arrives as JSON arrays of numbers (or booleans), flat or
// nested row-major. DecodeData parses such an array straight into the Go
// slice of the model's element type, without an intermediate []any, and
// reports the nesting it saw so that callers can check it against a shape.
//
// The input policy: every value must be a finite JSON number in the range
// of the element type (integer types take integral values only, "3" or
// "3.0" but not "3.5"); NaN, Infinity, strings and null are refused. BOOL
// takes true and false only.

// dataError is ErrData with the detail.
func dataError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrData, fmt.Sprintf(format, args...))
}

// maxNesting bounds how deep arrays may nest (ONNX tensors rarely exceed 8).
const maxNesting = 32

type sink interface {
	add(tok []byte, isBool, boolVal bool) error
	data() any
	len() int
}

type numSink[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | Float16 | BFloat16 | float32 | float64 | bool] struct {
	vals  []T
	dtype DType
	conv  func(tok []byte) (T, error)
}

func (s *numSink[T]) data() any { return s.vals }
func (s *numSink[T]) len() int  { return len(s.vals) }

func (s *numSink[T]) add(tok []byte, isBool, boolVal bool) error {
	if isBool != (s.dtype == BOOL) {
		if isBool {
			return dataError("%s data must be numbers, got a boolean", s.dtype)
		}
		return dataError("BOOL data must be true or false, got %q", clip(tok))
	}
	if isBool {
		var v any = boolVal
		s.vals = append(s.vals, v.(T))
		return nil
	}
	v, err := s.conv(tok)
	if err != nil {
		return err
	}
	s.vals = append(s.vals, v)
	return nil
}

func newSink(d DType, capacity int) (sink, error) {
	switch d {
	case BOOL:
		return &numSink[bool]{vals: make([]bool, 0, capacity), dtype: d}, nil
	case FP32:
		return &numSink[float32]{vals: make([]float32, 0, capacity), dtype: d, conv: func(t []byte) (float32, error) {
			v, err := parseFloat(t, 32, d)
			return float32(v), err
		}}, nil
	case FP64:
		return &numSink[float64]{vals: make([]float64, 0, capacity), dtype: d, conv: func(t []byte) (float64, error) {
			return parseFloat(t, 64, d)
		}}, nil
	case INT8:
		return intSink[int8](d, capacity, 8), nil
	case INT16:
		return intSink[int16](d, capacity, 16), nil
	case INT32:
		return intSink[int32](d, capacity, 32), nil
	case INT64:
		return intSink[int64](d, capacity, 64), nil
	case UINT8:
		return uintSink[uint8](d, capacity, 8), nil
	case UINT16:
		return uintSink[uint16](d, capacity, 16), nil
	case UINT32:
		return uintSink[uint32](d, capacity, 32), nil
	case UINT64:
		return uintSink[uint64](d, capacity, 64), nil
	case FP16:
		return &numSink[Float16]{vals: make([]Float16, 0, capacity), dtype: d, conv: func(t []byte) (Float16, error) {
			v, err := parseFloat(t, 64, d)
			if err != nil {
				return 0, err
			}
			h, ok := ToFloat16(v)
			if !ok {
				return 0, dataError("value %s is out of range for %s", clip(t), d)
			}
			return h, nil
		}}, nil
	case BF16:
		return &numSink[BFloat16]{vals: make([]BFloat16, 0, capacity), dtype: d, conv: func(t []byte) (BFloat16, error) {
			v, err := parseFloat(t, 64, d)
			if err != nil {
				return 0, err
			}
			h, ok := ToBFloat16(v)
			if !ok {
				return 0, dataError("value %s is out of range for %s", clip(t), d)
			}
			return h, nil
		}}, nil
	case BYTES:
		return &bytesSink{vals: make([][]byte, 0, capacity)}, nil
	}
	return nil, fmt.Errorf("%w: datatype %s is not supported (modelgate serves BOOL, INT8-64, UINT8-64, FP16, BF16, FP32, FP64 and BYTES)", ErrData, d)
}

// bytesSink takes BYTES data: JSON strings, each element's bytes. (In JSON
// a BYTES element can only be text; binary data carries any bytes.)
type bytesSink struct{ vals [][]byte }

func (s *bytesSink) data() any { return s.vals }
func (s *bytesSink) len() int  { return len(s.vals) }

func (s *bytesSink) add(tok []byte, isBool, _ bool) error {
	if isBool || len(tok) == 0 || tok[0] != '"' {
		return dataError("BYTES data must be strings, got %s", clip(tok))
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return dataError("BYTES element %s is not a valid JSON string", clip(tok))
	}
	s.vals = append(s.vals, []byte(v))
	return nil
}

func intSink[T int8 | int16 | int32 | int64](d DType, capacity, bits int) sink {
	return &numSink[T]{vals: make([]T, 0, capacity), dtype: d, conv: func(t []byte) (T, error) {
		v, err := parseInt(t, bits, d)
		return T(v), err
	}}
}

func uintSink[T uint8 | uint16 | uint32 | uint64](d DType, capacity, bits int) sink {
	return &numSink[T]{vals: make([]T, 0, capacity), dtype: d, conv: func(t []byte) (T, error) {
		v, err := parseUint(t, bits, d)
		return T(v), err
	}}
}

func parseFloat(tok []byte, bits int, d DType) (float64, error) {
	if !isJSONNumber(tok) {
		return 0, badToken(tok, d)
	}
	v, err := strconv.ParseFloat(string(tok), bits)
	if err != nil || math.IsInf(v, 0) {
		return 0, dataError("value %s is out of range for %s", clip(tok), d)
	}
	return v, nil
}

func parseInt(tok []byte, bits int, d DType) (int64, error) {
	if !isJSONNumber(tok) {
		return 0, badToken(tok, d)
	}
	v, err := strconv.ParseInt(string(tok), 10, bits)
	if err == nil {
		return v, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, dataError("value %s is out of range for %s", clip(tok), d)
	}
	f, ferr := strconv.ParseFloat(string(tok), 64) // "3.0", "1e3"
	if ferr != nil || f != math.Trunc(f) {
		return 0, dataError("%s data must be integers, got %s", d, clip(tok))
	}
	lim := math.Ldexp(1, bits-1)
	if f < -lim || f >= lim {
		return 0, dataError("value %s is out of range for %s", clip(tok), d)
	}
	return int64(f), nil
}

func parseUint(tok []byte, bits int, d DType) (uint64, error) {
	if !isJSONNumber(tok) {
		return 0, badToken(tok, d)
	}
	v, err := strconv.ParseUint(string(tok), 10, bits)
	if err == nil {
		return v, nil
	}
	if errors.Is(err, strconv.ErrRange) || tok[0] == '-' {
		if tok[0] == '-' {
			if f, ferr := strconv.ParseFloat(string(tok), 64); ferr == nil && f == 0 {
				return 0, nil // "-0"
			}
		}
		return 0, dataError("value %s is out of range for %s", clip(tok), d)
	}
	f, ferr := strconv.ParseFloat(string(tok), 64)
	if ferr != nil || f != math.Trunc(f) {
		return 0, dataError("%s data must be integers, got %s", d, clip(tok))
	}
	if f < 0 || f >= math.Ldexp(1, bits) {
		return 0, dataError("value %s is out of range for %s", clip(tok), d)
	}
	return uint64(f), nil
}

func badToken(tok []byte, d DType) error {
	switch string(tok) {
	case "NaN", "Infinity", "-Infinity", "inf", "-inf", "nan":
		return dataError("non-finite value %s: inputs must be finite JSON numbers", tok)
	case "null":
		return dataError("null is not a %s value (missing values must be imputed before inference)", d)
	}
	if len(tok) > 0 && tok[0] == '"' {
		return dataError("%s data must be numbers, got the string %s", d, clip(tok))
	}
	return dataError("%s data must be numbers, got %s", d, clip(tok))
}

// isJSONNumber checks the JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

func clip(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// DecodeData parses raw (a JSON array, flat or nested) into a slice of d.
// It returns the data and the nesting it found: [n] for a flat array, the
// full shape for a regular nested one. Ragged nesting is an error.
// capHint sizes the slice (bounded by what raw can hold).
func DecodeData(raw []byte, d DType, capHint int64) (any, []int64, error) {
	if maxVals := int64(len(raw)/2 + 1); capHint > maxVals || capHint < 0 {
		capHint = maxVals
	}
	s, err := newSink(d, int(capHint))
	if err != nil {
		return nil, nil, err
	}
	p := parser{b: raw, s: s}
	p.skipSpace()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, nil, dataError("data must be a JSON array, got %s", clip(p.rest()))
	}
	var shape []int64
	if err := p.array(0, &shape); err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, nil, dataError("unexpected %s after the data array", clip(p.rest()))
	}
	return s.data(), shape, nil
}

type parser struct {
	b []byte
	i int
	s sink
}

func (p *parser) rest() []byte { return p.b[p.i:] }

func (p *parser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// array parses an array at depth, recording its length in (*shape)[depth]
// the first time that depth is seen and checking it every later time.
func (p *parser) array(depth int, shape *[]int64) error {
	if depth >= maxNesting {
		return dataError("arrays nested deeper than %d", maxNesting)
	}
	p.i++ // '['
	first := len(*shape) == depth
	if first {
		*shape = append(*shape, 0)
	}
	var n int64
	nested := -1 // unknown until the first element
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return p.checkLen(depth, shape, first, 0, false)
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return dataError("unterminated array")
		}
		isArr := p.b[p.i] == '['
		if nested == -1 {
			nested = 0
			if isArr {
				nested = 1
			}
			if !first && (nested == 1) != (len(*shape) > depth+1) {
				return dataError("ragged array: elements at depth %d mix arrays and values", depth+1)
			}
		} else if (nested == 1) != isArr {
			return dataError("ragged array: elements at depth %d mix arrays and values", depth+1)
		}
		if isArr {
			if err := p.array(depth+1, shape); err != nil {
				return err
			}
		} else {
			if len(*shape) > depth+1 {
				return dataError("ragged array: elements at depth %d mix arrays and values", depth+1)
			}
			if err := p.scalar(); err != nil {
				return err
			}
		}
		n++
		p.skipSpace()
		if p.i >= len(p.b) {
			return dataError("unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return p.checkLen(depth, shape, first, n, nested == 1)
		default:
			return dataError("expected , or ] in array, got %s", clip(p.rest()))
		}
	}
}

func (p *parser) checkLen(depth int, shape *[]int64, first bool, n int64, nested bool) error {
	if first {
		(*shape)[depth] = n
		return nil
	}
	if (*shape)[depth] != n {
		return dataError("ragged array: an array at depth %d has %d elements, an earlier one %d", depth+1, n, (*shape)[depth])
	}
	return nil
}

// scalar reads one token up to the next delimiter and hands it to the sink.
func (p *parser) scalar() error {
	start := p.i
	if p.b[p.i] == '"' { // a string: find its end for the message
		p.i++
		for p.i < len(p.b) && p.b[p.i] != '"' {
			if p.b[p.i] == '\\' {
				p.i++
			}
			p.i++
		}
		p.i++
		if p.i > len(p.b) {
			p.i = len(p.b)
		}
	} else {
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '[' || c == '{' || c == '}' {
				break
			}
			p.i++
		}
	}
	tok := p.b[start:p.i]
	if len(tok) == 0 {
		if p.i < len(p.b) && p.b[p.i] == '{' {
			return dataError("objects are not tensor values")
		}
		return dataError("expected a value, got %s", clip(p.rest()))
	}
	switch string(tok) {
	case "true":
		return p.s.add(tok, true, true)
	case "false":
		return p.s.add(tok, true, false)
	}
	return p.s.add(tok, false, false)
}
