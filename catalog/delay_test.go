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
		if got := registryBackoff(poll).Delay(c.n); got != c.retry {
			t.Errorf("registryBackoff.Delay(%d) = %s, want %s", c.n, got, c.retry)
		}
		if got := reloadBackoff(poll).Delay(c.n); got != c.load {
			t.Errorf("reloadBackoff.Delay(%d) = %s, want %s", c.n, got, c.load)
		}
	}
}
