package server

import (
	"context"

	"github.com/modelgate/modelgate/grpcapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Triton's extensions over gRPC: the model configuration, the statistics
// and the repository index answer what their HTTP routes answer
// (triton.go builds both), as protobuf messages.

// ModelConfig is GET /v2/models/{m}[/versions/{v}]/config.
func (g *grpcService) ModelConfig(ctx context.Context, req *grpcapi.ModelConfigRequest) (*grpcapi.ModelConfigResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required: the model whose configuration to return")
	}
	sess, err := g.s.opts.Catalog.Acquire(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	defer sess.Release()
	grpcLabel(ctx)(sess)
	return &grpcapi.ModelConfigResponse{Config: configMessage(modelConfigOf(sess))}, nil
}

// configMessage is the configuration as model_config.proto's ModelConfig.
func configMessage(c tritonConfig) *grpcapi.ModelConfig {
	tensors := func(ts []tritonTensor) ([]*grpcapi.ModelInput, []*grpcapi.ModelOutput) {
		ins, outs := make([]*grpcapi.ModelInput, len(ts)), make([]*grpcapi.ModelOutput, len(ts))
		for i, t := range ts {
			d := grpcapi.DataType(grpcapi.DataType_value[t.DataType])
			ins[i] = &grpcapi.ModelInput{Name: t.Name, DataType: d, Dims: t.Dims}
			outs[i] = &grpcapi.ModelOutput{Name: t.Name, DataType: d, Dims: t.Dims}
		}
		return ins, outs
	}
	m := &grpcapi.ModelConfig{Name: c.Name, Platform: c.Platform, Backend: c.Backend, MaxBatchSize: int32(c.MaxBatchSize)}
	m.Input, _ = tensors(c.Input)
	_, m.Output = tensors(c.Output)
	if b := c.DynamicBatching; b != nil {
		m.SchedulingChoice = &grpcapi.ModelConfig_DynamicBatching{DynamicBatching: &grpcapi.ModelDynamicBatching{MaxQueueDelayMicroseconds: uint64(max(b.MaxQueueDelayMicroseconds, 0))}}
	}
	for _, ig := range c.InstanceGroup {
		m.InstanceGroup = append(m.InstanceGroup, &grpcapi.ModelInstanceGroup{Name: ig.Name, Kind: grpcapi.ModelInstanceGroup_Kind(grpcapi.ModelInstanceGroup_Kind_value[ig.Kind]), Count: int32(ig.Count)})
	}
	if len(c.Parameters) > 0 {
		m.Parameters = make(map[string]*grpcapi.ModelParameter, len(c.Parameters))
		for k, v := range c.Parameters {
			m.Parameters[k] = &grpcapi.ModelParameter{StringValue: v.StringValue}
		}
	}
	return m
}

// ModelStatistics is GET /v2/models[/{m}[/versions/{v}]]/stats: every
// served model's loaded versions without a name.
func (g *grpcService) ModelStatistics(ctx context.Context, req *grpcapi.ModelStatisticsRequest) (*grpcapi.ModelStatisticsResponse, error) {
	if req.GetName() == "" && req.GetVersion() != "" {
		return nil, status.Error(codes.InvalidArgument, "version without a name: name the model too")
	}
	stats, err := g.s.statistics(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	resp := &grpcapi.ModelStatisticsResponse{ModelStats: make([]*grpcapi.ModelStatistics, len(stats))}
	for i, st := range stats {
		resp.ModelStats[i] = statsMessage(st)
	}
	return resp, nil
}

func durationMessage(d tritonDuration) *grpcapi.StatisticDuration {
	return &grpcapi.StatisticDuration{Count: d.Count, Ns: d.NS}
}

// statsMessage is one version's statistics as grpc_service.proto's
// ModelStatistics.
func statsMessage(st tritonModelStats) *grpcapi.ModelStatistics {
	is := st.InferenceStats
	m := &grpcapi.ModelStatistics{
		Name:           st.Name,
		Version:        st.Version,
		LastInference:  uint64(max(st.LastInference, 0)),
		InferenceCount: st.InferenceCount,
		ExecutionCount: st.ExecutionCount,
		InferenceStats: &grpcapi.InferStatistics{
			Success:       durationMessage(is.Success),
			Fail:          durationMessage(is.Fail),
			Queue:         durationMessage(is.Queue),
			ComputeInput:  durationMessage(is.ComputeInput),
			ComputeInfer:  durationMessage(is.ComputeInfer),
			ComputeOutput: durationMessage(is.ComputeOutput),
			CacheHit:      durationMessage(is.CacheHit),
			CacheMiss:     durationMessage(is.CacheMiss),
		},
		BatchStats: make([]*grpcapi.InferBatchStatistics, len(st.BatchStats)),
	}
	for i, b := range st.BatchStats {
		m.BatchStats[i] = &grpcapi.InferBatchStatistics{
			BatchSize:     uint64(max(b.BatchSize, 0)),
			ComputeInput:  durationMessage(b.ComputeInput),
			ComputeInfer:  durationMessage(b.ComputeInfer),
			ComputeOutput: durationMessage(b.ComputeOutput),
		}
	}
	return m
}

// RepositoryIndex is POST /v2/repository/index: the served models'
// versions and their states (the gateway has one repository, the
// registry, whatever repository_name says).
func (g *grpcService) RepositoryIndex(_ context.Context, req *grpcapi.RepositoryIndexRequest) (*grpcapi.RepositoryIndexResponse, error) {
	entries := g.s.repositoryIndexOf(req.GetReady())
	resp := &grpcapi.RepositoryIndexResponse{Models: make([]*grpcapi.RepositoryIndexResponse_ModelIndex, len(entries))}
	for i, e := range entries {
		resp.Models[i] = &grpcapi.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: e.State, Reason: e.Reason}
	}
	return resp, nil
}
