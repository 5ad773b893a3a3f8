package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
	"github.com/spf13/cobra"
)

// Who did what: every release action promote takes records an actor in
// the history, the gate report's digest where a gate decided, and, with a
// signing key, a signature by that key over the event.

// Environment of the release records: who acts (else CI's variables, else
// user@host), and the keys whose holders may override a signed failed
// gate.
const (
	envActor        = "MODELGATE_ACTOR"
	envOverrideKeys = "MODELGATE_SECURITY_OVERRIDE_KEYS"
)

// actor is who the history says acted: --actor, else $MODELGATE_ACTOR,
// else the GitHub Actions run, else user@host. It is a claim; the event's
// signature is the proof.
func (a *app) actor() string {
	if a.actorFlag != "" {
		return a.actorFlag
	}
	if v := os.Getenv(envActor); v != "" {
		return v
	}
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		return fmt.Sprintf("github:%s (%s run %s)", os.Getenv("GITHUB_ACTOR"), os.Getenv("GITHUB_REPOSITORY"), os.Getenv("GITHUB_RUN_ID"))
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	user := cmpOr(os.Getenv("USER"), os.Getenv("LOGNAME"), name, "unknown")
	host, _ := os.Hostname()
	return user + "@" + cmpOr(host, "unknown")
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// signKeyFlag adds --sign-key to a release action: the key its history
// event is signed with (default $MODELGATE_SIGN_KEY).
func signKeyFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVar(file, "sign-key", "", "private key (PEM) that signs the release history's event (default $"+envSignKey+")")
}

// overrideTrust is the keys of --override-keys, else
// $MODELGATE_SECURITY_OVERRIDE_KEYS; nil when neither is set.
func (a *app) overrideTrust() (*signing.Trust, error) {
	paths := a.overrideKeys
	if len(paths) == 0 {
		if env := os.Getenv(envOverrideKeys); env != "" {
			paths = strings.Split(env, ",")
		}
	}
	if len(paths) == 0 {
		return nil, nil
	}
	t, err := signing.NewTrust(paths)
	if err != nil {
		return nil, usageError("--override-keys: %v", err)
	}
	return t, nil
}

// gateDecision is what a stable change or canary start rests on: the
// gate verdict the release transition checks, and the digest of the gate
// report it came from ("" without one).
type gateDecision struct {
	gate   release.Gate
	digest string
}

// openGated opens the registry, checks that the version exists, and reads
// the gate verdict the release transition needs (release refuses a version
// without a passed gate unless forced). With trusted keys the version's
// signature is checked first and the gate report counts only when its own
// signature verifies; a signed failed gate is refused even with --force,
// unless the action is signed (signer) by a key among the override keys.
// Neither check can be forced: a gate can be waived, the origin of the
// bytes and of the verdict not.
func (a *app) openGated(cmd *cobra.Command, name, version string, force bool, signer *signing.Signer) (*registry.Registry, gateDecision, error) {
	r, err := a.open(cmd)
	if err != nil {
		return nil, gateDecision{}, err
	}
	ctx := cmd.Context()
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return nil, gateDecision{}, err
	}
	if err := a.checkSigned(ctx, r, name, version); err != nil {
		return nil, gateDecision{}, err
	}
	trust, err := a.trust()
	if err != nil {
		return nil, gateDecision{}, err
	}
	var d gateDecision
	if rep, err := r.GateReport(ctx, name, version); err == nil {
		d.digest = signing.FileOf(signing.GateReportFile, rep).SHA256
	} else if !errors.Is(err, registry.ErrNotFound) {
		return nil, gateDecision{}, err
	}
	if trust == nil {
		if !force {
			d.gate, err = store.Gate(ctx, r, name, version)
		}
		return r, d, err
	}
	check, err := r.VerifyGateReport(ctx, trust, name, version)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		d.gate = release.GateNotRun
	case errors.Is(err, signing.ErrUnsigned):
		// With trusted keys only a signed verdict counts: anyone who
		// can write to the bucket can write an unsigned report.
		d.gate = release.GateNotRun
		if !force {
			return nil, d, &exitError{code: 1, err: fmt.Errorf("refused, nothing changed: %s version %s has an unsigned gate report, and with trusted keys only a signed one counts: run `promote gate %s %s --sign-key KEY`, or override with --force --reason TEXT: %w", name, version, name, version, err)}
		}
	case err != nil && signing.IsRefusal(err):
		return nil, d, &exitError{code: 1, err: fmt.Errorf("refused, nothing changed (--force does not override this): %s version %s's gate report fails its signature check (%s): %w", name, version, signing.Reason(err), err)}
	case err != nil:
		return nil, d, err
	default:
		d.gate = release.GateFailed
		if check.Verdict == "pass" {
			d.gate = release.GatePassed
		}
		fmt.Fprintf(a.stderr, "%s version %s: gate report verified: %s (key %s)\n", name, version, check.Verdict, check.KeyID[:12])
	}
	if force && d.gate == release.GateFailed {
		if err := a.allowOverride(name, version, check, signer); err != nil {
			return nil, d, err
		}
	}
	return r, d, nil
}

// allowOverride lets a forced action through a signed failed gate only
// when it is signed by an override key.
func (a *app) allowOverride(name, version string, check registry.GateCheck, signer *signing.Signer) error {
	refuse := func(why string) error {
		return &exitError{code: 1, err: fmt.Errorf("refused, nothing changed: %s version %s failed its gates and the report is signed (key %s); --force overrides a signed failure only when the action is signed with an override key: %s", name, version, check.KeyID[:12], why)}
	}
	over, err := a.overrideTrust()
	if err != nil {
		return err
	}
	switch {
	case over == nil:
		return refuse("no override keys are configured (--override-keys or $" + envOverrideKeys + ")")
	case signer == nil:
		return refuse("sign the action with --sign-key (or $" + envSignKey + ") holding an override key")
	}
	ok, err := over.Contains(signer.KeyID())
	if err != nil {
		return err
	}
	if !ok {
		return refuse(fmt.Sprintf("key %s is not among the override keys", signer.KeyID()[:12]))
	}
	fmt.Fprintf(a.stderr, "%s version %s: failed gate overridden with override key %s\n", name, version, signer.KeyID()[:12])
	return nil
}

// by wraps a release transition with who does it, the gate report it
// rests on, and the signer of its event.
func (a *app) by(signer *signing.Signer, gateDigest string) func(release.Transition) release.Transition {
	return func(t release.Transition) release.Transition {
		b := release.By{T: t, Actor: a.actor(), GateReport: gateDigest}
		if signer != nil {
			b.Signer = signer
		}
		return b
	}
}

// change applies t, done by the actor and signed by signer when it is
// set, and prints the history's new head on stderr for CI to record
// (promote verify --head checks that no later release.json went back
// before it).
func (a *app) change(ctx context.Context, r *registry.Registry, name string, t release.Transition, signer *signing.Signer, gateDigest string) (release.State, error) {
	rel, err := store.Change(ctx, r, name, a.by(signer, gateDigest)(t), time.Now())
	if err != nil {
		return rel, err
	}
	a.printHead(rel)
	return rel, nil
}

func (a *app) printHead(rel release.State) {
	if h, err := release.HeadOf(rel.History); err == nil && h.Events > 0 {
		fmt.Fprintf(a.stderr, "release history head: %s\n", h)
	}
}
