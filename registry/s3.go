package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// The environment variables that configure an s3:// location in Open.
// Credentials come from the provider chain of S3Options.Creds instead.
const (
	// EnvS3Endpoint is the host:port of the S3 API, without a scheme;
	// unset means DefaultS3Endpoint.
	EnvS3Endpoint = "MODELGATE_S3_ENDPOINT"
	// EnvS3Insecure set to true talks plain HTTP to the endpoint.
	EnvS3Insecure = "MODELGATE_S3_INSECURE"
	// EnvS3Region is the bucket's region; unset lets the client ask the
	// server.
	EnvS3Region = "MODELGATE_S3_REGION"
	// EnvS3PathStyle set to true puts the bucket in the path
	// (http://host/bucket/key), as MinIO behind a plain host name needs;
	// otherwise the client picks path or virtual-host style by itself.
	EnvS3PathStyle = "MODELGATE_S3_PATH_STYLE"
)

// DefaultS3Endpoint is the endpoint of an s3:// location when
// MODELGATE_S3_ENDPOINT is unset.
const DefaultS3Endpoint = "s3.amazonaws.com"

// s3PartSize is the part size of multipart uploads. It bounds the memory an
// upload of unknown size holds (minio-go would otherwise pick 537 MiB parts
// for such uploads), and objects up to this size go in a single PUT. With
// S3's 10,000 parts it allows objects up to 156 GiB.
const s3PartSize = 16 << 20

// S3Options locate and authenticate an S3-compatible bucket.
type S3Options struct {
	// Endpoint is the host[:port] of the S3 API, without a scheme, such as
	// "s3.amazonaws.com" or "127.0.0.1:9000". Empty means
	// DefaultS3Endpoint.
	Endpoint string
	// Bucket is the bucket's name; it must follow S3's naming rules.
	Bucket string
	// Prefix is prepended to every key, so that one bucket can hold
	// several registries: "team/registry" stores release.json of model a
	// at "team/registry/models/a/release.json". Empty means the top of the
	// bucket. It follows the key rules of ValidateKey; a trailing "/" is
	// optional.
	Prefix string
	// Region is the bucket's region; empty lets the client ask the server
	// once per bucket.
	Region string
	// Insecure talks plain HTTP instead of HTTPS.
	Insecure bool
	// PathStyle always puts the bucket in the request path; otherwise the
	// client chooses between path and virtual-host style.
	PathStyle bool
	// Creds authenticates requests. nil means DefaultS3Credentials.
	Creds *credentials.Credentials
}

// DefaultS3Credentials returns the credentials provider chain NewS3 uses
// when S3Options.Creds is nil. The first provider that yields a key wins:
//
//  1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
//  2. MinIO's MINIO_ROOT_USER and MINIO_ROOT_PASSWORD, or MINIO_ACCESS_KEY
//     and MINIO_SECRET_KEY;
//  3. the AWS shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
//     ~/.aws/credentials, profile AWS_PROFILE or "default");
//  4. IAM: an EKS web identity, an ECS task role or the EC2 instance
//     role.
//
// When none yields a key, requests are sent anonymously.
func DefaultS3Credentials() *credentials.Credentials {
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
}

// S3Bucket is a Bucket in an S3-compatible object store (AWS S3, MinIO and
// others that implement conditional writes), reached with minio-go.
//
// Every key lives under the bucket's prefix. S3 makes each PUT atomic, so a
// reader never sees half an object. WriteIf is a conditional PUT
// (If-None-Match: * or If-Match: <etag>), which the server evaluates
// atomically with respect to other writes of the key; the ETag is the one
// the server returns, without quotes. Errors are translated into the
// package's sentinels: a missing key or bucket is ErrNotFound, a failed
// precondition is ErrConflict.
//
// minio-go retries failed requests itself (up to 10 times, with backoff)
// and reuses connections; an S3Bucket is safe for concurrent use.
type S3Bucket struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ending with "/"
	region   string
	describe string
}

var _ Bucket = (*S3Bucket)(nil)

// NewS3 returns an S3Bucket for opts. It validates opts but sends no
// request: a wrong endpoint, missing bucket or bad credentials show up in
// the first call. Use EnsureBucket to create the bucket.
func NewS3(ctx context.Context, opts S3Options) (*S3Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = DefaultS3Endpoint
	}
	if err := checkS3Endpoint(endpoint); err != nil {
		return nil, err
	}
	if err := s3utils.CheckValidBucketNameStrict(opts.Bucket); err != nil {
		return nil, fmt.Errorf("registry: s3 bucket name %q: %v (see S3's bucket naming rules: 3 to 63 characters among a-z, 0-9, '.' and '-')", opts.Bucket, err)
	}
	prefix, err := normalizeS3Prefix(opts.Prefix)
	if err != nil {
		return nil, err
	}
	creds := opts.Creds
	if creds == nil {
		creds = DefaultS3Credentials()
	}
	lookup := minio.BucketLookupAuto
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	transport, err := minio.DefaultTransport(!opts.Insecure)
	if err != nil {
		return nil, fmt.Errorf("registry: s3 endpoint %q: %w", endpoint, err)
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !opts.Insecure,
		Region:       opts.Region,
		BucketLookup: lookup,
		Transport:    putCounter{base: transport},
	})
	if err != nil {
		return nil, fmt.Errorf("registry: s3 endpoint %q: %w", endpoint, err)
	}
	describe := "s3://" + opts.Bucket + "/" + strings.TrimSuffix(prefix, "/")
	describe = strings.TrimSuffix(describe, "/") + " (" + client.EndpointURL().String() + ")"
	return &S3Bucket{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   opts.Bucket,
		prefix:   prefix,
		region:   opts.Region,
		describe: describe,
	}, nil
}

// checkS3Endpoint accepts host or host:port, and explains what is wrong
// with anything else (a URL, a path).
func checkS3Endpoint(endpoint string) error {
	if strings.Contains(endpoint, "://") {
		return fmt.Errorf("registry: s3 endpoint %q: want host[:port] without a scheme (set %s=true for plain HTTP)", endpoint, EnvS3Insecure)
	}
	if strings.ContainsAny(endpoint, "/?#@ \t") {
		return fmt.Errorf("registry: s3 endpoint %q: want host[:port], without a path, a query or user information", endpoint)
	}
	return nil
}

// normalizeS3Prefix validates a key prefix and returns it with a trailing
// "/" ("" stays "").
func normalizeS3Prefix(prefix string) (string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix != "" {
			return "", fmt.Errorf("%w: s3 prefix %q: want a relative key prefix such as \"team/registry\"", ErrInvalidName, prefix)
		}
		return "", nil
	}
	if err := ValidateKey(p); err != nil {
		return "", fmt.Errorf("s3 prefix %q: %w", prefix, err)
	}
	return p + "/", nil
}

// parseS3Location splits an s3://bucket[/prefix] location into the bucket
// name and the prefix, refusing what S3 or the registry would not accept.
func parseS3Location(location string) (bucket, prefix string, err error) {
	scheme, rest, _ := strings.Cut(location, ":")
	if !strings.EqualFold(scheme, "s3") {
		return "", "", fmt.Errorf("registry: location %q is not an s3:// URL", location)
	}
	rest, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return "", "", fmt.Errorf("registry: location %q: want s3://bucket or s3://bucket/prefix", location)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return "", "", fmt.Errorf("registry: location %q: an s3:// URL takes no query or fragment (%q); the endpoint and the region come from %s and %s",
			location, rest[i:], EnvS3Endpoint, EnvS3Region)
	}
	if strings.Contains(rest, "%") {
		return "", "", fmt.Errorf("registry: location %q: percent-encoding is not allowed in an s3:// URL", location)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if strings.ContainsAny(bucket, "@:") {
		return "", "", fmt.Errorf("registry: location %q: %q is not a bucket name: put the endpoint in %s and credentials in the environment, not in the URL",
			location, bucket, EnvS3Endpoint)
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("registry: location %q: bucket %q: %v (3 to 63 characters among a-z, 0-9, '.' and '-', starting and ending with a letter or digit)",
			location, bucket, err)
	}
	if strings.HasPrefix(prefix, "/") {
		return "", "", fmt.Errorf("%w: location %q: the prefix %q must not start with \"/\"", ErrInvalidName, location, prefix)
	}
	if prefix != "" {
		if _, err := normalizeS3Prefix(prefix); err != nil {
			return "", "", fmt.Errorf("registry: location %q: %w", location, err)
		}
	}
	return bucket, prefix, nil
}

// s3OptionsFromEnv builds S3Options for an s3:// location from the
// MODELGATE_S3_* variables that getenv returns.
func s3OptionsFromEnv(location string, getenv func(string) string) (S3Options, error) {
	bucket, prefix, err := parseS3Location(location)
	if err != nil {
		return S3Options{}, err
	}
	opts := S3Options{
		Endpoint: getenv(EnvS3Endpoint),
		Bucket:   bucket,
		Prefix:   prefix,
		Region:   getenv(EnvS3Region),
	}
	for _, b := range []struct {
		env string
		dst *bool
	}{{EnvS3Insecure, &opts.Insecure}, {EnvS3PathStyle, &opts.PathStyle}} {
		v := getenv(b.env)
		if v == "" {
			continue
		}
		if *b.dst, err = strconv.ParseBool(v); err != nil {
			return S3Options{}, fmt.Errorf("registry: %s=%q: want true or false", b.env, v)
		}
	}
	return opts, nil
}

// openS3 opens an s3:// location with the settings of the environment.
func openS3(ctx context.Context, location string) (*S3Bucket, error) {
	opts, err := s3OptionsFromEnv(location, os.Getenv)
	if err != nil {
		return nil, err
	}
	return NewS3(ctx, opts)
}

// Describe returns "s3://bucket/prefix (endpoint URL)".
func (b *S3Bucket) Describe() string { return b.describe }

// EnsureBucket creates the bucket if it does not exist, in the configured
// region (the server's default when there is none). A bucket created
// meanwhile by somebody else with the same credentials counts as existing.
func (b *S3Bucket) EnsureBucket(ctx context.Context) error {
	exists, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return b.errorf("check bucket", "", err)
	}
	if exists {
		return nil
	}
	err = b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: b.region})
	if err != nil && s3Code(err) != "BucketAlreadyOwnedByYou" {
		return b.errorf("create bucket", "", err)
	}
	return nil
}

// Get opens the object at key; the body streams from the server.
func (b *S3Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	body, _, _, err := b.core.GetObject(ctx, b.bucket, b.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.errorf("get", key, err)
	}
	return body, nil
}

// ReadVersioned reads the object at key with the ETag of the same
// response, so that the two always belong together.
func (b *S3Bucket) ReadVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidateKey(key); err != nil {
		return nil, "", err
	}
	body, info, _, err := b.core.GetObject(ctx, b.bucket, b.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", b.errorf("read", key, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, "", b.errorf("read", key, err)
	}
	etag := trimETag(info.ETag)
	if etag == "" {
		return nil, "", fmt.Errorf("registry: s3 read %q in %s: the server returned no ETag", key, b.describe)
	}
	return data, etag, nil
}

// Upload stores r at key with one PUT, or a multipart upload when r holds
// more than 16 MiB. See UploadWithProgress.
func (b *S3Bucket) Upload(ctx context.Context, key string, r io.Reader) error {
	return b.UploadWithProgress(ctx, key, r, nil)
}

// UploadWithProgress is Upload that reports progress: as bytes reach the
// server, progress (if not nil) is read with a buffer of as many bytes, as
// minio-go's PutObjectOptions.Progress is (a progress bar's reader, say).
//
// The size of r is taken from Len() (bytes.Reader, strings.Reader,
// bytes.Buffer) or from the file when r is an *os.File; otherwise up to
// 16 MiB are buffered to find out whether one PUT suffices. A multipart
// upload that fails is aborted, so a failed upload leaves the old object,
// or none, in place. An upload interrupted too abruptly to abort (the
// process dies) can leave invisible parts on the server until a lifecycle
// rule removes them.
func (b *S3Bucket) UploadWithProgress(ctx context.Context, key string, r io.Reader, progress io.Reader) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size, err := readerSize(r)
	if err != nil {
		return fmt.Errorf("registry: s3 upload %q: %w", key, err)
	}
	if size < 0 {
		// Buffer the first part: a small object of unknown size then goes
		// in one PUT rather than a one-part multipart upload.
		var head bytes.Buffer
		n, err := io.CopyN(&head, ctxReader{ctx: ctx, r: r}, s3PartSize+1)
		switch {
		case err == io.EOF:
			r, size = bytes.NewReader(head.Bytes()), n
		case err != nil:
			return fmt.Errorf("registry: s3 upload %q: read: %w", key, err)
		default:
			r = io.MultiReader(&head, ctxReader{ctx: ctx, r: r})
		}
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    s3PartSize,
		Progress:    progress,
	}
	if _, err := b.client.PutObject(ctx, b.bucket, b.prefix+key, r, size, opts); err != nil {
		return b.errorf("upload", key, err)
	}
	return nil
}

// readerSize returns how many bytes r has left, or -1 if it cannot tell
// without reading.
func readerSize(r io.Reader) (int64, error) {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len()), nil
	case *os.File:
		fi, err := v.Stat()
		if err != nil {
			return 0, err
		}
		if !fi.Mode().IsRegular() {
			return -1, nil
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1, nil // not seekable: the size is unknown
		}
		return max(fi.Size()-off, 0), nil
	}
	return -1, nil
}

// WriteIf stores data at key with a conditional PUT: If-None-Match: * when
// etag is "", If-Match: "etag" otherwise. The server answers a failed
// precondition with 412 PreconditionFailed (MinIO and AWS), or 409
// ConditionalRequestConflict when another conditional write of the key is
// in progress (AWS); both, and 404 NoSuchKey when an ETag was expected, are
// ErrConflict.
//
// data goes in a single PUT (up to 5 GiB on AWS), so that the precondition
// and the write are one request.
//
// minio-go resends a request whose response was lost (a reset connection,
// a 502 from a proxy). If the lost attempt had been written, the resent one
// fails its precondition against that very write. So when a conditional
// PUT was sent more than once and fails its precondition, WriteIf reads
// the key: if it holds exactly data, the write this call meant to make is
// in place, and WriteIf returns its ETag rather than a false ErrConflict
// (which would make UpdateRelease apply its change twice).
func (b *S3Bucket) WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	opts := minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: true,
	}
	if etag == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(trimETag(etag))
	}
	if f := progressFrom(ctx); f != nil {
		opts.Progress = &progressReader{key: key, total: int64(len(data)), f: f}
	}
	puts := new(atomic.Int32)
	info, err := b.client.PutObject(context.WithValue(ctx, putsKey{}, puts), b.bucket, b.prefix+key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		if etag != "" && s3Code(err) == "NoSuchKey" {
			return "", fmt.Errorf("%w: key %q in %s does not exist (wanted ETag %s)", ErrConflict, key, b.describe, etag)
		}
		err = b.errorf("conditional write", key, err)
		if errors.Is(err, ErrConflict) && puts.Load() > 1 {
			current, tag, rerr := b.ReadVersioned(ctx, key)
			if rerr == nil && bytes.Equal(current, data) {
				return tag, nil
			}
		}
		return "", err
	}
	newTag := trimETag(info.ETag)
	if newTag == "" {
		return "", fmt.Errorf("registry: s3 conditional write %q in %s: the server returned no ETag", key, b.describe)
	}
	return newTag, nil
}

// List returns the immediate children of prefix with S3's "/" delimiter:
// objects by name, common prefixes by name with a trailing "/".
func (b *S3Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	// Canceling stops minio-go's listing goroutine if we return early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := b.prefix + prefix
	out := []string{}
	for obj := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: false}) {
		if obj.Err != nil {
			return nil, b.errorf("list", prefix, obj.Err)
		}
		name, ok := strings.CutPrefix(obj.Key, full)
		if !ok || name == "" {
			continue // a "directory marker" object named like the prefix itself
		}
		out = append(out, name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// errorf translates an error of an S3 call on key ("" for the bucket) into
// the package's sentinels where one applies, keeping the server's code and
// message as detail.
func (b *S3Bucket) errorf(op, key string, err error) error {
	what := fmt.Sprintf("key %q in %s", key, b.describe)
	if key == "" {
		what = b.describe
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return fmt.Errorf("registry: s3 %s %s: %w", op, what, err)
	}
	switch {
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("%w: %s: bucket %q does not exist (%s)", ErrNotFound, what, b.bucket, resp.Message)
	case resp.Code == "NoSuchKey", resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	case resp.Code == "PreconditionFailed", resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %s: %s", ErrConflict, what, resp.Message)
	case resp.Code == "ConditionalRequestConflict":
		return fmt.Errorf("%w: %s: a concurrent conditional write: %s", ErrConflict, what, resp.Message)
	}
	return fmt.Errorf("registry: s3 %s %s: %s (%d %s): %w", op, what, resp.Code, resp.StatusCode, http.StatusText(resp.StatusCode), err)
}

// s3Code returns the S3 error code of err, "" if it is not an S3 error.
func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// putsKey is the context key under which WriteIf asks putCounter to count
// the attempts of its PUT.
type putsKey struct{}

// putCounter is the HTTP transport of an S3Bucket: it counts the PUT
// requests sent with a context carrying a counter under putsKey.
type putCounter struct {
	base http.RoundTripper
}

// RoundTrip counts the request if it is a counted PUT, then sends it.
func (c putCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if n, ok := req.Context().Value(putsKey{}).(*atomic.Int32); ok && req.Method == http.MethodPut {
		n.Add(1)
	}
	return c.base.RoundTrip(req)
}

// trimETag removes the quotes S3 puts around ETags, so that ETags compare
// equal whichever call returned them.
func trimETag(etag string) string {
	return strings.Trim(etag, `"`)
}

// storageEnsurer is a Bucket whose storage may have to be created before
// the first write, as an S3 bucket may.
type storageEnsurer interface {
	EnsureBucket(ctx context.Context) error
}

// EnsureStorage creates the registry's storage if it is missing: the
// bucket of an S3 registry. A local registry's directory is created by
// NewLocal already, so for it this does nothing. Call it before the first
// push to a new registry (promote push does).
func (r *Registry) EnsureStorage(ctx context.Context) error {
	if e, ok := r.bucket.(storageEnsurer); ok {
		return e.EnsureBucket(ctx)
	}
	return ctx.Err()
}
