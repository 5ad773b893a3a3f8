package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
	"github.com/spf13/cobra"
)

// Environment variables of signing: the private key push signs with, and
// the trusted public keys (comma-separated PEM files or directories) that
// gate, stable, canary start and status verify with.
const (
	envSignKey     = "MODELGATE_SIGN_KEY"
	envTrustedKeys = "MODELGATE_SECURITY_TRUSTED_KEYS" // the gateway's name for security.trusted_keys: one setting for both
)

func (a *app) keygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Make an Ed25519 signing key pair: the private key for promote push --sign-key, the public key for the gateway's security.trusted_keys",
		Long: `Make an Ed25519 key pair in DIR: ` + signing.PrivateKeyFile + ` (PKCS #8 PEM, mode 0600:
keep it in CI's secrets, pass it to promote push --sign-key or $` + envSignKey + `) and
` + signing.PublicKeyFile + ` (PKIX PEM: give it to the gateways' security.trusted_keys and to
promote --trusted-keys). An existing key is never overwritten.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("keygen needs --out DIR")
			}
			s, err := signing.GenerateKey()
			if err != nil {
				return err
			}
			priv, pub, err := signing.WriteKeyPair(out, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "key %s\nprivate key: %s (mode 0600; keep it secret)\npublic key:  %s (trust it: security.trusted_keys, --trusted-keys)\n", s.KeyID(), priv, pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for the key pair (created if missing)")
	return cmd
}

func (a *app) signCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sign MODEL VERSION",
		Short: "Sign a stored version (again): its manifest, model, holdout and profile as stored",
		Long: `Sign a version already in the registry, replacing its signature: after a new
key replaced an old one, or after promote profile stored a new profile. It signs
what the registry holds, so run it only where that is known to be what the
pipeline produced (right after push, in the same CI job).`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.signer(keyFile)
			if err != nil {
				return err
			}
			if s == nil {
				return usageError("sign needs --sign-key FILE or $%s", envSignKey)
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			return a.sign(cmd.Context(), r, s, args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&keyFile, "sign-key", "", "private key (PEM) to sign with (default $"+envSignKey+")")
	return cmd
}

// signer loads the private key of --sign-key, else $MODELGATE_SIGN_KEY;
// nil when neither is set.
func (a *app) signer(flag string) (*signing.Signer, error) {
	path := flag
	if path == "" {
		path = os.Getenv(envSignKey)
	}
	if path == "" {
		return nil, nil
	}
	s, err := signing.LoadPrivateKey(path)
	if err != nil {
		return nil, usageError("--sign-key: %v", err)
	}
	return s, nil
}

// sign signs a stored version and says so.
func (a *app) sign(ctx context.Context, r *registry.Registry, s *signing.Signer, name, version string) error {
	if _, err := r.SignVersion(ctx, s, name, version); err != nil {
		return fmt.Errorf("%s version %s is stored but not signed: %w", name, version, err)
	}
	fmt.Fprintf(a.stdout, "signed %s version %s with key %s\n", name, version, s.KeyID()[:12])
	return nil
}

// trust returns the trusted keys of --trusted-keys, else
// $MODELGATE_SECURITY_TRUSTED_KEYS; nil when neither is set (signatures are then
// not checked).
func (a *app) trust() (*signing.Trust, error) {
	paths := a.trustedKeys
	if len(paths) == 0 {
		if env := os.Getenv(envTrustedKeys); env != "" {
			paths = strings.Split(env, ",")
		}
	}
	if len(paths) == 0 {
		return nil, nil
	}
	t, err := signing.NewTrust(paths)
	if err != nil {
		return nil, usageError("--trusted-keys: %v", err)
	}
	return t, nil
}

// checkSigned verifies every file of a version against its signature when
// trusted keys are given; a refusal is exit 1 and nothing changes. --force
// does not override it: a gate can be waived, the origin of the bytes not.
func (a *app) checkSigned(ctx context.Context, r *registry.Registry, name, version string) error {
	t, err := a.trust()
	if err != nil || t == nil {
		return err
	}
	v, err := r.VerifyVersion(ctx, t, name, version)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("refused, nothing changed: %s version %s fails its signature check (%s): %w", name, version, signing.Reason(err), err)}
	}
	fmt.Fprintf(a.stderr, "%s version %s: signature verified (key %s)\n", name, version, v.KeyID[:12])
	return nil
}

// signatures checks the given versions' signatures when trusted keys are
// given: version → "verified (key ...)" or "REFUSED (reason): why", what a
// gateway with those keys would do. nil without trusted keys.
func (a *app) signatures(ctx context.Context, r *registry.Registry, name string, versions ...string) (map[string]string, error) {
	t, err := a.trust()
	if err != nil || t == nil {
		return nil, err
	}
	out := map[string]string{}
	for _, v := range versions {
		if v == "" {
			continue
		}
		ver, err := r.VerifyVersion(ctx, t, name, v)
		switch {
		case err == nil:
			out[v] = "verified (key " + ver.KeyID[:12] + ")"
		case signing.IsRefusal(err):
			out[v] = fmt.Sprintf("REFUSED (%s): %v", signing.Reason(err), err)
		default:
			return nil, err
		}
	}
	return out, nil
}

// printSignatures prints the signature lines of promote status.
func printSignatures(w io.Writer, v statusView) {
	for _, ver := range []string{v.Stable, v.Candidate} {
		if s, ok := v.Signatures[ver]; ok {
			fmt.Fprintf(w, "signature: %s %s\n", ver, s)
		}
	}
}
