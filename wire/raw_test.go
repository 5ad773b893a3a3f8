package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// rawCases: for each datatype, data written out byte by byte as the
// protocol describes it (little-endian, row-major; BOOL one byte; BYTES a
// 4-byte little-endian length before each element), and the Go values it
// stands for.
var rawCases = []struct {
	d     DType
	shape []int64
	raw   []byte
	want  any
}{
	{BOOL, []int64{3}, []byte{1, 0, 1}, []bool{true, false, true}},
	{UINT8, []int64{2}, []byte{0x00, 0xff}, []uint8{0, 255}},
	{INT8, []int64{2}, []byte{0x80, 0x7f}, []int8{-128, 127}},
	{UINT16, []int64{2}, []byte{0x01, 0x02, 0xff, 0xff}, []uint16{0x0201, 0xffff}},
	{INT16, []int64{2}, []byte{0xfe, 0xff, 0x00, 0x80}, []int16{-2, math.MinInt16}},
	{UINT32, []int64{1}, []byte{0x78, 0x56, 0x34, 0x12}, []uint32{0x12345678}},
	{INT32, []int64{2}, []byte{0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00}, []int32{-1, 1}},
	{UINT64, []int64{1}, []byte{0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}, []uint64{0x0102030405060708}},
	{INT64, []int64{1, 1}, []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []int64{-3}},
	// 1.0f is 0x3f800000, -2.5f is 0xc0200000.
	{FP32, []int64{1, 2}, []byte{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0}, []float32{1, -2.5}},
	// 0.1 is 0x3fb999999999999a.
	{FP64, []int64{1}, []byte{0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f}, []float64{0.1}},
	// binary16: 1.0 is 0x3c00, -2 is 0xc000.
	{FP16, []int64{2}, []byte{0x00, 0x3c, 0x00, 0xc0}, []Float16{0x3c00, 0xc000}},
	// bfloat16: 1.0 is 0x3f80, -2.5 is 0xc020.
	{BF16, []int64{2}, []byte{0x80, 0x3f, 0x20, 0xc0}, []BFloat16{0x3f80, 0xc020}},
	{BYTES, []int64{3}, []byte{2, 0, 0, 0, 'h', 'i', 0, 0, 0, 0, 3, 0, 0, 0, 0, 'a', 0xff},
		[][]byte{[]byte("hi"), {}, {0, 'a', 0xff}}},
	{FP32, []int64{0, 3}, []byte{}, []float32{}},
}

func TestFromRawEveryDatatype(t *testing.T) {
	for _, c := range rawCases {
		got, err := FromRaw("x", c.d, c.shape, c.raw)
		if err != nil {
			t.Fatalf("%s: %v", c.d, err)
		}
		if got.Name != "x" || !reflect.DeepEqual(got.Shape, c.shape) || !reflect.DeepEqual(got.Data, c.want) {
			t.Errorf("%s: got %#v, want data %#v", c.d, got, c.want)
		}
		if got.DType() != c.d {
			t.Errorf("%s: the tensor says %s", c.d, got.DType())
		}
		if back := AppendRaw([]byte("pre"), got); !bytes.Equal(back, append([]byte("pre"), c.raw...)) {
			t.Errorf("%s: AppendRaw wrote % x, want % x", c.d, back[3:], c.raw)
		}
		if n := RawLen(got); n != len(c.raw) {
			t.Errorf("%s: RawLen %d, want %d", c.d, n, len(c.raw))
		}
	}
}

// TestFromRawInPlace: aligned fixed-width data is used where it lies (the
// tensor aliases the body: no copy of a large input), unaligned data is
// copied, and BOOL is always decoded into memory of its own.
func TestFromRawInPlace(t *testing.T) {
	if !hostLittleEndian {
		t.Skip("only a little-endian host can use the wire's bytes in place")
	}
	buf := make([]byte, 12) // 8-aligned, as every Go allocation of 8 bytes or more
	copy(buf[4:], []byte{0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0})
	aligned, err := FromRaw("x", FP32, []int64{2}, buf[4:])
	if err != nil {
		t.Fatal(err)
	}
	buf[7] = 0x40 // 0x3f800000 (1.0) becomes 0x40800000 (4.0)
	if v := aligned.Data.([]float32); v[0] != 4 || v[1] != -2.5 {
		t.Fatalf("aligned FP32 %v: not the body's memory", v)
	}
	copy(buf[1:], []byte{0, 0, 0x80, 0x3f})
	unaligned, err := FromRaw("x", FP32, []int64{1}, buf[1:5])
	if err != nil {
		t.Fatal(err)
	}
	buf[4] = 0
	if v := unaligned.Data.([]float32)[0]; v != 1 {
		t.Fatalf("unaligned FP32 changed with the body: %v", v)
	}
	b := []byte{1, 0}
	bools, err := FromRaw("x", BOOL, []int64{2}, b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 0
	if v := bools.Data.([]bool); !v[0] {
		t.Fatal("BOOL data changed with the body")
	}
}

// TestRawView: fixed-width data is its own raw form, byte for byte what
// AppendRaw writes, with no copy; BOOL and BYTES have no view.
func TestRawView(t *testing.T) {
	for _, c := range rawCases {
		got, err := FromRaw("x", c.d, c.shape, bytes.Clone(c.raw))
		if err != nil {
			t.Fatal(err)
		}
		v, ok := RawView(got)
		if want := hostLittleEndian && c.d != BOOL && c.d != BYTES; ok != want {
			t.Errorf("%s: view %v, want %v", c.d, ok, want)
			continue
		}
		if ok && !bytes.Equal(v, AppendRaw(nil, got)) {
			t.Errorf("%s: view % x, AppendRaw % x", c.d, v, AppendRaw(nil, got))
		}
	}
	f := []float32{1}
	v, _ := RawView(Tensor{Data: f})
	f[0] = 2
	if hostLittleEndian && !bytes.Equal(v, []byte{0, 0, 0, 0x40}) {
		t.Fatalf("the view is not the tensor's memory: % x", v)
	}
}

func TestFromRawErrors(t *testing.T) {
	for _, c := range []struct {
		d     DType
		shape []int64
		raw   []byte
		want  string
	}{
		{FP32, []int64{1, 3}, make([]byte, 11), "FP32 data of shape [1 3] is 12 bytes (3 × 4), got 11"},
		{FP32, []int64{1, 3}, make([]byte, 13), "is 12 bytes (3 × 4), got 13"},
		{INT64, []int64{2}, make([]byte, 8), "INT64 data of shape [2] is 16 bytes"},
		{FP16, []int64{3}, make([]byte, 5), "FP16 data of shape [3] is 6 bytes"},
		{FP32, []int64{-1, 3}, nil, "negative or too large dimension"},
		{FP32, []int64{1 << 20, 1 << 20}, nil, "negative or too large dimension"},
		{BOOL, []int64{2}, []byte{1, 2}, "BOOL element 1 is the byte 2, want 0 or 1"},
		{BYTES, []int64{2}, []byte{1, 0, 0, 0, 'a'}, "needs at least 8 bytes"},
		{BYTES, []int64{2}, []byte{1, 0, 0, 0, 'a', 0, 0}, "needs at least 8 bytes"},
		{BYTES, []int64{2}, []byte{1, 0, 0, 0, 'a', 0, 0, 0}, "element 1: the data ends inside its 4-byte length (at byte 5 of 8)"},
		{BYTES, []int64{1}, []byte{5, 0, 0, 0, 'a', 'b'}, "element 0 is 5 bytes long, only 2 bytes remain"},
		{BYTES, []int64{1}, []byte{0xff, 0xff, 0xff, 0xff, 'a'}, "element 0 is 4294967295 bytes long"},
		{BYTES, []int64{1}, []byte{1, 0, 0, 0, 'a', 'b'}, "ends at byte 5, 1 bytes follow it"},
		{BYTES, []int64{1 << 30, 2}, []byte{0, 0, 0, 0}, "needs at least 8589934592 bytes"},
	} {
		_, err := FromRaw("x", c.d, c.shape, c.raw)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `input "x"`) {
			t.Errorf("%s %v % x: got %v, want an ErrBadInput with %q", c.d, c.shape, c.raw, err, c.want)
		}
	}
	if _, err := FromRaw("x", "FP8", []int64{1}, []byte{0}); !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), `unknown datatype "FP8"`) {
		t.Errorf("unknown datatype: %v", err)
	}
}

// TestBigEndianPath: on a big-endian host the copied bytes are swapped
// within each element, so that memory holds the native (big-endian) form.
func TestBigEndianPath(t *testing.T) {
	le := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	mem := bytes.Clone(le)
	swapEach(mem, 4)
	want := binary.BigEndian.AppendUint32(nil, binary.LittleEndian.Uint32(le))
	want = binary.BigEndian.AppendUint32(want, binary.LittleEndian.Uint32(le[4:]))
	if !bytes.Equal(mem, want) {
		t.Fatalf("swapEach: % x, want % x", mem, want)
	}
	swapEach(mem, 4)
	if !bytes.Equal(mem, le) {
		t.Fatalf("swapping twice: % x", mem)
	}
	mem = bytes.Clone(le)
	swapEach(mem, 8)
	if binary.BigEndian.Uint64(mem) != binary.LittleEndian.Uint64(le) {
		t.Fatalf("swapEach 8: % x", mem)
	}
}

func FuzzFromRaw(f *testing.F) {
	for _, c := range rawCases {
		f.Add(string(c.d), c.raw, int64(len(c.raw)))
	}
	f.Fuzz(func(t *testing.T, d string, raw []byte, n int64) {
		for _, shape := range [][]int64{{n}, {1, n}, {n, 2}} {
			got, err := FromRaw("x", DType(d), shape, raw)
			if err != nil {
				if !errors.Is(err, ErrBadInput) && !errors.Is(err, ErrRequest) {
					t.Fatalf("%v: not a 400 error", err)
				}
				continue
			}
			if back := AppendRaw(nil, got); !bytes.Equal(back, raw) {
				t.Fatalf("%s %v: round trip % x, want % x", d, shape, back, raw)
			}
		}
	})
}
