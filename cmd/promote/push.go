package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/signing"
	"github.com/modelgate/modelgate/validation"
	"github.com/spf13/cobra"
)

// pushFlags are promote push's arguments and flags.
type pushFlags struct {
	name, version, file             string
	holdout, trainData, labelColumn string
	meta                            []string
	outputKinds                     []string
	signKey                         string
}

// pushPlan is what promote push stores, read and checked before it
// touches the registry.
type pushPlan struct {
	req     registry.PushRequest
	profile []byte
	// signer, with --sign-key or $MODELGATE_SIGN_KEY, signs the version
	// once it is stored.
	signer *signing.Signer
	// kinds are the output kinds stored, in signature order, with why
	// each was chosen; holdoutProblem says why --holdout could not be run
	// for them.
	kinds          []validation.InferredKind
	holdoutProblem string
}

func (a *app) pushCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push MODEL VERSION FILE",
		Short: "Store a model version (ONNX file) in the registry; the first version becomes stable",
		Long: `Store a model version in the registry. The ONNX file is loaded with ONNX Runtime
to read its signature (and refused if it does not load). Versions are
immutable: pushing the same bytes again changes nothing, other bytes are refused.

Each output's kind is stored with the version: how the canary compares two
versions' answers and the accuracy gate reads predictions. label (integer or
boolean: equal or not), probabilities (float [N, K>1]: the top-1 class),
probability (float [N] or [N, 1] in [0, 1]: the side of a threshold, 0.5 by
default) or regression (|a - b| <= atol + rtol·|b|, atol 1e-6 and rtol 0.01 by
default). They are inferred from the signature and, with --holdout, from the
model's outputs on the holdout rows (one number per row is a probability when
every value is in [0, 1] and every label 0 or 1); --output-kind overrides one:
--output-kind probability=probability,threshold=0.7
--output-kind price=regression,rtol=0.05`,
		Args: args(3, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.name, f.version, f.file = args[0], args[1], args[2]
			plan, err := a.preparePush(cmd.Context(), f)
			if err != nil {
				return err
			}
			if plan.signer, err = a.signer(f.signKey); err != nil {
				return err
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			return a.push(cmd.Context(), r, plan, f.trainData)
		},
	}
	cmd.Flags().StringVar(&f.holdout, "holdout", "", "holdout CSV stored with the version (for the accuracy gate)")
	cmd.Flags().StringVar(&f.trainData, "train-data", "", "training data CSV: its profile is stored with the version (as promote profile does)")
	cmd.Flags().StringVar(&f.labelColumn, "label-column", "", `label column of --train-data: header name or 0-based index, or "none" (default: decided by the model's input width); also the label of --holdout when inferring output kinds (default: its last column)`)
	cmd.Flags().StringArrayVar(&f.meta, "meta", nil, "metadata key=value (repeatable)")
	cmd.Flags().StringVar(&f.signKey, "sign-key", "", "private key (PEM, promote keygen) to sign the version with: its manifest, model, holdout and profile (default $"+envSignKey+")")
	cmd.Flags().StringArrayVar(&f.outputKinds, "output-kind", nil, "an output's kind, instead of the inferred one: NAME=label|probabilities|probability[,threshold=T]|regression[,atol=A][,rtol=R] (repeatable)")
	return cmd
}

// preparePush reads what promote push stores, before it touches the
// registry: the model (loaded for its signature, refused if it does not
// load), the holdout, the metadata, the output kinds (inferred, and
// --output-kind) and, with --train-data, the data's profile, so that
// unusable data refuses the push.
func (a *app) preparePush(ctx context.Context, f pushFlags) (pushPlan, error) {
	for _, s := range []string{f.name, f.version} {
		if err := registry.ValidateName(s); err != nil {
			return pushPlan{}, usageError("%v", err)
		}
	}
	req := registry.PushRequest{Name: f.name, Version: f.version, Metadata: map[string]string{}}
	for _, kv := range f.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return pushPlan{}, usageError("--meta wants key=value, got %q", kv)
		}
		req.Metadata[k] = v
	}
	for _, o := range f.outputKinds { // the syntax first, before the model loads
		if _, _, err := semantics.Parse(o); err != nil {
			return pushPlan{}, usageError("--output-kind %v", err)
		}
	}
	var err error
	if req.Model, err = os.ReadFile(f.file); err != nil {
		return pushPlan{}, err
	}
	if f.holdout != "" {
		if req.Holdout, err = os.ReadFile(f.holdout); err != nil {
			return pushPlan{}, err
		}
	}
	holdoutLabel := f.labelColumn
	if holdoutLabel == "none" {
		holdoutLabel = ""
	}
	plan := pushPlan{}
	if req.Inputs, req.Outputs, plan.kinds, plan.holdoutProblem, err = a.inspect(ctx, req.Model, req.Holdout, holdoutLabel); err != nil {
		if ctx.Err() != nil {
			return pushPlan{}, err
		}
		return pushPlan{}, fmt.Errorf("refused %s: %w", f.file, err)
	}
	overrides, err := semantics.ParseAll(f.outputKinds, req.Outputs)
	if err != nil {
		return pushPlan{}, usageError("--output-kind %v", err)
	}
	req.OutputKinds = make(map[string]semantics.Output, len(plan.kinds))
	for i, k := range plan.kinds {
		if o, ok := overrides[k.Output]; ok {
			plan.kinds[i].Kind, plan.kinds[i].Why = o, "--output-kind"
		}
		req.OutputKinds[k.Output] = plan.kinds[i].Kind
	}
	plan.req = req
	if f.trainData == "" {
		return plan, nil
	}
	p, err := profileData(f.trainData, registry.Manifest{Name: f.name, Version: f.version, Inputs: req.Inputs}, f.labelColumn, 0)
	if err != nil {
		return pushPlan{}, fmt.Errorf("push refused, nothing changed: --train-data %w", err)
	}
	plan.profile, err = p.JSON()
	return plan, err
}

// push stores the version (the model's first becomes stable), its output
// kinds and its data profile, and says what changed.
func (a *app) push(ctx context.Context, r *registry.Registry, plan pushPlan, trainData string) error {
	req, profile := plan.req, plan.profile
	name, version := req.Name, req.Version
	if err := r.EnsureStorage(ctx); err != nil {
		return fmt.Errorf("registry %s: %w", r.Describe(), err)
	}
	if isTerminal(a.stderr) {
		ctx = registry.WithProgress(ctx, terminalProgress(a.stderr))
	}
	// The profile and the signature are stored before the release
	// transition, so that a first version is signed (its profile
	// included) before it becomes stable and gateways that require
	// signatures load it.
	p := &completingPusher{Registry: r, profile: profile, signer: plan.signer}
	m, created, err := store.PushBy(ctx, p, req, time.Now(), a.by(plan.signer, ""))
	if p.err != nil {
		return p.err
	}
	if err != nil {
		return fmt.Errorf("push refused, nothing changed: %w", err)
	}
	if !created {
		fmt.Fprintf(a.stdout, "%s version %s is already in the registry with the same bytes (sha256 %s); nothing changed\n", name, version, m.SHA256[:12])
		if !maps.Equal(m.OutputKinds, req.OutputKinds) {
			fmt.Fprintf(a.stdout, "its output kinds stay as stored (a version is immutable): %s\n", describeKinds(m))
		}
	} else {
		stable := ""
		if rel, err := store.Read(ctx, r, name); err == nil {
			stable = rel.Stable
		}
		fmt.Fprintf(a.stdout, "pushed %s version %s (sha256 %s, %s) to %s\n", name, version, m.SHA256[:12], humanBytes(m.Size), r.Describe())
		if stable == version {
			fmt.Fprintf(a.stdout, "%s version %s is stable (the model's first version)\n", name, version)
		} else {
			fmt.Fprintf(a.stdout, "stable is still %s; run `promote stable %s %s` to serve it\n", stable, name, version)
		}
	}
	if created {
		if plan.holdoutProblem != "" {
			fmt.Fprintf(a.stderr, "warning: the model could not be run on --holdout (%s): output kinds inferred from the signature alone\n", plan.holdoutProblem)
		}
		fmt.Fprintln(a.stdout, "output kinds (how the canary compares answers and the accuracy gate reads predictions; --output-kind overrides):")
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		for _, k := range plan.kinds {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", k.Output, k.Kind, k.Why)
		}
		tw.Flush()
	}
	if profile != nil {
		fmt.Fprintf(a.stdout, "stored the data profile of %s (promote check-data and drift compare with it)\n", filepath.Base(trainData))
	}
	if plan.signer != nil {
		fmt.Fprintf(a.stdout, "signed %s version %s with key %s\n", name, version, plan.signer.KeyID()[:12])
	}
	return nil
}

// completingPusher is the registry for store.Push: once the version is
// stored it stores the data profile and then the signature, which covers
// the profile, before store.Push records the push in the release state. A
// failure of either stops the push there, with err saying what is stored.
type completingPusher struct {
	*registry.Registry
	profile []byte
	signer  *signing.Signer
	err     error
}

func (p *completingPusher) Push(ctx context.Context, req registry.PushRequest) (registry.Manifest, bool, error) {
	m, created, err := p.Registry.Push(ctx, req)
	if err != nil {
		return m, created, err
	}
	name, version := req.Name, req.Version
	if p.profile != nil {
		if err := p.PutProfile(ctx, name, version, p.profile); err != nil {
			p.err = fmt.Errorf("%s version %s is stored, but not its data profile (run promote profile, then push again): %w", name, version, err)
			return m, created, p.err
		}
	}
	if p.signer != nil {
		if _, err := p.SignVersion(ctx, p.signer, name, version); err != nil {
			p.err = fmt.Errorf("%s version %s is stored, but not signed (push again, or promote sign): %w", name, version, err)
			return m, created, p.err
		}
	}
	return m, created, nil
}

// describeKinds lists m's output kinds in signature order, for people.
func describeKinds(m registry.Manifest) string {
	if len(m.OutputKinds) == 0 {
		return "none (stored before output kinds: the canary infers them from the signature, the accuracy gate reads the outputs by its label rule)"
	}
	var parts []string
	for _, spec := range m.Outputs {
		if k, ok := m.OutputKinds[spec.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", spec.Name, k))
		}
	}
	return strings.Join(parts, ", ")
}
