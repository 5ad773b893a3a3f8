package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/serving"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// The gRPC front end: inference.GRPCInferenceService as Triton defines it
// (a superset of the KServe v2 Open Inference Protocol's gRPC API), the
// standard grpc.health.v1 service and server reflection. Its inference
// path is the HTTP one (answerFor: routing, sticky keys, batching, drift,
// the canary's records), its errors come from the same table
// (errorStatus, turned into a gRPC code by grpcCode), and its requests are
// counted in the same series with protocol="grpc".

// KeyMetadata is the gRPC metadata key carrying a request's routing key,
// as KeyHeader does over HTTP.
const KeyMetadata = "x-modelgate-key"

// GRPCOptions configure the gRPC server.
type GRPCOptions struct {
	// MaxMessageBytes limits a received message (a request); 0 means the
	// HTTP body limit (Options.MaxBodyBytes). A larger message is refused
	// with ResourceExhausted.
	MaxMessageBytes int
}

// GRPCServer builds the gRPC server of s: the inference service, health
// and reflection, with the metrics, error mapping and panic recovery of
// every unary call. Serve it on a listener; on shutdown call Drain first
// (health and ServerReady then answer not serving), then GracefulStop.
func (s *Server) GRPCServer(opts GRPCOptions) *grpc.Server {
	limit := opts.MaxMessageBytes
	if limit <= 0 {
		limit = int(min(s.opts.MaxBodyBytes, math.MaxInt32)) // protobuf messages are under 2 GiB
	}
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(limit),
		grpc.ChainUnaryInterceptor(s.grpcInstrument, s.grpcRecover),
	)
	grpcapi.RegisterGRPCInferenceServiceServer(gs, &grpcService{s: s})
	grpc_health_v1.RegisterHealthServer(gs, &grpcHealth{s: s})
	reflection.Register(gs)
	return gs
}

// grpcLabelsKey keys the request's *requestLabels in a gRPC call's context.
type grpcLabelsKey struct{}

// grpcLabel is the labeler of answerFor for a gRPC call: it records the
// session answering for grpcInstrument.
func grpcLabel(ctx context.Context) func(*serving.Session) {
	l, _ := ctx.Value(grpcLabelsKey{}).(*requestLabels)
	return func(sess *serving.Session) {
		if l != nil {
			*l = requestLabels{sess.Name(), sess.Version(), sess.Provider()}
		}
	}
}

// grpcInstrument counts and times every unary call as instrument does an
// HTTP request (route: the full method name; code: the class of the gRPC
// code's HTTP equivalent), and turns the handler's errors into statuses.
func (s *Server) grpcInstrument(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	s.metrics.grpcInFlight.Inc()
	l := &requestLabels{}
	resp, err := handler(context.WithValue(ctx, grpcLabelsKey{}, l), req)
	if err != nil {
		err = s.grpcStatus(ctx, info.FullMethod, err)
	}
	s.metrics.grpcInFlight.Dec()
	rs := s.metrics.bySeries.Get([6]string{l.model, l.version, l.provider, info.FullMethod, statusClass(httpStatusOf(status.Code(err))), "grpc"})
	rs.count.Inc()
	rs.latency.Observe(time.Since(start).Seconds())
	return resp, err
}

// grpcRecover turns a panic in a handler into Internal and logs its stack.
func (s *Server) grpcRecover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.metrics.panics.Inc()
			resp, err = nil, errPanic
		}
	}()
	return handler(ctx, req)
}

// grpcStatus is err as a gRPC status: a status already (grpc's own, or
// Unimplemented) as it is, any other error by the one table (errorStatus)
// and grpcCode. Server errors are logged, as over HTTP.
func (s *Server) grpcStatus(ctx context.Context, method string, err error) error {
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	httpStatus := errorStatus(err)
	code := grpcCode(httpStatus)
	msg := err.Error()
	if httpStatus >= 500 {
		s.log.Error("request failed", "method", method, "code", code.String(), "err", err)
		var nf *errNonFinite
		if httpStatus == http.StatusInternalServerError && !errors.As(err, &nf) && !errors.Is(err, errPanic) {
			msg = "internal error: " + msg
		}
	}
	if code == codes.ResourceExhausted {
		// As Retry-After over HTTP: a batch takes milliseconds.
		_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after", "1"))
	}
	return status.Error(code, msg)
}

// grpcCode is the gRPC code of an HTTP status from errorStatus.
func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case 499:
		return codes.Canceled
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusNotImplemented:
		return codes.Unimplemented
	}
	if httpStatus >= 400 && httpStatus < 500 {
		return codes.InvalidArgument
	}
	return codes.Internal
}

// httpStatusOf is the HTTP equivalent of a gRPC code (as grpc-gateway and
// Google's APIs map them), for the status class of the request metrics.
func httpStatusOf(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// grpcService implements inference.GRPCInferenceService over the server.
type grpcService struct {
	grpcapi.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *grpcService) ServerLive(context.Context, *grpcapi.ServerLiveRequest) (*grpcapi.ServerLiveResponse, error) {
	return &grpcapi.ServerLiveResponse{Live: true}, nil
}

// ServerReady is readiness, the rule of /readyz: every served model has a
// loaded, warmed-up version and the server is not draining.
func (g *grpcService) ServerReady(context.Context, *grpcapi.ServerReadyRequest) (*grpcapi.ServerReadyResponse, error) {
	code, _ := g.s.readiness()
	return &grpcapi.ServerReadyResponse{Ready: code == http.StatusOK}, nil
}

// ModelReady answers ready: false for a served model that has no loaded
// version yet (or whose version failed to load), NotFound for a model or
// version the gateway does not serve.
func (g *grpcService) ModelReady(ctx context.Context, req *grpcapi.ModelReadyRequest) (*grpcapi.ModelReadyResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required: the model to check")
	}
	sess, err := g.s.opts.Catalog.Acquire(ctx, req.GetName(), req.GetVersion())
	if errors.Is(err, catalog.ErrNotReady) {
		return &grpcapi.ModelReadyResponse{Ready: false}, nil
	}
	if err != nil {
		return nil, err
	}
	grpcLabel(ctx)(sess)
	sess.Release()
	return &grpcapi.ModelReadyResponse{Ready: true}, nil
}

// ServerMetadata is GET /v2's answer, the extensions included (Triton
// reports the same list over both protocols).
func (g *grpcService) ServerMetadata(context.Context, *grpcapi.ServerMetadataRequest) (*grpcapi.ServerMetadataResponse, error) {
	return &grpcapi.ServerMetadataResponse{Name: g.s.opts.Name, Version: g.s.opts.Version, Extensions: append([]string{}, g.s.extensions...)}, nil
}

// ModelMetadata is GET /v2/models/{m}[/versions/{v}]'s answer: the version
// that answers unpinned requests (or the one asked for) and its signature.
func (g *grpcService) ModelMetadata(ctx context.Context, req *grpcapi.ModelMetadataRequest) (*grpcapi.ModelMetadataResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required: the model to describe")
	}
	sess, err := g.s.opts.Catalog.Acquire(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	defer sess.Release()
	grpcLabel(ctx)(sess)
	versions, err := g.s.opts.Catalog.Versions(ctx, sess.Name())
	if err != nil {
		g.s.log.Warn("listing versions", "model", sess.Name(), "err", err)
	}
	resp := &grpcapi.ModelMetadataResponse{Name: sess.Name(), Versions: versions, Platform: "onnx_onnxv1"}
	for _, sp := range sess.Inputs() {
		resp.Inputs = append(resp.Inputs, &grpcapi.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: string(sp.DType), Shape: sp.Shape})
	}
	for _, sp := range sess.Outputs() {
		resp.Outputs = append(resp.Outputs, &grpcapi.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: string(sp.DType), Shape: sp.Shape})
	}
	return resp, nil
}

// The RPCs the gateway does not serve, each with what to do instead.

func (g *grpcService) ModelStreamInfer(grpc.BidiStreamingServer[grpcapi.ModelInferRequest, grpcapi.ModelStreamInferResponse]) error {
	return status.Error(codes.Unimplemented, "ModelStreamInfer (decoupled and sequence models) is not served: call ModelInfer for each request")
}

const controlPlane = "the gateway serves what the registry's release state names; load and unload versions with promote (promote push, promote stable, promote canary start, promote rollback)"

func (g *grpcService) RepositoryModelLoad(context.Context, *grpcapi.RepositoryModelLoadRequest) (*grpcapi.RepositoryModelLoadResponse, error) {
	return nil, status.Error(codes.Unimplemented, "RepositoryModelLoad is not served: "+controlPlane)
}

func (g *grpcService) RepositoryModelUnload(context.Context, *grpcapi.RepositoryModelUnloadRequest) (*grpcapi.RepositoryModelUnloadResponse, error) {
	return nil, status.Error(codes.Unimplemented, "RepositoryModelUnload is not served: "+controlPlane)
}

const noSharedMemory = "shared-memory tensors are not supported: send tensor data in the request (contents or raw_input_contents)"

func (g *grpcService) SystemSharedMemoryStatus(context.Context, *grpcapi.SystemSharedMemoryStatusRequest) (*grpcapi.SystemSharedMemoryStatusResponse, error) {
	return nil, status.Error(codes.Unimplemented, "SystemSharedMemoryStatus: "+noSharedMemory)
}

func (g *grpcService) SystemSharedMemoryRegister(context.Context, *grpcapi.SystemSharedMemoryRegisterRequest) (*grpcapi.SystemSharedMemoryRegisterResponse, error) {
	return nil, status.Error(codes.Unimplemented, "SystemSharedMemoryRegister: "+noSharedMemory)
}

func (g *grpcService) SystemSharedMemoryUnregister(context.Context, *grpcapi.SystemSharedMemoryUnregisterRequest) (*grpcapi.SystemSharedMemoryUnregisterResponse, error) {
	return nil, status.Error(codes.Unimplemented, "SystemSharedMemoryUnregister: "+noSharedMemory)
}

func (g *grpcService) CudaSharedMemoryStatus(context.Context, *grpcapi.CudaSharedMemoryStatusRequest) (*grpcapi.CudaSharedMemoryStatusResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CudaSharedMemoryStatus: "+noSharedMemory)
}

func (g *grpcService) CudaSharedMemoryRegister(context.Context, *grpcapi.CudaSharedMemoryRegisterRequest) (*grpcapi.CudaSharedMemoryRegisterResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CudaSharedMemoryRegister: "+noSharedMemory)
}

func (g *grpcService) CudaSharedMemoryUnregister(context.Context, *grpcapi.CudaSharedMemoryUnregisterRequest) (*grpcapi.CudaSharedMemoryUnregisterResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CudaSharedMemoryUnregister: "+noSharedMemory)
}

func (g *grpcService) TraceSetting(context.Context, *grpcapi.TraceSettingRequest) (*grpcapi.TraceSettingResponse, error) {
	return nil, status.Error(codes.Unimplemented, "TraceSetting is not served: the gateway has no request tracing; its metrics are on GET /metrics")
}

func (g *grpcService) LogSettings(context.Context, *grpcapi.LogSettingsRequest) (*grpcapi.LogSettingsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "LogSettings is not served: set log.level and log.format in the gateway's configuration")
}
