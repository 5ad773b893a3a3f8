package release

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/signing"
)

// The actions of a release history.
const (
	// ActionInitialStable records the first version of a model becoming
	// stable when it was pushed.
	ActionInitialStable = "initial-stable"
	// ActionStable records an explicit change of the stable version.
	ActionStable = "stable"
	// ActionRollback records a return to the previous stable version.
	ActionRollback = "rollback"
	// The canary's: started, a step passed, paused, resumed, aborted, the
	// candidate became stable, the candidate was taken out.
	ActionCanaryStart    = "canary-start"
	ActionCanaryStep     = "canary-step"
	ActionCanaryPause    = "canary-pause"
	ActionCanaryResume   = "canary-resume"
	ActionCanaryAbort    = "canary-abort"
	ActionCanaryPromote  = "canary-promote"
	ActionCanaryRollback = "canary-rollback"
)

// State is a model's release state, release.json: which version takes
// traffic, the canary if any, and how it came to be (the history). It is
// changed only by Apply, with a Transition.
//
// Fields this version of the package does not know (written by a newer one)
// are kept in Extra and written back unchanged, so that a read-modify-write
// by an older replica loses nothing.
type State struct {
	Model     string `json:"model"`
	Stable    string `json:"stable"`
	Candidate string `json:"candidate,omitempty"`
	// Canary is the current or last canary release, if any.
	Canary  *Canary   `json:"canary,omitempty"`
	Updated time.Time `json:"updated"`
	History []Event   `json:"history"` // append-only

	// Extra holds the JSON fields this version does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Event is one entry of a release history.
//
// Like State, it keeps the fields it does not know in Extra.
type Event struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"` // ActionInitialStable, ActionStable, ...
	Version string    `json:"version"`
	From    string    `json:"from,omitempty"`
	Forced  bool      `json:"forced,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	// Actor is who asked for the event: promote's --actor (or what it
	// found in the environment), "gateway REPLICA" for the analysis's
	// decisions. A claim: Sig is the proof.
	Actor string `json:"actor,omitempty"`
	// GateReport is the sha256 of the gate report a stable change or a
	// canary start rested on (registry.GateCheck.SHA256).
	GateReport string `json:"gate_report,omitempty"`
	// Prev is the sha256 of the event before (EventHash): the history's
	// hash chain (history.go). Empty on the first event, and on events
	// written before the chain existed.
	Prev string `json:"prev,omitempty"`
	// Sig is the actor's signature over the event (SignedPayload), when
	// promote was given a signing key.
	Sig *signing.Signature `json:"sig,omitempty"`

	// Extra holds the JSON fields this version does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// stateFields and eventFields have the fields of State and
// Event without their JSON methods.
type (
	stateFields State
	eventFields Event
)

var (
	stateKnown = jsonNames(reflect.TypeFor[stateFields]())
	eventKnown = jsonNames(reflect.TypeFor[eventFields]())
)

// MarshalJSON writes the known fields followed by Extra.
func (s State) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(stateFields(s), s.Extra, stateKnown)
}

// UnmarshalJSON reads the known fields and keeps the others in Extra.
func (s *State) UnmarshalJSON(data []byte) error {
	var v stateFields
	extra, err := unmarshalWithExtra(data, &v, stateKnown)
	if err != nil {
		return err
	}
	v.Extra = extra
	*s = State(v)
	return nil
}

// MarshalJSON writes the known fields followed by Extra.
func (e Event) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(eventFields(e), e.Extra, eventKnown)
}

// UnmarshalJSON reads the known fields and keeps the others in Extra.
func (e *Event) UnmarshalJSON(data []byte) error {
	var v eventFields
	extra, err := unmarshalWithExtra(data, &v, eventKnown)
	if err != nil {
		return err
	}
	v.Extra = extra
	*e = Event(v)
	return nil
}

// jsonNames returns the lower-cased JSON names of a struct's encoded fields
// (encoding/json matches names case-insensitively when it decodes).
func jsonNames(t reflect.Type) map[string]bool {
	names := make(map[string]bool)
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names[strings.ToLower(name)] = true
	}
	return names
}

// marshalWithExtra encodes v, a struct, and appends the extra fields whose
// names v does not own, in sorted order.
func marshalWithExtra(v any, extra map[string]json.RawMessage, known map[string]bool) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // without the closing brace
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if known[strings.ToLower(k)] {
			continue
		}
		raw := extra[k]
		if !json.Valid(raw) {
			return nil, fmt.Errorf("release: extra field %q holds invalid JSON", k)
		}
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(raw)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// unmarshalWithExtra decodes data into v, a pointer to a struct, and
// returns the fields v does not own (nil when there are none).
func unmarshalWithExtra(data []byte, v any, known map[string]bool) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	for k := range all {
		if known[strings.ToLower(k)] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}
