package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/spf13/cobra"
)

// pushFlags are promote push's arguments and flags.
type pushFlags struct {
	name, version, file             string
	holdout, trainData, labelColumn string
	meta                            []string
}

func (a *app) pushCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push MODEL VERSION FILE",
		Short: "Store a model version (ONNX file) in the registry; the first version becomes stable",
		Long: `Store a model version in the registry. The ONNX file is loaded with ONNX Runtime
to read its signature (and refused if it does not load). Versions are
immutable: pushing the same bytes again changes nothing, other bytes are refused.`,
		Args: args(3, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.name, f.version, f.file = args[0], args[1], args[2]
			req, profile, err := a.preparePush(f)
			if err != nil {
				return err
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			return a.push(cmd.Context(), r, req, profile, f.trainData)
		},
	}
	cmd.Flags().StringVar(&f.holdout, "holdout", "", "holdout CSV stored with the version (for the accuracy gate)")
	cmd.Flags().StringVar(&f.trainData, "train-data", "", "training data CSV: its profile is stored with the version (as promote profile does)")
	cmd.Flags().StringVar(&f.labelColumn, "label-column", "", `label column of --train-data: header name or 0-based index, or "none" (default: decided by the model's input width)`)
	cmd.Flags().StringArrayVar(&f.meta, "meta", nil, "metadata key=value (repeatable)")
	return cmd
}

// preparePush reads what promote push stores, before it touches the
// registry: the model (loaded for its signature, refused if it does not
// load), the holdout, the metadata and, with --train-data, the data's
// profile, so that unusable data refuses the push.
func (a *app) preparePush(f pushFlags) (registry.PushRequest, []byte, error) {
	for _, s := range []string{f.name, f.version} {
		if err := registry.ValidateName(s); err != nil {
			return registry.PushRequest{}, nil, usageError("%v", err)
		}
	}
	req := registry.PushRequest{Name: f.name, Version: f.version, Metadata: map[string]string{}}
	for _, kv := range f.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return req, nil, usageError("--meta wants key=value, got %q", kv)
		}
		req.Metadata[k] = v
	}
	var err error
	if req.Model, err = os.ReadFile(f.file); err != nil {
		return req, nil, err
	}
	if f.holdout != "" {
		if req.Holdout, err = os.ReadFile(f.holdout); err != nil {
			return req, nil, err
		}
	}
	if req.Inputs, req.Outputs, err = a.signature(req.Model); err != nil {
		return req, nil, fmt.Errorf("refused %s: %w", f.file, err)
	}
	if f.trainData == "" {
		return req, nil, nil
	}
	p, err := profileData(f.trainData, registry.Manifest{Name: f.name, Version: f.version, Inputs: req.Inputs}, f.labelColumn, 0)
	if err != nil {
		return req, nil, fmt.Errorf("push refused, nothing changed: --train-data %w", err)
	}
	profile, err := p.JSON()
	return req, profile, err
}

// push stores the version (the model's first becomes stable) and its data
// profile, and says what changed.
func (a *app) push(ctx context.Context, r *registry.Registry, req registry.PushRequest, profile []byte, trainData string) error {
	name, version := req.Name, req.Version
	if err := r.EnsureStorage(ctx); err != nil {
		return fmt.Errorf("registry %s: %w", r.Describe(), err)
	}
	if isTerminal(a.stderr) {
		ctx = registry.WithProgress(ctx, terminalProgress(a.stderr))
	}
	m, created, err := store.Push(ctx, r, req, time.Now())
	if err != nil {
		return fmt.Errorf("push refused, nothing changed: %w", err)
	}
	if profile != nil {
		if err := r.PutProfile(ctx, name, version, profile); err != nil {
			return fmt.Errorf("%s version %s is stored, but not its data profile (run promote profile): %w", name, version, err)
		}
	}
	if !created {
		fmt.Fprintf(a.stdout, "%s version %s is already in the registry with the same bytes (sha256 %s); nothing changed\n", name, version, m.SHA256[:12])
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
	if profile != nil {
		fmt.Fprintf(a.stdout, "stored the data profile of %s (promote check-data and drift compare with it)\n", filepath.Base(trainData))
	}
	return nil
}
