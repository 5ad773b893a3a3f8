package registry

import (
	"context"
	"io"
)

// Bucket is the storage a backend provides to the registry. Keys are
// slash-separated paths such as "models/a/release.json"; a backend refuses
// keys that fail ValidateKey with ErrInvalidName. The registry never stores
// an object at a key that is also the prefix of other keys ("a" and "a/b"),
// so backends need not support that. Every implementation runs
// registrytest.AcceptanceTest, which is the precise contract.
type Bucket interface {
	// Get opens the object at key. It returns ErrNotFound when there is
	// none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// Upload stores the contents of r at key, replacing any object there.
	// It is atomic: a reader sees the old object or the complete new one,
	// and an upload that fails (r returns an error, ctx is canceled)
	// leaves the old object, or none, in place.
	Upload(ctx context.Context, key string, r io.Reader) error

	// List returns the immediate children of prefix, sorted: objects by
	// their name, "directories" (common prefixes) by their name followed
	// by "/". prefix is "" for the top or ends with "/": List(ctx,
	// "models/") returns ["a/", "b/"]. A prefix with no objects below it
	// gives an empty list, not an error.
	List(ctx context.Context, prefix string) ([]string, error)

	// ReadVersioned reads the whole object at key with its ETag, an opaque
	// string that changes whenever the content does. It returns
	// ErrNotFound when there is none.
	ReadVersioned(ctx context.Context, key string) ([]byte, string, error)

	// WriteIf stores data at key if a precondition holds, atomically with
	// respect to every other write of key: with etag "" only if key is
	// absent (If-None-Match: *), otherwise only if the current ETag of key
	// equals etag (If-Match). It returns the new ETag, or ErrConflict when
	// the precondition fails.
	WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error)

	// Describe returns the location of the bucket for logs, such as
	// "file:///var/lib/modelgate".
	Describe() string
}
