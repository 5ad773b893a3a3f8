package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// order is how contenders are listed in tables and the chart.
var order = []string{cLoop1, cLoop32, cFloor, cPredict, cInfer, cInferGo, cGRPC, cPredictB, cInferB, cGRPCB, cNode, cPython}

func find(rs []result, workload, contender string, c int) (result, bool) {
	for _, r := range rs {
		if r.Workload == workload && r.Contender == contender && r.Conc == c {
			return r, true
		}
	}
	return result{}, false
}

// target is one of the performance targets, judged on the results.
type target struct {
	what, measured string
	met            bool
	known          bool // false: a contender it needs did not run
}

func targets(rs []result) []target {
	var ts []target
	mg, ok1 := find(rs, "breast-cancer", cPredict, 32)
	fl, ok2 := find(rs, "breast-cancer", cFloor, 32)
	py, ok3 := find(rs, "breast-cancer", cPython, 32)
	known := ok1 && ok2 && ok3
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return math.Inf(1)
		}
		return a / b
	}
	// The same with batching on, and the floor's own standing, for context.
	ctxt := func(f func(r result) string) string {
		var parts []string
		if b, ok := find(rs, "breast-cancer", cPredictB, 32); ok {
			parts = append(parts, "with batching: "+f(b))
		}
		if ok2 && ok3 {
			parts = append(parts, "the HTTP floor itself: "+f(fl))
		}
		if len(parts) == 0 {
			return ""
		}
		return " (" + strings.Join(parts, "; ") + ")"
	}
	ts = append(ts,
		target{"tiny model, `/predict`, c = 32: ≥ 0.7× the HTTP floor in req/s",
			fmt.Sprintf("%.0f vs %.0f req/s: %.2f×", mg.ReqPerSec, fl.ReqPerSec, ratio(mg.ReqPerSec, fl.ReqPerSec)) +
				ctxt(func(r result) string { return fmt.Sprintf("%.2f×", ratio(r.ReqPerSec, fl.ReqPerSec)) }),
			ratio(mg.ReqPerSec, fl.ReqPerSec) >= 0.7, known},
		target{"tiny model, `/predict`, c = 32: ≥ 20× the Python stack in req/s",
			fmt.Sprintf("%.0f vs %.0f req/s: %.1f×", mg.ReqPerSec, py.ReqPerSec, ratio(mg.ReqPerSec, py.ReqPerSec)) +
				ctxt(func(r result) string { return fmt.Sprintf("%.1f×", ratio(r.ReqPerSec, py.ReqPerSec)) }),
			ratio(mg.ReqPerSec, py.ReqPerSec) >= 20, known},
		target{"tiny model, `/predict`, c = 32: p99 ≤ 1/10 of the Python stack's",
			fmt.Sprintf("%.2f vs %.2f ms: 1/%.1f", mg.P99MS, py.P99MS, ratio(py.P99MS, mg.P99MS)) +
				ctxt(func(r result) string { return fmt.Sprintf("1/%.1f", ratio(py.P99MS, r.P99MS)) }),
			mg.P99MS*10 <= py.P99MS, known},
	)
	wb, ok1 := find(rs, "wide", cPredictB, 128)
	l32, ok2 := find(rs, "wide", cLoop32, 0)
	ts = append(ts, target{"compute-bound model, batching, c = 128: ≥ 0.9× the in-process batch-32 loop in rows/s",
		fmt.Sprintf("%.0f vs %.0f rows/s: %.2f×", wb.RowsPerS, l32.RowsPerS, ratio(wb.RowsPerS, l32.RowsPerS)), ratio(wb.RowsPerS, l32.RowsPerS) >= 0.9, ok1 && ok2})
	for _, m := range []struct{ name, what string }{{"image-detector", "about 9 GFLOP"}, {"image-detector-small", "about 1 GFLOP"}} {
		loop, okl := find(rs, m.name, cLoop1, 0)
		for _, name := range []string{cImgBinary, cImgGRPC} {
			r, ok := find(rs, m.name, name, 1)
			x := ratio(r.MeanMS, loop.MeanMS)
			ts = append(ts, target{fmt.Sprintf("large input (1x3x320x320 FP32, the detector-shaped model of %s), %s, c = 1: ≤ 1.2× the in-process run's time", m.what, strings.TrimPrefix(name, "modelgate ")),
				fmt.Sprintf("%.2f vs %.2f ms a request: %.2f×", r.MeanMS, loop.MeanMS, x), x <= 1.2, ok && okl})
		}
	}
	return ts
}

// bounds explains, from the measurements of this run, how far the
// targets can be reached on this machine at all: what the HTTP floor
// itself scores against the same yardsticks, and the ceiling that the
// cores put on a compute-bound model when the load generator shares them.
func bounds(rs []result, cpus int) []string {
	var out []string
	fl, ok1 := find(rs, "breast-cancer", cFloor, 32)
	py, ok2 := find(rs, "breast-cancer", cPython, 32)
	if ok1 && ok2 && py.ReqPerSec > 0 && fl.P99MS > 0 {
		var beyond []string
		if fl.ReqPerSec < 20*py.ReqPerSec {
			beyond = append(beyond, "20× the req/s")
		}
		if fl.P99MS*10 > py.P99MS {
			beyond = append(beyond, "1/10 of the p99")
		}
		verdict := "Both Python targets are within the floor's reach in this run."
		if len(beyond) > 0 {
			verdict = "No server built on Go's net/http can do better than the floor, so on this machine the target of " +
				strings.Join(beyond, " and of ") + " is out of reach for any such server, even one whose inference cost nothing."
		}
		out = append(out, fmt.Sprintf("**The Python yardstick.** At c = 32 the HTTP floor, a Go handler that decodes the request "+
			"and answers a constant without running any model, serves %.1f× the Python stack's req/s, and its p99 is %.2f ms against "+
			"the Python stack's %.2f ms. %s", fl.ReqPerSec/py.ReqPerSec, fl.P99MS, py.P99MS, verdict))
	}
	wb, ok1 := find(rs, "wide", cPredictB, 128)
	l32, ok2 := find(rs, "wide", cLoop32, 0)
	wf, ok3 := find(rs, "wide", cFloor, 128)
	if ok1 && ok2 && ok3 && l32.RowsPerS > 0 && wb.LoadCPUms > 0 {
		inf := l32.CPUmsReq / (l32.RowsPerS / l32.ReqPerSec) // CPU ms of inference per row
		free := inf / (inf + wb.LoadCPUms)
		floor := inf / (inf + wf.CPUmsReq + wb.LoadCPUms)
		out = append(out, fmt.Sprintf("**The compute-bound ceiling.** The batch-32 loop spends %.3f CPU ms per row, and nothing else runs. "+
			"Served over HTTP, every row also costs wrk's own CPU (%.3f ms per request at c = 128) and the server's HTTP work, on the same %s. "+
			"With every core busy, rows/s can reach at most inference ÷ (inference + HTTP + wrk) of the loop: %.2f× if the server's "+
			"HTTP work were free, %.2f× if it cost what the HTTP floor spends on this request (%.3f CPU ms). The gateway with batching "+
			"spent %.3f CPU ms per row in all (inference included) and reached %.2f×.",
			inf, wb.LoadCPUms, fmt.Sprintf("%d cores", cpus), free, floor, wf.CPUmsReq, wb.CPUmsReq, wb.RowsPerS/l32.RowsPerS))
	}
	return out
}

func markdown(m machine, o options, wls []workload, imgs []imageModel, rs []result) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmark results\n\n")
	p("Written by `make bench` (`BENCH_DURATION=%s`: each measurement) from %s to %s. Every contender ran\n", m.DurationPerCell, m.Start.UTC().Format("2006-01-02 15:04"), m.End.UTC().Format("15:04 MST"))
	p("alone in its own process on a loopback port, loaded by the same `wrk` (one row per request,\n")
	p("`{\"features\": [...]}` on `/predict`, the KServe v2 form on `/v2/.../infer`), for the same duration, at\n")
	p("c = %s connections. wrk runs on the same cores as the server, for every contender alike. wrk cannot speak gRPC, so\n", joinInts(o.conc))
	p("the gRPC rows (typed `fp32_contents`, one row per request) and the large-input comparison are loaded by the bench's own\n")
	p("closed-loop client (`bench load`: Go's net/http and grpc-go, one gRPC connection per 16 workers, in a process of its own);\n")
	p("the \"(Go client)\" row is the same `/v2` request as wrk's, from that client, to compare the two protocols on one client.\n\n")
	p("**Machine**: %d CPUs (%s), load average %s at the start and %s at the end: the machine is shared\n", m.CPUs, m.CPUModel, m.LoadAvg, m.LoadAvgEnd)
	p("with other work, so figures move from run to run; compare them within this run. The in-process\n")
	p("loops ran before and after the servers of each workload, and the better of the two is shown. %s, ONNX Runtime %s (CPU), wrk %s, %s.\n", m.GoVersion, m.ORTVersion, m.WrkVersion, m.PythonVersions)
	p("modelgate runs with its defaults (intra-op threads = CPU quota = %s, not spinning; the loops keep ONNX\n", m.GatewayThreads)
	p("Runtime's default, spinning, which suits back-to-back runs); the batching gateway adds\n")
	p("`batching: {max_batch_size: %d, max_queue_delay: %s}`. uvicorn runs %d worker processes (one per core)\n", m.BatchSize, m.BatchDelay, m.PythonWorkers)
	p("with httptools and uvloop, as `uvicorn[standard]` installs it (without them, h11 answers in two writes and\n")
	p("a keep-alive client waits out delayed ACKs: about 40 ms a request).")
	if m.NodeVersions != "" {
		p(" The onnxruntime-node contender (%s) runs\n", m.NodeVersions)
		p("`cmd/bench/node/server.js`: node:http and ONNX Runtime's own Node.js binding on the same ONNX model, one worker\n")
		p("process per core (node:cluster) with one intra-op thread each.")
	}
	p("\n\n")
	p("**GPU**: no GPU was available to this run, so there are no GPU figures.\n\n")
	p("CPU ms/req is the server's CPU time (user + system, every process of it) over the requests it\n")
	p("answered, and load CPU ms/req the same for the load generator (wrk, or bench load); peak RSS is the server's VmHWM over all its measurements. Ratios compare req/s at the\n")
	p("same c with the HTTP floor and with the Python stack.\n\n")

	p("## Targets\n\n| target | measured | met |\n| --- | --- | --- |\n")
	for _, t := range targets(rs) {
		verdict := "no"
		switch {
		case !t.known:
			verdict = "not measured"
		case t.met:
			verdict = "yes"
		}
		p("| %s | %s | %s |\n", t.what, t.measured, verdict)
	}
	p("| GPU | no GPU available to this run | not measured |\n\n")
	if bs := bounds(rs, m.CPUs); len(bs) > 0 {
		p("### What this machine allows\n\n")
		for _, s := range bs {
			p("%s\n\n", s)
		}
	}
	p("![req/s and rows/s by contender](results.svg)\n\n")

	for _, w := range wls {
		p("## %s\n\n", w.title)
		p("| contender | c | req/s | rows/s | p50 ms | p99 ms | CPU ms/req | load CPU ms/req | peak RSS MiB | × floor | × Python | failed |\n")
		p("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n")
		for _, name := range order {
			for _, c := range append([]int{0}, o.conc...) {
				r, ok := find(rs, w.name, name, c)
				if !ok {
					continue
				}
				cs, xf, xp, wc := "loop", "", "", ""
				if c > 0 {
					cs = fmt.Sprint(c)
					wc = fmt.Sprintf("%.3f", r.LoadCPUms)
					if f, ok := find(rs, w.name, cFloor, c); ok && f.ReqPerSec > 0 {
						xf = fmt.Sprintf("%.2f", r.ReqPerSec/f.ReqPerSec)
					}
					if py, ok := find(rs, w.name, cPython, c); ok && py.ReqPerSec > 0 {
						xp = fmt.Sprintf("%.1f", r.ReqPerSec/py.ReqPerSec)
					}
				}
				p("| %s | %s | %.0f | %.0f | %.3f | %.3f | %.3f | %s | %.0f | %s | %s | %d |\n",
					name, cs, r.ReqPerSec, r.RowsPerS, r.P50MS, r.P99MS, r.CPUmsReq, wc, r.RSSMiB, xf, xp, r.Failed)
			}
		}
		p("\n")
	}
	if len(imgs) > 0 {
		imageSection(p, o, imgs, rs)
	}
	return b.String()
}

// imageSection is the large-input comparison: per model, the in-process
// run and each protocol, with each request's time against the run's.
func imageSection(p func(string, ...any), o options, imgs []imageModel, rs []result) {
	p("## Large inputs: one 1x3x320x320 FP32 image a request\n\n")
	p("One gateway serves the three models (batching off; `ort.intra_op_spin: true`, the loop's thread setting, so that\n")
	p("the rows differ by what the protocols cost, not by how ONNX Runtime's threads wait); each request carries one image (1.2 MiB of FP32) and gets one map\n")
	p("of the same size back: as JSON numbers both ways (about 2.9 MiB of JSON a request), as binary tensors\n")
	p("(`binary_data_size` in, `binary_data_output: true` out), or over gRPC as `raw_input_contents` and\n")
	p("`raw_output_contents`. Every protocol is driven by the same client (`bench load`) at c = %s; the in-process row is\n", joinInts(o.imageConc))
	p("the onnxruntime_go Run loop at batch 1 on tensors bound once. ms/req is the mean time of one request (of one run for\n")
	p("the loop), and × loop the ratio of the two; + ms the time a request adds to the run.\n\n")
	for _, m := range imgs {
		loop, okl := find(rs, m.name, cLoop1, 0)
		p("### %s\n\n", m.title)
		p("| contender | c | req/s | ms/req | p50 ms | p99 ms | × loop | + ms | CPU ms/req | load CPU ms/req | peak RSS MiB | failed |\n")
		p("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n")
		for _, name := range imageOrder {
			for _, c := range append([]int{0}, o.imageConc...) {
				r, ok := find(rs, m.name, name, c)
				if !ok {
					continue
				}
				cs, x, plus, lc := "loop", "", "", ""
				if c > 0 {
					cs, lc = fmt.Sprint(c), fmt.Sprintf("%.3f", r.LoadCPUms)
					if okl && loop.MeanMS > 0 && c == 1 {
						x, plus = fmt.Sprintf("%.2f", r.MeanMS/loop.MeanMS), fmt.Sprintf("%.2f", r.MeanMS-loop.MeanMS)
					}
				}
				p("| %s | %s | %.1f | %.2f | %.2f | %.2f | %s | %s | %.2f | %s | %.0f | %d |\n",
					name, cs, r.ReqPerSec, r.MeanMS, r.P50MS, r.P99MS, x, plus, r.CPUmsReq, lc, r.RSSMiB, r.Failed)
			}
		}
		p("\n")
	}
	p("× loop and + ms are shown at c = 1, where a request has the cores to itself as the loop's run has.\n\n")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// chart draws, for each workload, rows/s of every contender (a bar per
// concurrency; one bar for a loop) on a log scale, as an SVG.
func chart(wls []workload, rs []result) string {
	const (
		width   = 980
		labelW  = 300
		barH    = 9
		gap     = 7
		plotW   = width - labelW - 90
		headerH = 56
	)
	colors := map[int]string{0: "#555", 1: "#9ecae1", 32: "#3182bd", 128: "#08519c"}
	var concs []int
	seen := map[int]bool{}
	for _, r := range rs {
		if r.Conc > 0 && !seen[r.Conc] {
			seen[r.Conc] = true
			concs = append(concs, r.Conc)
		}
	}
	maxV := 1.0
	for _, r := range rs {
		maxV = math.Max(maxV, r.RowsPerS)
	}
	top := math.Pow(10, math.Ceil(math.Log10(maxV)))
	x := func(v float64) float64 {
		if v < 1 {
			v = 1
		}
		return plotW * math.Log10(v) / math.Log10(top)
	}
	var body strings.Builder
	y := headerH
	for _, w := range wls {
		fmt.Fprintf(&body, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+4, html.EscapeString(w.title))
		y += 14
		for _, name := range order {
			var bars []result
			for _, c := range append([]int{0}, concs...) {
				if r, ok := find(rs, w.name, name, c); ok {
					bars = append(bars, r)
				}
			}
			if len(bars) == 0 {
				continue
			}
			h := len(bars)*(barH+1) + gap
			fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+h/2+2, html.EscapeString(name))
			for i, r := range bars {
				by := y + i*(barH+1)
				bw := x(r.RowsPerS)
				fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, by, bw, barH, colors[r.Conc])
				fmt.Fprintf(&body, `<text x="%.1f" y="%d" font-size="9">%s</text>`+"\n", float64(labelW)+bw+4, by+barH-1, humanRate(r.RowsPerS))
			}
			y += h
		}
		y += 16
	}
	// Axis: decades.
	var axis strings.Builder
	for d := 1.0; d <= top; d *= 10 {
		ax := float64(labelW) + x(d)
		fmt.Fprintf(&axis, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, ax, headerH-6, ax, y-10)
		fmt.Fprintf(&axis, `<text x="%.1f" y="%d" font-size="9" text-anchor="middle">%s</text>`+"\n", ax, headerH-10, humanRate(d))
	}
	var legend strings.Builder
	lx := 10
	fmt.Fprintf(&legend, `<text x="%d" y="16" font-weight="bold">rows per second (log scale), higher is better; one row per request</text>`+"\n", lx)
	lx = 10
	for _, c := range append([]int{0}, concs...) {
		label := fmt.Sprintf("c = %d", c)
		if c == 0 {
			label = "in-process loop"
		}
		fmt.Fprintf(&legend, `<rect x="%d" y="26" width="10" height="10" fill="%s"/><text x="%d" y="35">%s</text>`, lx, colors[c], lx+14, label)
		lx += 30 + 7*len(label)
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">
<rect width="100%%" height="100%%" fill="white"/>
%s
%s
%s</svg>
`, width, y, legend.String(), axis.String(), body.String())
}

func humanRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}
