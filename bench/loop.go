package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/modelgate/modelgate/serving"
	ort "github.com/yalue/onnxruntime_go"
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

// loopMain is the in-process limit: onnxruntime_go's Run in a loop on
// tensors allocated once, for a duration, at a fixed batch size.
func loopMain(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	model := fs.String("model", "", "ONNX model (input \"features\" FP32 [N, n]; outputs label, probabilities)")
	batch := fs.Int("batch", 1, "rows per run")
	threads := fs.Int("threads", 0, "intra-op threads (0: the CPU quota, as the gateway)")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lib, err := serving.ResolveLibrary("")
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return err
	}
	defer ort.DestroyEnvironment()
	ins, outs, err := ort.GetInputOutputInfo(*model)
	if err != nil {
		return err
	}
	if len(ins) != 1 || len(outs) != 2 || len(ins[0].Dimensions) != 2 || len(outs[1].Dimensions) != 2 {
		return errors.New("the loop takes models with one input [N, n] and outputs label [N], probabilities [N, k]")
	}
	n, k, b := ins[0].Dimensions[1], outs[1].Dimensions[1], int64(*batch)
	in, err := ort.NewTensor(ort.NewShape(b, n), make([]float32, b*n))
	if err != nil {
		return err
	}
	defer in.Destroy()
	for i := range in.GetData() {
		in.GetData()[i] = float32(i%17) / 4
	}
	label, err := ort.NewEmptyTensor[int64](ort.NewShape(b))
	if err != nil {
		return err
	}
	defer label.Destroy()
	probs, err := ort.NewEmptyTensor[float32](ort.NewShape(b, k))
	if err != nil {
		return err
	}
	defer probs.Destroy()
	so, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	t := *threads
	if t <= 0 {
		t = serving.CPUQuota()
	}
	if err := so.SetIntraOpNumThreads(t); err != nil {
		return err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return err
	}
	sess, err := ort.NewAdvancedSession(*model, []string{ins[0].Name}, []string{outs[0].Name, outs[1].Name},
		[]ort.Value{in}, []ort.Value{label, probs}, so)
	so.Destroy()
	if err != nil {
		return err
	}
	defer sess.Destroy()
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
