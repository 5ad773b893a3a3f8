package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// loadMain is the bench's own closed-loop load generator, for what wrk
// cannot send: gRPC, and the protocol comparison on large inputs, where
// every protocol must be driven by the same client. c workers each send
// one request, wait for the whole answer and send the next, for the
// duration; it prints the same MGBENCH line as the wrk script.
//
//	bench load -proto http -target http://127.0.0.1:8080/v2/models/m/infer -body req.bin [-header-len N] -c 32 -duration 10s
//	bench load -proto grpc -target 127.0.0.1:8081 -body req.pb -c 32 -duration 10s
//
// For gRPC the body is a ModelInferRequest in protobuf's wire form; the
// workers share one client connection per 16 of them (HTTP/2 streams over
// few connections, as gRPC clients run).
func loadMain(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	protocol := fs.String("proto", "http", "http (POST the body) or grpc (ModelInfer)")
	target := fs.String("target", "", "URL (http) or host:port (grpc)")
	bodyFile := fs.String("body", "", "request body (http) or serialized ModelInferRequest (grpc)")
	headerLen := fs.Int("header-len", 0, "Inference-Header-Content-Length (http; 0: none, a JSON body)")
	c := fs.Int("c", 1, "concurrent workers")
	duration := fs.Duration("duration", 10*time.Second, "how long to load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *bodyFile == "" || *c < 1 {
		return errors.New("load: -target, -body and -c ≥ 1 are required")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	var send func(ctx context.Context, worker int) error
	switch *protocol {
	case "http":
		tr := &http.Transport{MaxIdleConnsPerHost: *c, MaxConnsPerHost: *c, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		send = func(ctx context.Context, _ int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
			if err != nil {
				return err
			}
			if *headerLen > 0 {
				req.Header.Set(wire.InferHeaderContentLength, fmt.Sprint(*headerLen))
				req.Header.Set("Content-Type", "application/octet-stream")
			} else {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return errStatus
			}
			return nil
		}
	case "grpc":
		req := &grpcapi.ModelInferRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			return fmt.Errorf("load: %s is not a ModelInferRequest: %w", *bodyFile, err)
		}
		conns := make([]grpcapi.GRPCInferenceServiceClient, (*c+15)/16)
		for i := range conns {
			cc, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
			if err != nil {
				return err
			}
			defer cc.Close()
			conns[i] = grpcapi.NewGRPCInferenceServiceClient(cc)
		}
		send = func(ctx context.Context, worker int) error {
			_, err := conns[worker%len(conns)].ModelInfer(ctx, req)
			return err
		}
	default:
		return fmt.Errorf("load: -proto %q: want http or grpc", *protocol)
	}
	res := closedLoop(send, *c, *duration)
	fmt.Printf("MGBENCH {\"requests\":%d,\"duration_us\":%d,\"non2xx\":%d,\"errors\":%d,\"p50_us\":%.0f,\"p99_us\":%.0f,\"mean_us\":%.1f}\n",
		res.Requests, res.DurationUS, res.Non2xx, res.Errors, res.P50US, res.P99US, res.MeanUS)
	if res.FirstErr != nil {
		fmt.Fprintln(os.Stderr, "load: first failure:", res.FirstErr)
	}
	return nil
}

// errStatus is an HTTP answer other than 200.
var errStatus = errors.New("non-200 answer")

// loadResult is what a closed loop measured.
type loadResult struct {
	wrkResult
	FirstErr error
}

// closedLoop runs send from c workers for d: each request starts when the
// worker's previous one has been answered. Latency percentiles are over
// the answered requests (nearest rank).
func closedLoop(send func(ctx context.Context, worker int) error, c int, d time.Duration) loadResult {
	ctx := context.Background()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		non200   int64
		errs     int64
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range c {
		wg.Go(func() {
			var mine []time.Duration
			var bad, failed int64
			var first error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := send(ctx, w)
				switch {
				case err == nil:
					mine = append(mine, time.Since(t0))
				case errors.Is(err, errStatus):
					bad++
				default:
					failed++
				}
				if err != nil && first == nil {
					first = err
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			non200 += bad
			errs += failed
			if firstErr == nil {
				firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	r := loadResult{FirstErr: firstErr}
	r.Requests = int64(len(lat)) + non200 + errs
	r.DurationUS = elapsed.Microseconds()
	r.Non2xx, r.Errors = non200, errs
	r.P50US, r.P99US = us(percentile(lat, 50)), us(percentile(lat, 99))
	if len(lat) > 0 {
		r.MeanUS = us(sum) / float64(len(lat))
	}
	return r
}
