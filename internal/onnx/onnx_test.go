package onnx

import (
	"bytes"
	"strings"
	"testing"
)

func TestMarshalRefusesBrokenGraphs(t *testing.T) {
	cases := []struct {
		name string
		m    Model
		want string
	}{
		{"no graph", Model{}, "no graph"},
		{"no outputs", Model{Graph: (&Graph{}).Input("x", Float, 1)}, "no outputs"},
		{"no inputs", Model{Graph: (&Graph{}).Output("y", Float, 1)}, "no inputs"},
		{"short tensor", Model{Graph: (&Graph{}).Input("x", Float, 2).Output("y", Float, 2).
			Init(FloatTensor("w", []int64{2, 2}, []float32{1, 2, 3}))}, `has 3 values for dims [2 2] (want 4)`},
		{"unnamed initializer", Model{Graph: (&Graph{}).Input("x", Float, 2).Output("y", Float, 2).
			Init(FloatTensor("", []int64{1}, []float32{1}))}, "without a name"},
		{"unsupported type", Model{Graph: (&Graph{}).Input("x", Float, 2).Output("y", Float, 2).
			Init(Tensor{Name: "s", Type: String, Dims: []int64{1}})}, "not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.m.Marshal(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// The writer is deterministic: the same model gives the same bytes, with
// metadata in key order whatever the map's iteration order.
func TestMarshalDeterministic(t *testing.T) {
	build := func() []byte {
		g := (&Graph{Name: "g"}).Input("x", Float, -1, 3).Output("y", Float, -1, 3).
			Init(FloatTensor("b", []int64{3}, []float32{1, 2, 3})).
			Add("Add", []string{"x", "b"}, []string{"y"})
		m := Model{Graph: g, ProducerName: "test", Metadata: map[string]string{"z": "1", "a": "2", "m": "3"}}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := build()
	for i := 0; i < 20; i++ {
		if !bytes.Equal(build(), first) {
			t.Fatal("two marshals of one model differ")
		}
	}
	if a, z := bytes.Index(first, []byte("a\x12")), bytes.Index(first, []byte("z\x12")); a < 0 || z < 0 || a > z {
		t.Fatalf("metadata not in key order (a at %d, z at %d)", a, z)
	}
}
