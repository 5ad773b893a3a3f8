package payloadlog

import (
	"bytes"
	"strconv"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// The payloads, encoded by the workers (never on the request path).

// requestData is the request event's data: /predict's body as received,
// else the OIP REST request, {"id": ..., "inputs": [tensors]}.
func requestData(e *Event) []byte {
	if e.Body != nil {
		return bytes.TrimSpace(e.Body)
	}
	b := make([]byte, 0, 64+2*minJSON(e.Inputs))
	b = append(b, '{')
	if e.ID != "" {
		b = append(b, `"id":`...)
		b = wire.AppendJSONString(b, e.ID)
		b = append(b, ',')
	}
	b = append(b, `"inputs":`...)
	b = appendTensors(b, e.Inputs)
	return append(b, '}')
}

// responseData is the response event's data: the answer the client got in
// JSON, /predict's or the OIP REST response (for binary tensor data and
// gRPC, the JSON the same answer would have been), its "id" the event's
// (the request id, wherever it came from) so that the two halves match.
func responseData(e *Event) []byte {
	b := make([]byte, 0, 64+2*minJSON(e.Outputs))
	if e.Protocol == ProtocolPredict {
		b = wire.AppendPredictResponse(b, e.Model, e.Version, e.Outputs)
	} else {
		b = wire.AppendInferResponse(b, e.Model, e.Version, e.ID, e.Outputs)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// appendTensors appends ts as the OIP's JSON tensors: name, shape,
// datatype and flat data.
func appendTensors(b []byte, ts []wire.Tensor) []byte {
	b = append(b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = wire.AppendJSONString(b, t.Name)
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"datatype":`...)
		b = wire.AppendJSONString(b, string(t.DType()))
		b = append(b, `,"data":`...)
		b = wire.AppendData(b, t, false)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendLine appends one JSON line of the storage sink: the request's
// attributes, then inputs and outputs (already encoded tensors), then a
// newline.
func appendLine(b []byte, e *Event, inputs, outputs []byte) []byte {
	b = append(b, `{"time":`...)
	b = appendTime(b, e.Time)
	b = append(b, `,"id":`...)
	b = wire.AppendJSONString(b, e.ID)
	b = append(b, `,"model":`...)
	b = wire.AppendJSONString(b, e.Model)
	b = append(b, `,"version":`...)
	b = wire.AppendJSONString(b, e.Version)
	b = append(b, `,"protocol":`...)
	b = wire.AppendJSONString(b, e.Protocol)
	b = append(b, `,"inputs":`...)
	b = append(b, inputs...)
	b = append(b, `,"outputs":`...)
	b = append(b, outputs...)
	return append(b, "}\n"...)
}

// appendTime appends t in UTC as a JSON string, RFC 3339 with nanoseconds
// (what CloudEvents' time attribute takes).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
