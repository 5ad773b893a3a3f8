package config

import "time"

// Drift settings: the gateway's live input statistics per model version,
// counted on the bins of the version's data profile (package drift), for
// GET /v2/models/{m}/drift, the modelgate_drift_* metrics and `promote
// drift`.
type Drift struct {
	// Enabled turns the statistics on. A version without a profile in the
	// registry is not tracked either way.
	Enabled bool `mapstructure:"enabled"`
	// SampleRate is the share of requests whose inputs are counted, in
	// (0, 1].
	SampleRate float64 `mapstructure:"sample_rate"`
	// Window is the span of the rolling window the /drift route reports
	// (the Prometheus counters are cumulative: take increase() over any
	// window there).
	Window time.Duration `mapstructure:"window"`
	// MaxVersions caps the versions tracked at once; the least recently
	// served one is dropped beyond it.
	MaxVersions int `mapstructure:"max_versions"`
}

// defaultDrift is Drift's part of Default.
func defaultDrift() Drift {
	return Drift{Enabled: true, SampleRate: 1, Window: 24 * time.Hour, MaxVersions: 16}
}

func (d Drift) validate(bad func(key, format string, args ...any)) {
	if !(d.SampleRate > 0 && d.SampleRate <= 1) {
		bad("drift.sample_rate", "must be a share of requests in (0, 1], got %g", d.SampleRate)
	}
	if d.Window < time.Minute {
		bad("drift.window", "must be at least 1m, got %s", d.Window)
	}
	if d.MaxVersions < 1 || d.MaxVersions > 1024 {
		bad("drift.max_versions", "must be between 1 and 1024, got %d", d.MaxVersions)
	}
}
