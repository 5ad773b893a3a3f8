package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Gate reports live beside a version, under gate/, and unlike the version's
// own objects they may be replaced: gating again writes a new report.
const (
	gateReportJSON = "gate/report.json"
	gateReportMD   = "gate/report.md"
)

// PutGateReport stores the gate report of an existing version: the JSON
// form, which must carry "verdict": "pass" or "fail", and the Markdown one.
func (r *Registry) PutGateReport(ctx context.Context, name, version string, reportJSON, reportMD []byte) error {
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return err
	}
	if _, err := verdictOf(reportJSON); err != nil {
		return fmt.Errorf("%w: gate report of model %q version %q: %v", ErrInvalidRequest, name, version, err)
	}
	// The Markdown first: a reader that finds the JSON finds both.
	if err := r.bucket.Upload(ctx, versionKey(name, version, gateReportMD), bytes.NewReader(reportMD)); err != nil {
		return fmt.Errorf("registry: model %q version %q: write gate report: %w", name, version, err)
	}
	if err := r.bucket.Upload(ctx, versionKey(name, version, gateReportJSON), bytes.NewReader(reportJSON)); err != nil {
		return fmt.Errorf("registry: model %q version %q: write gate report: %w", name, version, err)
	}
	return nil
}

// GateReport returns a version's stored gate report (JSON), ErrNotFound
// when it has not been gated.
func (r *Registry) GateReport(ctx context.Context, name, version string) ([]byte, error) {
	return r.readVersionObject(ctx, name, version, gateReportJSON, "gate report", "has no gate report")
}

// readVersionObject reads an object stored beside a version that may be
// replaced (a gate report, a data profile): what names it in errors, and
// missing completes ErrNotFound's message.
func (r *Registry) readVersionObject(ctx context.Context, name, version, object, what, missing string) ([]byte, error) {
	if err := validateName("model", name); err != nil {
		return nil, err
	}
	if err := validateName("version", version); err != nil {
		return nil, err
	}
	rc, err := r.bucket.Get(ctx, versionKey(name, version, object))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: model %q version %q %s", ErrNotFound, name, version, missing)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, what, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: read %s: %w", name, version, what, err)
	}
	return b, nil
}

// GatePassed reports whether a version's stored gate report says "pass";
// false with a nil error when it was gated and failed, ErrNotFound when it
// was never gated.
func (r *Registry) GatePassed(ctx context.Context, name, version string) (bool, error) {
	b, err := r.GateReport(ctx, name, version)
	if err != nil {
		return false, err
	}
	v, err := verdictOf(b)
	if err != nil {
		return false, fmt.Errorf("registry: model %q version %q: gate report: %w", name, version, err)
	}
	return v == "pass", nil
}

func verdictOf(reportJSON []byte) (string, error) {
	var rep struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(reportJSON, &rep); err != nil {
		return "", fmt.Errorf("not JSON: %v", err)
	}
	if rep.Verdict != "pass" && rep.Verdict != "fail" {
		return "", fmt.Errorf(`"verdict" is %q, want "pass" or "fail"`, rep.Verdict)
	}
	return rep.Verdict, nil
}

// FetchUnverified returns a version's model bytes and manifest without
// checking the digest, for the sanity gate, which reports a mismatch as a
// failed gate rather than refusing to look. Serving must use Fetch.
func (r *Registry) FetchUnverified(ctx context.Context, name, version string) ([]byte, Manifest, error) {
	m, err := r.Manifest(ctx, name, version)
	if err != nil {
		return nil, Manifest{}, err
	}
	rc, err := r.bucket.Get(ctx, versionKey(name, version, modelObject))
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("registry: model %q version %q: read model: %w", name, version, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("registry: model %q version %q: read model: %w", name, version, err)
	}
	return b, m, nil
}
