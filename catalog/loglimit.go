package catalog

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter logs the first error of a streak at once and then at most
// once a minute, with the number of errors it kept quiet about, so that a
// registry outage does not flood the log.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
	streak     int
}

const logEvery = time.Minute

func (l *logLimiter) log(log *slog.Logger, now time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streak++
	if l.streak > 1 && now.Sub(l.last) < logEvery {
		l.suppressed++
		return
	}
	log.Warn("registry unavailable; serving what is loaded and retrying", "err", err, "errors_in_a_row", l.streak, "suppressed", l.suppressed)
	l.last, l.suppressed = now, 0
}

func (l *logLimiter) recovered(log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streak > 0 {
		log.Info("registry reachable again", "errors_in_a_row", l.streak)
	}
	l.streak, l.suppressed = 0, 0
}
