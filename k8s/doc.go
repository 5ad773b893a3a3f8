// Package k8s holds the gateway's Kubernetes manifests (kustomize: base/ and
// overlays/staging, overlays/production, overlays/gpu) and their tests: every
// overlay is built with kustomize's Go API, each object is decoded strictly
// into its Kubernetes API type, and the probes, port and configuration are
// checked against the real gateway. The package has no Go code of its own.
package k8s
