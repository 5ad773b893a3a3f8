// Package grpcapi is the Go code of the gRPC API the gateway serves:
// inference.GRPCInferenceService as Triton Inference Server defines it (a
// superset of the KServe v2 Open Inference Protocol's grpc_predict_v2.proto,
// in the same package, so that KServe and Triton clients both speak it),
// with Triton's model configuration messages (ModelConfig).
//
// Every *.pb.go file is generated from proto/ by `make proto` (protoc with
// protoc-gen-go and protoc-gen-go-grpc, pinned in the Makefile); `make test`
// runs `make proto-check`, which fails when they are not what proto/
// generates. The package imports nothing of modelgate's; server implements
// the service.
package grpcapi
