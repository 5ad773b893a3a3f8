package server

import (
	"context"
	"fmt"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
	"github.com/modelgate/modelgate/wire/grpcwire"
	"google.golang.org/grpc/metadata"
)

// ModelInfer is POST /v2/models/{m}[/versions/{v}]/infer over gRPC: the
// same routing (a pinned model_version, else the canary's split by the
// x-modelgate-key metadata or the key parameter), batching, drift and
// canary records. Inputs come as typed contents or, for every input at
// once, as raw_input_contents; a request with raw inputs gets its outputs
// as raw_output_contents (what tritonclient reads), one with typed inputs
// as typed contents. The codec, its checks and their errors are
// wire/grpcwire's, beside the HTTP codecs in wire.
func (g *grpcService) ModelInfer(ctx context.Context, req *grpcapi.ModelInferRequest) (*grpcapi.ModelInferResponse, error) {
	if req.GetModelName() == "" {
		return nil, badRequest("model_name is required")
	}
	if err := grpcwire.CheckFraming(req); err != nil {
		return nil, err
	}
	raw := len(req.GetRawInputContents()) > 0
	rr := grpcRouting(ctx, req, g.s.opts.KeyField)
	pl := g.s.grpcPayload(ctx, req)
	sess, outs, err := g.s.answerFor(ctx, grpcLabel(ctx), req.GetModelName(), req.GetModelVersion(), rr, pl.wrap(func(sess *serving.Session) ([]wire.Tensor, []string, error) {
		inputs, err := grpcwire.Inputs(req, sess.Inputs())
		if err != nil {
			return nil, nil, err
		}
		names, err := grpcwire.OutputNames(req, sess.Outputs())
		if err != nil {
			return nil, nil, err
		}
		return inputs, names, nil
	}))
	if err != nil {
		return nil, err
	}
	defer sess.Release()
	pl.done(sess, outs)
	resp := &grpcapi.ModelInferResponse{ModelName: sess.Name(), ModelVersion: sess.Version(), Id: req.GetId()}
	resp.Outputs, resp.RawOutputContents = grpcwire.Outputs(outs, raw)
	return resp, nil
}

// grpcRouting is what routing reads of the call: its metadata (a canary's
// match rules read it: header names lower-cased, as gRPC keys them; a
// "cookie" entry holds cookies) and its routing key.
func grpcRouting(ctx context.Context, req *grpcapi.ModelInferRequest, field string) canary.Request {
	md, _ := metadata.FromIncomingContext(ctx)
	return canary.Request{Key: grpcKey(md, req, field), Metadata: md}
}

// grpcKey is the request's routing key: the x-modelgate-key metadata, else
// the request parameter Options.KeyField names.
func grpcKey(md metadata.MD, req *grpcapi.ModelInferRequest, field string) string {
	if v := md.Get(KeyMetadata); len(v) > 0 && v[0] != "" {
		return v[0]
	}
	if field == "" {
		return ""
	}
	p, ok := req.GetParameters()[field]
	if !ok {
		return ""
	}
	switch v := p.GetParameterChoice().(type) {
	case *grpcapi.InferParameter_StringParam:
		return v.StringParam
	case *grpcapi.InferParameter_Int64Param:
		return fmt.Sprint(v.Int64Param)
	case *grpcapi.InferParameter_Uint64Param:
		return fmt.Sprint(v.Uint64Param)
	case *grpcapi.InferParameter_DoubleParam:
		return fmt.Sprint(v.DoubleParam)
	case *grpcapi.InferParameter_BoolParam:
		return fmt.Sprint(v.BoolParam)
	}
	return ""
}
