package registry

import "errors"

// Errors returned by the registry and by every Bucket. They are wrapped with
// the detail that differs (the model, the version, the key, the digests), so
// test for them with errors.Is.
var (
	// ErrNotFound means a model, a version, an object or the release state
	// is missing.
	ErrNotFound = errors.New("registry: not found")
	// ErrInvalidName means a model name, a version or a bucket key breaks
	// the naming rule; nothing was read or written.
	ErrInvalidName = errors.New("registry: invalid name")
	// ErrInvalidRequest means a push request is malformed (an empty model,
	// a tensor spec without a name or with an unknown datatype).
	ErrInvalidRequest = errors.New("registry: invalid request")
	// ErrImmutable means the version already exists with different bytes.
	ErrImmutable = errors.New("registry: version is immutable")
	// ErrDigestMismatch means stored bytes do not match the sha256 or the
	// size recorded in the manifest.
	ErrDigestMismatch = errors.New("registry: digest mismatch")
	// ErrConflict means a compare-and-swap precondition failed: someone
	// else wrote the object first.
	ErrConflict = errors.New("registry: conflict")
)
