package catalog

import (
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// Signature loads a model with ONNX Runtime and returns the input and
// output signature the registry records in its manifest. A model that
// ONNX Runtime cannot load, or that has tensors of a type modelgate does
// not serve, is refused here, before it reaches the registry.
func Signature(rt *serving.Runtime, model []byte) (inputs, outputs []wire.TensorSpec, err error) {
	s, err := rt.NewSession(model, serving.SessionOptions{Name: "inspect"})
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	return s.Inputs(), s.Outputs(), nil
}
