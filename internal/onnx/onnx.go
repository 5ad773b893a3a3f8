// Package onnx writes ONNX models from Go.
//
// It encodes the subset of onnx.proto that inference graphs need (a model, a
// graph, nodes with attributes, tensors, typed inputs and outputs, metadata)
// straight to the protobuf wire format with google.golang.org/protobuf's
// protowire, so that the project can produce real models (the demo model,
// test models) without Python or generated code. Field numbers follow
// onnx/onnx.proto (IR version 8).
package onnx

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is an ONNX TensorProto.DataType.
type DataType int32

// The tensor element types, with their values in onnx.proto.
const (
	Float   DataType = 1
	Uint8   DataType = 2
	Int8    DataType = 3
	Uint16  DataType = 4
	Int16   DataType = 5
	Int32   DataType = 6
	Int64   DataType = 7
	String  DataType = 8
	Bool    DataType = 9
	Float16 DataType = 10
	Double  DataType = 11
	Uint32  DataType = 12
	Uint64  DataType = 13
	// BFloat16 is bfloat16 (onnx.proto's BFLOAT16).
	BFloat16 DataType = 16
)

// Default versions written when a Model leaves them zero.
const (
	DefaultIRVersion = 8
	DefaultOpset     = 17
)

// Model is an ONNX ModelProto.
type Model struct {
	Graph           *Graph
	IRVersion       int64             // DefaultIRVersion when zero
	Opset           int64             // default-domain opset; DefaultOpset when zero
	ProducerName    string            // e.g. "modelgate"
	ProducerVersion string            //
	ModelVersion    int64             //
	DocString       string            //
	Metadata        map[string]string // metadata_props, written in key order
}

// Graph is an ONNX GraphProto built node by node.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is one operator application.
type Node struct {
	OpType  string
	Name    string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// ValueInfo names a graph input or output with its element type and shape.
// A negative dimension is dynamic; it is written as the symbolic dimension
// DimNames[i] when given, else "N" for the first axis and "d<i>" otherwise.
type ValueInfo struct {
	Name     string
	Type     DataType
	Shape    []int64
	DimNames []string
}

// Tensor is a constant tensor (an initializer or a tensor attribute). Exactly
// one of the data slices matching Type is used; Raw, when set, wins.
type Tensor struct {
	Name    string
	Type    DataType
	Dims    []int64
	Floats  []float32
	Doubles []float64
	Int64s  []int64
	Int32s  []int32 // also carries INT8/16, UINT8/16, BOOL per onnx.proto
	Uint64s []uint64
	Raw     []byte
}

// Attr is a node attribute. Build them with the helpers below.
type Attr struct {
	name   string
	kind   int32
	f      float32
	i      int64
	s      []byte
	t      *Tensor
	floats []float32
	ints   []int64
}

// AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrString = 3
	attrTensor = 4
	attrFloats = 6
	attrInts   = 7
)

// AttrInt is an integer attribute, e.g. AttrInt("axis", 1).
func AttrInt(name string, v int64) Attr { return Attr{name: name, kind: attrInt, i: v} }

// AttrFloat is a float attribute, e.g. AttrFloat("alpha", 0.01).
func AttrFloat(name string, v float32) Attr { return Attr{name: name, kind: attrFloat, f: v} }

// AttrString is a string attribute.
func AttrString(name, v string) Attr { return Attr{name: name, kind: attrString, s: []byte(v)} }

// AttrInts is a list-of-integers attribute, e.g. AttrInts("perm", 1, 0).
func AttrInts(name string, v ...int64) Attr { return Attr{name: name, kind: attrInts, ints: v} }

// AttrFloats is a list-of-floats attribute.
func AttrFloats(name string, v ...float32) Attr {
	return Attr{name: name, kind: attrFloats, floats: v}
}

// AttrTensor is a tensor attribute (Constant's "value").
func AttrTensor(name string, t Tensor) Attr { return Attr{name: name, kind: attrTensor, t: &t} }

// FloatTensor is an FP32 tensor of the given shape.
func FloatTensor(name string, dims []int64, data []float32) Tensor {
	return Tensor{Name: name, Type: Float, Dims: dims, Floats: data}
}

// Int64Tensor is an INT64 tensor of the given shape.
func Int64Tensor(name string, dims []int64, data []int64) Tensor {
	return Tensor{Name: name, Type: Int64, Dims: dims, Int64s: data}
}

// Add appends a node and returns the graph for chaining.
func (g *Graph) Add(op string, inputs, outputs []string, attrs ...Attr) *Graph {
	g.Nodes = append(g.Nodes, Node{OpType: op, Name: fmt.Sprintf("%s_%d", op, len(g.Nodes)), Inputs: inputs, Outputs: outputs, Attrs: attrs})
	return g
}

// Input declares a graph input.
func (g *Graph) Input(name string, t DataType, shape ...int64) *Graph {
	g.Inputs = append(g.Inputs, ValueInfo{Name: name, Type: t, Shape: shape})
	return g
}

// Output declares a graph output.
func (g *Graph) Output(name string, t DataType, shape ...int64) *Graph {
	g.Outputs = append(g.Outputs, ValueInfo{Name: name, Type: t, Shape: shape})
	return g
}

// Init adds an initializer (a named constant).
func (g *Graph) Init(t Tensor) *Graph {
	g.Initializers = append(g.Initializers, t)
	return g
}

// Marshal encodes the model as ONNX protobuf bytes.
func (m *Model) Marshal() ([]byte, error) {
	if m.Graph == nil {
		return nil, errors.New("onnx: model has no graph")
	}
	if err := m.Graph.check(); err != nil {
		return nil, err
	}
	ir, opset := m.IRVersion, m.Opset
	if ir == 0 {
		ir = DefaultIRVersion
	}
	if opset == 0 {
		opset = DefaultOpset
	}
	var b []byte
	b = appendVarintField(b, 1, uint64(ir))
	b = appendStringField(b, 2, m.ProducerName)
	b = appendStringField(b, 3, m.ProducerVersion)
	if m.ModelVersion != 0 {
		b = appendVarintField(b, 5, uint64(m.ModelVersion))
	}
	b = appendStringField(b, 6, m.DocString)
	b = appendMessage(b, 7, m.Graph.marshal())
	var op []byte
	op = appendStringField(op, 1, "")
	op = appendVarintField(op, 2, uint64(opset))
	b = appendMessage(b, 8, op)
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var e []byte
		e = appendStringField(e, 1, k)
		e = appendStringField(e, 2, m.Metadata[k])
		b = appendMessage(b, 14, e)
	}
	return b, nil
}

// check catches the mistakes ONNX Runtime would report less clearly.
func (g *Graph) check() error {
	if len(g.Inputs) == 0 && len(g.Initializers) == 0 {
		return errors.New("onnx: graph has no inputs")
	}
	if len(g.Outputs) == 0 {
		return errors.New("onnx: graph has no outputs")
	}
	for _, t := range g.Initializers {
		if t.Name == "" {
			return errors.New("onnx: initializer without a name")
		}
		if err := t.check(); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tensor) check() error {
	if t.Raw != nil {
		return nil
	}
	want := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return fmt.Errorf("onnx: tensor %q has negative dimension %d", t.Name, d)
		}
		want *= d
	}
	var got int
	switch t.Type {
	case Float:
		got = len(t.Floats)
	case Double:
		got = len(t.Doubles)
	case Int64:
		got = len(t.Int64s)
	case Uint32, Uint64:
		got = len(t.Uint64s)
	case Int32, Int16, Int8, Uint16, Uint8, Bool, Float16:
		got = len(t.Int32s)
	default:
		return fmt.Errorf("onnx: tensor %q: element type %d is not supported by this writer", t.Name, t.Type)
	}
	if int64(got) != want {
		return fmt.Errorf("onnx: tensor %q has %d values for dims %v (want %d)", t.Name, got, t.Dims, want)
	}
	return nil
}

func (g *Graph) marshal() []byte {
	var b []byte
	for _, n := range g.Nodes {
		b = appendMessage(b, 1, n.marshal())
	}
	b = appendStringField(b, 2, g.Name)
	for _, t := range g.Initializers {
		b = appendMessage(b, 5, t.marshal())
	}
	for _, v := range g.Inputs {
		b = appendMessage(b, 11, v.marshal())
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, 12, v.marshal())
	}
	return b
}

func (n *Node) marshal() []byte {
	var b []byte
	for _, in := range n.Inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.Outputs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendStringField(b, 3, n.Name)
	b = appendStringField(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, a.marshal())
	}
	return b
}

func (a *Attr) marshal() []byte {
	var b []byte
	b = appendStringField(b, 1, a.name)
	switch a.kind {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarintField(b, 3, uint64(a.i))
	case attrString:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, a.s)
	case attrTensor:
		b = appendMessage(b, 5, a.t.marshal())
	case attrFloats:
		b = appendPackedFloats(b, 7, a.floats)
	case attrInts:
		b = appendPackedVarints(b, 8, a.ints)
	}
	b = appendVarintField(b, 20, uint64(a.kind))
	return b
}

func (t *Tensor) marshal() []byte {
	var b []byte
	b = appendPackedVarints(b, 1, t.Dims)
	b = appendVarintField(b, 2, uint64(t.Type))
	b = appendStringField(b, 8, t.Name)
	if t.Raw != nil {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		return protowire.AppendBytes(b, t.Raw)
	}
	switch t.Type {
	case Float:
		b = appendPackedFloats(b, 4, t.Floats)
	case Double:
		var p []byte
		for _, v := range t.Doubles {
			p = protowire.AppendFixed64(p, math.Float64bits(v))
		}
		if len(p) > 0 {
			b = protowire.AppendTag(b, 10, protowire.BytesType)
			b = protowire.AppendBytes(b, p)
		}
	case Int64:
		b = appendPackedVarints(b, 7, t.Int64s)
	case Uint32, Uint64:
		var p []byte
		for _, v := range t.Uint64s {
			p = protowire.AppendVarint(p, v)
		}
		if len(p) > 0 {
			b = protowire.AppendTag(b, 11, protowire.BytesType)
			b = protowire.AppendBytes(b, p)
		}
	default: // INT32 and the narrower integer types, BOOL, FLOAT16 bits
		var p []byte
		for _, v := range t.Int32s {
			p = protowire.AppendVarint(p, uint64(int64(v)))
		}
		if len(p) > 0 {
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			b = protowire.AppendBytes(b, p)
		}
	}
	return b
}

func (v *ValueInfo) marshal() []byte {
	var shape []byte
	for i, d := range v.Shape {
		var dim []byte
		if d >= 0 { // written even when zero: dim_value is a oneof member
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d))
		} else {
			name := fmt.Sprintf("d%d", i)
			if i == 0 {
				name = "N"
			}
			if i < len(v.DimNames) && v.DimNames[i] != "" {
				name = v.DimNames[i]
			}
			dim = appendStringField(dim, 2, name)
		}
		shape = appendMessage(shape, 1, dim)
	}
	var tensor []byte
	tensor = appendVarintField(tensor, 1, uint64(v.Type))
	tensor = protowire.AppendTag(tensor, 2, protowire.BytesType) // a scalar has an empty but present shape
	tensor = protowire.AppendBytes(tensor, shape)
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	var b []byte
	b = appendStringField(b, 1, v.Name)
	b = appendMessage(b, 2, typ)
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendPackedVarints(b []byte, num protowire.Number, vs []int64) []byte {
	if len(vs) == 0 {
		return b
	}
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

func appendPackedFloats(b []byte, num protowire.Number, vs []float32) []byte {
	if len(vs) == 0 {
		return b
	}
	p := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		p = protowire.AppendFixed32(p, math.Float32bits(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}
