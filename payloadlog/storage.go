package payloadlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/registry"
)

// storageSink buffers JSON lines per model and writes each buffer as one
// object. A bucket has no append; each object is written once, whole,
// with WriteIf's create-only precondition, so that no two replicas (nor
// two runs of one) ever replace each other's objects.
type storageSink struct {
	l          *Logger
	bucket     registry.Bucket
	prefix     string
	flushBytes int
	flushAge   time.Duration
	checkEvery time.Duration
	// run tells this Logger's objects from those of an earlier start of
	// the same replica: its start time in milliseconds, base 36.
	run string

	mu   sync.Mutex
	open map[string]*object // by model
	seq  int
}

// object is the JSON lines of one model and one hour, not yet written.
type object struct {
	model  string
	hour   time.Time // UTC, truncated to the hour: the records' hour
	opened time.Time // by the Logger's clock, for the flush age
	buf    []byte
	n      int
}

func newStorageSink(l *Logger, o StorageSink) (*storageSink, error) {
	if o.Bucket == nil {
		return nil, errors.New("payloadlog: storage sink without a bucket")
	}
	if err := ValidatePrefix(o.Prefix); err != nil {
		return nil, err
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = DefaultFlushBytes
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	every := l.opts.checkEvery
	if every <= 0 {
		every = min(max(o.FlushInterval/4, 100*time.Millisecond), 10*time.Second)
	}
	return &storageSink{
		l:          l,
		bucket:     o.Bucket,
		prefix:     o.Prefix,
		flushBytes: o.FlushBytes,
		flushAge:   o.FlushInterval,
		checkEvery: every,
		run:        strconv.FormatInt(l.now().UnixMilli(), 36),
		open:       map[string]*object{},
	}, nil
}

// ValidatePrefix checks a storage prefix: a relative key prefix such as
// "payloads" or "logs/payloads", outside the registry's own "models/" tree.
func ValidatePrefix(prefix string) error {
	if prefix == "" || strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("payloadlog: storage prefix %q: want a relative key prefix such as \"payloads\", without a leading or trailing slash", prefix)
	}
	if err := registry.ValidateKey(prefix); err != nil {
		return fmt.Errorf("payloadlog: storage prefix %q: %w", prefix, err)
	}
	if first, _, _ := strings.Cut(prefix, "/"); first == "models" {
		return fmt.Errorf("payloadlog: storage prefix %q is inside the registry's models/ tree, where objects would read as models: pick another, such as \"payloads\"", prefix)
	}
	return nil
}

// encode gives the line's inputs and outputs, the payloads the cap counts.
func (s *storageSink) encode(e *Event) ([]byte, []byte) {
	in := appendTensors(make([]byte, 0, 2*minJSON(e.Inputs)+64), e.Inputs)
	out := appendTensors(make([]byte, 0, 2*minJSON(e.Outputs)+64), e.Outputs)
	return in, out
}

// write appends e's line to its model's object; an object of another hour,
// or one that reached the flush size, is written out.
func (s *storageSink) write(ctx context.Context, e *Event, in, out []byte) {
	hour := e.Time.UTC().Truncate(time.Hour)
	var due []*object
	s.mu.Lock()
	o := s.open[e.Model]
	if o != nil && !o.hour.Equal(hour) {
		due = append(due, o) // replaced in the map below
		o = nil
	}
	if o == nil {
		o = &object{model: e.Model, hour: hour, opened: s.l.now(), buf: make([]byte, 0, min(s.flushBytes, 1<<20))}
		s.open[e.Model] = o
	}
	o.buf = appendLine(o.buf, e, in, out)
	o.n++
	if len(o.buf) >= s.flushBytes {
		due = append(due, o)
		delete(s.open, e.Model)
	}
	s.mu.Unlock()
	for _, d := range due {
		s.upload(ctx, d)
	}
}

// tick writes the objects that are FlushInterval old.
func (s *storageSink) tick(ctx context.Context, now time.Time) {
	var due []*object
	s.mu.Lock()
	for model, o := range s.open {
		if now.Sub(o.opened) >= s.flushAge {
			due = append(due, o)
			delete(s.open, model)
		}
	}
	s.mu.Unlock()
	for _, o := range due {
		s.upload(ctx, o)
	}
}

// close writes every object still open.
func (s *storageSink) close(ctx context.Context) {
	s.mu.Lock()
	due := make([]*object, 0, len(s.open))
	for _, o := range s.open {
		due = append(due, o)
	}
	s.open = map[string]*object{}
	s.mu.Unlock()
	for _, o := range due {
		s.upload(ctx, o)
	}
}

// key names o's next object.
func (s *storageSink) key(o *object) string {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	h := o.hour
	return fmt.Sprintf("%s/%s/%04d/%02d/%02d/%02d-%s-%s-%06d.jsonl", s.prefix, o.model, h.Year(), int(h.Month()), h.Day(), h.Hour(), s.l.opts.Replica, s.run, seq)
}

// upload writes o as a new object, with the Logger's retries. An object
// already at the key is left alone and the next key taken, unless it holds
// exactly these bytes (an earlier attempt that timed out after the write
// went through).
func (s *storageSink) upload(ctx context.Context, o *object) {
	key := s.key(o)
	err := s.l.deliver(ctx, func(ctx context.Context) error {
		for range 3 {
			_, err := s.bucket.WriteIf(ctx, key, o.buf, "")
			switch {
			case err == nil:
				return nil
			case errors.Is(err, registry.ErrInvalidName):
				return errPermanent{err}
			case !errors.Is(err, registry.ErrConflict):
				return err
			}
			if cur, _, rerr := s.bucket.ReadVersioned(ctx, key); rerr == nil && bytes.Equal(cur, o.buf) {
				return nil
			}
			key = s.key(o)
		}
		return fmt.Errorf("%w: three object keys in a row were taken", registry.ErrConflict)
	})
	if err != nil {
		s.l.failed(o.model, o.n, err, "object", "key", key, "bucket", s.bucket.Describe())
		return
	}
	s.l.sent(o.model, o.n)
}

// OpenBucket opens the storage at a registry location the way
// registry.Open does: a directory or file:///absolute/path is a local
// bucket (created if missing); s3://bucket[/prefix] is an S3 bucket
// configured by the same MODELGATE_S3_* variables (registry.EnvS3Endpoint
// and the others), credentials from registry.DefaultS3Credentials.
func OpenBucket(ctx context.Context, location string) (registry.Bucket, error) {
	scheme, rest, ok := strings.Cut(location, ":")
	switch {
	case !ok || len(scheme) < 2 || strings.ContainsAny(scheme, `/\`):
		return registry.NewLocal(location)
	case strings.EqualFold(scheme, "file"):
		u, err := url.Parse(location)
		if err != nil || (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("payloadlog: location %q: want file:///absolute/path", location)
		}
		return registry.NewLocal(filepath.FromSlash(u.Path))
	case strings.EqualFold(scheme, "s3"):
		rest, ok = strings.CutPrefix(rest, "//")
		if !ok {
			return nil, fmt.Errorf("payloadlog: location %q: want s3://bucket or s3://bucket/prefix", location)
		}
		bucket, prefix, _ := strings.Cut(rest, "/")
		opts := registry.S3Options{
			Endpoint: os.Getenv(registry.EnvS3Endpoint),
			Bucket:   bucket,
			Prefix:   prefix,
			Region:   os.Getenv(registry.EnvS3Region),
		}
		for _, b := range []struct {
			env string
			dst *bool
		}{{registry.EnvS3Insecure, &opts.Insecure}, {registry.EnvS3PathStyle, &opts.PathStyle}} {
			if v := os.Getenv(b.env); v != "" {
				var err error
				if *b.dst, err = strconv.ParseBool(v); err != nil {
					return nil, fmt.Errorf("payloadlog: %s=%q: want true or false", b.env, v)
				}
			}
		}
		return registry.NewS3(ctx, opts)
	}
	return nil, fmt.Errorf("payloadlog: location %q: unsupported scheme %q: want a directory, a file:// URL or an s3:// URL", location, scheme)
}
