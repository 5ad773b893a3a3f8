package wire

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeData(t *testing.T) {
	cases := []struct {
		name  string
		raw   string
		dt    DType
		data  any
		shape []int64
		err   string
	}{
		{"flat fp32", `[1, 2.5, -3e2]`, FP32, []float32{1, 2.5, -300}, []int64{3}, ""},
		{"nested", `[[1,2],[3,4],[5,6]]`, INT64, []int64{1, 2, 3, 4, 5, 6}, []int64{3, 2}, ""},
		{"deep", `[[[1],[2]],[[3],[4]]]`, INT8, []int8{1, 2, 3, 4}, []int64{2, 2, 1}, ""},
		{"empty", `[]`, FP32, []float32{}, []int64{0}, ""},
		{"whitespace", " \n[ 1 ,\t2 ]\r\n", UINT16, []uint16{1, 2}, []int64{2}, ""},
		{"integral float for int", `[3.0, 1e2]`, INT32, []int32{3, 100}, []int64{2}, ""},
		{"bool", `[true,false]`, BOOL, []bool{true, false}, []int64{2}, ""},
		{"int64 extremes", `[-9223372036854775808, 9223372036854775807]`, INT64, []int64{math.MinInt64, math.MaxInt64}, []int64{2}, ""},
		{"uint64 max", `[18446744073709551615]`, UINT64, []uint64{math.MaxUint64}, []int64{1}, ""},
		{"negative zero uint", `[-0]`, UINT8, []uint8{0}, []int64{1}, ""},
		{"fraction for int", `[1.5]`, INT32, nil, nil, "must be integers"},
		{"int8 overflow", `[128]`, INT8, nil, nil, "out of range for INT8"},
		{"uint negative", `[-1]`, UINT32, nil, nil, "out of range for UINT32"},
		{"fp32 overflow", `[3.5e38]`, FP32, nil, nil, "out of range for FP32"},
		{"fp64 overflow", `[1e309]`, FP64, nil, nil, "out of range for FP64"},
		{"NaN token", `[NaN]`, FP32, nil, nil, "non-finite value NaN"},
		{"Infinity token", `[-Infinity]`, FP64, nil, nil, "non-finite value -Infinity"},
		{"string", `["1"]`, FP32, nil, nil, `got the string "1"`},
		{"null", `[null]`, INT64, nil, nil, "null is not a INT64 value"},
		{"number for bool", `[1]`, BOOL, nil, nil, "BOOL data must be true or false"},
		{"bool for number", `[true]`, FP32, nil, nil, "got a boolean"},
		{"hex", `[0x10]`, INT32, nil, nil, "must be numbers"},
		{"leading zero", `[01]`, INT32, nil, nil, "must be numbers"},
		{"plus sign", `[+1]`, FP32, nil, nil, "must be numbers"},
		{"ragged", `[[1,2],[3]]`, FP32, nil, nil, "ragged array"},
		{"mixed", `[[1,2],3]`, FP32, nil, nil, "ragged array"},
		{"mixed first", `[1,[2,3]]`, FP32, nil, nil, "ragged array"},
		{"object", `[{"a":1}]`, FP32, nil, nil, "objects are not tensor values"},
		{"not array", `{"a":1}`, FP32, nil, nil, "must be a JSON array"},
		{"scalar", `3`, FP32, nil, nil, "must be a JSON array"},
		{"unterminated", `[1,2`, FP32, nil, nil, "unterminated array"},
		{"trailing comma", `[1,2,]`, FP32, nil, nil, "expected a value"},
		{"trailing data", `[1,2] x`, FP32, nil, nil, "after the data array"},
		{"missing comma", `[1 2]`, FP32, nil, nil, "expected , or ]"},
		{"too deep", strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40), FP32, nil, nil, "nested deeper than 32"},
		{"fp16", `[1, -2.5, 65504, 6e-8, 0.1]`, FP16, []Float16{0x3c00, 0xc100, 0x7bff, 0x0001, 0x2e66}, []int64{5}, ""},
		{"fp16 overflow", `[65520]`, FP16, nil, nil, "out of range for FP16"},
		{"fp16 string", `["1"]`, FP16, nil, nil, `got the string "1"`},
		{"bf16", `[1, -2.5, 3.0e38]`, BF16, []BFloat16{0x3f80, 0xc020, 0x7f62}, []int64{3}, ""},
		{"bf16 overflow", `[3.4e38]`, BF16, nil, nil, "out of range for BF16"},
		{"bytes", `["hi", "", "\u00e9\n"]`, BYTES, [][]byte{[]byte("hi"), {}, []byte("é\n")}, []int64{3}, ""},
		{"bytes nested", `[["a"],["b"]]`, BYTES, [][]byte{[]byte("a"), []byte("b")}, []int64{2, 1}, ""},
		{"bytes number", `[1]`, BYTES, nil, nil, "BYTES data must be strings, got 1"},
		{"bytes bad escape", `["\x"]`, BYTES, nil, nil, "not a valid JSON string"},
		{"unknown type", `[1]`, "FP8", nil, nil, "FP8 is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, shape, err := DecodeData([]byte(c.raw), c.dt, 4)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrData) {
					t.Fatalf("err = %v, want ErrData saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(data, c.data) || !reflect.DeepEqual(shape, c.shape) {
				t.Fatalf("got %v %v, want %v %v", data, shape, c.data, c.shape)
			}
		})
	}
}

func TestAppendDataNested(t *testing.T) {
	tensor := Tensor{Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	if got := string(AppendData(nil, tensor, true)); got != "[[1,2,3],[4,5,6]]" {
		t.Fatal(got)
	}
	if got := string(AppendData(nil, tensor, false)); got != "[1,2,3,4,5,6]" {
		t.Fatal(got)
	}
	deep := Tensor{Shape: []int64{2, 1, 2}, Data: []bool{true, false, false, true}}
	if got := string(AppendData(nil, deep, true)); got != "[[[true,false]],[[false,true]]]" {
		t.Fatal(got)
	}
	// float32 values print in their shortest round-tripping form.
	f := Tensor{Shape: []int64{1}, Data: []float32{0.1}}
	if got := string(AppendData(nil, f, true)); got != "[0.1]" {
		t.Fatal(got)
	}
}

// FuzzDecodeInfer: no input makes the infer decoders panic, and whatever
// they accept is self-consistent (data count equals the shape's product).
func FuzzDecodeInfer(f *testing.F) {
	seeds := []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[1,2],[3,4]]}],"outputs":[{"name":"y"}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[true]}]}`,
		`{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT8","data":[255,0,1.0]}]}`,
		`{"inputs":[{"name":"x","shape":[-1],"datatype":"FP64","data":[1e308]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[NaN, 1]}]}`,
		`{"inputs":[]}`, `{`, `[]`, `null`, `{"inputs":[{"data":[[[]]]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeInferRequest(body)
		if err != nil {
			return
		}
		for _, in := range req.Inputs {
			d := DType(in.Datatype)
			if !d.Supported() {
				continue
			}
			size, ok := ShapeSize(in.Shape)
			if !ok {
				continue
			}
			data, nest, err := DecodeData(in.Data, d, size)
			if err != nil {
				if !errors.Is(err, ErrData) {
					t.Fatalf("DecodeData error not ErrData: %v", err)
				}
				continue
			}
			n := (Tensor{Data: data}).Len()
			prod, ok := ShapeSize(nest)
			if !ok || int64(n) != prod {
				t.Fatalf("decoded %d values but nesting %v", n, nest)
			}
			if dt, _ := (Tensor{Data: data}).DType(), 0; dt != d {
				t.Fatalf("decoded %s as %s", d, dt)
			}
		}
	})
}

// FuzzDecodePredict: the /predict decoder and tensor builder never panic
// and produce tensors whose data fits their shape.
func FuzzDecodePredict(f *testing.F) {
	for _, s := range []string{
		`{"features":[1,2,3,4]}`, `{"instances":[[1,2,3,4],[5,6,7,8]]}`, `{"instances":[]}`,
		`{"features":[[1,2],[3,4]]}`, `{"features":[1,2,3,4],"instances":[[1]]}`, `{"feature":[1]}`,
		`{"features":[1e39,2,3,4]}`, `{"instances":[[1,2,3,4],[5,6,7]]}`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	specs := []TensorSpec{
		{Name: "features", DType: FP32, Shape: []int64{-1, 4}},
		{Name: "img", DType: UINT8, Shape: []int64{-1, 2, 2}},
		{Name: "seq", DType: INT64, Shape: []int64{-1, -1}},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePredictRequest(body, "")
		if err != nil {
			return
		}
		for _, spec := range specs {
			tensor, err := PredictTensor(req, spec)
			if err != nil {
				continue
			}
			if err := CheckTensor(spec, tensor); err != nil {
				t.Fatalf("predictTensor built a tensor its spec refuses: %v", err)
			}
		}
	})
}
