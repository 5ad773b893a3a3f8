package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
	"google.golang.org/protobuf/proto"
)

// The large-input comparison: one 1x3x320x320 FP32 image (1.2 MiB) per
// request, through two models written with the project's ONNX writer.
const imageSide = 320

// Contenders of the large-input comparison; the in-process loop is cLoop1.
const (
	cImgJSON   = "modelgate /v2 infer, JSON"
	cImgBinary = "modelgate /v2 infer, binary tensors"
	cImgGRPC   = "modelgate gRPC ModelInfer, raw contents"
)

var imageOrder = []string{cLoop1, cImgJSON, cImgBinary, cImgGRPC}

// imageModel is a model of the large-input comparison.
type imageModel struct {
	workload
	input, output string
}

// prepareImages writes the two image models and pushes them to the bench's
// registry (prepare made it) as version 1:
//   - "image-scale": image / 255, elementwise: as cheap as a model can be,
//     so what a request costs beyond the loop is what carrying 1.2 MiB in
//     and out costs;
//   - "image-detector-small" and "image-detector": a convolutional network
//     shaped like a text detector (four 3x3 convolutions down to 1/4 of
//     the side, a 1x1 head, a sigmoid map scaled back up to the input's
//     size), seeded random weights, at two widths: about 1 and 9 GFLOP a
//     run. A request's added cost is about the same for both; what it is
//     worth beside the run depends on the run, so both are shown.
func prepareImages(o options) ([]imageModel, error) {
	dir := filepath.Join(o.work, "models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	small, err := detectorONNX("image-detector-small", imageSide, 16)
	if err != nil {
		return nil, err
	}
	large, err := detectorONNX("image-detector", imageSide, 48)
	if err != nil {
		return nil, err
	}
	models := []struct {
		m     imageModel
		bytes []byte
	}{
		{imageModel{workload{name: "image-scale", title: "elementwise image / 255 (testmodels.Image: what carrying the tensors costs)"}, "image", "scaled"},
			testmodels.Image(imageSide, imageSide)},
		{imageModel{workload{name: "image-detector-small", title: "small text-detector-shaped network (widths 16-32-64-64, about 1 GFLOP a run)"}, "image", "probability_map"},
			small},
		{imageModel{workload{name: "image-detector", title: "text-detector-shaped network (widths 48-96-192-192, about 9 GFLOP a run: the cost class of the PaddleOCR detector the protocol work was measured on)"}, "image", "probability_map"},
			large},
	}
	bucket, err := registry.NewLocal(filepath.Join(o.work, "registry"))
	if err != nil {
		return nil, err
	}
	reg := registry.New(bucket, registry.Options{})
	rt, err := serving.NewRuntime(serving.Options{Providers: []string{serving.ProviderCPU}, IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	var out []imageModel
	for _, m := range models {
		m.m.onnx = filepath.Join(dir, m.m.name+".onnx")
		if err := os.WriteFile(m.m.onnx, m.bytes, 0o644); err != nil {
			return nil, err
		}
		ins, outs, err := catalog.Signature(rt, m.bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.m.name, err)
		}
		if _, _, err := store.Push(context.Background(), reg, registry.PushRequest{Name: m.m.name, Version: "1", Model: m.bytes, Inputs: ins, Outputs: outs}, time.Now()); err != nil {
			return nil, err
		}
		out = append(out, m.m)
	}
	return out, nil
}

// detectorONNX is the detector-shaped network for side x side images, its
// first convolution width wide (then 2, 4 and 4 times that).
func detectorONNX(name string, side, width int64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(20261207, uint64(width)))
	g := &onnx.Graph{Name: name}
	g.Input("image", onnx.Float, -1, 3, side, side).Output("probability_map", onnx.Float, -1, 1, side, side)
	x := "image"
	layers := []struct{ in, out, k, stride int64 }{{3, width, 3, 1}, {width, 2 * width, 3, 2}, {2 * width, 4 * width, 3, 2}, {4 * width, 4 * width, 3, 1}, {4 * width, 1, 1, 1}}
	for i, l := range layers {
		w := make([]float32, l.out*l.in*l.k*l.k)
		scale := math.Sqrt(2 / float64(l.in*l.k*l.k)) // He: activations keep their scale
		for j := range w {
			w[j] = float32(rng.NormFloat64() * scale)
		}
		wn, bn, y := fmt.Sprintf("W%d", i), fmt.Sprintf("B%d", i), fmt.Sprintf("conv%d", i)
		g.Init(onnx.FloatTensor(wn, []int64{l.out, l.in, l.k, l.k}, w)).Init(onnx.FloatTensor(bn, []int64{l.out}, make([]float32, l.out)))
		pad := l.k / 2
		g.Add("Conv", []string{x, wn, bn}, []string{y}, onnx.AttrInts("kernel_shape", l.k, l.k),
			onnx.AttrInts("strides", l.stride, l.stride), onnx.AttrInts("pads", pad, pad, pad, pad))
		x = y
		if i < len(layers)-1 {
			g.Add("Relu", []string{y}, []string{y + "_relu"})
			x = y + "_relu"
		}
	}
	g.Add("Sigmoid", []string{x}, []string{"small_map"}).
		Init(onnx.FloatTensor("up", []int64{4}, []float32{1, 1, 4, 4})).
		Add("Resize", []string{"small_map", "", "up"}, []string{"probability_map"}, onnx.AttrString("mode", "nearest"))
	return (&onnx.Model{Graph: g, ProducerName: "modelgate bench", DocString: "a text-detector-shaped convolutional network, seeded random weights"}).Marshal()
}

// imagePixels is the one image every request carries: a normalized
// image's values.
func imagePixels() []float32 {
	px := make([]float32, 3*imageSide*imageSide)
	for i := range px {
		px[i] = float32(i%251) / 251
	}
	return px
}

// benchImages measures each image model in-process and through one
// gateway over JSON, binary HTTP and gRPC, every protocol driven by the
// same load generator (bench load) at options.imageConc. The gateway's
// intra-op threads spin as the loop's do (ort.intra_op_spin: true): the
// comparison is of what the protocols cost, not of how ONNX Runtime's
// threads wait between runs (the default, not spinning, costs a 40 ms
// convolutional run about a fifth more CPU here).
func benchImages(ctx context.Context, o options, models []imageModel) ([]result, error) {
	px := imagePixels()
	shape := []int64{1, 3, imageSide, imageSide}
	var routes []route
	var names []string
	for _, m := range models {
		names = append(names, m.name)
		path := "/v2/models/" + m.name + "/infer"
		jsonBody, err := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": m.input, "shape": shape, "datatype": "FP32", "data": px}}})
		if err != nil {
			return nil, err
		}
		header, err := json.Marshal(map[string]any{
			"parameters": map[string]any{"binary_data_output": true},
			"inputs":     []map[string]any{{"name": m.input, "shape": shape, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": 4 * len(px)}}},
		})
		if err != nil {
			return nil, err
		}
		binBody := append(header, wire.AppendRaw(nil, wire.Tensor{Data: px})...)
		grpcBody, err := proto.Marshal(&grpcapi.ModelInferRequest{ModelName: m.name,
			Inputs:           []*grpcapi.ModelInferRequest_InferInputTensor{{Name: m.input, Datatype: "FP32", Shape: shape}},
			RawInputContents: [][]byte{wire.AppendRaw(nil, wire.Tensor{Data: px})}})
		if err != nil {
			return nil, err
		}
		routes = append(routes,
			route{contender: cImgJSON, workload: m.name, path: path, body: jsonBody, load: "http", conc: o.imageConc},
			route{contender: cImgBinary, workload: m.name, path: path, body: binBody, headerLen: len(header), load: "http", conc: o.imageConc},
			route{contender: cImgGRPC, workload: m.name, body: grpcBody, load: "grpc", conc: o.imageConc})
	}
	loops := func() ([]result, error) {
		var rs []result
		for _, m := range models {
			r, err := loop(ctx, o, m.workload, 1)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}
	before, err := loops()
	if err != nil {
		return nil, err
	}
	p := proc{name: "gateway", ready: "/readyz", cmd: gatewayCmd(o, "image", names, 0, true), routes: routes}
	results, err := benchProc(ctx, o, workload{name: "image"}, p)
	if err != nil {
		return nil, err
	}
	after, err := loops()
	if err != nil {
		return nil, err
	}
	return append(results, bestOf(before, after)...), nil
}
