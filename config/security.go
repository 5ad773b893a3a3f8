package config

import "github.com/modelgate/modelgate/signing"

// Security settings: which model versions this gateway is willing to
// load. With trusted keys, a version must carry a signature (promote push
// --sign-key) by one of them over its manifest and model, checked before
// ONNX Runtime sees a byte; docs/security.md says what that protects
// against and what it does not.
type Security struct {
	// TrustedKeys are PEM public keys: files, or directories whose *.pem
	// and *.pub files are all trusted. A directory is read again at every
	// load, so that adding or removing a key takes effect without a
	// restart (key rotation).
	TrustedKeys []string `mapstructure:"trusted_keys"`
	// RequireSignature refuses unsigned versions. Unset: on when
	// TrustedKeys are given. Off with trusted keys, a signed version is
	// still verified (and refused when it fails), an unsigned one loads
	// with a warning: the migration mode.
	RequireSignature *bool `mapstructure:"require_signature"`
}

// Require reports whether unsigned versions are refused.
func (s Security) Require() bool {
	if s.RequireSignature != nil {
		return *s.RequireSignature
	}
	return len(s.TrustedKeys) > 0
}

func (s Security) validate(bad func(key, format string, args ...any)) {
	if len(s.TrustedKeys) > 0 {
		if _, err := signing.NewTrust(s.TrustedKeys); err != nil {
			bad("security.trusted_keys", "%v", err)
		}
	}
	if s.Require() && len(s.TrustedKeys) == 0 {
		bad("security.require_signature", "is true but security.trusted_keys names no key to verify with")
	}
}
