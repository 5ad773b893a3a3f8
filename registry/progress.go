package registry

import (
	"context"
	"sync"
)

// ProgressFunc is told, as an upload proceeds, how many of an object's
// bytes have been sent. It may be called from another goroutine.
type ProgressFunc func(key string, done, total int64)

type progressKey struct{}

// WithProgress returns a context under which the registry's uploads report
// their progress to f (the way net/http/httptrace hooks into a request).
func WithProgress(ctx context.Context, f ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

func progressFrom(ctx context.Context) ProgressFunc {
	f, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return f
}

// progressReader is handed to minio-go as PutObjectOptions.Progress: it
// reads, as it were, the bytes the upload has sent.
type progressReader struct {
	mu    sync.Mutex
	key   string
	done  int64
	total int64
	f     ProgressFunc
}

func (p *progressReader) Read(b []byte) (int, error) {
	p.mu.Lock()
	p.done += int64(len(b))
	done := p.done
	p.mu.Unlock()
	p.f(p.key, done, p.total)
	return len(b), nil
}
