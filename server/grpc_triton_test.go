package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/serving/servingtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// getJSON GETs (or POSTs, with a body) path and decodes the answer into v.
func (g *gateway) getJSON(method, path string, body any, v any) {
	g.t.Helper()
	code, raw := g.raw(method, path, body)
	if code != 200 {
		g.t.Fatalf("%s %s: %d %s", method, path, code, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// ModelConfig, ModelStatistics and RepositoryIndex answer what their HTTP
// routes answer, as protobuf messages.
func TestGRPCTritonExtensions(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}, {"other", "1", servingtest.Scaled(1)}},
		withBatchingOf("breast-cancer", 8, 2*time.Millisecond))
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)

	cfg, err := c.ModelConfig(ctx, &grpcapi.ModelConfigRequest{Name: "breast-cancer"})
	if err != nil {
		t.Fatal(err)
	}
	var httpCfg tritonConfig
	g.getJSON("GET", "/v2/models/breast-cancer/config", nil, &httpCfg)
	if !proto.Equal(cfg.Config, configMessage(httpCfg)) {
		t.Fatalf("ModelConfig\n got %v\nHTTP %+v", cfg.Config, httpCfg)
	}
	want := &grpcapi.ModelConfig{
		Name: "breast-cancer", Platform: "onnxruntime_onnx", Backend: "onnxruntime", MaxBatchSize: 8,
		Input: []*grpcapi.ModelInput{{Name: "features", DataType: grpcapi.DataType_TYPE_FP32, Dims: []int64{30}}},
		Output: []*grpcapi.ModelOutput{
			{Name: "label", DataType: grpcapi.DataType_TYPE_INT64, Dims: []int64{}},
			{Name: "probabilities", DataType: grpcapi.DataType_TYPE_FP32, Dims: []int64{2}},
		},
		SchedulingChoice: &grpcapi.ModelConfig_DynamicBatching{DynamicBatching: &grpcapi.ModelDynamicBatching{MaxQueueDelayMicroseconds: 2000}},
		InstanceGroup:    []*grpcapi.ModelInstanceGroup{{Name: "breast-cancer_0", Kind: grpcapi.ModelInstanceGroup_KIND_CPU, Count: 1}},
		Parameters:       map[string]*grpcapi.ModelParameter{"modelgate_version": {StringValue: "1"}, "modelgate_provider": {StringValue: "cpu"}},
	}
	if !proto.Equal(cfg.Config, want) {
		t.Fatalf("ModelConfig\n got %v\nwant %v", cfg.Config, want)
	}
	if cfg, err := c.ModelConfig(ctx, &grpcapi.ModelConfigRequest{Name: "other", Version: "1"}); err != nil || cfg.Config.MaxBatchSize != 0 ||
		cfg.Config.GetDynamicBatching() != nil || len(cfg.Config.Input[0].Dims) != 2 {
		t.Fatalf("ModelConfig of an unbatched model: %v %v", cfg, err)
	}
	_, err = c.ModelConfig(ctx, &grpcapi.ModelConfigRequest{Name: "nope"})
	wantCode(t, "ModelConfig of an unknown model", err, codes.NotFound, "nope")

	for range 3 {
		if _, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", malignant, benign)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, version, path string }{
		{"", "", "/v2/models/stats"},
		{"breast-cancer", "", "/v2/models/breast-cancer/stats"},
		{"breast-cancer", "1", "/v2/models/breast-cancer/versions/1/stats"},
	} {
		st, err := c.ModelStatistics(ctx, &grpcapi.ModelStatisticsRequest{Name: tc.name, Version: tc.version})
		if err != nil {
			t.Fatal(err)
		}
		var httpStats tritonStats
		g.getJSON("GET", tc.path, nil, &httpStats)
		if len(st.ModelStats) != len(httpStats.ModelStats) {
			t.Fatalf("%s: %d statistics over gRPC, %d over HTTP", tc.path, len(st.ModelStats), len(httpStats.ModelStats))
		}
		for i := range st.ModelStats {
			if !proto.Equal(st.ModelStats[i], statsMessage(httpStats.ModelStats[i])) {
				t.Fatalf("%s:\n got %v\nHTTP %+v", tc.path, st.ModelStats[i], httpStats.ModelStats[i])
			}
		}
	}
	st, err := c.ModelStatistics(ctx, &grpcapi.ModelStatisticsRequest{Name: "breast-cancer"})
	if err != nil || len(st.ModelStats) != 1 || st.ModelStats[0].InferenceCount != 6 || st.ModelStats[0].InferenceStats.Success.Count != 3 || st.ModelStats[0].LastInference == 0 {
		t.Fatalf("three requests of two rows: %v %v", st, err)
	}
	_, err = c.ModelStatistics(ctx, &grpcapi.ModelStatisticsRequest{Name: "breast-cancer", Version: "9"})
	wantCode(t, "statistics of an unknown version", err, codes.NotFound, "9")
	_, err = c.ModelStatistics(ctx, &grpcapi.ModelStatisticsRequest{Version: "1"})
	wantCode(t, "statistics of a version without a model", err, codes.InvalidArgument, "name the model")

	for _, ready := range []bool{false, true} {
		idx, err := c.RepositoryIndex(ctx, &grpcapi.RepositoryIndexRequest{Ready: ready})
		if err != nil {
			t.Fatal(err)
		}
		var httpIdx []indexEntry
		g.getJSON("POST", "/v2/repository/index", map[string]bool{"ready": ready}, &httpIdx)
		if len(idx.Models) != 2 || len(httpIdx) != 2 {
			t.Fatalf("index: %v; HTTP %v", idx, httpIdx)
		}
		for i, e := range httpIdx {
			if m := idx.Models[i]; m.Name != e.Name || m.Version != e.Version || m.State != e.State || m.Reason != e.Reason || m.State != "READY" {
				t.Fatalf("index entry %d: %v; HTTP %+v", i, m, e)
			}
		}
	}
}
