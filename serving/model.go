package serving

import (
	"context"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// Model is one model version loaded into an inference engine. The ONNX
// Runtime implementation (ortModel, ort.go) is the only code of modelgate
// that touches cgo; Session, the batcher and everything above take a
// Model, so that their tests run on a fake one (servingtest.Model) without
// ONNX Runtime.
type Model interface {
	// Info is the model's name, version, provider in effect and signature.
	Info() Info
	// Run runs the model on inputs in signature order that fit the
	// signature (Session checks them) and returns the outputs named, all
	// of them in signature order when outputs is empty. It is safe for
	// concurrent use.
	Run(ctx context.Context, inputs []wire.Tensor, outputs []string) ([]wire.Tensor, error)
	// Close frees the model at once: no Run may be in progress or follow
	// (Session's references see to that).
	Close()
}

// Info is what a model version tells about itself.
type Info struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	Provider string            `json:"provider"`
	Inputs   []wire.TensorSpec `json:"inputs"`
	Outputs  []wire.TensorSpec `json:"outputs"`
	LoadTime time.Duration     `json:"-"`
	// ProviderChoice is how providers auto chose Provider: the warm-up
	// times measured and the reason; nil when the provider came from the
	// configured order.
	ProviderChoice *ProviderChoice `json:"provider_choice,omitempty"`
	// MaxBatchSize is the dynamic batching limit in effect (Session's);
	// 0: off.
	MaxBatchSize int `json:"-"`
	// MaxQueueDelay is the batching delay in effect when MaxBatchSize > 0.
	MaxQueueDelay time.Duration `json:"-"`
}

// ModelOptions name the model version a Model serves.
type ModelOptions struct {
	Name    string
	Version string
}
