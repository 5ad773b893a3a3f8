// Command gateway serves versioned ONNX models over HTTP: /predict, the
// KServe v2 Open Inference Protocol under /v2, /healthz, /readyz and
// /metrics; and over gRPC: Triton's inference.GRPCInferenceService (a
// superset of KServe v2's), grpc.health.v1 and reflection. It follows the
// registry's release state and swaps versions without dropping a request.
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

	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/internal/buildinfo"
	"github.com/modelgate/modelgate/serving"
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
// ready is not nil it receives the HTTP listening address (gRPC listens on
// cfg.GRPC.Listen, when set, before it is sent).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- string) error {
	g, err := assemble(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var grpcLn net.Listener
	grpcAddr := "off"
	if g.grpc != nil {
		if grpcLn, err = net.Listen("tcp", cfg.GRPC.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("grpc: %w", err)
		}
		grpcAddr = grpcLn.Addr().String()
	}
	log.Info("modelgate gateway listening", "addr", ln.Addr().String(), "grpc", grpcAddr, "registry", g.reg.Describe(),
		"version", buildinfo.Version, "onnxruntime", g.rt.Version())

	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		g.cat.Watch(watchCtx, g.ctl)
	}()
	stop := func() { stopWatch(); <-watchDone }
	serveErr := make(chan error, 2)
	go func() { serveErr <- g.http.Serve(ln) }()
	if grpcLn != nil {
		go func() { serveErr <- g.grpc.Serve(grpcLn) }()
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-serveErr:
		g.http.Close()
		if g.grpc != nil {
			g.grpc.Stop()
		}
		stop()
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: fail readiness (and gRPC health), keep serving
	// through the drain delay, close the listeners and wait for in-flight
	// requests and calls, then close sessions.
	log.Info("shutting down: readiness now fails", "drain_delay", cfg.HTTP.DrainDelay)
	g.srv.Drain()
	time.Sleep(cfg.HTTP.DrainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	grpcDone := make(chan struct{})
	if g.grpc != nil {
		go func() { g.grpc.GracefulStop(); close(grpcDone) }()
	} else {
		close(grpcDone)
	}
	err = g.http.Shutdown(shutdownCtx)
	select {
	case <-grpcDone:
	case <-shutdownCtx.Done():
		log.Warn("gRPC calls still running at the shutdown timeout: cancelling them", "shutdown_timeout", cfg.HTTP.ShutdownTimeout)
		g.grpc.Stop()
		<-grpcDone
	}
	stop()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
