package registry

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// Options configure a Registry. The zero value is ready to use.
type Options struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for manifests and release events; nil is time.Now.
	Now func() time.Time
	// CacheDir, when set, keeps a verified copy of every model and holdout
	// that Fetch and FetchHoldout read, at <CacheDir>/sha256/<hex digest>,
	// so that a version is downloaded once and a broken download is
	// retried. See cache.go. Empty reads from the bucket every time.
	CacheDir string
}

// Registry stores model versions and release states in a Bucket. It is safe
// for concurrent use, and several registries (processes, replicas) may share
// one bucket.
type Registry struct {
	bucket Bucket
	log    *slog.Logger
	now    func() time.Time
	cache  string // Options.CacheDir
}

// New returns a registry on b.
func New(b Bucket, opts Options) *Registry {
	r := &Registry{bucket: b, log: opts.Logger, now: opts.Now, cache: opts.CacheDir}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.log = r.log.With("registry", b.Describe())
	return r
}

// Open returns a registry on the backend that location names: a directory
// path or a file:///absolute/path URL opens a LocalBucket (creating the
// directory if missing); s3://bucket or s3://bucket/prefix opens an
// S3Bucket configured by the MODELGATE_S3_* environment variables (see
// EnvS3Endpoint) with the credentials of DefaultS3Credentials. Opening an
// s3:// location sends no request. Any other "scheme:" prefix is an error
// rather than a directory name.
func Open(ctx context.Context, location string, opts Options) (*Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := openBucket(ctx, location)
	if err != nil {
		return nil, err
	}
	return New(b, opts), nil
}

// openBucket picks a backend from a location.
func openBucket(ctx context.Context, location string) (Bucket, error) {
	if location == "" {
		return nil, errors.New("registry: empty location: want a directory, a file:// URL or an s3:// URL")
	}
	// A location that starts like a URL ("file:", "s3:") is one; a single
	// letter is a Windows drive ("C:\\models"), and the rest is a path.
	scheme, _, hasColon := strings.Cut(location, ":")
	if !hasColon || len(scheme) < 2 || !isScheme(scheme) {
		return NewLocal(location)
	}
	switch strings.ToLower(scheme) {
	case "file":
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("registry: location %q: %w", location, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("registry: location %q: file URLs must name a local path (file:///path), not host %q", location, u.Host)
		}
		if u.Opaque != "" || !path.IsAbs(u.Path) || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("registry: location %q: want file:///absolute/path", location)
		}
		return NewLocal(filepath.FromSlash(u.Path))
	case "s3":
		// The S3 backend (s3.go) parses and validates the URL itself.
		return openS3(ctx, location)
	default:
		return nil, fmt.Errorf("registry: location %q: unsupported scheme %q: want a directory, a file:// URL or an s3:// URL", location, scheme)
	}
}

// isScheme reports whether s is a URL scheme (RFC 3986, section 3.1).
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// Describe returns the location of the registry's bucket, for logs.
func (r *Registry) Describe() string {
	return r.bucket.Describe()
}

// PushRequest is a model version to store.
type PushRequest struct {
	Name, Version   string
	Model           []byte
	Inputs, Outputs []wire.TensorSpec
	Metadata        map[string]string
	Holdout         []byte // optional: the holdout set as CSV
	// OutputKinds, optional: what each output means (Manifest.OutputKinds);
	// each must name an output of Outputs and fit it.
	OutputKinds map[string]semantics.Output
}

// validate checks what the registry can check without parsing ONNX.
func (req *PushRequest) validate() error {
	if len(req.Model) == 0 {
		return fmt.Errorf("%w: model %q version %q: empty model", ErrInvalidRequest, req.Name, req.Version)
	}
	for _, specs := range []struct {
		kind  string
		specs []wire.TensorSpec
	}{{"input", req.Inputs}, {"output", req.Outputs}} {
		seen := make(map[string]bool)
		for i, s := range specs.specs {
			if s.Name == "" {
				return fmt.Errorf("%w: %s %d has no name", ErrInvalidRequest, specs.kind, i)
			}
			if seen[s.Name] {
				return fmt.Errorf("%w: %s %q appears twice", ErrInvalidRequest, specs.kind, s.Name)
			}
			seen[s.Name] = true
			if !s.DType.Known() {
				return fmt.Errorf("%w: %s %q: datatype %q is not one of %v", ErrInvalidRequest, specs.kind, s.Name, s.DType, kserveDatatypes)
			}
			for _, d := range s.Shape {
				if d < -1 {
					return fmt.Errorf("%w: %s %q: dimension %d in shape %v (want -1 for dynamic, or a size)", ErrInvalidRequest, specs.kind, s.Name, d, s.Shape)
				}
			}
		}
	}
	if err := semantics.Check(req.OutputKinds, req.Outputs); err != nil {
		return fmt.Errorf("%w: model %q version %q: %v", ErrInvalidRequest, req.Name, req.Version, err)
	}
	return nil
}

// Push stores a version of a model and returns its manifest and whether
// this call created it.
//
// Pushing the bytes a version already holds again is a no-op that returns
// the existing manifest and false; other bytes for an existing version are
// refused with ErrImmutable (naming both digests) and change nothing. The
// objects are created only if absent and the manifest is written last,
// create-only, so of concurrent pushes of one version exactly one wins. An
// object left with other bytes by a push that never wrote its manifest (it
// crashed, or it is still running) makes Push fail with ErrConflict.
//
// Push stores bytes and knows nothing of releases: the first version's
// becoming stable is a release transition (release.Push), which
// store.Push applies after this.
func (r *Registry) Push(ctx context.Context, req PushRequest) (Manifest, bool, error) {
	if err := validateName("name", req.Name); err != nil {
		return Manifest{}, false, err
	}
	if err := validateName("version", req.Version); err != nil {
		return Manifest{}, false, err
	}
	if err := req.validate(); err != nil {
		return Manifest{}, false, err
	}
	name, version := req.Name, req.Version
	sum := digest(req.Model)

	existing, err := r.Manifest(ctx, name, version)
	if err == nil {
		return r.pushedBefore(ctx, existing, sum)
	}
	if !errors.Is(err, ErrNotFound) {
		return Manifest{}, false, err
	}

	m := Manifest{
		Name:     name,
		Version:  version,
		SHA256:   sum,
		Size:     int64(len(req.Model)),
		Inputs:   cloneSpecs(req.Inputs),
		Outputs:  cloneSpecs(req.Outputs),
		Metadata: maps.Clone(req.Metadata),
	}
	if len(req.OutputKinds) > 0 {
		m.OutputKinds = maps.Clone(req.OutputKinds)
	}
	objects := []struct {
		name string
		data []byte
	}{{modelObject, req.Model}}
	if len(req.Holdout) > 0 {
		objects = append(objects, struct {
			name string
			data []byte
		}{holdoutObject, req.Holdout})
		m.Holdout = &FileRef{File: holdoutObject, SHA256: digest(req.Holdout), Size: int64(len(req.Holdout))}
	}
	for _, o := range objects {
		if err := r.createObject(ctx, name, version, o.name, o.data); err != nil {
			if !errors.Is(err, ErrConflict) {
				return Manifest{}, false, err
			}
			// Another push of this version got there first; if it has
			// finished, its manifest says whether this push is a repeat.
			existing, merr := r.Manifest(ctx, name, version)
			if merr == nil {
				return r.pushedBefore(ctx, existing, sum)
			}
			return Manifest{}, false, err
		}
	}

	m.Created = r.now().UTC()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, false, fmt.Errorf("registry: model %q version %q: encode manifest: %w", name, version, err)
	}
	if _, err := r.bucket.WriteIf(ctx, versionKey(name, version, manifestObject), data, ""); err != nil {
		if !errors.Is(err, ErrConflict) {
			return Manifest{}, false, fmt.Errorf("registry: model %q version %q: write manifest: %w", name, version, err)
		}
		existing, err := r.Manifest(ctx, name, version)
		if err != nil {
			return Manifest{}, false, err
		}
		return r.pushedBefore(ctx, existing, sum)
	}
	r.log.Info("pushed model version", "model", name, "version", version, "sha256", sum, "size", m.Size)
	return m, true, nil
}

// cloneSpecs copies tensor specs so that the manifest shares nothing with
// the request; no specs become [] rather than null in JSON.
func cloneSpecs(specs []wire.TensorSpec) []wire.TensorSpec {
	out := make([]wire.TensorSpec, len(specs))
	for i, s := range specs {
		out[i] = wire.TensorSpec{Name: s.Name, DType: s.DType, Shape: slices.Clone(s.Shape)}
	}
	return out
}

// pushedBefore answers a push of a version that already has manifest m.
func (r *Registry) pushedBefore(ctx context.Context, m Manifest, sum string) (Manifest, bool, error) {
	if m.SHA256 != sum {
		return Manifest{}, false, fmt.Errorf("%w: model %q version %q exists with sha256 %s; this push has sha256 %s",
			ErrImmutable, m.Name, m.Version, m.SHA256, sum)
	}
	return m, false, nil
}

// createObject creates an object of a version unless it is there already
// with the same bytes. It returns ErrConflict if it holds other bytes.
func (r *Registry) createObject(ctx context.Context, name, version, object string, data []byte) error {
	key := versionKey(name, version, object)
	_, err := r.bucket.WriteIf(ctx, key, data, "")
	if !errors.Is(err, ErrConflict) {
		if err != nil {
			return fmt.Errorf("registry: model %q version %q: write %s: %w", name, version, object, err)
		}
		return nil
	}
	current, _, err := r.bucket.ReadVersioned(ctx, key)
	if err != nil {
		return fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, object, err)
	}
	if bytes.Equal(current, data) {
		return nil
	}
	return fmt.Errorf("%w: model %q version %q: %s holds other bytes (sha256 %s, this push has %s) from a push that has not written its manifest; "+
		"retry once it finishes, or push a new version", ErrConflict, name, version, object, digest(current), digest(data))
}

// Models returns the names of the models that have at least one complete
// version, sorted.
func (r *Registry) Models(ctx context.Context) ([]string, error) {
	children, err := r.bucket.List(ctx, modelsPrefix)
	if err != nil {
		return nil, fmt.Errorf("registry: list models: %w", err)
	}
	names := []string{}
	for _, c := range children {
		name, isDir := strings.CutSuffix(c, "/")
		if !isDir || !nameOK(name) {
			continue
		}
		ok, err := r.hasVersion(ctx, name)
		if err != nil {
			return nil, err
		}
		if ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// hasVersion reports whether a model has a version with a manifest.
func (r *Registry) hasVersion(ctx context.Context, name string) (bool, error) {
	versions, err := r.listVersions(ctx, name)
	if err != nil {
		return false, err
	}
	for _, v := range versions {
		rc, err := r.bucket.Get(ctx, versionKey(name, v, manifestObject))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("registry: model %q version %q: %w", name, v, err)
		}
		_ = rc.Close()
		return true, nil
	}
	return false, nil
}

// listVersions returns the valid version names stored under a model,
// complete or not.
func (r *Registry) listVersions(ctx context.Context, name string) ([]string, error) {
	children, err := r.bucket.List(ctx, versionsPrefix(name))
	if err != nil {
		return nil, fmt.Errorf("registry: list versions of model %q: %w", name, err)
	}
	var versions []string
	for _, c := range children {
		if v, isDir := strings.CutSuffix(c, "/"); isDir && nameOK(v) {
			versions = append(versions, v)
		}
	}
	return versions, nil
}

// Versions returns the manifests of a model's complete versions, ordered by
// creation time, then by version. A model without any is ErrNotFound.
func (r *Registry) Versions(ctx context.Context, name string) ([]Manifest, error) {
	if err := validateName("name", name); err != nil {
		return nil, err
	}
	versions, err := r.listVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, v := range versions {
		m, err := r.Manifest(ctx, name, v)
		if errors.Is(err, ErrNotFound) {
			continue // a push that has not written its manifest yet
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: model %q", ErrNotFound, name)
	}
	slices.SortFunc(out, func(a, b Manifest) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}

// Manifest returns the manifest of a version.
func (r *Registry) Manifest(ctx context.Context, name, version string) (Manifest, error) {
	if err := validateName("name", name); err != nil {
		return Manifest{}, err
	}
	if err := validateName("version", version); err != nil {
		return Manifest{}, err
	}
	data, err := r.manifestBytes(ctx, name, version)
	if err != nil {
		return Manifest{}, err
	}
	return decodeManifest(name, version, data)
}

// manifestBytes reads a version's manifest.json as stored, for Manifest
// and for the signature checks (signature.go), which check these bytes'
// digest. The names must have been validated.
func (r *Registry) manifestBytes(ctx context.Context, name, version string) ([]byte, error) {
	data, _, err := r.bucket.ReadVersioned(ctx, versionKey(name, version, manifestObject))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: model %q version %q", ErrNotFound, name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read manifest: %w", name, version, err)
	}
	return data, nil
}

// decodeManifest decodes and checks a version's manifest.json.
func decodeManifest(name, version string, data []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("registry: model %q version %q: decode manifest: %w", name, version, err)
	}
	if err := m.check(name, version); err != nil {
		return Manifest{}, fmt.Errorf("registry: model %q version %q: bad manifest: %w", name, version, err)
	}
	return m, nil
}

// check verifies that a manifest read from storage is the one asked for and
// that its digests and file references can be trusted to build keys.
func (m *Manifest) check(name, version string) error {
	if m.Name != name || m.Version != version {
		return fmt.Errorf("it describes model %q version %q", m.Name, m.Version)
	}
	if !isDigest(m.SHA256) || m.Size < 0 {
		return fmt.Errorf("model sha256 %q, size %d", m.SHA256, m.Size)
	}
	if h := m.Holdout; h != nil && (!nameOK(h.File) || !isDigest(h.SHA256) || h.Size < 0) {
		return fmt.Errorf("holdout file %q, sha256 %q, size %d", h.File, h.SHA256, h.Size)
	}
	return nil
}

// Fetch returns the model bytes of a version with its manifest, after
// checking them against the manifest's size and sha256 (ErrDigestMismatch).
func (r *Registry) Fetch(ctx context.Context, name, version string) ([]byte, Manifest, error) {
	m, err := r.Manifest(ctx, name, version)
	if err != nil {
		return nil, Manifest{}, err
	}
	data, err := r.readVerified(ctx, name, version, modelObject, m.SHA256, m.Size)
	if err != nil {
		return nil, Manifest{}, err
	}
	return data, m, nil
}

// FetchHoldout returns the holdout set of a version, checked against the
// manifest like Fetch. A version pushed without one is ErrNotFound.
func (r *Registry) FetchHoldout(ctx context.Context, name, version string) ([]byte, error) {
	m, err := r.Manifest(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if m.Holdout == nil {
		return nil, fmt.Errorf("%w: model %q version %q has no holdout", ErrNotFound, name, version)
	}
	return r.readVerified(ctx, name, version, m.Holdout.File, m.Holdout.SHA256, m.Holdout.Size)
}

// readVerified reads an object of a version and checks its size and
// digest.
func (r *Registry) readVerified(ctx context.Context, name, version, object, wantSum string, wantSize int64) ([]byte, error) {
	// With a cache directory, the object comes from the digest-verified
	// local cache, which downloads it on a miss (cache.go).
	if r.cache != "" {
		return r.readCached(ctx, name, version, object, wantSum, wantSize)
	}
	rc, err := r.bucket.Get(ctx, versionKey(name, version, object))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: model %q version %q: %s", ErrNotFound, name, version, object)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, object, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, wantSize+1))
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, object, err)
	}
	if n := int64(len(data)); n != wantSize {
		got := fmt.Sprint(n)
		if n > wantSize {
			got = "more"
		}
		return nil, fmt.Errorf("%w: model %q version %q %s: want %d bytes, got %s", ErrDigestMismatch, name, version, object, wantSize, got)
	}
	if got := digest(data); got != wantSum {
		return nil, fmt.Errorf("%w: model %q version %q %s: want sha256 %s, got %s", ErrDigestMismatch, name, version, object, wantSum, got)
	}
	return data, nil
}

// digest is the lowercase hex sha256 of data.
func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// isDigest reports whether s is a lowercase hex sha256.
func isDigest(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
