package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// GatePredicateType is modelgate's predicate of a signed gate report:
// which version was gated and the verdict. The statement's subjects are
// the report's JSON as stored (GateReportFile) and the model it judged
// (its sha256), so that a report can be moved neither to another version
// nor to other bytes under the same version's name.
const GatePredicateType = "https://modelgate.dev/gate-report/v1"

// GateReportFile is the subject name of the gate report's JSON.
const GateReportFile = "gate/report.json"

// GatePredicate says which version a gate report is about and what it
// concluded.
type GatePredicate struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Verdict string `json:"verdict"` // "pass" or "fail"
}

// GateStatement is an in-toto Statement v1 with the gate-report predicate.
type GateStatement struct {
	Type          string        `json:"_type"`
	Subject       []Subject     `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     GatePredicate `json:"predicate"`
}

// SignGate returns the DSSE envelope of a statement that report (the gate
// report's JSON, as GateReportFile) judged model (model.onnx of model
// name's version) with verdict.
func (s *Signer) SignGate(name, version, verdict string, report, model File) ([]byte, error) {
	if name == "" || version == "" {
		return nil, errors.New("signing: a gate statement needs a name and a version")
	}
	if verdict != "pass" && verdict != "fail" {
		return nil, fmt.Errorf("signing: gate verdict %q, want pass or fail", verdict)
	}
	if report.Name != GateReportFile || model.Name == "" {
		return nil, fmt.Errorf("signing: a gate statement's subjects are %s and the model", GateReportFile)
	}
	st := GateStatement{
		Type:          StatementType,
		PredicateType: GatePredicateType,
		Predicate:     GatePredicate{Name: name, Version: version, Verdict: verdict},
		Subject: []Subject{
			{Name: report.Name, Digest: map[string]string{"sha256": report.SHA256}},
			{Name: model.Name, Digest: map[string]string{"sha256": model.SHA256}},
		},
	}
	body, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("signing: encode gate statement: %w", err)
	}
	return s.SignEnvelope(PayloadType, body)
}

// VerifiedGate is a gate-report envelope that verified: its statement and
// the trusted key that signed it.
type VerifiedGate struct {
	Statement GateStatement
	KeyID     string
}

// Verdict is the signed verdict.
func (v VerifiedGate) Verdict() string { return v.Statement.Predicate.Verdict }

// CheckFile verifies that f (the report's JSON, or the model) is what
// the gate report's signature covers.
func (v VerifiedGate) CheckFile(f File) error {
	st := v.Statement
	return checkSubject(st.Subject, nil, st.Predicate.Name, st.Predicate.Version, f)
}

// VerifyGate checks a gate report's DSSE envelope against the trusted keys
// and returns its statement, which must be about model name's version.
// The caller checks the subjects against the report and model it has
// (CheckFile). Failures wrap the package's errors, as Verify's do.
func (ks KeySet) VerifyGate(envelope []byte, name, version string) (VerifiedGate, error) {
	body, keyID, err := ks.OpenEnvelope(envelope, PayloadType)
	if err != nil {
		return VerifiedGate{}, err
	}
	var st GateStatement
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&st); err != nil {
		return VerifiedGate{}, fmt.Errorf("%w: gate statement is not JSON: %v", ErrMalformed, err)
	}
	switch {
	case st.Type != StatementType:
		return VerifiedGate{}, fmt.Errorf("%w: statement _type %q, want %q", ErrMalformed, st.Type, StatementType)
	case st.PredicateType != GatePredicateType:
		return VerifiedGate{}, fmt.Errorf("%w: predicateType %q, want %q", ErrMalformed, st.PredicateType, GatePredicateType)
	case st.Predicate.Verdict != "pass" && st.Predicate.Verdict != "fail":
		return VerifiedGate{}, fmt.Errorf("%w: signed verdict %q, want pass or fail", ErrMalformed, st.Predicate.Verdict)
	}
	if st.Predicate.Name != name || st.Predicate.Version != version {
		return VerifiedGate{}, fmt.Errorf("%w: gate report signed for model %q version %q, not model %q version %q",
			ErrOtherVersion, st.Predicate.Name, st.Predicate.Version, name, version)
	}
	return VerifiedGate{Statement: st, KeyID: keyID}, nil
}

// VerifyGate reads the trusted keys and verifies a gate report's envelope
// with them (KeySet.VerifyGate).
func (t *Trust) VerifyGate(envelope []byte, name, version string) (VerifiedGate, error) {
	ks, err := t.Keys()
	if err != nil {
		return VerifiedGate{}, err
	}
	return ks.VerifyGate(envelope, name, version)
}

// VerifyPayload reads the trusted keys and verifies one signature with
// them (KeySet.VerifyPayload).
func (t *Trust) VerifyPayload(payloadType string, body []byte, s Signature) (string, error) {
	ks, err := t.Keys()
	if err != nil {
		return "", err
	}
	return ks.VerifyPayload(payloadType, body, s)
}

// Contains reports whether the key of id is among the trusted keys now.
func (t *Trust) Contains(id string) (bool, error) {
	ks, err := t.Keys()
	if err != nil {
		return false, err
	}
	_, ok := ks[id]
	return ok, nil
}
