package catalog

import (
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// Signature loads a model and returns the input and output signature the
// registry records in its manifest. A model that the loader (ONNX Runtime)
// cannot load, or that has tensors of a type modelgate does not serve, is
// refused here, before it reaches the registry.
func Signature(l Loader, model []byte) (inputs, outputs []wire.TensorSpec, err error) {
	m, err := l.Load(model, serving.ModelOptions{Name: "inspect"})
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	info := m.Info()
	return info.Inputs, info.Outputs, nil
}
