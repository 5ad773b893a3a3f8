package main

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/spf13/cobra"
)

func (a *app) canaryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Release a version in weighted steps that roll back by themselves",
		Long: `A canary moves traffic from the stable version to a candidate in steps
(default 5, 25, 50, 100 %). At every tick the gateways compare the candidate
with stable (error rate, p99 latency, NaN/Inf answers, disagreement of the
predictions) and roll it back when it is worse; after the last step it becomes
stable. Watch it with promote status MODEL --watch.`,
	}
	cmd.AddCommand(a.canaryStartCmd())
	for _, act := range []struct {
		name, short string
		event       func(reason string) release.Transition
	}{
		{"pause", "Hold the canary at its current weight", func(r string) release.Transition { return release.Pause{Reason: r} }},
		{"resume", "Resume a paused canary (its current step starts over)", func(r string) release.Transition { return release.Resume{Reason: r} }},
		{"abort", "End the canary: the candidate takes no more traffic", func(r string) release.Transition { return release.Abort{Reason: r} }},
		{"promote", "Make the candidate stable now, skipping the remaining steps", func(r string) release.Transition { return release.Promote{Reason: r} }},
	} {
		cmd.AddCommand(a.canaryActionCmd(act.name, act.short, act.event))
	}
	return cmd
}

func (a *app) canaryStartCmd() *cobra.Command {
	p := release.DefaultPlan()
	var steps string
	var force bool
	var reason, signKey string
	var webhooks, notify, match []string
	cmd := &cobra.Command{
		Use:   "start MODEL VERSION",
		Short: "Start a canary release of VERSION (it must have passed its gates)",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if force != (reason != "") {
				return usageError("--force and --reason TEXT go together: say why the gates are overridden")
			}
			plan := p
			var err error
			if plan.Steps, plan.Pauses, err = release.ParseSteps(steps); err != nil {
				return usageError("--steps: %v", err)
			}
			for _, w := range webhooks {
				h, err := release.ParseWebhook(w)
				if err != nil {
					return usageError("--webhook: %v", err)
				}
				plan.Webhooks = append(plan.Webhooks, h)
			}
			if plan.Match, err = parseMatches(match); err != nil {
				return err
			}
			for _, n := range notify {
				nt, err := release.ParseNotifier(n)
				if err != nil {
					return usageError("--notify: %v", err)
				}
				plan.Notify = append(plan.Notify, nt)
			}
			if err := plan.Validate(); err != nil {
				return usageError("%v", err)
			}
			name, version := args[0], args[1]
			signer, err := a.signer(signKey)
			if err != nil {
				return err
			}
			r, gate, err := a.openGated(cmd, name, version, force, signer)
			if err != nil {
				return err
			}
			rel, err := a.change(cmd.Context(), r, name, release.StartCanary{Version: version, Plan: plan, Gate: gate.gate, Forced: force, Reason: reason}, signer, gate.digest)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: canary of %s started against stable %s: steps %s %%, %s each, at least %d samples per step\n",
				name, version, rel.Stable, release.FormatSteps(plan.Steps, plan.Pauses), plan.Interval, plan.MinSamples)
			if h := rel.Canary.Progress.Hold; h != nil {
				fmt.Fprintf(a.stdout, "no traffic yet: waiting for the %s webhooks\n", h.For)
			}
			fmt.Fprintf(a.stdout, "watch it with: promote status %s --watch\n", name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&steps, "steps", release.FormatSteps(p.Steps, nil), "candidate weights in percent, increasing, ending at 100, with manual steps between or after them: pause (until promote canary resume) or pause:DURATION, e.g. 5,pause,25,pause:10m,100")
	f.StringArrayVar(&webhooks, "webhook", nil, "TYPE=URL[,timeout=10s][,retries=2][,name=NAME], TYPE one of pre-rollout, confirm-rollout, rollout, confirm-promotion, post-rollout, rollback (repeatable; see the README)")
	f.StringArrayVar(&notify, "notify", nil, "announce each canary event: URL (a JSON POST) or slack=URL (a Slack-compatible incoming webhook) (repeatable)")
	f.DurationVar(&p.Interval, "interval", p.Interval, "the least time a step lasts")
	f.Int64Var(&p.MinSamples, "min-samples", p.MinSamples, "candidate requests a step needs at least before it can pass (a floor: the checks may need more evidence)")
	f.IntVar(&p.FailureLimit, "failure-limit", p.FailureLimit, "failed checks in a row that roll back")
	f.Float64Var(&p.Alpha, "alpha", release.DefaultAlpha, "false-rollback rate: the chance that a candidate within every threshold is rolled back, over the whole canary")
	f.Float64Var(&p.Beta, "beta", release.DefaultBeta, "the chance that a check passes a step although the candidate's true rate is above its threshold")
	f.Float64Var(&p.MaxErrorRateIncrease, "max-error-rate-increase", p.MaxErrorRateIncrease, "the error-rate increase to catch: candidate's minus stable's, as a fraction (0 disables)")
	f.Float64Var(&p.MaxP99LatencyRatio, "max-p99-latency-ratio", p.MaxP99LatencyRatio, "the latency to catch: candidate p99 over stable's, tested as the share of candidate requests slower than this (0 disables)")
	f.DurationVar(&p.P99LatencySlack, "p99-latency-slack", p.P99LatencySlack, "a p99 at most this much above stable's passes whatever the ratio")
	f.Float64Var(&p.MaxNonFiniteRate, "max-nonfinite-rate", p.MaxNonFiniteRate, "fraction of candidate answers with NaN or Inf")
	f.Float64Var(&p.MaxDisagreement, "max-disagreement", p.MaxDisagreement, "the disagreement to catch: fraction of distinct compared inputs on which the candidate disagrees with stable (0 disables)")
	f.BoolVar(&force, "force", false, "start a canary of an ungated or failed version (needs --reason; recorded in the history)")
	f.StringVar(&reason, "reason", "", "why the gates are overridden (recorded in the history)")
	signKeyFlag(cmd, &signKey)
	matchFlag(cmd, &match)
	return cmd
}

func (a *app) canaryActionCmd(action, short string, event func(reason string) release.Transition) *cobra.Command {
	var reason, signKey string
	cmd := &cobra.Command{
		Use:   action + " MODEL",
		Short: short,
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			signer, err := a.signer(signKey)
			if err != nil {
				return err
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			rel, err := a.change(cmd.Context(), r, args[0], event(reason), signer, "")
			if err != nil {
				return err
			}
			c := rel.Canary
			fmt.Fprintf(a.stdout, "%s: canary of %s is %s (weight %g%%); stable is %s\n", args[0], c.Progress.Candidate, c.Progress.Phase, c.Progress.Weight, rel.Stable)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the history)")
	signKeyFlag(cmd, &signKey)
	return cmd
}

// statusView is `promote status --output json`: the release state with
// the canary's figures at the top level.
type statusView struct {
	Model     string            `json:"model"`
	Stable    string            `json:"stable"`
	Candidate string            `json:"candidate"`
	Phase     release.Phase     `json:"phase"`
	Weight    float64           `json:"weight"`
	Step      int               `json:"step"` // 1-based; 0 without a canary
	Steps     int               `json:"steps"`
	Analysis  *release.Analysis `json:"analysis"`
	Canary    *release.Canary   `json:"canary,omitempty"`
	Updated   time.Time         `json:"updated"`
	History   []release.Event   `json:"history"`
	// Comparison is how the disagreement check compares the answers.
	Comparison *comparison `json:"comparison,omitempty"`
	// Signatures, with --trusted-keys, says for the stable version and the
	// candidate whether they pass the gateways' signature check, and why
	// not.
	Signatures map[string]string `json:"signatures,omitempty"`
}

func newStatusView(rel release.State) statusView {
	v := statusView{Model: rel.Model, Stable: rel.Stable, Candidate: rel.Candidate, Phase: release.Idle,
		Canary: rel.Canary, Updated: rel.Updated, History: rel.History}
	if c := rel.Canary; c != nil {
		v.Phase, v.Weight, v.Step, v.Steps, v.Analysis = c.Progress.Phase, c.Progress.Weight, c.Progress.Step+1, len(c.Plan.Steps), c.Analysis
		if !c.Active() {
			v.Weight = 0
			if c.Progress.Phase == release.Promoted {
				v.Weight = 100
			}
		}
	}
	if v.History == nil {
		v.History = []release.Event{}
	}
	return v
}

func (a *app) statusCmd() *cobra.Command {
	var out string
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status MODEL",
		Short: "Show a model's release state: stable, the canary (phase, step, weight, last analysis) and history",
		Long: `Show a model's release state. With --watch the view refreshes every
--every until the canary ends; it then exits 0 if the candidate was promoted
and 1 if it was rolled back or aborted.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "text" && out != "json" {
				return usageError("--output must be text or json, got %q", out)
			}
			if every <= 0 {
				return usageError("--every must be positive")
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			for first := true; ; first = false {
				rel, err := store.Read(ctx, r, args[0])
				if err != nil {
					return err
				}
				v := newStatusView(rel)
				v.Comparison = comparisonOf(ctx, r, rel)
				if v.Signatures, err = a.signatures(ctx, r, rel.Model, v.Stable, v.Candidate); err != nil {
					return err
				}
				if out == "json" {
					if err := a.printJSON(v); err != nil {
						return err
					}
				} else {
					if watch && !first && isTerminal(a.stdout) {
						fmt.Fprint(a.stdout, "\033[H\033[2J")
					}
					printStatus(a.stdout, v, time.Now(), !watch)
					printSignatures(a.stdout, v)
				}
				if !watch {
					return nil
				}
				if rel.Canary == nil || rel.Canary.Progress.Phase.IsTerminal() {
					if rel.Canary != nil && rel.Canary.Progress.Phase != release.Promoted {
						return &exitError{code: 1, err: fmt.Errorf("canary of %s %s: %s", rel.Canary.Progress.Candidate, rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)}
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(every):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until the canary ends")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "refresh period of --watch")
	return cmd
}

// waitingFor says what a holding canary waits for.
func waitingFor(h release.Hold, now time.Time) string {
	since := now.Sub(h.Since).Round(time.Second)
	switch h.For {
	case release.HoldPause:
		if h.Until.IsZero() {
			return fmt.Sprintf("a manual step, for %s: run promote canary resume to go on", since)
		}
		return fmt.Sprintf("a timed pause: %s left", h.Until.Sub(now).Round(time.Second))
	case release.HoldPreRollout, release.HoldConfirmRollout:
		return fmt.Sprintf("the %s webhooks, for %s, before any traffic", h.For, since)
	case release.HoldConfirmPromotion:
		return fmt.Sprintf("the confirm-promotion webhooks, for %s, before promotion", since)
	}
	return h.For
}

func printStatus(w io.Writer, v statusView, now time.Time, history bool) {
	fmt.Fprintf(w, "model:     %s\nstable:    %s\n", v.Model, v.Stable)
	if c := v.Canary; c != nil {
		st := c.Progress
		fmt.Fprintf(w, "canary:    %s  %s, step %d of %d, weight %g%%\n", st.Candidate, st.Phase, v.Step, v.Steps, v.Weight)
		if c.Active() {
			elapsed := now.Sub(st.StepStart).Round(time.Second)
			fmt.Fprintf(w, "step:      started %s ago (interval %s), failed checks %d of %d allowed\n",
				elapsed, c.Plan.Interval, st.Failures, c.Plan.FailureLimit)
		}
		if st.Reason != "" {
			fmt.Fprintf(w, "reason:    %s\n", st.Reason)
		}
		if h := st.Hold; h != nil && c.Active() {
			fmt.Fprintf(w, "waiting:   %s\n", waitingFor(*h, now))
		}
		if an := c.Analysis; an != nil {
			o := an.Observations
			src := an.Source
			if an.Replica != "" {
				src += " at " + an.Replica
			}
			fmt.Fprintf(w, "analysis:  %s ago (%s): %s\n", now.Sub(an.Time).Round(time.Second), src, an.Reason)
			fmt.Fprintf(w, "samples:   candidate %d (a step needs at least %d), stable %d, compared %d (%d distinct inputs)\n",
				o.Candidate.Requests, c.Plan.MinSamples, o.Stable.Requests, o.Compared, o.Distinct)
			if m := o.Matched; m.Requests > 0 || len(c.Plan.Match) > 0 {
				rules := ""
				for i, r := range c.Plan.Match {
					if i > 0 {
						rules += ", "
					}
					rules += r.String()
				}
				fmt.Fprintf(w, "matched:   %d requests by rule (%s), %d errors, %d non-finite, p99 %s: a cohort apart, in no check\n",
					m.Requests, rules, m.Errors, m.NonFinite, m.P99)
			}
			alpha, beta := cmp.Or(c.Plan.Alpha, release.DefaultAlpha), cmp.Or(c.Plan.Beta, release.DefaultBeta)
			fmt.Fprintf(w, "bounds:    lower at alpha %g over the canary's %d checks × %d steps (a false rollback), upper at beta %g (a wrong pass)\n",
				alpha, max(1, len(an.Checks)-nonStatistical(c.Plan)), len(c.Plan.Steps), beta)
			if len(an.Checks) > 0 {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "  check\testimate\tlower\tupper\tthreshold\tsamples\tdecision")
				for _, ch := range an.Checks {
					decision := ch.Decision
					switch {
					case decision == "" && ch.Held, decision == release.CheckHold:
						decision = "hold: not yet enough evidence"
					case decision == "" && !ch.Passed, decision == release.CheckFail:
						decision = "FAIL"
					case decision == "":
						decision = release.CheckPass
					}
					fmt.Fprintf(tw, "  %s\t%.4g\t%.4g\t%.4g\t%.4g\t%d of %d\t%s\n", ch.Metric, ch.Value, ch.Lower, ch.Upper, ch.Threshold, ch.Events, ch.Samples, decision)
				}
				tw.Flush()
				for _, ch := range an.Checks {
					if ch.Detail != "" {
						fmt.Fprintf(w, "  %s: %s\n", ch.Metric, ch.Detail)
					}
				}
			}
		}
		if v.Comparison != nil {
			fmt.Fprintf(w, "compared:  %s\n", v.Comparison)
		}
	} else if v.Candidate != "" {
		fmt.Fprintf(w, "candidate: %s\n", v.Candidate)
	}
	fmt.Fprintf(w, "updated:   %s\n", v.Updated.UTC().Format(time.RFC3339))
	if !history {
		return
	}
	fmt.Fprintln(w, "history:")
	for _, e := range v.History {
		line := fmt.Sprintf("  %s  %-15s %s", e.Time.UTC().Format(time.RFC3339), e.Action, e.Version)
		if e.From != "" {
			line += " (from " + e.From + ")"
		}
		if e.Forced {
			line += " forced"
		}
		if e.Reason != "" {
			line += ": " + e.Reason
		}
		if e.Actor != "" {
			line += " [by " + e.Actor
			if e.Sig != nil {
				line += ", key " + e.Sig.KeyID[:min(12, len(e.Sig.KeyID))] // promote verify checks it
			}
			line += "]"
		}
		fmt.Fprintln(w, line)
	}
}

// nonStatistical is 1 when the plan's non-finite check is the rule "none
// allowed" rather than a test (it takes no share of alpha), else 0.
func nonStatistical(p release.Plan) int {
	if p.MaxNonFiniteRate > 0 {
		return 0
	}
	return 1
}
