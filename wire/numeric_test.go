package wire

import (
	"math"
	"reflect"
	"testing"
)

func TestFloats(t *testing.T) {
	for _, data := range []any{[]float32{1, -2.5}, []float64{1, -2.5}, []int8{1, -2}, []uint64{1, 2}, []int64{1, -2}} {
		got, ok := Floats(data)
		if !ok || len(got) != 2 || got[0] != 1 {
			t.Errorf("Floats(%T) = %v, %v", data, got, ok)
		}
	}
	if _, ok := Floats([]bool{true}); ok {
		t.Error("BOOL data widened to numbers")
	}
	if _, ok := Floats("no"); ok {
		t.Error("a string widened to numbers")
	}
}

func TestNonFinite(t *testing.T) {
	data := []float32{1, float32(math.NaN()), float32(math.Inf(-1)), float32(math.NaN())}
	if i := FirstNonFinite(data); i != 1 {
		t.Errorf("FirstNonFinite = %d, want 1", i)
	}
	if nan, inf := CountNonFinite(data); nan != 2 || inf != 1 {
		t.Errorf("CountNonFinite = %d NaN, %d Inf; want 2, 1", nan, inf)
	}
	if i := FirstNonFinite([]int64{1, 2}); i != -1 {
		t.Errorf("FirstNonFinite of integers = %d", i)
	}
}

func TestCloneSharesNothing(t *testing.T) {
	orig := Tensor{Name: "x", Shape: []int64{2}, Data: []int32{1, 2}}
	c := Clone(orig)
	c.Shape[0], c.Data.([]int32)[0] = 9, 9
	if orig.Shape[0] != 2 || orig.Data.([]int32)[0] != 1 {
		t.Fatal("the clone shares memory with the original")
	}
}

func TestRowsAndConcat(t *testing.T) {
	a := Tensor{Name: "x", Shape: []int64{2, 2}, Data: []float32{1, 2, 3, 4}}
	b := Tensor{Name: "x", Shape: []int64{1, 2}, Data: []float32{5, 6}}
	merged := Concat(nil, []any{a.Data, b.Data})
	if !reflect.DeepEqual(merged, []float32{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("Concat = %v", merged)
	}
	buf := make([]float32, 0, 16)
	if again := Concat(buf, []any{b.Data}).([]float32); &again[0] != &buf[:1][0] {
		t.Error("Concat did not reuse a large enough buffer")
	}
	m := Tensor{Name: "x", Shape: []int64{3, 2}, Data: merged}
	r := Rows(m, 1, 2)
	if !reflect.DeepEqual(r.Shape, []int64{2, 2}) || !reflect.DeepEqual(r.Data, []float32{3, 4, 5, 6}) {
		t.Fatalf("Rows = %v %v", r.Shape, r.Data)
	}
	if s := r.Data.([]float32); cap(s) != len(s) {
		t.Error("Rows leaves room to append over the next rows")
	}
}

func TestFirstUnequal(t *testing.T) {
	nan := math.NaN()
	if i, _, _ := FirstUnequal([]float64{nan, 1}, []float64{nan, 1}); i != -1 {
		t.Errorf("NaN against NaN: %d, want -1 (bit for bit)", i)
	}
	if i, _, _ := FirstUnequal([]float64{0, 1}, []float64{math.Copysign(0, -1), 1}); i != 0 {
		t.Errorf("0 against -0: %d, want 0", i)
	}
	if i, x, y := FirstUnequal([]int64{1, 2, 3}, []int64{1, 2, 4}); i != 2 || x != int64(3) || y != int64(4) {
		t.Errorf("= %d %v %v", i, x, y)
	}
	if i, _, _ := FirstUnequal([]int64{1}, []int32{1}); i != 0 {
		t.Errorf("different types: %d, want 0", i)
	}
}

func TestCheckTensor(t *testing.T) {
	spec := TensorSpec{Name: "x", DType: FP32, Shape: []int64{-1, 2}}
	for _, c := range []struct {
		t  Tensor
		ok bool
	}{
		{Tensor{Name: "x", Shape: []int64{3, 2}, Data: make([]float32, 6)}, true},
		{Tensor{Name: "x", Shape: []int64{3, 2}, Data: make([]float64, 6)}, false},
		{Tensor{Name: "x", Shape: []int64{3, 3}, Data: make([]float32, 9)}, false},
		{Tensor{Name: "x", Shape: []int64{3, 2}, Data: make([]float32, 5)}, false},
		{Tensor{Name: "x", Shape: []int64{-3, 2}, Data: make([]float32, 0)}, false},
	} {
		if err := CheckTensor(spec, c.t); (err == nil) != c.ok {
			t.Errorf("CheckTensor(%v %T) = %v", c.t.Shape, c.t.Data, err)
		}
	}
}
