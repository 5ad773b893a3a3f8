package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/server"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/signing"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// gateway is the assembled parts of a gateway process.
type gateway struct {
	rt   *serving.Runtime
	reg  *registry.Registry
	cat  *catalog.Catalog
	ctl  *rollout.Controller
	srv  *server.Server
	http *http.Server
	// grpc serves the same server over gRPC; nil when grpc.listen is empty.
	grpc *grpc.Server
	// closers run in reverse order by close.
	closers []func()
}

// close releases the parts: background comparisons first, then the drift
// tracker, the catalog's sessions and ONNX Runtime.
func (g *gateway) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
}

// assemble builds a gateway from its configuration: ONNX Runtime, the
// registry, the metrics registry, the canary's analysis source, the
// catalog, drift tracking, the HTTP and gRPC servers and the rollout
// controller. It starts nothing.
func assemble(ctx context.Context, cfg config.Config, log *slog.Logger) (*gateway, error) {
	g := &gateway{}
	var err error
	g.rt, err = serving.NewRuntime(serving.Options{
		LibraryPath:    cfg.ORT.LibraryPath,
		Providers:      cfg.ORT.Providers,
		CUDAPlugin:     cfg.ORT.CUDAPlugin,
		CUDADevice:     cfg.ORT.CUDADevice,
		RequireGPU:     cfg.ORT.RequireGPU,
		IntraOpThreads: cfg.ORT.IntraOpThreads,
		InterOpThreads: cfg.ORT.InterOpThreads,
		IntraOpSpin:    cfg.ORT.IntraOpSpin,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, func() { g.rt.Close() })
	if g.reg, err = registry.Open(ctx, cfg.Registry, registry.Options{Logger: log, CacheDir: cfg.CacheDir}); err != nil {
		g.close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	metrics := prometheus.NewRegistry()
	recorder := canary.NewRecorder(metrics)
	source, err := analysisSource(cfg.Canary, recorder)
	if err != nil {
		g.close()
		return nil, err
	}
	co := catalogOptions(cfg, g.reg, g.rt, recorder, log, metrics)
	if co.Trust, err = trust(cfg.Security, log); err != nil {
		g.close()
		return nil, err
	}
	co.RequireSignature = cfg.Security.Require()
	g.cat = catalog.New(co)
	g.closers = append(g.closers, g.cat.Close)
	var tracker server.Drift
	if cfg.Drift.Enabled {
		var profiles drift.Source = g.reg
		if co.Trust != nil {
			profiles = signedProfiles{reg: g.reg, trust: co.Trust, require: co.RequireSignature}
		}
		t := drift.New(drift.Options{
			Source:      profiles,
			SampleRate:  cfg.Drift.SampleRate,
			Window:      cfg.Drift.Window,
			MaxVersions: cfg.Drift.MaxVersions,
			Logger:      log,
			Registerer:  metrics,
		})
		g.closers = append(g.closers, t.Close)
		tracker = t
	}
	var payloads server.PayloadLog
	if p := cfg.PayloadLogging; p.Enabled() {
		po := payloadlog.Options{SampleRates: p.Rates(), QueueSize: p.QueueSize, Workers: p.Workers, MaxPayloadBytes: p.MaxPayloadBytes,
			Timeout: p.Timeout, Retries: p.Retries, Logger: log, Registerer: metrics}
		sinkAt := p.Sink.URL
		if sinkAt != "" {
			po.HTTP = &payloadlog.HTTPSink{URL: p.Sink.URL, Mode: p.Sink.Mode, Source: p.Sink.Source, Namespace: p.Sink.Namespace}
		} else {
			b, err := payloadlog.OpenBucket(ctx, cfg.Registry) // the registry's own storage
			if err != nil {
				g.close()
				return nil, fmt.Errorf("payload_logging.storage: %w", err)
			}
			po.Storage = &payloadlog.StorageSink{Bucket: b, Prefix: p.Storage.Prefix, FlushBytes: p.Storage.FlushBytes, FlushInterval: p.Storage.FlushInterval}
			sinkAt = b.Describe() + " " + p.Storage.Prefix + "/"
		}
		pl, err := payloadlog.New(po)
		if err != nil {
			g.close()
			return nil, fmt.Errorf("payload_logging: %w", err)
		}
		g.closers = append(g.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), p.FlushTimeout)
			defer cancel()
			if err := pl.Close(ctx); err != nil {
				log.Warn("payload logging", "err", err)
			}
		})
		log.Info("payload logging on", "models", p.Rates(), "sink", sinkAt)
		payloads = pl
	}
	g.srv = server.New(server.Options{
		Catalog:             g.cat,
		MaxBodyBytes:        cfg.HTTP.MaxBodyBytes,
		Logger:              log,
		Registerer:          metrics,
		Gatherer:            metrics,
		Recorder:            recorder,
		KeyField:            cfg.Canary.KeyField,
		ShadowConcurrency:   cfg.Canary.ShadowConcurrency,
		RegressionTolerance: cfg.Canary.RegressionTolerance,
		Drift:               tracker,
		PayloadLog:          payloads,
	})
	g.closers = append(g.closers, g.srv.WaitBackground) // before the catalog closes its sessions
	g.ctl = rollout.New(rollout.Options{
		Registry:   g.reg,
		Catalog:    g.cat,
		Source:     source,
		Tick:       cfg.Canary.Tick,
		Logger:     log,
		Registerer: metrics,
	})
	g.http = server.HTTPServer(cfg.Listen, g.srv, server.Timeouts{
		ReadHeader: cfg.HTTP.ReadHeaderTimeout,
		Read:       cfg.HTTP.ReadTimeout,
		Write:      cfg.HTTP.WriteTimeout,
		Idle:       cfg.HTTP.IdleTimeout,
	})
	if cfg.GRPC.Listen != "" {
		g.grpc = g.srv.GRPCServer(server.GRPCOptions{MaxMessageBytes: int(cfg.GRPC.MaxMessageBytes)})
	}
	return g, nil
}

// trust is the gateway's trusted keys, nil (and a log line saying that
// signatures are not checked) when none are configured.
func trust(sec config.Security, log *slog.Logger) (*signing.Trust, error) {
	if len(sec.TrustedKeys) == 0 {
		log.Warn("model signatures are not checked: no security.trusted_keys configured; any version in the registry is loaded (see docs/security.md)")
		return nil, nil
	}
	t, err := signing.NewTrust(sec.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("security.trusted_keys: %w", err)
	}
	ks, _ := t.Keys()
	log.Info("model signatures are checked before loading", "trusted_keys", ks.IDs(), "paths", sec.TrustedKeys, "require_signature", sec.Require())
	return t, nil
}

// signedProfiles gives drift the data profiles the version's signature
// covers, so that a profile swapped in the bucket cannot make drift blind
// (or raise alarms) any more than a model can be swapped. Without
// require_signature an unsigned version's profile, or one stored after
// signing, is read as it is, as the catalog loads unsigned versions.
type signedProfiles struct {
	reg     *registry.Registry
	trust   *signing.Trust
	require bool
}

func (p signedProfiles) Profile(ctx context.Context, model, version string) ([]byte, error) {
	data, err := p.reg.VerifiedProfile(ctx, p.trust, model, version)
	if !p.require && (errors.Is(err, signing.ErrUnsigned) || errors.Is(err, signing.ErrNotSigned)) {
		return p.reg.Profile(ctx, model, version)
	}
	if err != nil && signing.IsRefusal(err) {
		return nil, fmt.Errorf("data profile refused, signature check failed (%s): %w", signing.Reason(err), err)
	}
	return data, err
}

// analysisSource is where the canary's observations come from: the
// in-process recorder, or Prometheus.
func analysisSource(c config.Canary, recorder *canary.Recorder) (canary.Source, error) {
	if c.Source == "prometheus" {
		return canary.NewPrometheus(c.PrometheusURL, c.PrometheusQueries)
	}
	return canary.InProcess{Recorder: recorder}, nil
}

// catalogOptions configures the catalog: what is served, pinned versions,
// polling, batching and the canary's routing.
func catalogOptions(cfg config.Config, reg *registry.Registry, rt *serving.Runtime, recorder *canary.Recorder, log *slog.Logger, metrics prometheus.Registerer) catalog.Options {
	maxPinned := cfg.MaxPinnedVersions
	if maxPinned == 0 {
		maxPinned = -1 // disabled
	}
	return catalog.Options{
		Source:         reg,
		Loader:         rt,
		SessionOptions: sessionOptions(cfg.Batching, serving.NewBatchMetrics(metrics)),
		Models:         cfg.Models,
		DefaultModel:   cfg.DefaultModel,
		MaxPinned:      maxPinned,
		MaxPinnedBytes: cfg.MaxPinnedBytes,
		PollInterval:   cfg.PollInterval,
		Recorder:       recorder,
		ShadowFraction: cfg.Canary.ShadowFraction,
		CompareSplit:   cfg.Canary.CompareSplit,
		Logger:         log,
		Registerer:     metrics,
	}
}
