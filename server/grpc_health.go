package server

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcHealth is the standard grpc.health.v1 service, for Kubernetes' gRPC
// probes and load balancers: SERVING exactly when the gateway is ready (the
// rule of /readyz: every served model has a loaded, warmed-up version, and
// the server is not draining). The server as a whole ("") and the
// inference service answer alike; other names are unknown. It is
// readiness, not liveness: a gateway waiting for its registry is NOT_SERVING.
type grpcHealth struct {
	grpc_health_v1.UnimplementedHealthServer
	s *Server
}

// healthServices are the service names the health service knows.
var healthServices = []string{"", "inference.GRPCInferenceService"}

// healthWatchEvery is how often Watch looks at readiness again.
var healthWatchEvery = time.Second

func (h *grpcHealth) status() grpc_health_v1.HealthCheckResponse_ServingStatus {
	if code, _ := h.s.readiness(); code == http.StatusOK {
		return grpc_health_v1.HealthCheckResponse_SERVING
	}
	return grpc_health_v1.HealthCheckResponse_NOT_SERVING
}

func known(service string) bool {
	for _, s := range healthServices {
		if s == service {
			return true
		}
	}
	return false
}

func (h *grpcHealth) Check(_ context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	if !known(req.GetService()) {
		return nil, status.Errorf(codes.NotFound, "unknown service %q (the gateway reports \"\" and %q)", req.GetService(), healthServices[1])
	}
	return &grpc_health_v1.HealthCheckResponse{Status: h.status()}, nil
}

func (h *grpcHealth) List(context.Context, *grpc_health_v1.HealthListRequest) (*grpc_health_v1.HealthListResponse, error) {
	st := h.status()
	resp := &grpc_health_v1.HealthListResponse{Statuses: map[string]*grpc_health_v1.HealthCheckResponse{}}
	for _, name := range healthServices {
		resp.Statuses[name] = &grpc_health_v1.HealthCheckResponse{Status: st}
	}
	return resp, nil
}

// Watch sends the status, then each change of it. When the server drains
// it sends NOT_SERVING and ends the call, so that a watcher never holds up
// a graceful stop (the protocol has clients call again, and a stopped
// server refuses them).
func (h *grpcHealth) Watch(req *grpc_health_v1.HealthCheckRequest, stream grpc.ServerStreamingServer[grpc_health_v1.HealthCheckResponse]) error {
	if !known(req.GetService()) {
		// Names are fixed: an unknown one stays unknown.
		if err := stream.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVICE_UNKNOWN}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
		case <-h.s.draining:
		}
		return nil
	}
	tick := time.NewTicker(healthWatchEvery)
	defer tick.Stop()
	last := grpc_health_v1.HealthCheckResponse_UNKNOWN
	for {
		if st := h.status(); st != last {
			if err := stream.Send(&grpc_health_v1.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		if h.s.isDraining() {
			return nil
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-h.s.draining:
		case <-tick.C:
		}
	}
}
