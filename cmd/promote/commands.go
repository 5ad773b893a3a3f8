package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/internal/buildinfo"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/validation"
	"github.com/modelgate/modelgate/wire"
	"github.com/spf13/cobra"
)

// defaultRegistry matches the gateway's default.
const defaultRegistry = ".modelgate/registry"

type app struct {
	stdout, stderr io.Writer
	registry       string
	ortLib         string
	trustedKeys    []string // --trusted-keys (sign.go)
	overrideKeys   []string // --override-keys (provenance.go)
	actorFlag      string   // --actor (provenance.go)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "promote",
		Short:         "Push model versions into the registry and move the stable version",
		Version:       fmt.Sprintf("%s (%s)", buildinfo.Version, buildinfo.Revision),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	reg := os.Getenv("MODELGATE_REGISTRY")
	if reg == "" {
		reg = defaultRegistry
	}
	root.PersistentFlags().StringVar(&a.registry, "registry", reg, "model registry: a directory, file:// or s3:// URL (env MODELGATE_REGISTRY)")
	root.PersistentFlags().StringVar(&a.ortLib, "ort-library", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_LIB, else the Makefile's cache)")
	root.PersistentFlags().StringSliceVar(&a.trustedKeys, "trusted-keys", nil, "trusted public keys (PEM files or directories, comma-separated): gate, stable, canary start and status verify the version's signature with them (env "+envTrustedKeys+")")
	root.PersistentFlags().StringSliceVar(&a.overrideKeys, "override-keys", nil, "public keys (PEM files or directories) whose holders may --force a version whose signed gate report failed, by signing the action with --sign-key (env "+envOverrideKeys+")")
	root.PersistentFlags().StringVar(&a.actorFlag, "actor", "", "who acts, as the release history records it (env "+envActor+"; default: the GitHub Actions run, else user@host)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError("%v", err) })
	root.AddCommand(a.pushCmd(), a.listCmd(), a.showCmd(), a.stableCmd(), a.rollbackCmd(), a.statusCmd(), a.gateCmd(), a.canaryCmd())
	root.AddCommand(a.keygenCmd(), a.signCmd(), a.verifyCmd())
	root.AddCommand(a.profileCmd(), a.checkDataCmd(), a.driftCmd())
	return root
}

func isUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") ||
		strings.HasPrefix(msg, "requires ") || strings.Contains(msg, "unknown flag") || strings.Contains(msg, "arg(s)")
}

func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || len(a) > max {
			return usageError("%s: wrong number of arguments\nusage: %s", cmd.Name(), cmd.UseLine())
		}
		return nil
	}
}

func (a *app) open(cmd *cobra.Command) (*registry.Registry, error) {
	r, err := registry.Open(cmd.Context(), a.registry, registry.Options{})
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", a.registry, err)
	}
	return r, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readCommand builds a command that only reads the registry: it takes
// --output text|json and opens the registry before run.
func (a *app) readCommand(use, short string, nargs cobra.PositionalArgs, run func(ctx context.Context, r *registry.Registry, args []string, asJSON bool) error) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  nargs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "text" && out != "json" {
				return usageError("--output must be text or json, got %q", out)
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			return run(cmd.Context(), r, args, out == "json")
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	return cmd
}

// inspect loads the model with ONNX Runtime (CPU) to read its inputs and
// outputs, a file that does not load being refused here, and infers what
// each output means from the signature and, when holdout is not nil, from
// the model's outputs on the holdout's rows (validation.InferKinds; the
// string says why the holdout could not be used).
func (a *app) inspect(ctx context.Context, model, holdout []byte, labelColumn string) ([]wire.TensorSpec, []wire.TensorSpec, []validation.InferredKind, string, error) {
	rt, err := serving.NewRuntime(serving.Options{LibraryPath: a.ortLib, Providers: []string{serving.ProviderCPU}, IntraOpThreads: 1})
	if err != nil {
		return nil, nil, nil, "", err
	}
	defer rt.Close()
	sess, err := rt.NewSession(model, serving.SessionOptions{Name: "inspect"})
	if err != nil {
		return nil, nil, nil, "", err
	}
	defer sess.Close()
	kinds, problem, err := validation.InferKinds(ctx, sess, holdout, labelColumn)
	return sess.Inputs(), sess.Outputs(), kinds, problem, err
}

func (a *app) listCmd() *cobra.Command {
	return a.readCommand("list [MODEL]", "List models, or one model's versions", args(0, 1),
		func(ctx context.Context, r *registry.Registry, args []string, asJSON bool) error {
			if len(args) == 0 {
				names, err := r.Models(ctx)
				if err != nil {
					return err
				}
				type row struct {
					Name     string `json:"name"`
					Stable   string `json:"stable"`
					Versions int    `json:"versions"`
				}
				rows := []row{}
				for _, n := range names {
					vs, err := r.Versions(ctx, n)
					if err != nil {
						return err
					}
					rel, err := store.Read(ctx, r, n)
					if err != nil && !errors.Is(err, registry.ErrNotFound) {
						return err
					}
					rows = append(rows, row{n, rel.Stable, len(vs)})
				}
				if asJSON {
					return a.printJSON(rows)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "MODEL\tSTABLE\tVERSIONS")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", r.Name, r.Stable, r.Versions)
				}
				return tw.Flush()
			}
			vs, err := r.Versions(ctx, args[0])
			if err != nil {
				return err
			}
			rel, err := store.Read(ctx, r, args[0])
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return err
			}
			if asJSON {
				return a.printJSON(vs)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tSHA256\tSIZE\tROLE")
			for _, m := range vs {
				role := ""
				if m.Version == rel.Stable {
					role = "stable"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Version, m.Created.UTC().Format(time.RFC3339), m.SHA256[:12], humanBytes(m.Size), role)
			}
			return tw.Flush()
		})
}

func (a *app) showCmd() *cobra.Command {
	return a.readCommand("show MODEL [VERSION]", "Show a version's manifest (default: the stable version)", args(1, 2),
		func(ctx context.Context, r *registry.Registry, args []string, asJSON bool) error {
			name, version := args[0], ""
			if len(args) == 2 {
				version = args[1]
			} else {
				rel, err := store.Read(ctx, r, name)
				if err != nil {
					return err
				}
				version = rel.Stable
			}
			m, err := r.Manifest(ctx, name, version)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(m)
			}
			w := a.stdout
			fmt.Fprintf(w, "model:    %s\nversion:  %s\nsha256:   %s\nsize:     %s\ncreated:  %s\n", m.Name, m.Version, m.SHA256, humanBytes(m.Size), m.Created.UTC().Format(time.RFC3339))
			fmt.Fprintln(w, "inputs:")
			for _, t := range m.Inputs {
				fmt.Fprintf(w, "  %s %s %v\n", t.Name, t.DType, t.Shape)
			}
			fmt.Fprintln(w, "outputs:")
			for _, t := range m.Outputs {
				kind := ""
				if k, ok := m.OutputKinds[t.Name]; ok {
					kind = "  " + k.String()
				} else if len(m.OutputKinds) > 0 {
					kind = "  kind not stored"
				}
				fmt.Fprintf(w, "  %s %s %v%s\n", t.Name, t.DType, t.Shape, kind)
			}
			if len(m.OutputKinds) == 0 {
				fmt.Fprintln(w, "  (stored before output kinds: the canary infers them from the signature, the accuracy gate reads the outputs by its label rule)")
			}
			if m.Holdout != nil {
				fmt.Fprintf(w, "holdout:  %s (%s, sha256 %s)\n", m.Holdout.File, humanBytes(m.Holdout.Size), m.Holdout.SHA256[:12])
			}
			switch passed, err := r.GatePassed(ctx, name, version); {
			case errors.Is(err, registry.ErrNotFound):
				fmt.Fprintln(w, "gates:    not run (promote gate)")
			case err != nil:
				return err
			case passed:
				fmt.Fprintln(w, "gates:    pass")
			default:
				fmt.Fprintln(w, "gates:    fail")
			}
			if len(m.Metadata) > 0 {
				fmt.Fprintln(w, "metadata:")
				keys := make([]string, 0, len(m.Metadata))
				for k := range m.Metadata {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "  %s=%s\n", k, m.Metadata[k])
				}
			}
			return nil
		})
}

func (a *app) stableCmd() *cobra.Command {
	var force bool
	var reason, signKey string
	cmd := &cobra.Command{
		Use:   "stable MODEL VERSION",
		Short: "Make VERSION the stable version that gateways serve (it must have passed its gates)",
		Long: `Make VERSION the stable version. Gateways following the registry load it,
warm it up and switch to it without dropping requests. The version must have
a passed gate report (promote gate); --force --reason TEXT overrides that, and
the reason goes into the release history.`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if force != (reason != "") {
				return usageError("--force and --reason TEXT go together: say why the gates are overridden")
			}
			ctx := cmd.Context()
			name, version := args[0], args[1]
			signer, err := a.signer(signKey)
			if err != nil {
				return err
			}
			r, gate, err := a.openGated(cmd, name, version, force, signer)
			if err != nil {
				return err
			}
			before, err := store.Read(ctx, r, name)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return err
			}
			rel, err := a.change(ctx, r, name, release.SetStable{Version: version, Gate: gate.gate, Forced: force, Reason: reason}, signer, gate.digest)
			if err != nil {
				return err
			}
			if before.Stable == rel.Stable {
				fmt.Fprintf(a.stdout, "%s version %s is already stable; nothing changed\n", name, rel.Stable)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: stable is now %s (was %s)\n", name, rel.Stable, before.Stable)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "make an ungated or failed version stable (needs --reason; recorded in the history)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the gates are overridden (recorded in the history)")
	signKeyFlag(cmd, &signKey)
	return cmd
}

func (a *app) rollbackCmd() *cobra.Command {
	var reason, signKey string
	cmd := &cobra.Command{
		Use:   "rollback MODEL",
		Short: "Put back the previous stable version at once",
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
			if reason == "" {
				reason = "promote rollback"
			}
			if _, err := store.Read(cmd.Context(), r, args[0]); err != nil {
				return err // an unknown model: not found
			}
			rel, err := a.change(cmd.Context(), r, args[0], release.Rollback{Reason: reason}, signer, "")
			if err != nil {
				return err
			}
			last := rel.History[len(rel.History)-1]
			if last.Action == release.ActionCanaryRollback {
				fmt.Fprintf(a.stdout, "%s: canary of %s rolled back; stable %s takes all traffic\n", args[0], last.Version, rel.Stable)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: rolled back to %s (was %s)\n", args[0], rel.Stable, last.From)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the history)")
	signKeyFlag(cmd, &signKey)
	return cmd
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
