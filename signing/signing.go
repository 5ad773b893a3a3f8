// Package signing signs and verifies what a model version is: a DSSE
// envelope around an in-toto statement whose subjects are the version's
// files with their sha256, signed by a key that a trusted pipeline holds.
//
// The formats, from their specifications:
//
//   - DSSE, the Dead Simple Signing Envelope (github.com/secure-systems-lab/dsse,
//     envelope.md and protocol.md): an envelope is the JSON object
//     {"payload": base64(body), "payloadType": type, "signatures": [{"keyid": id,
//     "sig": base64(sig)}]}, standard base64 with padding. What is signed is not
//     the body but its pre-authentication encoding,
//     PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
//     where SP is one space (0x20) and LEN the length in bytes as ASCII decimal
//     without leading zeros, so that a signature over one payload type can
//     never be read as one over another. A verifier accepts an envelope when
//     at least one signature verifies under a trusted key; keyid is only a
//     hint for choosing the key.
//   - in-toto Statement v1 (github.com/in-toto/attestation, spec/v1/statement.md):
//     {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": ..,
//     "digest": {"sha256": hex}}], "predicateType": URI, "predicate": {..}},
//     carried in DSSE with payloadType "application/vnd.in-toto+json"
//     (spec/v1/envelope.md).
//
// The predicate is ours (PredicateType): the model's name and version and
// each file's size, so that a signature for one version can not be moved
// to another.
//
// Keys: keygen makes Ed25519 (RFC 8032). It is deterministic (no per
// signature nonce whose bad randomness leaks the key, as ECDSA's does), its
// keys and signatures are small, and the standard library has it. ECDSA
// P-256 keys (cosign's default, most KMSes') are accepted too, for signing
// and verifying: the signature is ASN.1 DER over the SHA-256 of the PAE, as
// cosign writes it. Keys are PEM: private keys PKCS #8 ("PRIVATE KEY"),
// public keys PKIX ("PUBLIC KEY"). A key's id is the lowercase hex sha256 of
// its public key's PKIX DER.
package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The constants of the formats (see the package comment for their source).
const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement v1 _type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is modelgate's predicate: which version the subjects
	// are (ManifestPredicate).
	PredicateType = "https://modelgate.dev/manifest/v1"
)

// Errors of verification, each a distinct reason a version is refused
// (Reason names them for metrics). They are wrapped with the detail.
var (
	// ErrUnsigned: the version has no signature.
	ErrUnsigned = errors.New("signing: unsigned")
	// ErrMalformed: the envelope or its statement is not what this
	// package writes (not JSON, bad base64, another payload type, another
	// statement or predicate type, no subjects).
	ErrMalformed = errors.New("signing: malformed signature envelope")
	// ErrUntrustedKey: no signature of the envelope is by a trusted key.
	ErrUntrustedKey = errors.New("signing: not signed by a trusted key")
	// ErrBadSignature: a signature names a trusted key but does not verify:
	// the envelope was changed after it was signed.
	ErrBadSignature = errors.New("signing: signature does not verify")
	// ErrOtherVersion: the signed statement is about another model or
	// version.
	ErrOtherVersion = errors.New("signing: signature is for another version")
	// ErrDigestMismatch: a file's bytes differ from the signed digest or
	// size.
	ErrDigestMismatch = errors.New("signing: file differs from the signed digest")
	// ErrNotSigned: a file the reader needs is not among the signed
	// subjects.
	ErrNotSigned = errors.New("signing: file is not covered by the signature")
	// ErrNoTrustedKeys: the trusted key set is empty (a directory emptied,
	// every key removed): nothing can verify.
	ErrNoTrustedKeys = errors.New("signing: no trusted keys")
)

// Reason is the short name of a verification failure, for metrics labels:
// unsigned, malformed, untrusted_key, bad_signature, other_version,
// digest_mismatch, not_signed, no_trusted_keys, or other.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrUnsigned, "unsigned"}, {ErrMalformed, "malformed"}, {ErrUntrustedKey, "untrusted_key"},
		{ErrBadSignature, "bad_signature"}, {ErrOtherVersion, "other_version"},
		{ErrDigestMismatch, "digest_mismatch"}, {ErrNotSigned, "not_signed"}, {ErrNoTrustedKeys, "no_trusted_keys"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

// IsRefusal reports whether err is a verification failure (as opposed to
// a storage error on the way to one).
func IsRefusal(err error) bool { return Reason(err) != "other" }

// Signer is a private key and its id.
type Signer struct {
	key crypto.Signer
	id  string
}

// KeyID is the id of the signer's public key.
func (s *Signer) KeyID() string { return s.id }

// Public returns the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

// GenerateKey makes an Ed25519 key pair (see the package comment for why).
func GenerateKey() (*Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signing: generate key: %w", err)
	}
	return newSigner(priv)
}

func newSigner(k crypto.Signer) (*Signer, error) {
	id, err := KeyID(k.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: k, id: id}, nil
}

// KeyID returns the lowercase hex sha256 of pub's PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	if err := checkPublic(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("signing: encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// checkPublic accepts the key types this package verifies with.
func checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("signing: ECDSA key on %s: want P-256", k.Curve.Params().Name)
		}
		return nil
	default:
		return fmt.Errorf("signing: %T keys are not supported: want Ed25519 or ECDSA P-256", pub)
	}
}

// MarshalPrivateKey encodes the signer's private key as PKCS #8 PEM.
func (s *Signer) MarshalPrivateKey() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil, fmt.Errorf("signing: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes pub as PKIX PEM.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublic(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("signing: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS #8 PEM private key (Ed25519 or ECDSA
// P-256; "EC PRIVATE KEY", SEC 1, is read too).
func ParsePrivateKey(data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("signing: no PEM block in the private key file")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing: PEM block %q: want \"PRIVATE KEY\" (PKCS #8)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: parse private key: %w", err)
	}
	cs, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: %T is not a signing key", key)
	}
	return newSigner(cs)
}

// LoadPrivateKey reads a private key file (ParsePrivateKey).
func LoadPrivateKey(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	s, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParsePublicKeys reads every "PUBLIC KEY" PEM block of data (a file may
// hold several). A file with none is an error.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("signing: PEM block %q: want \"PUBLIC KEY\" (PKIX); a private key is never a trusted key", block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing: parse public key: %w", err)
		}
		if err := checkPublic(pub); err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("signing: no PUBLIC KEY PEM block")
	}
	return keys, nil
}

// PAE is DSSE's pre-authentication encoding (protocol.md):
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func PAE(payloadType string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	b.Write(body)
	return b.Bytes()
}

// sign signs msg (the PAE) with the signer's key.
func (s *Signer) sign(msg []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, sum[:])
	default:
		return nil, fmt.Errorf("signing: %T keys are not supported", s.key)
	}
}

// verifySig checks sig over msg with pub.
func verifySig(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	}
	return false
}

// Envelope is a DSSE envelope.
type Envelope struct {
	Payload     string      `json:"payload"` // base64 of the statement
	PayloadType string      `json:"payloadType"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an envelope.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64
}

// Subject is an in-toto subject: a file of the version and its digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement v1 with modelgate's predicate.
type Statement struct {
	Type          string            `json:"_type"`
	Subject       []Subject         `json:"subject"`
	PredicateType string            `json:"predicateType"`
	Predicate     ManifestPredicate `json:"predicate"`
}

// ManifestPredicate says which version the subjects are, with each file's
// size (the subjects carry the digests).
type ManifestPredicate struct {
	Name    string           `json:"name"`
	Version string           `json:"version"`
	Sizes   map[string]int64 `json:"sizes"`
}

// File is one file of a version to sign: its name within the version
// ("model.onnx", "manifest.json") and its bytes' sha256 (lowercase hex)
// and size.
type File struct {
	Name   string
	SHA256 string
	Size   int64
}

// FileOf describes data as the file name.
func FileOf(name string, data []byte) File {
	sum := sha256.Sum256(data)
	return File{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

// Sign returns the DSSE envelope (JSON) of a statement that files are
// model name's version.
func (s *Signer) Sign(name, version string, files []File) ([]byte, error) {
	if name == "" || version == "" || len(files) == 0 {
		return nil, errors.New("signing: a statement needs a name, a version and at least one file")
	}
	st := Statement{
		Type:          StatementType,
		PredicateType: PredicateType,
		Predicate:     ManifestPredicate{Name: name, Version: version, Sizes: map[string]int64{}},
	}
	for _, f := range files {
		if _, dup := st.Predicate.Sizes[f.Name]; dup || f.Name == "" {
			return nil, fmt.Errorf("signing: file name %q empty or repeated", f.Name)
		}
		st.Subject = append(st.Subject, Subject{Name: f.Name, Digest: map[string]string{"sha256": f.SHA256}})
		st.Predicate.Sizes[f.Name] = f.Size
	}
	body, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("signing: encode statement: %w", err)
	}
	return s.SignEnvelope(PayloadType, body)
}

// SignEnvelope signs body as a DSSE envelope of payloadType (JSON).
func (s *Signer) SignEnvelope(payloadType string, body []byte) ([]byte, error) {
	sig, err := s.SignPayload(payloadType, body)
	if err != nil {
		return nil, err
	}
	env := Envelope{
		Payload:     base64.StdEncoding.EncodeToString(body),
		PayloadType: payloadType,
		Signatures:  []Signature{sig},
	}
	return json.MarshalIndent(env, "", "  ")
}

// SignPayload returns one DSSE signature over PAE(payloadType, body), for
// a record that carries its own signature rather than an envelope around
// it (a release event).
func (s *Signer) SignPayload(payloadType string, body []byte) (Signature, error) {
	sig, err := s.sign(PAE(payloadType, body))
	if err != nil {
		return Signature{}, fmt.Errorf("signing: sign: %w", err)
	}
	return Signature{KeyID: s.id, Sig: base64.StdEncoding.EncodeToString(sig)}, nil
}

// KeySet is a set of trusted public keys by id.
type KeySet map[string]crypto.PublicKey

// NewKeySet makes a key set of keys.
func NewKeySet(keys ...crypto.PublicKey) (KeySet, error) {
	ks := KeySet{}
	for _, k := range keys {
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		ks[id] = k
	}
	return ks, nil
}

// IDs returns the set's key ids, sorted.
func (ks KeySet) IDs() []string {
	ids := make([]string, 0, len(ks))
	for id := range ks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Verified is an envelope that verified: its statement and the trusted
// key that signed it.
type Verified struct {
	Statement Statement
	KeyID     string
}

// OpenEnvelope checks a DSSE envelope of payloadType against the trusted
// keys and returns its payload and the id of the trusted key whose
// signature verified. It reads nothing of the payload: the caller decodes
// it and checks that it says what it must.
func (ks KeySet) OpenEnvelope(envelope []byte, payloadType string) (body []byte, keyID string, err error) {
	if len(ks) == 0 {
		return nil, "", ErrNoTrustedKeys
	}
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, "", fmt.Errorf("%w: not a JSON envelope: %v", ErrMalformed, err)
	}
	if env.PayloadType != payloadType {
		return nil, "", fmt.Errorf("%w: payloadType %q, want %q", ErrMalformed, env.PayloadType, payloadType)
	}
	body, err = base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, "", fmt.Errorf("%w: payload is not base64: %v", ErrMalformed, err)
	}
	if len(env.Signatures) == 0 {
		return nil, "", fmt.Errorf("%w: the envelope has no signatures", ErrMalformed)
	}
	var errs []error
	for _, s := range env.Signatures {
		id, err := ks.VerifyPayload(payloadType, body, s)
		if err == nil {
			return body, id, nil
		}
		if errors.Is(err, ErrMalformed) {
			return nil, "", err
		}
		errs = append(errs, err)
	}
	// A signature by a trusted key that does not verify says more (the
	// envelope was changed) than one by a stranger.
	for _, err := range errs {
		if errors.Is(err, ErrBadSignature) {
			return nil, "", err
		}
	}
	named := make([]string, len(env.Signatures))
	for i, s := range env.Signatures {
		named[i] = s.KeyID
	}
	return nil, "", fmt.Errorf("%w: signed by key %s; trusted keys are %s", ErrUntrustedKey, shortList(named), shortList(ks.IDs()))
}

// VerifyPayload checks one DSSE signature over PAE(payloadType, body)
// against the trusted keys and returns the id of the key it verifies
// under. The signature's keyid is a hint (DSSE): the named key is tried
// first, then every other trusted key, so that a signature without an id
// verifies too.
func (ks KeySet) VerifyPayload(payloadType string, body []byte, s Signature) (string, error) {
	if len(ks) == 0 {
		return "", ErrNoTrustedKeys
	}
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	if err != nil {
		return "", fmt.Errorf("%w: signature by key %s is not base64: %v", ErrMalformed, short(s.KeyID), err)
	}
	msg := PAE(payloadType, body)
	candidates := ks.IDs()
	if _, ok := ks[s.KeyID]; ok {
		candidates = append([]string{s.KeyID}, candidates...)
	}
	for _, id := range candidates {
		if verifySig(ks[id], msg, sig) {
			return id, nil
		}
	}
	if _, ok := ks[s.KeyID]; ok {
		return "", fmt.Errorf("%w: the signature by trusted key %s does not match what it signs: it was changed after signing", ErrBadSignature, short(s.KeyID))
	}
	return "", fmt.Errorf("%w: signed by key %s; trusted keys are %s", ErrUntrustedKey, short(s.KeyID), shortList(ks.IDs()))
}

// Verify checks a DSSE envelope against the trusted keys and returns its
// statement, which must be an in-toto Statement v1 with modelgate's
// predicate for model name's version. Every failure wraps one of the
// errors above.
func (ks KeySet) Verify(envelope []byte, name, version string) (Verified, error) {
	body, keyID, err := ks.OpenEnvelope(envelope, PayloadType)
	if err != nil {
		return Verified{}, err
	}
	var st Statement
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&st); err != nil {
		return Verified{}, fmt.Errorf("%w: statement is not JSON: %v", ErrMalformed, err)
	}
	switch {
	case st.Type != StatementType:
		return Verified{}, fmt.Errorf("%w: statement _type %q, want %q", ErrMalformed, st.Type, StatementType)
	case st.PredicateType != PredicateType:
		return Verified{}, fmt.Errorf("%w: predicateType %q, want %q", ErrMalformed, st.PredicateType, PredicateType)
	case len(st.Subject) == 0:
		return Verified{}, fmt.Errorf("%w: statement has no subjects", ErrMalformed)
	}
	if st.Predicate.Name != name || st.Predicate.Version != version {
		return Verified{}, fmt.Errorf("%w: signed for model %q version %q, not model %q version %q",
			ErrOtherVersion, st.Predicate.Name, st.Predicate.Version, name, version)
	}
	return Verified{Statement: st, KeyID: keyID}, nil
}

// Check verifies that data is the signed file name: its sha256 and size
// are the statement's.
func (v Verified) Check(name string, data []byte) error {
	return v.CheckFile(FileOf(name, data))
}

// CheckFile verifies that f's digest and size are the signed ones.
func (v Verified) CheckFile(f File) error {
	st := v.Statement
	return checkSubject(st.Subject, st.Predicate.Sizes, st.Predicate.Name, st.Predicate.Version, f)
}

// checkSubject verifies f against the subject of its name (and its size
// against sizes, when it is there).
func checkSubject(subjects []Subject, sizes map[string]int64, name, version string, f File) error {
	for _, s := range subjects {
		if s.Name != f.Name {
			continue
		}
		want := s.Digest["sha256"]
		if want != f.SHA256 {
			return fmt.Errorf("%w: model %q version %q %s has sha256 %s, signed %s",
				ErrDigestMismatch, name, version, f.Name, f.SHA256, want)
		}
		if size, ok := sizes[f.Name]; ok && size != f.Size {
			return fmt.Errorf("%w: model %q version %q %s has %d bytes, signed %d",
				ErrDigestMismatch, name, version, f.Name, f.Size, size)
		}
		return nil
	}
	return fmt.Errorf("%w: model %q version %q: %s is not among the signed files", ErrNotSigned, name, version, f.Name)
}

// Signed reports whether file name is among the statement's subjects.
func (v Verified) Signed(name string) bool {
	for _, s := range v.Statement.Subject {
		if s.Name == name {
			return true
		}
	}
	return false
}

func short(id string) string {
	if id == "" {
		return "(no keyid)"
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func shortList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return strings.Join(out, ", ")
}

// Trust is where the trusted keys live: PEM files and directories (every
// *.pem and *.pub file in them), read again at every Keys call, so that a
// key added to or removed from a directory counts at the next verification
// without a restart.
type Trust struct {
	paths []string
}

// NewTrust returns the trust of paths, after reading them once: a path
// that does not exist, a file that is not a public key, or no key at all
// is an error here, at startup, rather than at the first load.
func NewTrust(paths []string) (*Trust, error) {
	if len(paths) == 0 {
		return nil, errors.New("signing: no trusted key paths")
	}
	t := &Trust{paths: slices.Clone(paths)}
	if _, err := t.Keys(); err != nil {
		return nil, err
	}
	return t, nil
}

// Paths returns the trust's paths.
func (t *Trust) Paths() []string { return slices.Clone(t.paths) }

// Keys reads the trusted keys now. A directory with no key files gives
// an empty set and ErrNoTrustedKeys.
func (t *Trust) Keys() (KeySet, error) {
	ks := KeySet{}
	for _, p := range t.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("signing: trusted keys: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("signing: trusted keys: %w", err)
			}
			files = files[:0]
			for _, e := range entries {
				if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".pem" || ext == ".pub") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("signing: trusted keys: %w", err)
			}
			keys, err := ParsePublicKeys(data)
			if err != nil {
				return nil, fmt.Errorf("trusted key %s: %w", f, err)
			}
			for _, k := range keys {
				id, err := KeyID(k)
				if err != nil {
					return nil, fmt.Errorf("trusted key %s: %w", f, err)
				}
				ks[id] = k
			}
		}
	}
	if len(ks) == 0 {
		return ks, fmt.Errorf("%w in %s", ErrNoTrustedKeys, strings.Join(t.paths, ", "))
	}
	return ks, nil
}

// Verify reads the trusted keys and verifies envelope with them
// (KeySet.Verify).
func (t *Trust) Verify(envelope []byte, name, version string) (Verified, error) {
	ks, err := t.Keys()
	if err != nil {
		return Verified{}, err
	}
	return ks.Verify(envelope, name, version)
}

// Key pair files that WriteKeyPair writes in its directory.
const (
	PrivateKeyFile = "modelgate-signing.key"
	PublicKeyFile  = "modelgate-signing.pub"
)

// WriteKeyPair writes s's private key (mode 0600) and public key (0644)
// into dir, creating it (0700) if missing. It refuses to replace an
// existing private key. It returns the two paths.
func WriteKeyPair(dir string, s *Signer) (priv, pub string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("signing: %w", err)
	}
	privPEM, err := s.MarshalPrivateKey()
	if err != nil {
		return "", "", err
	}
	pubPEM, err := MarshalPublicKey(s.Public())
	if err != nil {
		return "", "", err
	}
	priv, pub = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("signing: %w (a key pair is never overwritten; choose another --out)", err)
	}
	if _, err := f.Write(privPEM); err != nil {
		f.Close()
		return "", "", fmt.Errorf("signing: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("signing: %w", err)
	}
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("signing: %w", err)
	}
	return priv, pub, nil
}
