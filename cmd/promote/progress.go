package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/modelgate/modelgate/registry"
)

// isTerminal reports whether w is a terminal (progress is shown only there,
// never in CI logs).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// terminalProgress draws one updating line per uploaded object, at most ten
// times a second, and ends it when the object is complete.
func terminalProgress(w io.Writer) registry.ProgressFunc {
	var mu sync.Mutex
	var last time.Time
	return func(key string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		complete := done >= total
		if !complete && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(w, "\r  uploading %-14s %9s / %-9s %5.1f%%", path.Base(key), humanBytes(done), humanBytes(total), pct)
		if complete {
			fmt.Fprintln(w)
		}
	}
}
