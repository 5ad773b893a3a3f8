package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// profileObject is a version's data profile (package validation's Profile,
// made from its training data), beside the model. Like a gate report, and
// unlike the model, it may be replaced: profiling again writes a new one.
const profileObject = "profile.json"

// PutProfile stores the data profile of an existing version. The registry
// checks only that it is a JSON object with a "features" list; what a
// profile means belongs to package validation.
func (r *Registry) PutProfile(ctx context.Context, name, version string, profileJSON []byte) error {
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return err
	}
	var p struct {
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(profileJSON, &p); err != nil || p.Features == nil {
		msg := `no "features" list`
		if err != nil {
			msg = "not a JSON object: " + err.Error()
		}
		return fmt.Errorf("%w: profile of model %q version %q: %s", ErrInvalidRequest, name, version, msg)
	}
	if err := r.bucket.Upload(ctx, versionKey(name, version, profileObject), bytes.NewReader(profileJSON)); err != nil {
		return fmt.Errorf("registry: model %q version %q: write profile: %w", name, version, err)
	}
	return nil
}

// Profile returns a version's stored data profile (JSON), ErrNotFound when
// it has none.
func (r *Registry) Profile(ctx context.Context, name, version string) ([]byte, error) {
	return r.readVersionObject(ctx, name, version, profileObject, "profile", "has no data profile (promote profile, or push --train-data)")
}
