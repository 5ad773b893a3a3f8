package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:1234/predict
  2 threads and 32 connections
MGBENCH {"requests":24000,"duration_us":2000000,"non2xx":3,"errors":1,"p50_us":1200,"p99_us":9100,"mean_us":1300.5}
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 24000 || r.DurationUS != 2e6 || r.Non2xx != 3 || r.Errors != 1 || r.P50US != 1200 || r.P99US != 9100 {
		t.Fatalf("%+v", r)
	}
	for name, bad := range map[string]string{
		"no line":     "Running 2s test\n",
		"bad json":    "MGBENCH {\"requests\":\n",
		"no duration": `MGBENCH {"requests":1,"duration_us":0}` + "\n",
	} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestParseStat(t *testing.T) {
	// The command name holds a space and a parenthesis.
	line := "4242 (my (odd) proc) S 4200 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 4200 || st.cpuSeconds != 3.8 {
		t.Fatalf("%+v", st)
	}
	if _, err := parseStat("4242 (x) S 1"); err == nil {
		t.Fatal("short line parsed")
	}
	kb, ok := parseHWM("Name:\tgateway\nVmPeak:\t  900 kB\nVmHWM:\t   61440 kB\nVmRSS:\t 50000 kB\n")
	if !ok || kb != 61440 {
		t.Fatalf("VmHWM %d %v", kb, ok)
	}
}

func TestReportAndChart(t *testing.T) {
	rs := []result{
		{Workload: "breast-cancer", Contender: cFloor, Conc: 32, ReqPerSec: 20000, RowsPerS: 20000, P99MS: 5},
		{Workload: "breast-cancer", Contender: cPredict, Conc: 32, ReqPerSec: 15000, RowsPerS: 15000, P99MS: 4},
		{Workload: "breast-cancer", Contender: cPython, Conc: 32, ReqPerSec: 500, RowsPerS: 500, P99MS: 80},
		{Workload: "breast-cancer", Contender: cNode, Conc: 32, ReqPerSec: 5000, RowsPerS: 5000, P99MS: 9},
		{Workload: "wide", Contender: cLoop32, ReqPerSec: 30, RowsPerS: 960, CPUmsReq: 64},
		{Workload: "wide", Contender: cPredictB, Conc: 128, ReqPerSec: 900, RowsPerS: 900, CPUmsReq: 2.2, LoadCPUms: 0.1},
		{Workload: "wide", Contender: cFloor, Conc: 128, ReqPerSec: 20000, RowsPerS: 20000, CPUmsReq: 0.1},
		{Workload: "image-detector", Contender: cLoop1, ReqPerSec: 25, RowsPerS: 25, MeanMS: 40},
		{Workload: "image-detector", Contender: cImgBinary, Conc: 1, ReqPerSec: 22, RowsPerS: 22, MeanMS: 45},
		{Workload: "image-detector", Contender: cImgGRPC, Conc: 1, ReqPerSec: 19, RowsPerS: 19, MeanMS: 52},
		{Workload: "image-detector", Contender: cImgJSON, Conc: 1, ReqPerSec: 8, RowsPerS: 8, MeanMS: 125},
	}
	ts := targets(rs)
	// The small detector did not run: its two targets are not measured.
	want := []bool{true, true, true, true, true, false}
	if len(ts) != len(want)+2 {
		t.Fatalf("%d targets, want %d", len(ts), len(want)+2)
	}
	for i, tg := range ts {
		if i >= len(want) {
			if tg.known {
				t.Errorf("target %q is judged without its measurements: %+v", tg.what, tg)
			}
			continue
		}
		if !tg.known || tg.met != want[i] {
			t.Errorf("target %q: %+v", tg.what, tg)
		}
	}
	wls := []workload{{name: "breast-cancer", title: "tiny <MLP>"}, {name: "wide", title: "wide"}}
	imgs := []imageModel{{workload: workload{name: "image-detector", title: "detector"}}}
	md := markdown(machine{CPUs: 2, NodeVersions: "Node.js v20.0.0"}, options{conc: []int{32, 128}, imageConc: []int{1, 2}}, wls, imgs, rs)
	for _, s := range []string{"| tiny model, `/predict`, c = 32: ≥ 0.7× the HTTP floor in req/s | 15000 vs 20000 req/s: 0.75× (the HTTP floor itself: 1.00×) | yes |", "| modelgate /predict | 32 | 15000 |", "no GPU",
		"The onnxruntime-node contender (Node.js v20.0.0) runs", "| onnxruntime-node + node:http | 32 | 5000 | 5000 |",
		// The floor serves 40× Python's req/s.
		"serves 40.0× the Python stack's req/s, and its p99 is 5.00 ms against the Python stack's 80.00 ms. Both Python targets are within the floor's reach",
		// Inference 64/32 = 2 ms a row: 2/(2+0.1) and 2/(2+0.1+0.1).
		"0.95× if the server's HTTP work were free, 0.91× if it cost what the HTTP floor spends",
		"| modelgate /predict, batching | 128 | 900 | 900 | 0.000 | 0.000 | 2.200 | 0.100 |",
		// 45/40 and 52/40.
		"binary tensors, c = 1: ≤ 1.2× the in-process run's time | 45.00 vs 40.00 ms a request: 1.12× | yes |",
		"raw contents, c = 1: ≤ 1.2× the in-process run's time | 52.00 vs 40.00 ms a request: 1.30× | no |",
		"| modelgate /v2 infer, JSON | 1 | 8.0 | 125.00 | 0.00 | 0.00 | 3.12 | 85.00 |"} {
		if !strings.Contains(md, s) {
			t.Errorf("RESULTS.md lacks %q:\n%s", s, md)
		}
	}
	svg := chart(wls, rs)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
		}
	}
	if !strings.Contains(svg, "tiny &lt;MLP&gt;") || !strings.Contains(svg, "15k") {
		t.Fatalf("chart lacks its labels:\n%s", svg)
	}
}

// TestBoundsSayWhichTargetIsOutOfReach: the yardstick paragraph names only
// the targets the floor itself misses.
func TestBoundsSayWhichTargetIsOutOfReach(t *testing.T) {
	for _, tc := range []struct {
		floorRPS, floorP99 float64
		want               string
	}{
		{5000, 5, "the target of 20× the req/s is out of reach"},
		{20000, 20, "the target of 1/10 of the p99 is out of reach"},
		{5000, 20, "the target of 20× the req/s and of 1/10 of the p99 is out of reach"},
	} {
		rs := []result{
			{Workload: "breast-cancer", Contender: cFloor, Conc: 32, ReqPerSec: tc.floorRPS, P99MS: tc.floorP99},
			{Workload: "breast-cancer", Contender: cPython, Conc: 32, ReqPerSec: 500, P99MS: 80},
		}
		got := strings.Join(bounds(rs, 2), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("floor %v req/s, p99 %v ms: %q lacks %q", tc.floorRPS, tc.floorP99, got, tc.want)
		}
	}
}

// TestClosedLoop: every worker's answers are counted, failures apart by
// kind, and the percentiles come from the answered requests.
func TestClosedLoop(t *testing.T) {
	var n atomic.Int64
	send := func(_ context.Context, worker int) error {
		switch k := n.Add(1); {
		case k%10 == 0:
			return errStatus
		case k%10 == 5:
			return errors.New("connection refused")
		}
		time.Sleep(time.Duration(worker+1) * 100 * time.Microsecond)
		return nil
	}
	r := closedLoop(send, 4, 200*time.Millisecond)
	if r.Requests != n.Load() || r.Non2xx == 0 || r.Errors == 0 || r.Requests <= r.Non2xx+r.Errors {
		t.Fatalf("%+v for %d sends", r, n.Load())
	}
	if r.P50US < 100 || r.P99US < r.P50US || r.MeanUS < 100 || r.DurationUS < 200000 {
		t.Fatalf("latencies %+v: each answered request slept at least 100 µs", r)
	}
	if r.FirstErr == nil {
		t.Fatal("no first failure kept")
	}
}

// TestBestOf: each loop keeps its better run of the two.
func TestBestOf(t *testing.T) {
	before := []result{{Contender: cLoop1, RowsPerS: 10}, {Contender: cLoop32, RowsPerS: 50}}
	after := []result{{Contender: cLoop1, RowsPerS: 20}, {Contender: cLoop32, RowsPerS: 40}}
	got := bestOf(before, after)
	if len(got) != 2 || got[0].RowsPerS != 20 || got[1].RowsPerS != 50 {
		t.Fatalf("%+v", got)
	}
}
