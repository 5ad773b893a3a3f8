package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/modelgate/modelgate/serving"
)

// loopResult is what the loop subcommand prints.
type loopResult struct {
	Runs     int64   `json:"runs"`
	Rows     int64   `json:"rows"`
	Seconds  float64 `json:"seconds"`
	P50US    float64 `json:"p50_us"`
	P99US    float64 `json:"p99_us"`
	CPUSecs  float64 `json:"cpu_seconds"`
	RSSBytes int64   `json:"rss_bytes"`
}

// loopMain is the in-process limit: serving.Loop, onnxruntime_go's Run
// in a loop on tensors allocated once, for a duration, at a fixed batch size.
func loopMain(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	model := fs.String("model", "", "ONNX model (input \"features\" FP32 [N, n]; outputs label, probabilities)")
	batch := fs.Int("batch", 1, "rows per run")
	threads := fs.Int("threads", 0, "intra-op threads (0: the CPU quota, as the gateway)")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Spinning intra-op threads, ONNX Runtime's default: the loop's one
	// session has the cores to itself.
	rt, err := serving.NewRuntime(serving.Options{Providers: []string{serving.ProviderCPU}, IntraOpThreads: *threads, IntraOpSpin: true})
	if err != nil {
		return err
	}
	defer rt.Close()
	sess, err := rt.NewLoop(*model, int64(*batch))
	if err != nil {
		return err
	}
	defer sess.Close()
	b := sess.Rows()
	for range 3 { // warm-up
		if err := sess.Run(); err != nil {
			return err
		}
	}
	self := os.Getpid()
	cpu0, _ := cpuSeconds(self)
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < *duration {
		t0 := time.Now()
		if err := sess.Run(); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	cpu1, _ := cpuSeconds(self)
	rss, _ := peakRSS(self)
	slices.Sort(lat)
	res := loopResult{
		Runs: int64(len(lat)), Rows: int64(len(lat)) * b, Seconds: elapsed.Seconds(),
		P50US: us(percentile(lat, 50)), P99US: us(percentile(lat, 99)),
		CPUSecs: cpu1 - cpu0, RSSBytes: rss,
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
