package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/modelgate/modelgate/signing"
)

// Gate reports live beside a version, under gate/, and unlike the version's
// own objects they may be replaced: gating again writes a new report.
const (
	gateReportJSON = "gate/report.json"
	gateReportMD   = "gate/report.md"
)

// gateSignature is the signature of a gate report, beside it: a DSSE
// envelope (signing.SignGate) over the report's JSON and the model's
// digest. An empty object means the report was stored unsigned (the
// bucket cannot delete, and a signature left over from an earlier report
// must not be read as this one's).
const gateSignature = "gate/report.dsse.json"

// PutGateReport stores the gate report of an existing version, unsigned:
// the JSON form, which must carry "verdict": "pass" or "fail", and the
// Markdown one.
func (r *Registry) PutGateReport(ctx context.Context, name, version string, reportJSON, reportMD []byte) error {
	return r.PutSignedGateReport(ctx, nil, name, version, reportJSON, reportMD)
}

// PutSignedGateReport stores the gate report of an existing version and,
// with a signer, its signature: a statement that this report judged the
// model whose sha256 the manifest records, with its verdict. Without one
// it replaces any earlier signature with the empty object, so that a
// report stored unsigned reads as unsigned.
func (r *Registry) PutSignedGateReport(ctx context.Context, s *signing.Signer, name, version string, reportJSON, reportMD []byte) error {
	m, err := r.Manifest(ctx, name, version)
	if err != nil {
		return err
	}
	verdict, err := verdictOf(reportJSON)
	if err != nil {
		return fmt.Errorf("%w: gate report of model %q version %q: %v", ErrInvalidRequest, name, version, err)
	}
	var env []byte
	if s != nil {
		env, err = s.SignGate(name, version, verdict, signing.FileOf(signing.GateReportFile, reportJSON),
			signing.File{Name: modelObject, SHA256: m.SHA256, Size: m.Size})
		if err != nil {
			return fmt.Errorf("registry: model %q version %q: sign gate report: %w", name, version, err)
		}
	}
	// The Markdown and the signature first, the JSON last: a reader that
	// finds the new JSON finds both, and one that reads between the
	// writes sees a signature that does not match the old report, which
	// is refused, never believed.
	for _, o := range []struct {
		key  string
		data []byte
	}{{gateReportMD, reportMD}, {gateSignature, env}, {gateReportJSON, reportJSON}} {
		if err := r.bucket.Upload(ctx, versionKey(name, version, o.key), bytes.NewReader(o.data)); err != nil {
			return fmt.Errorf("registry: model %q version %q: write gate report: %w", name, version, err)
		}
	}
	if s != nil {
		r.log.Info("signed gate report", "model", name, "version", version, "verdict", verdict, "key", s.KeyID())
	}
	return nil
}

// GateSignature returns the signature envelope of a version's gate
// report; a report stored unsigned (or none) is an error that wraps
// signing.ErrUnsigned.
func (r *Registry) GateSignature(ctx context.Context, name, version string) ([]byte, error) {
	env, err := r.readVersionObject(ctx, name, version, gateSignature, "gate report signature", "has no signed gate report")
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w (%w): gate it with promote gate --sign-key", err, signing.ErrUnsigned)
	case err != nil:
		return nil, err
	case len(env) == 0:
		return nil, fmt.Errorf("%w: model %q version %q: its gate report was stored without --sign-key", signing.ErrUnsigned, name, version)
	}
	return env, nil
}

// GateCheck is a gate report whose signature verified: its bytes, their
// sha256 (what the release history records), the signed verdict and the
// key that signed it.
type GateCheck struct {
	Report  []byte
	SHA256  string
	Verdict string
	KeyID   string
}

// VerifyGateReport checks a version's gate report against its signature
// under trust: the envelope verifies under a trusted key and names this
// version, the report's bytes are the signed ones, the model it judged is
// the one the manifest records, and the report says the signed verdict.
// The manifest's own signature is VerifyVersion's business. Refusals wrap
// package signing's errors; ErrNotFound when the version was never gated.
func (r *Registry) VerifyGateReport(ctx context.Context, trust *signing.Trust, name, version string) (GateCheck, error) {
	m, err := r.Manifest(ctx, name, version)
	if err != nil {
		return GateCheck{}, err
	}
	rep, err := r.GateReport(ctx, name, version)
	if err != nil {
		return GateCheck{}, err
	}
	f := signing.FileOf(signing.GateReportFile, rep)
	check := GateCheck{Report: rep, SHA256: f.SHA256}
	env, err := r.GateSignature(ctx, name, version)
	if err != nil {
		return check, err
	}
	v, err := trust.VerifyGate(env, name, version)
	if err != nil {
		return check, fmt.Errorf("model %q version %q gate report: %w", name, version, err)
	}
	check.KeyID = v.KeyID
	if err := v.CheckFile(f); err != nil {
		return check, fmt.Errorf("gate report: %w", err)
	}
	if err := v.CheckFile(signing.File{Name: modelObject, SHA256: m.SHA256, Size: m.Size}); err != nil {
		return check, fmt.Errorf("the gate report judged other model bytes: %w", err)
	}
	verdict, err := verdictOf(rep)
	if err != nil || verdict != v.Verdict() {
		return check, fmt.Errorf("%w: model %q version %q: the gate report says %q, its signature %q", signing.ErrDigestMismatch, name, version, verdict, v.Verdict())
	}
	check.Verdict = verdict
	return check, nil
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
