package catalog

import (
	"testing"
	"time"
)

func TestDelays(t *testing.T) {
	poll := 5 * time.Second
	for _, c := range []struct {
		n           int
		retry, load time.Duration
	}{
		{1, 500 * time.Millisecond, 50 * time.Second},
		{2, time.Second, 100 * time.Second},
		{4, 4 * time.Second, 5 * time.Minute},
		{7, 30 * time.Second, 5 * time.Minute},
		{100, 30 * time.Second, 5 * time.Minute},
	} {
		if got := retryDelay(poll, c.n); got != c.retry {
			t.Errorf("retryDelay(%d) = %s, want %s", c.n, got, c.retry)
		}
		if got := reloadDelay(poll, c.n); got != c.load {
			t.Errorf("reloadDelay(%d) = %s, want %s", c.n, got, c.load)
		}
	}
}
