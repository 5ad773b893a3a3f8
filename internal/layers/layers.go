// Package layers states the layering of modelgate's packages, lowest
// first, which docs/architecture.md draws and its test enforces: a package
// imports only packages of lower layers. It holds no code of its own.
package layers

// Layers lists each layer's packages (import paths below the module),
// lowest first. A prefix ending in "/" stands for the packages below it.
var Layers = [][]string{
	// The tensor, its codecs, and helpers that import nothing of ours; the
	// generated gRPC API; signatures over a version's files.
	{"wire", "grpcapi", "signing", "internal/buildinfo", "internal/series", "internal/backoff", "internal/report", "internal/onnx", "internal/testclock"},
	// Data statistics: profiles, checks, drift verdicts. What a model's
	// outputs mean (over wire's tensors). The gRPC tensor codec (wire's
	// tensors in grpcapi's messages).
	{"stats", "semantics", "wire/grpcwire"},
	// The release state and every transition, pure.
	{"canary/release"},
	// The canary's router and analysis sources; ONNX Runtime behind
	// serving.Model; storage.
	{"canary", "serving", "registry"},
	// What joins them: release states in the registry, the gates, live
	// drift statistics, payload logging, the configuration.
	{"canary/release/store", "validation", "drift", "payloadlog", "config"},
	// Which versions are loaded, fed by the one release watcher.
	{"catalog"},
	// The rollout controller and the HTTP layer.
	{"canary/rollout", "server"},
	// What tests use: the real ONNX Runtime, release events, test models,
	// fake models, a MinIO server.
	{"internal/ortest", "internal/releasetest", "internal/testmodels", "serving/servingtest", "internal/miniotest"},
	// Programs, examples, the contract suite of registry backends, and the
	// packages of tests only.
	{"cmd/", "examples/", "registry/registrytest", "k8s", "internal/workflows", "internal/layers"},
}
