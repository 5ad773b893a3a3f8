// Package registry stores versioned models and their release state.
//
// A registry lives in a Bucket: a local directory (LocalBucket) or
// S3-compatible object storage (S3Bucket, minio-go; Open("s3://bucket/prefix")
// reads the endpoint and credentials from the environment). Both hold the
// same keys and pass the same acceptance suite (registrytest):
//
//	models/<name>/versions/<version>/model.onnx
//	models/<name>/versions/<version>/manifest.json
//	models/<name>/versions/<version>/holdout.csv    (optional)
//	models/<name>/release.json
//
// Names and versions match ^[a-z0-9][a-z0-9._-]{0,62}$ and never contain
// "..": anything else is refused with ErrInvalidName before a key is built.
//
// The guarantees, which every backend meets through the Bucket contract
// (see the registrytest package):
//
//   - A reader never sees half an object: uploads are atomic.
//   - A version is immutable. Its objects are created only if absent and its
//     manifest, which records the sha256 and size of model.onnx (and of the
//     holdout, if any), is written last with a create-only precondition, so
//     two concurrent pushes of one version cannot both win, and a version is
//     visible only once it is complete.
//   - Fetch verifies the bytes against the manifest: corruption is reported
//     as ErrDigestMismatch, never served.
//   - release.json is changed only by compare-and-swap on its ETag, so
//     gateway replicas and CI can race without losing a transition; its
//     history is append-only and fields written by newer versions of this
//     package survive a read-modify-write by older ones.
//
// The registry does not parse ONNX: callers hand it the model's signature.
package registry
