package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// irisScenario is the iris row of the data part.
func irisScenario(t *testing.T) scenario {
	t.Helper()
	for _, sc := range scenarios {
		if sc.Name == "iris" {
			return sc
		}
	}
	t.Fatal("no iris scenario")
	return scenario{}
}

// TestDataIris runs the data part on iris with 5 runs: the table has a
// check-data and a drift row with every rate in [0, 1], and the targets
// name iris.
func TestDataIris(t *testing.T) {
	sc := irisScenario(t)
	results, err := evalData("../..", []scenario{sc}, 5, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	r := results[0]
	if r.RefRows != 113 || r.SampleRows != 37 || r.Runs != 5 {
		t.Errorf("iris split %d / %d over %d runs, want 113 / 37 over 5", r.RefRows, r.SampleRows, r.Runs)
	}
	tallies := append([]tally{r.CheckFalse, r.DriftFalse}, append(r.CheckDetect, r.DriftDetect...)...)
	if len(tallies) != 2+2*len(perturbations) {
		t.Fatalf("%d tallies, want %d", len(tallies), 2+2*len(perturbations))
	}
	for i, c := range tallies {
		// With no minimum every drift window is judged.
		if c.Runs != 5 || c.rate() < 0 || c.rate() > 1 {
			t.Errorf("tally %d: %d alarms in %d runs, want 5 runs and a rate in [0, 1]", i, c.Alarms, c.Runs)
		}
	}
	// A shift of a whole standard deviation in 37 rows is seen.
	if c := r.CheckDetect[2]; c.Alarms < 4 {
		t.Errorf("check-data found a +1 sd shift in %d of 5 runs", c.Alarms)
	}

	lines := strings.Split(strings.TrimSpace(dataTable(results)), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want a header, a rule and 2 rows:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, verdict := range []string{"check-data", "drift"} {
		cells := strings.Split(strings.Trim(lines[2+i], "| "), " | ")
		if len(cells) != 4+len(perturbations) || cells[0] != "iris" || cells[1] != "113 / 37" || cells[2] != verdict {
			t.Errorf("row %d: %q", i, lines[2+i])
			continue
		}
		for _, cell := range cells[3:] {
			v := percent(t, strings.Fields(cell)[0])
			if v < 0 || v > 100 {
				t.Errorf("row %d: %s is not a rate", i, cell)
			}
		}
	}

	targets := dataTargets(results)
	if len(targets) != 2 || !strings.Contains(targets[0].Scenario, "iris") || !strings.Contains(targets[1].Scenario, "drift") {
		t.Errorf("targets: %+v", targets)
	}
}

// TestDataDeterministic: a measurement depends on the seed, not on the
// number of workers.
func TestDataDeterministic(t *testing.T) {
	sc := irisScenario(t)
	tab, err := loadTable(filepath.Join("../..", sc.Path))
	if err != nil {
		t.Fatal(err)
	}
	one, err := evaluate(sc, tab, 4, 7, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	many, err := evaluate(sc, tab, 4, 7, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, many) {
		t.Errorf("1 worker: %+v\n3 workers: %+v", one, many)
	}
}

// TestMinSamples: with promote drift's default minimum a 37-row window
// gets no verdict, which the table says, and which meets no target.
func TestMinSamples(t *testing.T) {
	results, err := evalData("../..", []scenario{irisScenario(t)}, 2, 1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.DriftFalse.Runs != 0 || r.CheckFalse.Runs != 2 {
		t.Errorf("drift judged %d runs, check-data %d", r.DriftFalse.Runs, r.CheckFalse.Runs)
	}
	if table := dataTable(results); !strings.Contains(table, "| drift | no verdict (37 rows < 500) |") {
		t.Errorf("table:\n%s", table)
	}
	if targets := dataTargets(results); targets[1].Meets || !strings.Contains(targets[1].Measured, "no verdict") {
		t.Errorf("drift target: %+v", targets[1])
	}
}

// TestLoadTable reads the layouts of the data sets: column names,
// scikit-learn's count line, and no first line.
func TestLoadTable(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		names     []string
	}{
		{"names", "a,b,label\n1,2,0\n3,4,1\n", []string{"a", "b", "label"}},
		{"count line", "2,2,no,yes\n1,2,0\n3,4,1\n", []string{"x0", "x1", "label"}},
		{"no first line", "1,2,0\n3,4,1\n", []string{"x0", "x1", "label"}},
	} {
		tab, err := parseTable([]byte(tc.csv))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(tab.Names, tc.names) || !reflect.DeepEqual(tab.Rows, [][]float64{{1, 2, 0}, {3, 4, 1}}) {
			t.Errorf("%s: %+v", tc.name, tab)
		}
	}
	for _, bad := range []string{"3,2,no,yes\n1,2,0\n3,4,1\n", "a,b,label\n1,2,0\n3,x,1\n", "a,b,label\n1,2\n"} {
		if _, err := parseTable([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Every data set reads, with its label last.
	for _, sc := range scenarios {
		tab, err := loadTable(filepath.Join("../..", sc.Path))
		if err != nil {
			t.Errorf("%s: %v", sc.Name, err)
			continue
		}
		if tab.label() != "label" || len(tab.Rows) < 100 {
			t.Errorf("%s: label %q, %d rows", sc.Name, tab.label(), len(tab.Rows))
		}
	}
}

func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{{0, 10, 0, 0.2775}, {5, 10, 0.2366, 0.7634}, {10, 10, 0.7225, 1}, {10, 200, 0.0274, 0.0896}} {
		lo, hi := wilson(tc.k, tc.n)
		if math.Abs(lo-tc.lo) > 5e-5 || math.Abs(hi-tc.hi) > 5e-5 {
			t.Errorf("wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestCommandLine: -only canary measures no data, -out writes the
// Markdown headed by the command, and bad flags exit 2.
func TestCommandLine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "verdicts.md")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-only", "data", "-runs", "3", "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String(), "## Canary") || !strings.Contains(stdout.String(), "## Targets") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Generated by `go run ./cmd/eval -only data -runs 3 -out " + out + "` at revision `"; !strings.Contains(string(file), want) {
		t.Errorf("file:\n%s\nwant %q", file, want)
	}
	for _, args := range [][]string{{"-only", "model"}, {"-runs", "0"}, {"-canary-runs", "0"}, {"-bogus"}, {"extra"}} {
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// percent parses "12.5%".
func percent(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !strings.HasSuffix(s, "%") {
		t.Fatalf("%q is not a percentage", s)
	}
	return v
}
