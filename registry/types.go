package registry

import (
	"time"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// kserveDatatypes are the tensor datatypes of the KServe v2 protocol, for
// the message that refuses another name (wire.DType.Known decides).
var kserveDatatypes = []wire.DType{
	wire.BOOL, wire.UINT8, wire.UINT16, wire.UINT32, wire.UINT64, wire.INT8, wire.INT16, wire.INT32,
	wire.INT64, wire.FP16, wire.FP32, wire.FP64, wire.BF16, wire.BYTES,
}

// FileRef points at an extra object stored next to model.onnx, with the
// digest and size it was stored with.
type FileRef struct {
	File   string `json:"file"` // object name within the version, e.g. "holdout.csv"
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Manifest describes one immutable version of a model. It is written once,
// after the objects it describes.
type Manifest struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	SHA256   string            `json:"sha256"` // of model.onnx, lowercase hex
	Size     int64             `json:"size"`
	Created  time.Time         `json:"created"`
	Inputs   []wire.TensorSpec `json:"inputs"`
	Outputs  []wire.TensorSpec `json:"outputs"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Holdout  *FileRef          `json:"holdout,omitempty"`
	// OutputKinds says what each output means (a label, class
	// probabilities, one probability, a regression, with a threshold or
	// tolerances): how the canary compares two versions' answers and how
	// the accuracy gate reads predictions. Versions pushed before kinds
	// were recorded have none; readers then infer them from Outputs
	// (semantics.Resolve).
	OutputKinds map[string]semantics.Output `json:"output_kinds,omitempty"`
}
