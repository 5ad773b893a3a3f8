package catalog

import (
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
)

// Signature loads a model with ONNX Runtime and returns the input and
// output signature the registry records in its manifest. A model that
// ONNX Runtime cannot load, or that has tensors of a type modelgate does
// not serve, is refused here, before it reaches the registry.
func Signature(rt *serving.Runtime, model []byte) (inputs, outputs []registry.TensorSpec, err error) {
	s, err := rt.NewSession(model, serving.SessionOptions{Name: "inspect"})
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	return RegistrySpecs(s.Inputs()), RegistrySpecs(s.Outputs()), nil
}

// RegistrySpecs converts serving's tensor specs to the registry's.
func RegistrySpecs(specs []serving.TensorSpec) []registry.TensorSpec {
	out := make([]registry.TensorSpec, len(specs))
	for i, sp := range specs {
		out[i] = registry.TensorSpec{Name: sp.Name, Datatype: string(sp.DType), Shape: sp.Shape}
	}
	return out
}
