package server

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
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, nil, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, nil, skipWS(b, i+1) == len(b)
	}
	for {
		var dst *[]byte
		switch {
		case bytes.HasPrefix(b[i:], []byte(`"features"`)):
			dst, i = &features, i+len(`"features"`)
		case bytes.HasPrefix(b[i:], []byte(`"instances"`)):
			dst, i = &instances, i+len(`"instances"`)
		default:
			return nil, nil, false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil, nil, false
		}
		i = skipWS(b, i+1)
		end, ok := scanNumArray(b, i, 0)
		if !ok {
			return nil, nil, false
		}
		*dst = b[i:end] // a repeated key: the last one wins, as in encoding/json
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return nil, nil, false
			}
			return features, instances, true
		default:
			return nil, nil, false
		}
	}
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
	if i >= len(b) || b[i] != '[' || depth >= maxNesting {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '[' {
			j, ok := scanNumArray(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = j
		} else {
			j := i
			for j < len(b) && isNumByte(b[j]) {
				j++
			}
			if !isJSONNumber(b[i:j]) {
				return 0, false
			}
			i = j
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
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
func scanInferFraming(b []byte) (*inferRequest, bool) {
	r := &inferRequest{}
	var seenID, seenInputs, seenOutputs bool
	i, ok := scanObject(b, skipWS(b, 0), func(key string, i int) (int, bool) {
		switch key {
		case "id":
			if seenID {
				return 0, false
			}
			seenID = true
			j, id, ok := scanPlainString(b, i)
			r.ID = id
			return j, ok
		case "inputs":
			if seenInputs {
				return 0, false
			}
			seenInputs = true
			r.Inputs = []inferInput{}
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
			r.Outputs = []inferOutputRequest{}
			return scanArray(b, i, func(i int) (int, bool) {
				var out inferOutputRequest
				seen := false
				j, ok := scanObject(b, i, func(key string, i int) (int, bool) {
					if key != "name" || seen {
						return 0, false
					}
					seen = true
					var ok bool
					i, out.Name, ok = scanPlainString(b, i)
					return i, ok
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
func scanInferInput(b []byte, i int) (inferInput, int, bool) {
	var in inferInput
	var seen [4]bool
	once := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	j, ok := scanObject(b, i, func(key string, i int) (int, bool) {
		var ok bool
		switch key {
		case "name":
			if !once(0) {
				return 0, false
			}
			i, in.Name, ok = scanPlainString(b, i)
		case "datatype":
			if !once(1) {
				return 0, false
			}
			i, in.Datatype, ok = scanPlainString(b, i)
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
func scanObject(b []byte, i int, value func(key string, i int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		j, key, ok := scanPlainString(b, i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = value(key, skipWS(b, i+1)); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanArray scans the array at b[i], calling elem for each element.
func scanArray(b []byte, i int, elem func(i int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		j, ok := elem(i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, j)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanPlainString scans a string of printable ASCII without escapes.
func scanPlainString(b []byte, i int) (int, string, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, "", false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, string(b[i+1 : j]), true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return 0, "", false
		}
	}
	return 0, "", false
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
