// Command gateway serves versioned ONNX models over HTTP: /predict, the
// KServe v2 Open Inference Protocol under /v2, /healthz, /readyz and
// /metrics. It follows the registry's release state and swaps versions
// without dropping a request.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/internal/buildinfo"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/server"
	"github.com/modelgate/modelgate/serving"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	config.Flags(fs)
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *version {
		fmt.Printf("gateway %s (%s, %s)\n", buildinfo.Version, buildinfo.Revision, buildinfo.GoVersion())
		return nil
	}
	cfg, err := config.Load(fs)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, log, nil)
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// sessionOptions gives each model version its batching settings.
func sessionOptions(b config.Batching, m *serving.BatchMetrics) func(model string) serving.SessionOptions {
	return func(model string) serving.SessionOptions {
		e := b.For(model)
		return serving.SessionOptions{Batching: serving.BatchOptions{
			MaxBatchSize: e.MaxBatchSize, MaxQueueDelay: e.MaxQueueDelay, MaxQueue: e.MaxQueue, Metrics: m,
		}}
	}
}

// serve runs the gateway until ctx ends, then drains and shuts down. When
// ready is not nil it receives the listening address.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- string) error {
	rt, err := serving.NewRuntime(serving.Options{
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
		return err
	}
	defer rt.Close()

	reg, err := registry.Open(ctx, cfg.Registry, registry.Options{Logger: log, CacheDir: cfg.CacheDir})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	metrics := prometheus.NewRegistry()
	batchMetrics := serving.NewBatchMetrics(metrics)
	recorder := canary.NewRecorder(metrics)
	var source canary.Source = canary.InProcess{Recorder: recorder}
	if cfg.Canary.Source == "prometheus" {
		if source, err = canary.NewPrometheus(cfg.Canary.PrometheusURL, cfg.Canary.PrometheusQueries); err != nil {
			return err
		}
	}
	maxPinned := cfg.MaxPinnedVersions
	if maxPinned == 0 {
		maxPinned = -1 // disabled
	}
	cat := catalog.New(catalog.Options{
		Source:         reg,
		Loader:         rt,
		SessionOptions: sessionOptions(cfg.Batching, batchMetrics),
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
	})
	defer cat.Close()
	var tracker server.Drift
	if cfg.Drift.Enabled {
		t := drift.New(drift.Options{
			Source:      reg,
			SampleRate:  cfg.Drift.SampleRate,
			Window:      cfg.Drift.Window,
			MaxVersions: cfg.Drift.MaxVersions,
			Logger:      log,
			Registerer:  metrics,
		})
		defer t.Close()
		tracker = t
	}
	srv := server.New(server.Options{
		Catalog:      cat,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Logger:       log,
		Registerer:   metrics,
		Gatherer:     metrics,

		Recorder:            recorder,
		KeyField:            cfg.Canary.KeyField,
		ShadowConcurrency:   cfg.Canary.ShadowConcurrency,
		RegressionTolerance: cfg.Canary.RegressionTolerance,
		Drift:               tracker,
	})
	defer srv.WaitBackground() // before the catalog closes its sessions
	ctl := rollout.New(rollout.Options{
		Registry:   reg,
		Catalog:    cat,
		Source:     source,
		Tick:       cfg.Canary.Tick,
		Logger:     log,
		Registerer: metrics,
	})
	httpSrv := server.HTTPServer(cfg.Listen, srv, server.Timeouts{
		ReadHeader: cfg.HTTP.ReadHeaderTimeout,
		Read:       cfg.HTTP.ReadTimeout,
		Write:      cfg.HTTP.WriteTimeout,
		Idle:       cfg.HTTP.IdleTimeout,
	})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("modelgate gateway listening", "addr", ln.Addr().String(), "registry", reg.Describe(),
		"version", buildinfo.Version, "onnxruntime", rt.Version())

	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		cat.Watch(syncCtx, ctl)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-serveErr:
		stopSync()
		<-syncDone
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: fail readiness, keep serving through the drain
	// delay, close the listener and wait for in-flight requests, then
	// close sessions.
	log.Info("shutting down: readiness now fails", "drain_delay", cfg.HTTP.DrainDelay)
	srv.Drain()
	time.Sleep(cfg.HTTP.DrainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	err = httpSrv.Shutdown(shutdownCtx)
	stopSync()
	<-syncDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
