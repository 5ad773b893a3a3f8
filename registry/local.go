package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Names the local backend reserves for itself. No key segment may start
// with tempPrefix or equal lockName, and List never shows such entries.
const (
	// tempPrefix starts the name of a file being written. A crash can leave
	// one behind; it is never listed and never read.
	tempPrefix = ".tmp-"
	// lockName is the file in each directory that WriteIf and Upload lock
	// (flock) while they replace an object in it. Lock files stay in place:
	// removing one while another process may hold it would break the lock.
	lockName = ".lock"
)

// LocalBucket is a Bucket in a directory of the local file system, with
// each key a file under the root.
//
// An object is written to a temporary file in its directory, fsynced,
// renamed over the key and the directory fsynced, so a reader never sees a
// partial object and a completed write survives a crash. Writes in a
// directory are serialized by an exclusive flock on its ".lock" file, which
// makes WriteIf's compare-and-swap safe between goroutines and between
// processes sharing the directory on a local file system. Reads take no
// lock. The ETag of an object is the lowercase hex sha256 of its content.
//
// Because keys are files and prefixes are directories, a key cannot be
// both an object and the prefix of other objects; the registry's layout
// never needs that.
type LocalBucket struct {
	root string
}

var _ Bucket = (*LocalBucket)(nil)

// NewLocal returns a LocalBucket rooted at root, creating the directory if
// it is missing.
func NewLocal(root string) (*LocalBucket, error) {
	if root == "" {
		return nil, errors.New("registry: local bucket: empty root path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("registry: local bucket %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("registry: local bucket: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("registry: local bucket: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("registry: local bucket: %s is not a directory", abs)
	}
	return &LocalBucket{root: abs}, nil
}

// Describe returns the root as a file:// URL.
func (b *LocalBucket) Describe() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(b.root)}).String()
}

// Get opens the file at key.
func (b *LocalBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := openObject(p)
	if err != nil {
		return nil, objectErr("get", key, err)
	}
	return f, nil
}

// ReadVersioned reads the file at key and returns its sha256 as the ETag.
func (b *LocalBucket) ReadVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	p, err := b.path(key)
	if err != nil {
		return nil, "", err
	}
	data, err := readObject(p)
	if err != nil {
		return nil, "", objectErr("read", key, err)
	}
	return data, digest(data), nil
}

// Upload copies r to a temporary file next to key and renames it over key
// under the directory's lock.
func (b *LocalBucket) Upload(ctx context.Context, key string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(key)
	if err != nil {
		return err
	}
	_, err = b.replace(ctx, p, r, nil)
	if err != nil {
		return fmt.Errorf("registry: upload %q: %w", key, err)
	}
	return nil
}

// WriteIf writes data to a temporary file, then under the directory's lock
// reads the current content, checks the precondition and renames the temporary
// file over key.
func (b *LocalBucket) WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := b.path(key)
	if err != nil {
		return "", err
	}
	check := func() error {
		current, readErr := readObject(p)
		switch {
		case readErr == nil && etag == "":
			return fmt.Errorf("%w: key %q already exists", ErrConflict, key)
		case readErr == nil && digest(current) != etag:
			return fmt.Errorf("%w: key %q has ETag %s, not %s", ErrConflict, key, digest(current), etag)
		case readErr == nil:
			return nil
		case !isNotFound(readErr):
			return readErr
		case etag != "":
			return fmt.Errorf("%w: key %q does not exist (wanted ETag %s)", ErrConflict, key, etag)
		default:
			return nil
		}
	}
	newTag, err := b.replace(ctx, p, bytes.NewReader(data), check)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return "", err
		}
		return "", fmt.Errorf("registry: write %q: %w", key, err)
	}
	if f := progressFrom(ctx); f != nil {
		f(key, int64(len(data)), int64(len(data)))
	}
	return newTag, nil
}

// List reads the directory for prefix. Temporary and lock files are
// skipped, and so are directories with no object below them, which object
// storage would not show either.
func (b *LocalBucket) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	dir := b.root
	if prefix != "" {
		p, err := b.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return nil, err
		}
		dir = p
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if isNotFound(err) {
			return []string{}, nil
		}
		return nil, fmt.Errorf("registry: list %q: %w", prefix, err)
	}
	out := []string{}
	for _, e := range entries {
		if internalName(e.Name()) {
			continue
		}
		full := filepath.Join(dir, e.Name())
		typ, err := entryType(full, e)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("registry: list %q: %w", prefix, err)
		}
		switch {
		case typ.IsRegular():
			out = append(out, e.Name())
		case typ.IsDir():
			has, err := hasObject(full)
			if err != nil {
				return nil, fmt.Errorf("registry: list %q: %w", prefix, err)
			}
			if has {
				out = append(out, e.Name()+"/")
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// path validates key and maps it to a file under the root.
func (b *LocalBucket) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if internalName(seg) {
			return "", fmt.Errorf("%w: key %q: segment %q is reserved by the local backend (%q prefix, %q)",
				ErrInvalidName, key, seg, tempPrefix, lockName)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// replace writes r to a temporary file in p's directory, then takes the
// directory's lock, calls check (if not nil) and renames the temporary file over p if
// check returns nil. It returns the ETag of what it wrote.
func (b *LocalBucket) replace(ctx context.Context, p string, r io.Reader, check func() error) (string, error) {
	dir := filepath.Dir(p)
	if err := mkdirAllSync(dir); err != nil {
		return "", err
	}
	tmp, tag, err := writeTemp(ctx, dir, r)
	if err != nil {
		return "", err
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp)
		}
	}()

	lock, err := lockPath(filepath.Join(dir, lockName))
	if err != nil {
		return "", err
	}
	defer lock.unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if check != nil {
		if err := check(); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return tag, nil
}

// writeTemp copies r into a new temporary file in dir, fsyncs and closes
// it, and returns its path and the ETag of its content. On error nothing is
// left behind.
func writeTemp(ctx context.Context, dir string, r io.Reader) (path, etag string, err error) {
	f, err := createTemp(dir)
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: r}); err != nil {
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// createTemp creates a file named tempPrefix plus a random suffix in dir.
// Unlike os.CreateTemp it leaves the mode to the umask, as for any object.
func createTemp(dir string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(filepath.Join(dir, tempPrefix+rand.Text()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temporary file in %s", dir)
}

// mkdirAllSync creates dir and its missing parents, fsyncing the parent of
// each directory it creates so that the new entries survive a crash.
func mkdirAllSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return mkdirAllSync(dir) // created meanwhile, or a file
		}
		return err
	}
	return syncDir(parent)
}

// fileLock is a held exclusive lock on an open lock file.
type fileLock struct{ f *os.File }

// lockPath opens (creating it if needed) and exclusively locks the file at
// p, blocking until the lock is free.
func lockPath(p string) (fileLock, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fileLock{}, err
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return fileLock{}, fmt.Errorf("lock %s: %w", p, err)
	}
	return fileLock{f: f}, nil
}

// unlock releases the lock; closing the file would release it too.
func (l fileLock) unlock() {
	_ = unlockFile(l.f)
	_ = l.f.Close()
}

// openObject opens the regular file at p; a directory counts as missing.
func openObject(p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return f, nil
}

// readObject reads the whole regular file at p.
func readObject(p string) ([]byte, error) {
	f, err := openObject(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// objectErr turns a file error on key into ErrNotFound where it means the
// object is missing.
func objectErr(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return fmt.Errorf("registry: %s %q: %w", op, key, err)
}

// isNotFound reports whether a file error means that the path does not
// exist, including when one of its parents is a file.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// internalName reports whether a directory entry belongs to the backend
// rather than being an object.
func internalName(name string) bool {
	return strings.HasPrefix(name, tempPrefix) || name == lockName
}

// entryType returns the type of a directory entry, following a symbolic
// link to its target.
func entryType(full string, e fs.DirEntry) (fs.FileMode, error) {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.Type(), nil
	}
	fi, err := os.Stat(full)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Type(), nil
}

// errFound stops the walk in hasObject.
var errFound = errors.New("found")

// hasObject reports whether there is an object anywhere below dir.
func hasObject(dir string) (bool, error) {
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		if p == dir {
			return nil
		}
		if internalName(e.Name()) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		typ, err := entryType(p, e)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		if typ.IsRegular() {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
