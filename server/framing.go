package server

import "bytes"

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
