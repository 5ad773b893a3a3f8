package wire

import "fmt"

// The input checks every codec shares (the OIP's JSON and binary forms
// here, gRPC's typed and raw contents in wire/grpcwire), each with its one
// message and the error it wraps, so that the server's one error table
// answers them alike over HTTP and gRPC.

// RequestErrorf is an ErrRequest whose message is the formatted detail
// alone: a request's framing as another package's codec checks it.
func RequestErrorf(format string, args ...any) error { return requestErr(format, args...) }

// UnknownInput is the ErrBadInput of an input the model does not take.
func UnknownInput(name string, specs []TensorSpec) error {
	return fmt.Errorf("%w: unknown input %q (the model takes %s)", ErrBadInput, name, Names(specs))
}

// UnknownOutput is the ErrBadInput of an output the model does not have.
func UnknownOutput(name string, specs []TensorSpec) error {
	return fmt.Errorf("%w: unknown output %q (the model has %s)", ErrBadInput, name, Names(specs))
}

// DTypeMismatch is the ErrBadInput of an input of datatype got where the
// model takes want.
func DTypeMismatch(name string, got, want DType) error {
	return fmt.Errorf("%w: input %q: datatype %s does not match the model's %s", ErrBadInput, name, got, want)
}

// UnknownDType is the ErrRequest of a datatype the protocol does not name.
func UnknownDType(name, datatype string) error {
	return requestErr("input %q: unknown datatype %q (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES)", name, datatype)
}

// BadShape is the ErrRequest of a shape ShapeSize refuses.
func BadShape(name string, shape []int64) error {
	return requestErr("input %q: shape %v has a negative or too large dimension", name, shape)
}

// NoValues is the ErrRequest of an input whose shape holds no elements.
func NoValues(name string, shape []int64) error {
	return requestErr("input %q: shape %v holds no values", name, shape)
}

// ValueCount is the ErrRequest of data (in field) whose element count is
// not the shape's.
func ValueCount(name string, shape []int64, want int64, field string, got int64) error {
	return requestErr("input %q: shape %v needs %d values, %s has %d", name, shape, want, field, got)
}

// CheckFinite is the ErrData of an input holding NaN or an infinity
// (FirstNonFinite), nil for finite data and for types without either.
func CheckFinite(t Tensor) error {
	if j := FirstNonFinite(t.Data); j >= 0 {
		return fmt.Errorf("input %q: %w: element %d is NaN or infinite (impute missing values before calling)", t.Name, ErrData, j)
	}
	return nil
}
