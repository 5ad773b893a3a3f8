package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
	"github.com/spf13/cobra"
)

// verifyView is promote verify's finding, as --output json prints it.
type verifyView struct {
	Model    string         `json:"model"`
	Versions []versionCheck `json:"versions"`
	History  []historyCheck `json:"history"`
	Head     string         `json:"head,omitempty"`
	Problems []string       `json:"problems"` // proof of tampering: exit 1
	Warnings []string       `json:"warnings"` // what is not proven: exit 1 with --strict
	Verdict  string         `json:"verdict"`  // "verified", "unproven" or "tampered"
	state    release.State  // for the text form
	checks   []release.EventCheck
}

type versionCheck struct {
	Version string `json:"version"`
	Role    string `json:"role,omitempty"` // stable, candidate
	// Model is the version's signature: "verified" or why not.
	Model    string   `json:"model"`
	ModelKey string   `json:"model_key,omitempty"`
	Signed   []string `json:"signed_files,omitempty"`
	// Gate is the gate report's: its verdict and signature.
	Gate       string `json:"gate"`
	GateKey    string `json:"gate_key,omitempty"`
	GateSHA256 string `json:"gate_sha256,omitempty"`
}

type historyCheck struct {
	N          int       `json:"n"`
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Version    string    `json:"version"`
	From       string    `json:"from,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	GateReport string    `json:"gate_report,omitempty"`
	Key        string    `json:"key,omitempty"` // the verified signer
	Link       string    `json:"link"`          // "ok", "before the chain", "broken"
	Signature  string    `json:"signature"`     // "verified", "unsigned", or why refused
}

func (a *app) verifyCmd() *cobra.Command {
	var head, output string
	var strict bool
	cmd := &cobra.Command{
		Use:   "verify MODEL [VERSION]",
		Short: "Check a model's whole chain of custody: version signatures, signed gate reports, the release history",
		Long: `Check, with the trusted keys (--trusted-keys or $` + envTrustedKeys + `, and the override
keys), everything a gateway and promote rely on, and print it:

  - the version's signature (VERSION, else the stable version and the canary's
    candidate): every file (manifest, model, holdout, profile) is the signed bytes;
  - its gate report: signed by a trusted key, about these model bytes, with the
    verdict it states;
  - the release history: every event links to the one before (a hash chain), every
    signed event's signature verifies, and the stable version and candidate are
    what the history says they are;
  - with --head EVENTS:SHA256 (what promote printed as "release history head" after
    an action, e.g. in CI's log), that the history still extends that head: an
    older release.json put back is caught here.

Problems (proof that something was changed outside promote and the gateways) exit
1. Warnings (what is not proven: an unsigned event, a version gated without
--sign-key, events older than the chain) exit 0, or 1 with --strict.`,
		Args: args(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError("--output must be text or json, got %q", output)
			}
			var want release.Head
			if head != "" {
				var err error
				if want, err = release.ParseHead(head); err != nil {
					return usageError("--head: %v", err)
				}
			}
			trust, err := a.trust()
			if err != nil {
				return err
			}
			if trust == nil {
				return usageError("verify needs the trusted keys: --trusted-keys or $%s", envTrustedKeys)
			}
			over, err := a.overrideTrust()
			if err != nil {
				return err
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			version := ""
			if len(args) == 2 {
				version = args[1]
			}
			v, err := a.verify(cmd.Context(), r, trust, over, args[0], version, want)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := a.printJSON(v); err != nil {
					return err
				}
			} else {
				printVerify(a.stdout, v)
			}
			switch {
			case len(v.Problems) > 0:
				return &exitError{code: 1, err: fmt.Errorf("%s: %d problem(s): the registry was changed outside promote and the gateways", args[0], len(v.Problems))}
			case strict && len(v.Warnings) > 0:
				return &exitError{code: 1, err: fmt.Errorf("%s: %d warning(s), and --strict", args[0], len(v.Warnings))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&head, "head", "", "a history head promote printed earlier (EVENTS:SHA256): fail unless the history extends it")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings too (anything unsigned)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// verify gathers the chain of model name: the versions', then the
// history's.
func (a *app) verify(ctx context.Context, r *registry.Registry, trust, over *signing.Trust, name, version string, want release.Head) (verifyView, error) {
	v := verifyView{Model: name, Problems: []string{}, Warnings: []string{}}
	rel, err := store.Read(ctx, r, name)
	noState := errors.Is(err, registry.ErrNotFound)
	if err != nil && !noState {
		return v, err
	}
	v.state = rel
	type target struct{ version, role string }
	var targets []target
	switch {
	case version != "":
		role := ""
		switch version {
		case rel.Stable:
			role = "stable"
		case rel.Candidate:
			role = "candidate"
		}
		targets = append(targets, target{version, role})
	case noState:
		return v, fmt.Errorf("%w: model %q has no release state; name a VERSION", registry.ErrNotFound, name)
	default:
		targets = append(targets, target{rel.Stable, "stable"})
		if rel.Candidate != "" {
			targets = append(targets, target{rel.Candidate, "candidate"})
		}
	}
	for _, t := range targets {
		vc, err := a.verifyVersion(ctx, r, trust, name, t.version, &v)
		if err != nil {
			return v, err
		}
		vc.Role = t.role
		v.Versions = append(v.Versions, vc)
	}
	if noState {
		v.Warnings = append(v.Warnings, "the model has no release state yet (release.json)")
	} else if err := a.verifyHistory(rel, trust, over, want, &v); err != nil {
		return v, err
	}
	switch {
	case len(v.Problems) > 0:
		v.Verdict = "tampered"
	case len(v.Warnings) > 0:
		v.Verdict = "unproven"
	default:
		v.Verdict = "verified"
	}
	return v, nil
}

func (a *app) verifyVersion(ctx context.Context, r *registry.Registry, trust *signing.Trust, name, version string, v *verifyView) (versionCheck, error) {
	vc := versionCheck{Version: version}
	sig, err := r.VerifyVersion(ctx, trust, name, version)
	switch {
	case err == nil:
		vc.Model, vc.ModelKey = "verified", sig.KeyID
		for _, s := range sig.Statement.Subject {
			vc.Signed = append(vc.Signed, s.Name)
		}
	case signing.IsRefusal(err):
		vc.Model = fmt.Sprintf("REFUSED (%s)", signing.Reason(err))
		v.Problems = append(v.Problems, fmt.Sprintf("version %s: %v", version, err))
	default:
		return vc, err
	}
	gate, err := r.VerifyGateReport(ctx, trust, name, version)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		vc.Gate = "never gated"
		v.Warnings = append(v.Warnings, fmt.Sprintf("version %s was never gated", version))
	case errors.Is(err, signing.ErrUnsigned):
		vc.Gate, vc.GateSHA256 = "unsigned report", gate.SHA256
		v.Warnings = append(v.Warnings, fmt.Sprintf("version %s: its gate report is unsigned (gate it with --sign-key)", version))
	case signing.IsRefusal(err):
		vc.Gate, vc.GateSHA256 = fmt.Sprintf("REFUSED (%s)", signing.Reason(err)), gate.SHA256
		v.Problems = append(v.Problems, fmt.Sprintf("version %s: %v", version, err))
	case err != nil:
		return vc, err
	default:
		vc.Gate, vc.GateKey, vc.GateSHA256 = gate.Verdict, gate.KeyID, gate.SHA256
	}
	return vc, nil
}

// verifyHistory checks the release history: links, signatures (by a
// trusted or an override key), the state against its history, the head.
func (a *app) verifyHistory(rel release.State, trust, over *signing.Trust, want release.Head, v *verifyView) error {
	verifyEvent := func(pt string, body []byte, s signing.Signature) (string, error) {
		id, err := trust.VerifyPayload(pt, body, s)
		if errors.Is(err, signing.ErrUntrustedKey) && over != nil {
			if oid, oerr := over.VerifyPayload(pt, body, s); oerr == nil {
				return oid, nil
			}
		}
		return id, err
	}
	rep, err := release.CheckHistory(rel, verifyEvent, want)
	if err != nil {
		return err
	}
	v.checks = rep.Events
	v.Head = rep.Head.String()
	v.Problems = append(v.Problems, rep.Problems...)
	unlinked, unsigned := 0, 0
	gateOf := map[string]string{}
	for _, vc := range v.Versions {
		gateOf[vc.Version] = vc.GateSHA256
	}
	for i, c := range rep.Events {
		e := c.Event
		h := historyCheck{N: i + 1, Time: e.Time, Action: e.Action, Version: e.Version, From: e.From, Actor: e.Actor, GateReport: e.GateReport, Key: c.KeyID}
		switch {
		case c.Linked:
			h.Link = "ok"
		case c.Unlinked:
			h.Link = "before the chain"
			unlinked++
		default:
			h.Link = "broken"
		}
		switch {
		case c.Signed():
			h.Signature = "verified"
		case c.SigErr != nil:
			h.Signature = "REFUSED (" + signing.Reason(c.SigErr) + ")"
		case strings.HasPrefix(e.Actor, release.ActorGateway):
			h.Signature = "unsigned (the gateways' analysis)"
		default:
			h.Signature = "unsigned"
			unsigned++
		}
		if cur, ok := gateOf[e.Version]; ok && e.GateReport != "" && cur != "" && cur != e.GateReport {
			v.Warnings = append(v.Warnings, fmt.Sprintf("event %d (%s %s) rested on gate report %s; the version has been gated again since (now %s)", i+1, e.Action, e.Version, e.GateReport[:12], cur[:12]))
		}
		v.History = append(v.History, h)
	}
	if unlinked > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d event(s) predate the history's hash chain (written by an earlier modelgate)", unlinked))
	}
	if unsigned > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d operator event(s) are unsigned (act with --sign-key or $%s)", unsigned, envSignKey))
	}
	return nil
}

func printVerify(w io.Writer, v verifyView) {
	for _, vc := range v.Versions {
		role := ""
		if vc.Role != "" {
			role = " (" + vc.Role + ")"
		}
		fmt.Fprintf(w, "%s version %s%s\n", v.Model, vc.Version, role)
		model := vc.Model
		if vc.ModelKey != "" {
			model += fmt.Sprintf(", key %s, covers %s", vc.ModelKey[:12], strings.Join(vc.Signed, ", "))
		}
		fmt.Fprintf(w, "  model signature: %s\n", model)
		gate := vc.Gate
		if vc.GateKey != "" {
			gate += fmt.Sprintf(", signed by key %s", vc.GateKey[:12])
		}
		if vc.GateSHA256 != "" {
			gate += fmt.Sprintf(", sha256 %s", vc.GateSHA256[:12])
		}
		fmt.Fprintf(w, "  gate report:     %s\n", gate)
	}
	if len(v.History) > 0 {
		fmt.Fprintf(w, "release history: %d events, head %s\n", len(v.History), v.Head)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\ttime\taction\tversion\tby\tsignature\tlink\tgate report")
		for _, h := range v.History {
			sig := h.Signature
			if h.Key != "" {
				sig += " " + h.Key[:12]
			}
			gate := "-"
			if h.GateReport != "" {
				gate = h.GateReport[:12]
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.N, h.Time.Format(time.RFC3339), h.Action, h.Version, cmpOr(h.Actor, "-"), sig, h.Link, gate)
		}
		tw.Flush()
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	for _, p := range v.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	fmt.Fprintf(w, "verdict: %s\n", v.Verdict)
}
