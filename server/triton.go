package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// Triton's HTTP extensions of the Open Inference Protocol, so that NVIDIA's
// clients (tritonclient, perf_analyzer) work against a gateway unmodified:
// the model configuration, the statistics, and the model repository's
// index. Each extension is described in triton-inference-server/server
// docs/protocol/extension_<name>.md; the configuration is the JSON form of
// ModelConfig in triton-inference-server/common protobuf/model_config.proto.
// Field names below are theirs.
//
// The repository's load and unload are refused: versions move through the
// registry (promote), which every gateway follows, never through a
// gateway's API (see repositoryControl).

// Extension names, as Triton reports them in the server metadata's
// "extensions" (each extension's document names its own).
const (
	extModelConfiguration = "model_configuration"
	extStatistics         = "statistics"
	extModelRepository    = "model_repository"
	// Served by infer (oip.go, wire/binary.go); extension_binary_data.md.
	extBinaryTensorData = "binary_tensor_data"
)

// provide records protocol extensions the server implements, for GET /v2:
// each feature registers its own when its routes are set up, so that the
// list is always what is served.
func (s *Server) provide(exts ...string) { s.extensions = append(s.extensions, exts...) }

// routeTriton registers the extensions' routes. GET /v2/models/stats is
// a route of its own, as in Triton: a model named "stats" has its
// metadata shadowed, and nothing else.
func (s *Server) routeTriton(e *echo.Echo) {
	e.GET("/v2/models/:model/config", s.modelConfig)
	e.GET("/v2/models/:model/versions/:version/config", s.modelConfig)
	e.GET("/v2/models/stats", s.modelStats)
	e.GET("/v2/models/:model/stats", s.modelStats)
	e.GET("/v2/models/:model/versions/:version/stats", s.modelStats)
	e.POST("/v2/repository/index", s.repositoryIndex)
	e.POST("/v2/repository/models/:model/load", s.repositoryControl)
	e.POST("/v2/repository/models/:model/unload", s.repositoryControl)
	s.provide(extModelConfiguration, extStatistics, extModelRepository)
}

// Model configuration.

// tritonConfig is the part of Triton's ModelConfig (model_config.proto)
// that describes a version served here. Integers are JSON numbers, as
// Triton writes them.
type tritonConfig struct {
	Name     string `json:"name"`
	Platform string `json:"platform"`
	Backend  string `json:"backend"`
	// MaxBatchSize > 0: the model batches, and every dims leaves out the
	// batch dimension; 0: dims are the whole shape.
	MaxBatchSize    int                 `json:"max_batch_size"`
	Input           []tritonTensor      `json:"input"`
	Output          []tritonTensor      `json:"output"`
	DynamicBatching *tritonBatching     `json:"dynamic_batching,omitempty"`
	InstanceGroup   []tritonInstances   `json:"instance_group"`
	Parameters      map[string]tritonKV `json:"parameters,omitempty"`
}

// tritonTensor is a ModelInput or ModelOutput: name, data_type (a
// DataType such as TYPE_FP32), dims (-1 for a free dimension).
type tritonTensor struct {
	Name     string  `json:"name"`
	DataType string  `json:"data_type"`
	Dims     []int64 `json:"dims"`
}

// tritonBatching is ModelDynamicBatching.
type tritonBatching struct {
	MaxQueueDelayMicroseconds int64 `json:"max_queue_delay_microseconds"`
}

// tritonInstances is a ModelInstanceGroup: kind KIND_GPU or KIND_CPU.
type tritonInstances struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// tritonKV is a ModelParameter.
type tritonKV struct {
	StringValue string `json:"string_value"`
}

// Platform and backend of an ONNX model in Triton's terms (Triton's
// onnxruntime backend reports these).
const (
	tritonPlatform = "onnxruntime_onnx"
	tritonBackend  = "onnxruntime"
)

// tritonDataType is Triton's DataType name of an element type:
// TYPE_<the protocol's name>, but TYPE_STRING for BYTES.
func tritonDataType(d wire.DType) string {
	if d == wire.BYTES {
		return "TYPE_STRING"
	}
	return "TYPE_" + string(d)
}

// modelConfigOf is a session's configuration in Triton's terms. Batching
// is in effect (Info.MaxBatchSize > 0) only for a model whose every input
// and output has a free first dimension, so leaving that dimension out
// of dims loses nothing. The version answering and its execution provider
// are parameters (modelgate_version, modelgate_provider).
func modelConfigOf(sess *serving.Session) tritonConfig {
	info := sess.Info()
	tensors := func(specs []wire.TensorSpec) []tritonTensor {
		out := make([]tritonTensor, len(specs))
		for i, sp := range specs {
			dims := sp.Shape
			if info.MaxBatchSize > 0 && len(dims) > 0 {
				dims = dims[1:]
			}
			out[i] = tritonTensor{Name: sp.Name, DataType: tritonDataType(sp.DType), Dims: append([]int64{}, dims...)}
		}
		return out
	}
	kind := "KIND_CPU"
	if info.Provider == serving.ProviderCUDA {
		kind = "KIND_GPU"
	}
	c := tritonConfig{
		Name:         info.Name,
		Platform:     tritonPlatform,
		Backend:      tritonBackend,
		MaxBatchSize: info.MaxBatchSize,
		Input:        tensors(info.Inputs),
		Output:       tensors(info.Outputs),
		// One session per version; the proto names an unnamed group
		// <model name>_<group number>.
		InstanceGroup: []tritonInstances{{Name: info.Name + "_0", Kind: kind, Count: 1}},
		Parameters: map[string]tritonKV{
			"modelgate_version":  {info.Version},
			"modelgate_provider": {info.Provider},
		},
	}
	if info.MaxBatchSize > 0 {
		c.DynamicBatching = &tritonBatching{MaxQueueDelayMicroseconds: info.MaxQueueDelay.Microseconds()}
	}
	return c
}

// modelConfig serves GET /v2/models/{m}[/versions/{v}]/config: the
// configuration of the version that answers unpinned requests (stable),
// or of the version named, loaded on demand as a pinned request would.
func (s *Server) modelConfig(c echo.Context) error {
	sess, err := s.acquire(c, c.Param("model"), c.Param("version"))
	if err != nil {
		return err
	}
	defer sess.Release()
	return c.JSON(http.StatusOK, modelConfigOf(sess))
}

// Statistics.

// tritonStats is the statistics extension's answer.
type tritonStats struct {
	ModelStats []tritonModelStats `json:"model_stats"`
}

// tritonModelStats are one version's statistics: ModelStatistics of the
// extension. last_inference is in milliseconds since the epoch (0: none).
type tritonModelStats struct {
	Name           string             `json:"name"`
	Version        string             `json:"version"`
	LastInference  int64              `json:"last_inference"`
	InferenceCount uint64             `json:"inference_count"`
	ExecutionCount uint64             `json:"execution_count"`
	InferenceStats tritonInferStats   `json:"inference_stats"`
	BatchStats     []tritonBatchStats `json:"batch_stats"`
}

// tritonInferStats is InferStatistics. cache_hit (in the extension's
// document) and cache_miss (in Triton's answers) are always zero, there
// being no response cache; perf_analyzer reads both.
type tritonInferStats struct {
	Success       tritonDuration `json:"success"`
	Fail          tritonDuration `json:"fail"`
	Queue         tritonDuration `json:"queue"`
	ComputeInput  tritonDuration `json:"compute_input"`
	ComputeInfer  tritonDuration `json:"compute_infer"`
	ComputeOutput tritonDuration `json:"compute_output"`
	CacheHit      tritonDuration `json:"cache_hit"`
	CacheMiss     tritonDuration `json:"cache_miss"`
}

// tritonBatchStats is InferBatchStatistics: each phase's count is the
// runs of that batch size.
type tritonBatchStats struct {
	BatchSize     int            `json:"batch_size"`
	ComputeInput  tritonDuration `json:"compute_input"`
	ComputeInfer  tritonDuration `json:"compute_infer"`
	ComputeOutput tritonDuration `json:"compute_output"`
}

// tritonDuration is StatisticDuration: a count and a total in nanoseconds.
type tritonDuration struct {
	Count uint64 `json:"count"`
	NS    uint64 `json:"ns"`
}

func durationOf(d serving.Duration) tritonDuration {
	return tritonDuration{Count: d.Count, NS: uint64(max(d.Total, 0))}
}

// modelStatsOf is a session's statistics in the extension's terms (what
// they count: serving's stats.go).
func modelStatsOf(sess *serving.Session) tritonModelStats {
	st := sess.Stats()
	out := tritonModelStats{
		Name:           sess.Name(),
		Version:        sess.Version(),
		InferenceCount: st.InferenceCount,
		ExecutionCount: st.ExecutionCount,
		InferenceStats: tritonInferStats{
			Success:       durationOf(st.Success),
			Fail:          durationOf(st.Fail),
			Queue:         durationOf(st.Queue),
			ComputeInput:  durationOf(st.ComputeInput),
			ComputeInfer:  durationOf(st.ComputeInfer),
			ComputeOutput: durationOf(st.ComputeOutput),
		},
		BatchStats: make([]tritonBatchStats, len(st.Batches)),
	}
	if !st.LastInference.IsZero() {
		out.LastInference = st.LastInference.UnixMilli()
	}
	for i, b := range st.Batches {
		out.BatchStats[i] = tritonBatchStats{
			BatchSize:     b.Size,
			ComputeInput:  durationOf(serving.Duration{Count: b.Count, Total: b.ComputeInput}),
			ComputeInfer:  durationOf(serving.Duration{Count: b.Count, Total: b.ComputeInfer}),
			ComputeOutput: durationOf(serving.Duration{Count: b.Count, Total: b.ComputeOutput}),
		}
	}
	return out
}

// statistics are the statistics of the loaded versions of model (every
// served model when model is empty), or of its one version: a version
// that exists but is not loaded here has none (404, saying so), as a
// version Triton has not loaded.
func (s *Server) statistics(ctx context.Context, model, version string) ([]tritonModelStats, error) {
	models := []string{model}
	if model == "" {
		models = s.opts.Catalog.Names()
	}
	out := []tritonModelStats{}
	for _, m := range models {
		loaded, err := s.opts.Catalog.Loaded(m)
		if err != nil {
			return nil, err
		}
		var versions []string
		for _, sess := range loaded {
			versions = append(versions, sess.Version())
			if version == "" || sess.Version() == version {
				out = append(out, modelStatsOf(sess))
			}
		}
		if version != "" && len(out) == 0 {
			return nil, s.notLoaded(ctx, m, version, versions)
		}
	}
	return out, nil
}

// notLoaded is the error for statistics of a version that is not loaded:
// unknown to the registry, or not loaded on this gateway.
func (s *Server) notLoaded(ctx context.Context, model, version string, loaded []string) error {
	all, err := s.opts.Catalog.Versions(ctx, model)
	if err == nil && !slices.Contains(all, version) {
		return fmt.Errorf("%w: model %s has no version %q (versions: %s)", catalog.ErrUnknownVersion, model, version, strings.Join(all, ", "))
	}
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("version %s of %s is not loaded on this gateway (loaded: %s); its statistics start when a request pinned to it loads it", version, model, strings.Join(loaded, ", "))}
}

// modelStats serves GET /v2/models[/{m}[/versions/{v}]]/stats.
func (s *Server) modelStats(c echo.Context) error {
	stats, err := s.statistics(c.Request().Context(), c.Param("model"), c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tritonStats{ModelStats: stats})
}

// Model repository.

// Triton's model states in the index (its ModelReadyState names).
const (
	stateReady       = "READY"
	stateUnavailable = "UNAVAILABLE"
	stateLoading     = "LOADING"
)

// indexEntry is one model version in the repository index.
type indexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

// repositoryIndexOf lists, for each served model, the versions the
// catalog's status (what /readyz shows) names: the stable version
// serving (READY), the one the registry names when it is not that one
// (LOADING, or UNAVAILABLE with the reason it failed), a canary's
// candidate, and pinned versions (READY). A served model of which no
// version is known yet is listed without one. readyOnly keeps the READY
// entries.
func (s *Server) repositoryIndexOf(readyOnly bool) []indexEntry {
	out := []indexEntry{}
	add := func(e indexEntry) {
		if !readyOnly || e.State == stateReady {
			out = append(out, e)
		}
	}
	pending := func(err string) (string, string) {
		if err != "" {
			return stateUnavailable, err
		}
		return stateLoading, ""
	}
	for _, ms := range s.opts.Catalog.Status().Models {
		loaded := map[string]bool{}
		if sessions, err := s.opts.Catalog.Loaded(ms.Name); err == nil {
			for _, sess := range sessions {
				loaded[sess.Version()] = true
			}
		}
		if ms.Version != "" {
			add(indexEntry{Name: ms.Name, Version: ms.Version, State: stateReady})
		}
		if ms.Wanted != "" || ms.Version == "" {
			state, reason := pending(ms.Error)
			add(indexEntry{Name: ms.Name, Version: ms.Wanted, State: state, Reason: reason})
		}
		if ms.Candidate != "" && ms.Candidate != ms.Version {
			e := indexEntry{Name: ms.Name, Version: ms.Candidate, State: stateReady}
			if !loaded[ms.Candidate] {
				e.State, e.Reason = pending(ms.CandidateError)
			}
			add(e)
		}
		for _, v := range ms.Pinned {
			add(indexEntry{Name: ms.Name, Version: v, State: stateReady})
		}
	}
	return out
}

// repositoryIndex serves POST /v2/repository/index; the body is empty
// or {"ready": bool}.
func (s *Server) repositoryIndex(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		Ready bool `json:"ready"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return badRequest("repository index request: %v (want {\"ready\": true|false} or nothing)", err)
		}
	}
	return c.JSON(http.StatusOK, s.repositoryIndexOf(req.Ready))
}

// errNoModelControl answers the repository's load and unload. The status
// is 405 with an empty Allow header, which RFC 9110 (section 10.2.1) gives
// a resource that allows no method, such as one disabled by
// configuration: the request is well formed, nothing is wrong with the
// server, and retrying cannot help. tritonclient reads any non-200 answer
// the same way (InferenceServerException with the body's "error" and the
// status), so 501 would be read no better, while a 5xx counts as a server
// failure in the gateway's error rates and is retried by proxies that
// retry 5xx. Triton itself refuses with an error when its model control
// mode does not allow load and unload.
var errNoModelControl = errors.New("the gateway does not load or unload models on request: the registry is the control plane, and every gateway follows it within its poll interval. " +
	"Use promote: `promote push` stores a version, `promote stable` or `promote canary start` releases it, `promote rollback` takes it out; " +
	"a request pinned to a version (/v2/models/{m}/versions/{v}/...) loads it on demand")

// repositoryControl serves POST /v2/repository/models/{m}/load and
// /unload: refused (errNoModelControl).
func (s *Server) repositoryControl(c echo.Context) error {
	c.Response().Header().Set("Allow", "")
	op := c.Path()[strings.LastIndexByte(c.Path(), '/')+1:]
	return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("%s of model %s refused: %v", op, c.Param("model"), errNoModelControl)}
}
