package release

// Phase is where a canary release stands.
type Phase string

const (
	// Idle: no candidate; stable takes all traffic.
	Idle Phase = "Idle"
	// Progressing: the candidate takes the current step's weight and is
	// checked every tick.
	Progressing Phase = "Progressing"
	// Paused: an operator stopped the progression; the weight stays.
	Paused Phase = "Paused"
	// Promoted: the candidate passed every step and is the new stable.
	Promoted Phase = "Promoted"
	// RolledBack: the analysis failed; the candidate takes no traffic.
	RolledBack Phase = "RolledBack"
	// Aborted: an operator ended the canary; the candidate takes no traffic.
	Aborted Phase = "Aborted"
)

// IsTerminal reports whether the release has ended.
func (p Phase) IsTerminal() bool {
	return p == Promoted || p == RolledBack || p == Aborted
}
