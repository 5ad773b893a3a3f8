package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
)

// The local cache (Options.CacheDir) holds one file per object digest:
//
//	<CacheDir>/sha256/<lowercase hex sha256>
//
// A file is downloaded into a temporary file in the same directory while
// it is hashed, checked against the manifest's size and sha256, fsynced and
// only then renamed to its digest, so that an interrupted, truncated or
// corrupt download is never visible under a digest, and never loaded. A
// cached file is hashed again each time it is used: one that no longer
// matches (a disk error, an edit) is deleted and downloaded again. Since
// files are named by content, versions with the same bytes share a file,
// and concurrent downloads of one digest are harmless: each renames a
// complete, verified copy.
//
// A download whose body breaks off (a reset connection, a proxy that cuts
// the stream) is retried with exponential backoff; minio-go already
// retries the requests themselves, so a failed request is not retried
// again. A crash can leave ".tmp-*" files in the directory; they are never
// read and may be deleted at any time.

// cacheSubdir is the directory under CacheDir named after the digest
// algorithm, so that another algorithm could sit beside it.
const cacheSubdir = "sha256"

// Retry policy for a download whose stream breaks: at most cacheAttempts
// tries, waiting between half and all of an exponentially growing bound
// (100 ms doubling, at most 2 s) between them.
const cacheAttempts = 5

var cacheBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5}

// maxPrealloc caps the buffer allocated up front for a download, so that a
// manifest with an absurd size cannot make Fetch allocate it before a
// single byte arrives.
const maxPrealloc = 1 << 30

// errInterrupted marks a download whose body broke off before its end; it
// is the one failure that readCached retries.
var errInterrupted = errors.New("download interrupted")

// readCached returns the bytes of an object of a version from the cache,
// downloading them on a miss. The result matches wantSum and wantSize;
// wantSum, from a checked manifest, is a lowercase hex sha256, so it is
// safe as a file name.
func (r *Registry) readCached(ctx context.Context, name, version, object, wantSum string, wantSize int64) ([]byte, error) {
	dir := filepath.Join(r.cache, cacheSubdir)
	entry := filepath.Join(dir, wantSum)
	data, err := readCacheEntry(entry, wantSum, wantSize)
	switch {
	case err == nil:
		r.log.Debug("read from the cache", "model", name, "version", version, "object", object, "path", entry)
		return data, nil
	case errors.Is(err, ErrDigestMismatch):
		r.log.Warn("cache entry is corrupt; deleting it and downloading again",
			"model", name, "version", version, "object", object, "path", entry, "error", err)
		if err := os.Remove(entry); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("registry: model %q version %q: remove corrupt cache entry: %w", name, version, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("registry: model %q version %q: read cache entry of %s: %w", name, version, object, err)
	}

	if err := mkdirAllSync(dir); err != nil {
		return nil, fmt.Errorf("registry: cache directory: %w", err)
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		data, err := r.download(ctx, dir, entry, name, version, object, wantSum, wantSize)
		if err == nil {
			r.log.Info("downloaded into the cache", "model", name, "version", version, "object", object,
				"bytes", wantSize, "attempts", attempt, "duration", time.Since(start), "path", entry)
			return data, nil
		}
		if !errors.Is(err, errInterrupted) {
			return nil, err
		}
		if attempt == cacheAttempts {
			return nil, fmt.Errorf("registry: model %q version %q: download %s: gave up after %d attempts: %w",
				name, version, object, attempt, err)
		}
		delay := cacheBackoff.Next(attempt)
		r.log.Warn("download interrupted; retrying", "model", name, "version", version, "object", object,
			"attempt", attempt, "retry_in", delay, "error", err)
		if err := backoff.Sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("registry: model %q version %q: download %s: %w", name, version, object, err)
		}
	}
}

// readCacheEntry reads the cache file at p and checks it against the
// digest and size it should have. A missing file is fs.ErrNotExist, a
// wrong one ErrDigestMismatch.
func readCacheEntry(p, wantSum string, wantSize int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: cache entry %s is not a regular file", ErrDigestMismatch, p)
	}
	if fi.Size() != wantSize {
		return nil, fmt.Errorf("%w: cache entry %s: want %d bytes, got %d", ErrDigestMismatch, p, wantSize, fi.Size())
	}
	data := make([]byte, wantSize)
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: cache entry %s shrank while it was read", ErrDigestMismatch, p)
		}
		return nil, err
	}
	if got := digest(data); got != wantSum {
		return nil, fmt.Errorf("%w: cache entry %s: want sha256 %s, got %s", ErrDigestMismatch, p, wantSum, got)
	}
	return data, nil
}

// download streams an object of a version from the bucket into a temporary
// file in dir while hashing it and, if its size and digest are the ones
// wanted, renames the file to entry and returns the bytes. Whatever goes
// wrong, the temporary file is removed. A body that breaks off is
// errInterrupted; a complete body with the wrong bytes is
// ErrDigestMismatch.
func (r *Registry) download(ctx context.Context, dir, entry, name, version, object, wantSum string, wantSize int64) ([]byte, error) {
	rc, err := r.bucket.Get(ctx, versionKey(name, version, object))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: model %q version %q: %s", ErrNotFound, name, version, object)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, object, err)
	}
	defer rc.Close()

	f, err := createTemp(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: cache: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()

	var buf bytes.Buffer
	buf.Grow(int(min(wantSize, maxPrealloc)))
	h := sha256.New()
	body := &readErrRecorder{r: rc}
	n, err := io.Copy(io.MultiWriter(f, h, &buf), io.LimitReader(body, wantSize+1))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("registry: model %q version %q: download %s: %w", name, version, object, cerr)
		}
		if body.err != nil {
			return nil, fmt.Errorf("%w after %d of %d bytes: %w", errInterrupted, n, wantSize, err)
		}
		return nil, fmt.Errorf("registry: cache: write %s: %w", f.Name(), err)
	}
	if n != wantSize {
		got := fmt.Sprint(n)
		if n > wantSize {
			got = "more"
		}
		return nil, fmt.Errorf("%w: model %q version %q %s: want %d bytes, got %s", ErrDigestMismatch, name, version, object, wantSize, got)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSum {
		return nil, fmt.Errorf("%w: model %q version %q %s: want sha256 %s, got %s", ErrDigestMismatch, name, version, object, wantSum, got)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("registry: cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("registry: cache: %w", err)
	}
	if err := os.Rename(f.Name(), entry); err != nil {
		return nil, fmt.Errorf("registry: cache: %w", err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("registry: cache: %w", err)
	}
	return buf.Bytes(), nil
}

// readErrRecorder remembers the error its reader returned other than
// io.EOF, to tell a broken stream from a failing disk after io.Copy.
type readErrRecorder struct {
	r   io.Reader
	err error
}

func (e *readErrRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
