package wire

import (
	"bytes"
	"strconv"
)

// scanPredictFraming is the fast path of decodePredictRequest for the
// bodies clients send: an object with only "features" and "instances"
// keys whose values are arrays (nested or not) of JSON numbers. It returns
// the raw values (sub-slices of b), exactly what encoding/json would, and
// ok = false for anything else (other keys or values, escapes, invalid
// JSON), which the caller hands to encoding/json for the same answer and
// the same error messages as before.
func scanPredictFraming(b []byte) (features, instances []byte, ok bool) {
	end, ok := scanObject(b, skipWS(b, 0), func(key []byte, i int) (int, bool) {
		var dst *[]byte
		switch string(key) {
		case "features":
			dst = &features
		case "instances":
			dst = &instances
		default:
			return 0, false
		}
		end, ok := scanNumArray(b, i, 0)
		if !ok {
			return 0, false
		}
		*dst = b[i:end] // a repeated key: the last one wins, as in encoding/json
		return end, true
	})
	if !ok || skipWS(b, end) != len(b) {
		return nil, nil, false
	}
	return features, instances, true
}

// fastPredictFraming is scanPredictFraming where no routing key is read
// from the body.
func fastPredictFraming(b []byte, keyField string) (features, instances []byte, ok bool) {
	if keyField != "" {
		return nil, nil, false
	}
	return scanPredictFraming(b)
}

// scanNumArray checks the array at b[i] (numbers and arrays only) and
// returns the index after it.
func scanNumArray(b []byte, i, depth int) (int, bool) {
	if depth >= maxNesting {
		return 0, false
	}
	return scanArray(b, i, func(i int) (int, bool) {
		if i < len(b) && b[i] == '[' {
			return scanNumArray(b, i, depth+1)
		}
		j := i
		for j < len(b) && isNumByte(b[j]) {
			j++
		}
		return j, isJSONNumber(b[i:j])
	})
}

func isNumByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanInferFraming is the fast path of decodeInferRequest for the bodies
// clients send: "id" (optional), "inputs" whose entries have only "name",
// "shape", "datatype" and numeric "data", and "outputs" (optional) whose
// entries have only "name". Names and strings must be plain printable
// ASCII, every key may appear once. It returns exactly what encoding/json
// would decode, and ok = false for anything else (parameters, escapes,
// other keys, booleans or strings in data, invalid JSON), which the caller
// hands to encoding/json for the same answer and the same errors.
func scanInferFraming(b []byte) (*InferRequest, bool) {
	r := &InferRequest{}
	var seenID, seenInputs, seenOutputs bool
	i, ok := scanObject(b, skipWS(b, 0), func(key []byte, i int) (int, bool) {
		switch string(key) {
		case "id":
			if seenID {
				return 0, false
			}
			seenID = true
			return scanString(b, i, &r.ID)
		case "inputs":
			if seenInputs {
				return 0, false
			}
			seenInputs = true
			r.Inputs = []InferInput{}
			return scanArray(b, i, func(i int) (int, bool) {
				in, j, ok := scanInferInput(b, i)
				r.Inputs = append(r.Inputs, in)
				return j, ok
			})
		case "outputs":
			if seenOutputs {
				return 0, false
			}
			seenOutputs = true
			r.Outputs = []InferOutputRequest{}
			return scanArray(b, i, func(i int) (int, bool) {
				var out InferOutputRequest
				seen := false
				j, ok := scanObject(b, i, func(key []byte, i int) (int, bool) {
					if string(key) != "name" || seen {
						return 0, false
					}
					seen = true
					return scanString(b, i, &out.Name)
				})
				r.Outputs = append(r.Outputs, out)
				return j, ok
			})
		}
		return 0, false
	})
	if !ok || skipWS(b, i) != len(b) {
		return nil, false
	}
	return r, true
}

// scanInferInput scans one entry of "inputs".
func scanInferInput(b []byte, i int) (InferInput, int, bool) {
	var in InferInput
	var seen [4]bool
	once := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	j, ok := scanObject(b, i, func(key []byte, i int) (int, bool) {
		var ok bool
		switch string(key) {
		case "name":
			if !once(0) {
				return 0, false
			}
			i, ok = scanString(b, i, &in.Name)
		case "datatype":
			if !once(1) {
				return 0, false
			}
			i, ok = scanString(b, i, &in.Datatype)
		case "shape":
			if !once(2) {
				return 0, false
			}
			in.Shape = []int64{}
			i, ok = scanArray(b, i, func(i int) (int, bool) {
				j := i
				for j < len(b) && isNumByte(b[j]) {
					j++
				}
				n, ok := plainInt(b[i:j])
				in.Shape = append(in.Shape, n)
				return j, ok
			})
		case "data":
			if !once(3) {
				return 0, false
			}
			end, ok := scanNumArray(b, i, 0)
			if !ok {
				return 0, false
			}
			in.Data = b[i:end:end]
			return end, true
		default:
			return 0, false
		}
		return i, ok
	})
	return in, j, ok
}

// scanObject scans the object at b[i], calling value for each key with the
// index of its value; value returns the index after the value.
func scanObject(b []byte, i int, value func(key []byte, i int) (int, bool)) (int, bool) {
	return scanSeq(b, i, '{', '}', func(i int) (int, bool) {
		j, key, ok := scanPlainString(b, i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		return value(key, skipWS(b, i+1))
	})
}

// scanArray scans the array at b[i], calling elem for each element.
func scanArray(b []byte, i int, elem func(i int) (int, bool)) (int, bool) {
	return scanSeq(b, i, '[', ']', elem)
}

// scanSeq scans open, elements separated by commas, close, starting at
// b[i]; elem scans one element and returns the index after it.
func scanSeq(b []byte, i int, open, close byte, elem func(i int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != open {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == close {
		return i + 1, true
	}
	for {
		j, ok := elem(i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, j)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		case i < len(b) && b[i] == close:
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanPlainString scans a string of printable ASCII without escapes and
// returns its contents.
func scanPlainString(b []byte, i int) (int, []byte, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, nil, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, b[i+1 : j], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return 0, nil, false
		}
	}
	return 0, nil, false
}

// scanString is scanPlainString into a string.
func scanString(b []byte, i int, dst *string) (int, bool) {
	j, s, ok := scanPlainString(b, i)
	*dst = string(s)
	return j, ok
}

// plainInt parses a JSON integer (no fraction or exponent) that fits an
// int64, as encoding/json decodes into one.
func plainInt(tok []byte) (int64, bool) {
	if !isJSONNumber(tok) || bytes.ContainsAny(tok, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	return n, err == nil
}
