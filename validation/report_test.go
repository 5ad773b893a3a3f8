package validation

import (
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/semantics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenReport is a hand-built report (measured timings vary from run to
// run): a retrain that lost accuracy and widened its input.
func goldenReport() *Report {
	return &Report{
		Verdict:  VerdictFail,
		Model:    "breast-cancer",
		Version:  "2",
		Baseline: "1",
		Provider: "cpu",
		OutputKinds: []OutputKind{
			{"label", semantics.Of(semantics.Label)},
			{"probabilities", semantics.Of(semantics.Probabilities)},
			{"logits", semantics.Of(semantics.Probabilities)},
		},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Gates: []GateResult{
			{Name: GateSanity, Passed: true, Metrics: map[string]float64{"load_ms": 3.25}},
			{
				Name: GateContract,
				Message: `breaking changes from baseline 1 (baseline -> candidate): input "features": shape [-1 30] -> [-1 31]; ` +
					`output "logits" (FP32 [-1 2]) added (allowed: clients of baseline 1 ignore it)`,
			},
			{
				Name: GateAccuracy,
				Message: `accuracy is worse than baseline 1's by 0.0708 (0.9646 -> 0.8938), more than the allowed 0.01; ` +
					`classifier: labels from output "label", stored as label, scores from "probabilities" (probabilities)`,
				Metrics: map[string]float64{
					"accuracy": 0.8938053097345132, "f1_macro": 0.8863, "roc_auc": 0.9544, "log_loss": 0.2665,
					"precision_0": 0.8571, "recall_0": 0.8571, "f1_0": 0.8571,
					"precision_1": 0.9155, "recall_1": 0.9155, "f1_1": 0.9155, "rows": 113,
				},
				Thresholds: map[string]string{"accuracy": ">= 0.85, worse by <= 0.01 vs baseline"},
				Baseline: map[string]float64{
					"accuracy": 0.9646017699115044, "f1_macro": 0.9625, "roc_auc": 0.9824, "log_loss": 0.2422,
					"precision_0": 0.9318, "recall_0": 0.9762, "f1_0": 0.9535,
					"precision_1": 0.9855, "recall_1": 0.9577, "f1_1": 0.9714, "rows": 113,
				},
			},
			{
				Name:   GateLatency,
				Passed: true,
				Metrics: map[string]float64{
					"batch1_p50_ms": 0.052, "batch1_p99_ms": 0.124, "batch1_p50_ratio": 0.93, "batch1_p99_ratio": 0.82, "batch1_runs": 200,
					"batch32_p50_ms": 0.061, "batch32_p99_ms": 0.2, "batch32_p50_ratio": 0.97, "batch32_p99_ratio": 1.1, "batch32_runs": 200,
				},
				Thresholds: map[string]string{"batch1_p99_ms": "<= 5", "batch1_p50_ratio": "<= 2", "batch32_p50_ratio": "<= 2"},
				Baseline: map[string]float64{
					"batch1_p50_ms": 0.056, "batch1_p99_ms": 0.1512, "batch1_runs": 200,
					"batch32_p50_ms": 0.063, "batch32_p99_ms": 0.1818, "batch32_runs": 200,
				},
			},
		},
	}
}

func TestGolden(t *testing.T) {
	r := goldenReport()
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		file string
		got  []byte
	}{
		{"report.golden.json", js},
		{"report.golden.md", []byte(r.Markdown())},
		{"report.golden.txt", []byte(r.Text())},
	} {
		t.Run(f.file, func(t *testing.T) {
			path := filepath.Join("testdata", f.file)
			if *update {
				if err := os.WriteFile(path, f.got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./validation -run TestGolden -update to create it)", err)
			}
			if string(f.got) != string(want) {
				t.Errorf("%s differs from the golden file (-update rewrites it):\n%s", f.file, f.got)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := goldenReport()
	r.Gates = append(r.Gates, GateResult{Name: "extra", Passed: true, Skipped: true, Message: "skipped on request"})
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Created.Equal(r.Created) {
		t.Errorf("created %v, want %v", back.Created, r.Created)
	}
	back.Created = r.Created
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *r)
	}
}

func TestGateResultJSON(t *testing.T) {
	cases := []struct {
		name string
		g    GateResult
		want string
		err  string
	}{
		{
			name: "flat, sorted, optional parts left out",
			g:    GateResult{Name: "accuracy", Message: "m", Metrics: map[string]float64{"rows": 3, "accuracy": 0.5}},
			want: `{"name":"accuracy","passed":false,"message":"m","accuracy":0.5,"rows":3}`,
		},
		{
			name: "skipped, thresholds and baseline",
			g:    GateResult{Name: "latency", Passed: true, Skipped: true, Thresholds: map[string]string{"x": "<= 2"}, Baseline: map[string]float64{"x": 1}},
			want: `{"name":"latency","passed":true,"skipped":true,"message":"","thresholds":{"x":"<= 2"},"baseline":{"x":1}}`,
		},
		{
			name: "non-finite numbers are null",
			g:    GateResult{Name: "a", Metrics: map[string]float64{"nan": math.NaN()}, Baseline: map[string]float64{"inf": math.Inf(1)}},
			want: `{"name":"a","passed":false,"message":"","nan":null,"baseline":{"inf":null}}`,
		},
		{
			name: "a metric named like a field",
			g:    GateResult{Name: "a", Metrics: map[string]float64{"passed": 1}},
			err:  `metric name "passed" is reserved`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.g.MarshalJSON()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || string(b) != c.want {
				t.Fatalf("got %s (%v), want %s", b, err, c.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	passed := func() *Report {
		return &Report{Verdict: VerdictPass, Gates: []GateResult{{Name: GateSanity, Passed: true}, {Name: GateAccuracy, Passed: true, Skipped: true}}}
	}
	failed := goldenReport()
	inconsistent := passed()
	inconsistent.Gates[0].Passed = false
	notRunGate := passed()
	notRunGate.Gates = append(notRunGate.Gates, notRun(GateLatency, "sanity failed"))
	cases := []struct {
		name string
		r    *Report
		err  error
		want int
	}{
		{"every gate passed", passed(), nil, 0},
		{"a gate failed", failed, nil, 1},
		{"a gate not run", notRunGate, nil, 1},
		{"a verdict of pass with a failed gate", inconsistent, nil, 1},
		{"no gates", &Report{Verdict: VerdictPass}, nil, 1},
		{"usage error", nil, ErrUsage, 2},
		{"infrastructure error", nil, errors.New("disk on fire"), 2},
		{"an error beside a report", passed(), ErrBaseline, 2},
		{"no report and no error", nil, nil, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ExitCode(c.r, c.err); got != c.want {
				t.Errorf("ExitCode = %d, want %d", got, c.want)
			}
		})
	}
}

func TestRenderings(t *testing.T) {
	r := &Report{
		Verdict: VerdictFail, Model: "m", Version: "3", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Gates: []GateResult{
			{Name: GateSanity, Message: "the model does not load: invalid model: <html> | *bold* `code`"},
			notRun(GateContract, "sanity failed: the model did not load"),
			{Name: GateAccuracy, Passed: true, Skipped: true, Message: "skipped on request (SkipAccuracy)"},
			notRun(GateLatency, "sanity failed"),
		},
	}
	md := r.Markdown()
	for _, want := range []string{
		"## ❌ m version 3: gates failed\n",
		"no baseline · provider: none (not loaded) · 2026-01-02T03:04:05Z",
		"| **contract** | ❌ not run |  |  |  |  |",
		"| **accuracy** | ➖ skipped |",
		"### Failures\n\n- **sanity**: the model does not load: invalid model: &lt;html> | \\*bold\\* \\`code\\`\n",
		"### Notes\n\n- **accuracy**: skipped on request (SkipAccuracy)\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	txt := r.Text()
	for _, want := range []string{"FAIL m version 3 (no baseline, provider: none (not loaded), 2026-01-02T03:04:05Z)", "contract  not run", "accuracy  skipped"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
	for _, line := range strings.Split(txt, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing space in %q", line)
		}
	}
	r.Verdict = VerdictPass
	r.Gates = []GateResult{{Name: GateSanity, Passed: true}}
	if md := r.Markdown(); !strings.HasPrefix(md, "## ✅ m version 3: gates passed\n") {
		t.Errorf("passed markdown:\n%s", md)
	}
	if txt := r.Text(); !strings.HasPrefix(txt, "PASS m version 3") {
		t.Errorf("passed text:\n%s", txt)
	}
}
