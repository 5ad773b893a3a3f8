package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/wire"
)

// kserveDatatypes are the tensor datatypes of the KServe v2 protocol, for
// the message that refuses another name (wire.DType.Known decides).
var kserveDatatypes = []wire.DType{
	wire.BOOL, wire.UINT8, wire.UINT16, wire.UINT32, wire.UINT64, wire.INT8, wire.INT16, wire.INT32,
	wire.INT64, wire.FP16, wire.FP32, wire.FP64, wire.BF16, wire.BYTES,
}

// FileRef points at an extra object stored next to model.onnx, with the
// digest and size it was stored with.
type FileRef struct {
	File   string `json:"file"` // object name within the version, e.g. "holdout.csv"
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Manifest describes one immutable version of a model. It is written once,
// after the objects it describes.
type Manifest struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	SHA256   string            `json:"sha256"` // of model.onnx, lowercase hex
	Size     int64             `json:"size"`
	Created  time.Time         `json:"created"`
	Inputs   []wire.TensorSpec `json:"inputs"`
	Outputs  []wire.TensorSpec `json:"outputs"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Holdout  *FileRef          `json:"holdout,omitempty"`
}

// Release history actions written by this package.
const (
	// ActionInitialStable records the first version of a model becoming
	// stable when it was pushed.
	ActionInitialStable = "initial-stable"
	// ActionStable records an explicit change of the stable version.
	ActionStable = "stable"
)

// ReleaseState is a model's release.json: which version takes traffic and
// how it came to. It is changed only through Registry.UpdateRelease.
//
// Fields this version of the package does not know (written by a newer one)
// are kept in Extra and written back unchanged, so that a read-modify-write
// by an older replica loses nothing.
type ReleaseState struct {
	Model     string `json:"model"`
	Stable    string `json:"stable"`
	Candidate string `json:"candidate,omitempty"`
	// Canary is the current or last canary release, if any.
	Canary  *canary.Release `json:"canary,omitempty"`
	Updated time.Time       `json:"updated"`
	History []Event         `json:"history"` // append-only

	// Extra holds the JSON fields this version does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Event is one entry of a release history.
//
// Like ReleaseState, it keeps the fields it does not know in Extra.
type Event struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"` // ActionInitialStable, ActionStable, ...
	Version string    `json:"version"`
	From    string    `json:"from,omitempty"`
	Forced  bool      `json:"forced,omitempty"`
	Reason  string    `json:"reason,omitempty"`

	// Extra holds the JSON fields this version does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// releaseStateFields and eventFields have the fields of ReleaseState and
// Event without their JSON methods.
type (
	releaseStateFields ReleaseState
	eventFields        Event
)

var (
	releaseStateKnown = jsonNames(reflect.TypeFor[releaseStateFields]())
	eventKnown        = jsonNames(reflect.TypeFor[eventFields]())
)

// MarshalJSON writes the known fields followed by Extra.
func (s ReleaseState) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(releaseStateFields(s), s.Extra, releaseStateKnown)
}

// UnmarshalJSON reads the known fields and keeps the others in Extra.
func (s *ReleaseState) UnmarshalJSON(data []byte) error {
	var v releaseStateFields
	extra, err := unmarshalWithExtra(data, &v, releaseStateKnown)
	if err != nil {
		return err
	}
	v.Extra = extra
	*s = ReleaseState(v)
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
			return nil, fmt.Errorf("registry: extra field %q holds invalid JSON", k)
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
