// Package release is a model's release state and every change of it, as
// pure functions: no I/O, no clock of its own, the same answer for the same
// arguments. State is release.json (stable, candidate, the canary with its
// plan and progress, the append-only history); a Transition is one event
// (Push of a version, SetStable, Rollback, StartCanary, Pause, Resume,
// Abort, Promote, and Tick, a controller's canary decision), and Apply
// runs it: Apply(state, event, now) is the next state or why the event is
// refused. The rule that a version takes traffic only with a passed gate,
// unless forced with a reason, lives here (SetStable, StartCanary); so do
// the canary's Plan, its typed Phases and Decide, the tick decision
// (plan, progress, observations, now) -> next progress.
//
// Decide's rules: too few samples hold a step and never pass it; an
// analysis query that fails counts as a failed check; a step passes only
// when every check passed and the step's interval has elapsed;
// FailureLimit failed checks in a row roll the candidate back.
//
// Storing a state (the registry's release.json with compare-and-swap) is
// package store's part; routing requests by weight and collecting
// observations are package canary's.
package release
