package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/modelgate/modelgate/signing"
)

// signatureObject is a version's signature, beside its manifest: a DSSE
// envelope (package signing) whose in-toto statement has a subject for
// each file of the version as it was signed: manifest.json, model.onnx,
// holdout.csv and profile.json when the version has them. Like a gate
// report it may be replaced (signing again, with a new key, is how a
// version survives the removal of its old key); what it signs may not.
const signatureObject = "signature.dsse.json"

// SignVersion signs a version as the registry holds it and stores the
// envelope beside the manifest, replacing any earlier one. The statement
// covers the manifest's bytes, the model and the holdout by the digests
// the manifest records (Push computed them from the bytes it stored), and
// the data profile as stored now. It returns the envelope.
func (r *Registry) SignVersion(ctx context.Context, s *signing.Signer, name, version string) ([]byte, error) {
	if err := validateName("name", name); err != nil {
		return nil, err
	}
	if err := validateName("version", version); err != nil {
		return nil, err
	}
	raw, err := r.manifestBytes(ctx, name, version)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(name, version, raw)
	if err != nil {
		return nil, err
	}
	files := []signing.File{
		signing.FileOf(manifestObject, raw),
		{Name: modelObject, SHA256: m.SHA256, Size: m.Size},
	}
	if h := m.Holdout; h != nil {
		files = append(files, signing.File{Name: h.File, SHA256: h.SHA256, Size: h.Size})
	}
	profile, err := r.Profile(ctx, name, version)
	switch {
	case err == nil:
		files = append(files, signing.FileOf(profileObject, profile))
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	env, err := s.Sign(name, version, files)
	if err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: %w", name, version, err)
	}
	if err := r.bucket.Upload(ctx, versionKey(name, version, signatureObject), bytes.NewReader(env)); err != nil {
		return nil, fmt.Errorf("registry: model %q version %q: write signature: %w", name, version, err)
	}
	r.log.Info("signed model version", "model", name, "version", version, "key", s.KeyID())
	return env, nil
}

// Signature returns a version's stored signature envelope; a version
// without one is an error that wraps both ErrNotFound and
// signing.ErrUnsigned.
func (r *Registry) Signature(ctx context.Context, name, version string) ([]byte, error) {
	env, err := r.readVersionObject(ctx, name, version, signatureObject, "signature", "is unsigned")
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w (%w): push it with --sign-key, or sign it with promote sign", err, signing.ErrUnsigned)
	}
	return env, err
}

// verifiedManifest reads a version's signature and manifest and checks
// them against trust: the envelope verifies under a trusted key, names
// this version, and signs the manifest's exact bytes and the digests it
// records for the model and the holdout.
func (r *Registry) verifiedManifest(ctx context.Context, trust *signing.Trust, name, version string) (Manifest, signing.Verified, error) {
	if err := validateName("name", name); err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	if err := validateName("version", version); err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	raw, err := r.manifestBytes(ctx, name, version)
	if err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	env, err := r.Signature(ctx, name, version)
	if err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	v, err := trust.Verify(env, name, version)
	if err != nil {
		return Manifest{}, signing.Verified{}, fmt.Errorf("model %q version %q: %w", name, version, err)
	}
	if err := v.Check(manifestObject, raw); err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	m, err := decodeManifest(name, version, raw)
	if err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	if err := v.CheckFile(signing.File{Name: modelObject, SHA256: m.SHA256, Size: m.Size}); err != nil {
		return Manifest{}, signing.Verified{}, err
	}
	if h := m.Holdout; h != nil {
		if err := v.CheckFile(signing.File{Name: h.File, SHA256: h.SHA256, Size: h.Size}); err != nil {
			return Manifest{}, signing.Verified{}, err
		}
	}
	return m, v, nil
}

// FetchSigned is Fetch for a registry whose versions must be signed: the
// manifest is read once and its bytes checked against the signature
// before anything is believed, then the model bytes are read and checked
// against the signed digest (through the manifest's, which the signature
// covers). Nothing is returned unless all of it holds; each refusal wraps
// one of package signing's errors.
func (r *Registry) FetchSigned(ctx context.Context, trust *signing.Trust, name, version string) ([]byte, Manifest, signing.Verified, error) {
	m, v, err := r.verifiedManifest(ctx, trust, name, version)
	if err != nil {
		return nil, Manifest{}, signing.Verified{}, err
	}
	data, err := r.readVerified(ctx, name, version, modelObject, m.SHA256, m.Size)
	if errors.Is(err, ErrDigestMismatch) {
		// The bytes are not the signed ones: a refusal like the others.
		err = fmt.Errorf("%w: %w", signing.ErrDigestMismatch, err)
	}
	if err != nil {
		return nil, Manifest{}, signing.Verified{}, err
	}
	// readVerified checked data against m.SHA256, which the signature
	// covers; checking it against the statement itself costs one hash and
	// does not rest on that chain.
	if err := v.Check(modelObject, data); err != nil {
		return nil, Manifest{}, signing.Verified{}, err
	}
	return data, m, v, nil
}

// VerifyVersion checks every file of a version against its signature: the
// manifest, the model and the holdout bytes as stored now (downloaded),
// and the data profile when it was signed. It returns the verified
// statement; unsigned extra objects (a profile stored after signing) are
// not refused, and Verified.Signed says which files were covered.
func (r *Registry) VerifyVersion(ctx context.Context, trust *signing.Trust, name, version string) (signing.Verified, error) {
	_, m, v, err := r.FetchSigned(ctx, trust, name, version)
	if err != nil {
		return signing.Verified{}, err
	}
	if h := m.Holdout; h != nil {
		data, err := r.readVersionObject(ctx, name, version, h.File, "holdout", "has no holdout")
		if err != nil {
			return signing.Verified{}, err
		}
		if err := v.Check(h.File, data); err != nil {
			return signing.Verified{}, err
		}
	}
	if v.Signed(profileObject) {
		data, err := r.Profile(ctx, name, version)
		if err != nil {
			return signing.Verified{}, fmt.Errorf("%w: model %q version %q: the signed profile.json is missing: %v", signing.ErrDigestMismatch, name, version, err)
		}
		if err := v.Check(profileObject, data); err != nil {
			return signing.Verified{}, err
		}
	}
	return v, nil
}

// VerifiedProfile returns a version's data profile after checking it
// against the version's signature: the envelope verifies under trust and
// covers profile.json with these bytes. A profile stored after the
// version was signed (promote profile without promote sign) is refused
// with signing.ErrNotSigned; ErrNotFound when there is no profile.
func (r *Registry) VerifiedProfile(ctx context.Context, trust *signing.Trust, name, version string) ([]byte, error) {
	data, err := r.Profile(ctx, name, version)
	if err != nil {
		return nil, err
	}
	_, v, err := r.verifiedManifest(ctx, trust, name, version)
	if err != nil {
		return nil, err
	}
	if !v.Signed(profileObject) {
		return nil, fmt.Errorf("%w: model %q version %q: its profile.json was stored after signing: sign the version again (promote sign)", signing.ErrNotSigned, name, version)
	}
	if err := v.Check(profileObject, data); err != nil {
		return nil, err
	}
	return data, nil
}
