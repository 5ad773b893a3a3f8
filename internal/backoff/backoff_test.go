package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		if got := p.Delay(n); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
		if got := p.Next(n); got != want {
			t.Errorf("Next(%d) without jitter = %s, want %s", n, got, want)
		}
	}
}

func TestJitterStaysInRange(t *testing.T) {
	p := Policy{Base: time.Second, Max: time.Minute, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Next(3) // 4 s, drawn from [2 s, 4 s]
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("Next(3) = %s, want it in [2s, 4s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits in 200 draws: not jittered", len(seen))
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Policy{Base: time.Hour, Max: time.Hour}).Wait(ctx, 1); err != context.Canceled {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if err := (Policy{Base: time.Millisecond, Max: time.Millisecond}).Wait(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}
