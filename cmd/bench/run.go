package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"google.golang.org/protobuf/proto"
)

type options struct {
	gateway       string
	python        string
	pythonWorkers int
	node          string // node binary; empty: no onnxruntime-node contender
	nodeModules   string // where onnxruntime-node is installed
	duration      time.Duration
	conc          []int
	work          string
	out           string
	workloads     []string
	batchSize     int
	batchDelay    time.Duration
	imageConc     []int // concurrencies of the large-input comparison
}

// workload is one model served by every contender.
type workload struct {
	name, title string
	onnx        string // the model modelgate serves
	joblib      string // the model FastAPI serves
	row         []float64
}

// result is one measurement: a contender at one concurrency (0 for the
// in-process loops, which have none).
type result struct {
	Workload  string
	Contender string
	Conc      int
	ReqPerSec float64 // requests per second (runs per second for a loop)
	RowsPerS  float64
	P50MS     float64
	P99MS     float64
	MeanMS    float64
	CPUmsReq  float64 // CPU milliseconds per request (per run for a loop)
	LoadCPUms float64 // wrk's CPU milliseconds per request (0 for a loop)
	RSSMiB    float64
	Failed    int64 // non-2xx answers and socket errors
}

// Contender names, as the tables show them.
const (
	cLoop1    = "onnxruntime_go Run loop, batch 1"
	cLoop32   = "onnxruntime_go Run loop, batch 32"
	cFloor    = "HTTP floor (Go net/http, decode only)"
	cPredict  = "modelgate /predict"
	cInfer    = "modelgate /v2 infer"
	cPredictB = "modelgate /predict, batching"
	cInferB   = "modelgate /v2 infer, batching"
	cPython   = "FastAPI + uvicorn (scikit-learn)"
	cNode     = "onnxruntime-node + node:http"
	cInferGo  = "modelgate /v2 infer (Go client)"
	cGRPC     = "modelgate gRPC ModelInfer"
	cGRPCB    = "modelgate gRPC ModelInfer, batching"
)

func runMain(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var conc, imageConc, workloads string
	fs.StringVar(&o.gateway, "gateway", "bin/gateway", "the gateway binary (make build)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with fastapi, uvicorn, scikit-learn and joblib (Debian packages)")
	fs.IntVar(&o.pythonWorkers, "python-workers", runtime.NumCPU(), "uvicorn worker processes")
	fs.StringVar(&o.node, "node", "node", "Node.js for the onnxruntime-node contender (one worker per core); empty: leave it out")
	fs.StringVar(&o.nodeModules, "node-modules", ".cache/bench/node/node_modules", "node_modules holding onnxruntime-node (make bench installs it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "load duration of each measurement")
	fs.StringVar(&conc, "c", "1,32,128", "concurrencies (wrk connections)")
	fs.StringVar(&o.work, "work", ".cache/bench", "work folder (models, registry, logs)")
	fs.StringVar(&o.out, "out", "cmd/bench", "where RESULTS.md and results.svg go")
	fs.StringVar(&workloads, "workloads", "breast-cancer,digits,wide,image", "workloads to run (image: the large-input protocol comparison)")
	fs.StringVar(&imageConc, "image-c", "1,2", "concurrencies of the large-input comparison")
	fs.IntVar(&o.batchSize, "batch-size", 128, "batching.max_batch_size of the batching gateway")
	fs.DurationVar(&o.batchDelay, "batch-delay", 2*time.Millisecond, "batching.max_queue_delay of the batching gateway")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.conc, err = parseConc(conc); err != nil {
		return fmt.Errorf("-c: %w", err)
	}
	if o.imageConc, err = parseConc(imageConc); err != nil {
		return fmt.Errorf("-image-c: %w", err)
	}
	o.workloads = strings.Split(workloads, ",")
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install wrk (make bench does)")
	}
	if o.node != "" {
		_, errNode := exec.LookPath(o.node)
		_, errPkg := os.Stat(filepath.Join(o.nodeModules, "onnxruntime-node", "package.json"))
		if err := errors.Join(errNode, errPkg); err != nil {
			fmt.Printf("leaving out the onnxruntime-node contender (make bench installs it): %v\n", err)
			o.node = ""
		}
	}
	m := machineInfo(o)
	ctx := context.Background()
	wls, err := prepare(ctx, o)
	if err != nil {
		return err
	}
	var results []result
	for _, w := range wls {
		rs, err := benchWorkload(ctx, o, w)
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		results = append(results, rs...)
	}
	var imgs []imageModel
	if slices.Contains(o.workloads, "image") {
		if imgs, err = prepareImages(o); err != nil {
			return err
		}
		rs, err := benchImages(ctx, o, imgs)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		results = append(results, rs...)
	}
	m.End = time.Now()
	m.LoadAvgEnd = loadAvg()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "RESULTS.md"), []byte(markdown(m, o, wls, imgs, results)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.svg"), []byte(chart(wls, results)), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", filepath.Join(o.out, "RESULTS.md"), filepath.Join(o.out, "results.svg"))
	return nil
}

// machine describes where and when the run happened.
type machine struct {
	Start, End      time.Time
	LoadAvgEnd      string
	CPUs            int
	CPUModel        string
	LoadAvg         string
	GoVersion       string
	ORTVersion      string
	WrkVersion      string
	PythonVersions  string
	GatewayThreads  string
	BatchSize       int
	BatchDelay      time.Duration
	PythonWorkers   int
	NodeVersions    string
	DurationPerCell time.Duration
}

func machineInfo(o options) machine {
	m := machine{Start: time.Now(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), ORTVersion: serving.LibraryVersion,
		BatchSize: o.batchSize, BatchDelay: o.batchDelay, PythonWorkers: o.pythonWorkers, DurationPerCell: o.duration}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.LoadAvg = loadAvg()
	if out, _ := exec.Command("wrk", "-v").CombinedOutput(); len(out) > 0 {
		m.WrkVersion = strings.Fields(string(out))[1]
	}
	out, err := exec.Command(o.python, "-c", "import sys, fastapi, uvicorn, httptools, uvloop, sklearn, numpy; print('Python %d.%d.%d,' % sys.version_info[:3], 'FastAPI', fastapi.__version__ + ', uvicorn', uvicorn.__version__, '(httptools', httptools.__version__ + ', uvloop', uvloop.__version__ + '), scikit-learn', sklearn.__version__ + ', NumPy', numpy.__version__)").Output()
	if err == nil {
		m.PythonVersions = strings.TrimSpace(string(out))
	}
	if o.node != "" {
		if out, err := exec.Command(o.node, "--version").Output(); err == nil {
			m.NodeVersions = "Node.js " + strings.TrimSpace(string(out))
		}
		var pkg struct{ Version string }
		if b, err := os.ReadFile(filepath.Join(o.nodeModules, "onnxruntime-node", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
			m.NodeVersions += ", onnxruntime-node " + pkg.Version
		}
	}
	m.GatewayThreads = fmt.Sprint(serving.CPUQuota())
	return m
}

// prepare builds the scikit-learn models (once), the ONNX models and a
// fresh registry holding each workload's model as version 1.
func prepare(ctx context.Context, o options) ([]workload, error) {
	models := filepath.Join(o.work, "models")
	if _, err := os.Stat(filepath.Join(models, "wide.weights.json")); err != nil {
		fmt.Println("training and exporting the scikit-learn models (once)")
		cmd := exec.CommandContext(ctx, o.python, "cmd/bench/python/models.py", "--out", models,
			"--breast", "examples/breast-cancer/data.csv", "--digits", "cmd/bench/data/digits.csv.gz")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("cmd/bench/python/models.py: %w", err)
		}
	}
	digitsRow, err := firstDigitsRow("cmd/bench/data/digits.csv.gz")
	if err != nil {
		return nil, err
	}
	wideRow := make([]float64, 256)
	for i := range wideRow {
		wideRow[i] = float64(i%17)/4 - 2
	}
	all := []workload{
		{name: "breast-cancer", title: "breast-cancer MLP 30-16-2 (tiny; examples/breast-cancer/model.onnx)", onnx: "examples/breast-cancer/model.onnx",
			row: []float64{13, 21.82, 87.5, 519.8, 0.1273, 0.1932, 0.1859, 0.09353, 0.235, 0.07389, 0.3063, 1.002, 2.406, 24.32, 0.005731, 0.03502, 0.03553, 0.01226, 0.02143, 0.003749, 15.49, 30.73, 106.2, 739.3, 0.1703, 0.5401, 0.539, 0.206, 0.4378, 0.1072}},
		{name: "digits", title: "digits MLP 64-256-256-10 (trained with scikit-learn, the same weights on both sides)", row: digitsRow},
		{name: "wide", title: "wide MLP 256-4096-4096-10 (compute-bound; seeded random weights, the same on both sides)", row: wideRow},
	}
	var wls []workload
	for _, w := range all {
		for _, want := range o.workloads {
			if w.name == want {
				wls = append(wls, w)
			}
		}
	}
	regDir := filepath.Join(o.work, "registry")
	if err := os.RemoveAll(regDir); err != nil {
		return nil, err
	}
	bucket, err := registry.NewLocal(regDir)
	if err != nil {
		return nil, err
	}
	reg := registry.New(bucket, registry.Options{})
	rt, err := serving.NewRuntime(serving.Options{Providers: []string{serving.ProviderCPU}, IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	for i := range wls {
		w := &wls[i]
		w.joblib = filepath.Join(models, w.name+".joblib")
		var model []byte
		if w.onnx != "" {
			model, err = os.ReadFile(w.onnx)
		} else {
			model, err = mlpONNX(models, w.name)
			w.onnx = filepath.Join(models, w.name+".onnx")
			if err == nil {
				err = os.WriteFile(w.onnx, model, 0o644)
			}
		}
		if err != nil {
			return nil, err
		}
		ins, outs, err := catalog.Signature(rt, model)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
		if _, _, err := store.Push(ctx, reg, registry.PushRequest{Name: w.name, Version: "1", Model: model, Inputs: ins, Outputs: outs}, time.Now()); err != nil {
			return nil, err
		}
	}
	return wls, nil
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func firstDigitsRow(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(zr).ReadString('\n')
	if err != nil {
		return nil, err
	}
	f64 := strings.Split(strings.TrimSpace(line), ",")
	row := make([]float64, 0, len(f64)-1)
	for _, s := range f64[:len(f64)-1] { // the last column is the digit
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		row = append(row, v)
	}
	return row, nil
}

// route is one URL of a contender process, measured at every concurrency.
type route struct {
	contender string
	path      string
	body      []byte
	// load is the load generator: "" for wrk; "http" or "grpc" for the
	// bench's own (bench load), gRPC going to the process's gRPC port.
	load      string
	headerLen int    // Inference-Header-Content-Length of a binary body
	conc      []int  // concurrencies; nil: options.conc
	workload  string // the result's workload; "": the process's
}

// proc is a contender's process, with what it serves: cmd gets a free
// port for HTTP and one for gRPC.
type proc struct {
	name   string
	cmd    func(port, grpcPort int) *exec.Cmd
	ready  string // GET path answering 200 when ready
	routes []route
}

func benchWorkload(ctx context.Context, o options, w workload) ([]result, error) {
	var results []result
	loops := func() ([]result, error) {
		var rs []result
		for _, batch := range []int{1, 32} {
			r, err := loop(ctx, o, w, batch)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}
	// The loops run before and after the servers, and the better run of
	// each counts: on a shared machine the limit is what it reached at its
	// best, never a figure that others' load pulled down.
	before, err := loops()
	if err != nil {
		return nil, err
	}
	predict := mustJSON(map[string]any{"features": w.row})
	infer := mustJSON(map[string]any{"inputs": []map[string]any{{"name": "features", "shape": []int{1, len(w.row)}, "datatype": "FP32", "data": w.row}}})
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	grpcReq, err := proto.Marshal(&grpcapi.ModelInferRequest{ModelName: w.name,
		Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{1, int64(len(w.row))},
			Contents: &grpcapi.InferTensorContents{Fp32Contents: float32s(w.row)}}}})
	if err != nil {
		return nil, err
	}
	inferPath := "/v2/models/" + w.name + "/infer"
	gatewayRoutes := []route{{contender: cPredict, path: "/predict", body: predict}, {contender: cInfer, path: inferPath, body: infer},
		{contender: cGRPC, body: grpcReq, load: "grpc"}}
	if w.name == "breast-cancer" { // one HTTP row from the gRPC rows' load generator, to compare them on one client
		gatewayRoutes = append(gatewayRoutes, route{contender: cInferGo, path: inferPath, body: infer, load: "http"})
	}
	procs := []proc{
		{name: "floor", ready: "/healthz", cmd: func(port, _ int) *exec.Cmd {
			return exec.Command(self, "floor", "-listen", fmt.Sprintf("127.0.0.1:%d", port))
		}, routes: []route{{contender: cFloor, path: "/predict", body: predict}}},
		{name: "gateway", ready: "/readyz", cmd: gatewayCmd(o, w.name, []string{w.name}, 0, false), routes: gatewayRoutes},
		{name: "gateway-batching", ready: "/readyz", cmd: gatewayCmd(o, w.name, []string{w.name}, o.batchSize, false), routes: []route{
			{contender: cPredictB, path: "/predict", body: predict}, {contender: cInferB, path: inferPath, body: infer},
			{contender: cGRPCB, body: grpcReq, load: "grpc"}}},
		{name: "python", ready: "/healthz", cmd: func(port, _ int) *exec.Cmd {
			cmd := exec.Command(o.python, "-m", "uvicorn", "app:app", "--app-dir", "cmd/bench/python", "--host", "127.0.0.1",
				"--port", fmt.Sprint(port), "--workers", fmt.Sprint(o.pythonWorkers), "--log-level", "warning", "--no-access-log")
			cmd.Env = append(os.Environ(), "MODEL="+w.joblib, "PYTHONPATH=")
			return cmd
		}, routes: []route{{contender: cPython, path: "/predict", body: predict}}},
	}
	if o.node != "" {
		procs = append(procs, proc{name: "node", ready: "/healthz", cmd: func(port, _ int) *exec.Cmd {
			cmd := exec.Command(o.node, "cmd/bench/node/server.js")
			cmd.Env = append(os.Environ(), "MODEL="+w.onnx, fmt.Sprintf("PORT=%d", port), "NODE_PATH="+o.nodeModules)
			return cmd
		}, routes: []route{{contender: cNode, path: "/predict", body: predict}}})
	}
	for _, p := range procs {
		rs, err := benchProc(ctx, o, w, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		results = append(results, rs...)
	}
	after, err := loops()
	if err != nil {
		return nil, err
	}
	return append(results, bestOf(before, after)...), nil
}

// bestOf is, for each loop, the better of its runs before and after the
// servers: on a shared machine the limit is what it reached at its best,
// never a figure that others' load pulled down.
func bestOf(before, after []result) []result {
	best := make([]result, len(before))
	for i := range before {
		best[i] = before[i]
		if after[i].RowsPerS > best[i].RowsPerS {
			best[i] = after[i]
		}
	}
	return best
}

// loop runs the in-process limit in a child process.
func loop(ctx context.Context, o options, w workload, batch int) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	fmt.Printf("%-14s %-44s ", w.name, fmt.Sprintf("Run loop, batch %d", batch))
	out, err := exec.CommandContext(ctx, self, "loop", "-model", w.onnx, "-batch", fmt.Sprint(batch), "-duration", o.duration.String()).Output()
	if err != nil {
		return result{}, fmt.Errorf("loop: %w", err)
	}
	var lr loopResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &lr); err != nil {
		return result{}, fmt.Errorf("loop output %q: %w", out, err)
	}
	name := cLoop1
	if batch == 32 {
		name = cLoop32
	}
	r := result{Workload: w.name, Contender: name, ReqPerSec: float64(lr.Runs) / lr.Seconds, RowsPerS: float64(lr.Rows) / lr.Seconds,
		P50MS: lr.P50US / 1000, P99MS: lr.P99US / 1000, MeanMS: lr.Seconds * 1000 / float64(lr.Runs), CPUmsReq: lr.CPUSecs * 1000 / float64(lr.Runs), RSSMiB: float64(lr.RSSBytes) / (1 << 20)}
	fmt.Printf("%10.0f rows/s\n", r.RowsPerS)
	return r, nil
}

// benchProc starts a contender, warms it up, measures each of its routes
// at each concurrency, and stops it.
func benchProc(ctx context.Context, o options, w workload, p proc) ([]result, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := p.cmd(port, grpcPort)
	logf, err := os.Create(filepath.Join(o.work, fmt.Sprintf("%s-%s.log", w.name, p.name)))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(base+p.ready, exited, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%s did not get ready (log in %s): %w", p.name, logf.Name(), err)
	}
	dir, err := os.MkdirTemp("", "modelgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	grpcTarget := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	measure := func(rt route, c int, d time.Duration) (wrkResult, error) {
		switch rt.load {
		case "":
			return runWrk(ctx, dir, base+rt.path, rt.body, c, d)
		case "http":
			return runLoad(ctx, dir, "http", base+rt.path, rt.body, rt.headerLen, c, d)
		}
		return runLoad(ctx, dir, "grpc", grpcTarget, rt.body, 0, c, d)
	}
	// Warm-up: caches, lazy initialisation, Python's first requests; for
	// each route, so that each load generator's first connections and
	// each model's first runs happen before any measurement.
	for _, rt := range p.routes {
		if _, err := measure(rt, min(32, slices.Max(concOf(o, rt))), time.Second); err != nil {
			return nil, err
		}
	}
	pid := cmd.Process.Pid
	var results []result
	for _, rt := range p.routes {
		wl := w.name
		if rt.workload != "" {
			wl = rt.workload
		}
		for _, c := range concOf(o, rt) {
			fmt.Printf("%-14s %-44s c=%-4d ", wl, rt.contender, c)
			cpu0, err := cpuSeconds(pid)
			if err != nil {
				return nil, err
			}
			wr, err := measure(rt, c, o.duration)
			if err != nil {
				return nil, err
			}
			cpu1, err := cpuSeconds(pid)
			if err != nil {
				return nil, err
			}
			secs := float64(wr.DurationUS) / 1e6
			ok := wr.Requests - wr.Non2xx
			r := result{Workload: wl, Contender: rt.contender, Conc: c,
				ReqPerSec: float64(ok) / secs, RowsPerS: float64(ok) / secs,
				P50MS: wr.P50US / 1000, P99MS: wr.P99US / 1000, MeanMS: wr.MeanUS / 1000, Failed: wr.Non2xx + wr.Errors}
			if wr.Requests > 0 {
				r.CPUmsReq = (cpu1 - cpu0) * 1000 / float64(wr.Requests)
				r.LoadCPUms = wr.CPUSecs * 1000 / float64(wr.Requests)
			}
			fmt.Printf("%10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  failed %d\n", r.ReqPerSec, r.P50MS, r.P99MS, r.Failed)
			results = append(results, r)
		}
	}
	rss, err := peakRSS(pid)
	if err != nil {
		return nil, err
	}
	for i := range results {
		results[i].RSSMiB = float64(rss) / (1 << 20)
	}
	return results, nil
}

func waitReady(url string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("timed out")
}

// gatewayCmd starts bin/gateway serving models from the bench's registry,
// with batching at size (0: off), intra-op threads spinning or not, on the
// ports it is given.
func gatewayCmd(o options, tag string, models []string, size int, spin bool) func(port, grpcPort int) *exec.Cmd {
	return func(port, grpcPort int) *exec.Cmd {
		cfg := filepath.Join(o.work, fmt.Sprintf("gateway-%s-%d.yaml", tag, size))
		text := fmt.Sprintf("listen: 127.0.0.1:%d\ngrpc: {listen: 127.0.0.1:%d}\nhttp: {max_body_bytes: %d}\nregistry: %s\nmodels: [%s]\ncache_dir: %s\npoll_interval: 60s\nort: {providers: [cpu], intra_op_spin: %t}\nbatching: {max_batch_size: %d, max_queue_delay: %s}\nlog: {level: warn}\n",
			port, grpcPort, 64<<20, filepath.Join(o.work, "registry"), strings.Join(models, ", "), filepath.Join(o.work, "cache"), spin, size, o.batchDelay)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			panic(err)
		}
		return exec.Command(o.gateway, "--config", cfg)
	}
}

// concOf is the concurrencies a route is measured at.
func concOf(o options, rt route) []int {
	if rt.conc != nil {
		return rt.conc
	}
	return o.conc
}

func parseConc(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("bad concurrency %q", s)
		}
		out = append(out, c)
	}
	return out, nil
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
