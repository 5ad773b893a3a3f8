package stats

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	trainCSV   = "../examples/breast-cancer/train.csv"
	holdoutCSV = "../examples/breast-cancer/holdout.csv"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editCSV parses a CSV, lets edit change the records (header first), and
// writes it back.
func editCSV(t *testing.T, data []byte, edit func(recs [][]string) [][]string) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(edit(recs)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// scaleColumn multiplies one column of every data row by f.
func scaleColumn(t *testing.T, data []byte, col int, f float64) []byte {
	return editCSV(t, data, func(recs [][]string) [][]string {
		for _, r := range recs[1:] {
			v, err := strconv.ParseFloat(r[col], 64)
			if err != nil {
				t.Fatal(err)
			}
			r[col] = strconv.FormatFloat(v*f, 'g', -1, 64)
		}
		return recs
	})
}

// resample draws n data rows with replacement (a bootstrap sample).
func resample(t *testing.T, data []byte, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	return editCSV(t, data, func(recs [][]string) [][]string {
		out := [][]string{recs[0]}
		for range n {
			out = append(out, recs[1+rng.IntN(len(recs)-1)])
		}
		return out
	})
}

func trainProfile(t *testing.T) *Profile {
	t.Helper()
	p, err := ComputeProfile(readFile(t, trainCSV), ProfileOptions{Features: 30, Model: "breast-cancer", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComputeProfile(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	// a: 1..10; b: constant; c: 40% zeros (ties) and a missing value;
	// label last (Features 3, four columns).
	var b strings.Builder
	b.WriteString("a,b,c,label\n")
	for i := 1; i <= 10; i++ {
		c := "0"
		switch {
		case i == 10:
			c = "NA"
		case i > 4:
			c = strconv.Itoa(i)
		}
		b.WriteString(strconv.Itoa(i) + ",7," + c + "," + strconv.Itoa(i%2) + "\n")
	}
	p, err := ComputeProfile([]byte(b.String()), ProfileOptions{Features: 3, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 10 || p.Columns != 4 || p.Label != 3 || len(p.Features) != 3 || !p.Created.Equal(clock()) {
		t.Fatalf("profile %+v", p)
	}
	a, cst, c := p.Features[0], p.Features[1], p.Features[2]
	if a.Name != "a" || a.Count != 10 || a.Min != 1 || a.Max != 10 || a.Mean != 5.5 || math.Abs(a.Std-math.Sqrt(8.25)) > 1e-12 {
		t.Errorf("a: %+v", a)
	}
	// Deciles of 1..10 (type 7): 1.9, 2.8, ..., 9.1; one value per bin.
	if len(a.Edges) != 9 || math.Abs(a.Edges[0]-1.9) > 1e-12 || math.Abs(a.Edges[8]-9.1) > 1e-12 {
		t.Errorf("a edges %v", a.Edges)
	}
	if !slices.Equal(a.Counts, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}) {
		t.Errorf("a counts %v", a.Counts)
	}
	if q := a.Quantiles[3]; q.Q != 0.5 || q.Value != 5.5 {
		t.Errorf("a median %+v", q)
	}
	// A constant feature: one edge at its value, everything in bin 0.
	if !slices.Equal(cst.Edges, []float64{7}) || !slices.Equal(cst.Counts, []int64{10, 0}) || cst.Std != 0 {
		t.Errorf("constant: %+v", cst)
	}
	// Ties: the zeros share one bin; the missing value is counted apart.
	if c.Count != 9 || c.Missing != 1 || c.MissingRate != 0.1 || c.Edges[0] != 0 || c.Counts[0] != 4 {
		t.Errorf("c: %+v", c)
	}
	for i := 1; i < len(c.Edges); i++ {
		if c.Edges[i] <= c.Edges[i-1] {
			t.Errorf("c edges not strictly ascending: %v", c.Edges)
		}
	}
	var sum int64
	for _, n := range c.Counts {
		sum += n
	}
	if sum != 9 {
		t.Errorf("c counts %v sum to %d, want 9", c.Counts, sum)
	}
	// JSON round trip.
	js, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseProfile(js)
	if err != nil || back.Features[2].Edges[1] != c.Edges[1] || back.Label != 3 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestProfileLabelColumn(t *testing.T) {
	data := []byte("y,a,b\n0,1,2\n1,3,4\n")
	cases := []struct {
		name     string
		opts     ProfileOptions
		label    int
		features []string
		err      error
		msg      string
	}{
		{"width+1: label last", ProfileOptions{Features: 2}, 2, []string{"y", "a"}, nil, ""},
		{"label by name", ProfileOptions{Features: 2, LabelColumn: "y"}, 0, []string{"a", "b"}, nil, ""},
		{"no label", ProfileOptions{Features: 3}, -1, []string{"y", "a", "b"}, nil, ""},
		{"no label said", ProfileOptions{LabelColumn: "none"}, -1, []string{"y", "a", "b"}, nil, ""},
		{"unknown width: last", ProfileOptions{}, 2, []string{"y", "a"}, nil, ""},
		{"too few columns", ProfileOptions{Features: 5}, 0, nil, ErrData, "the data has 3 columns, but the model takes 5 features"},
		{"label and wrong width", ProfileOptions{Features: 1, LabelColumn: "y"}, 0, nil, ErrData, "2 columns besides the label"},
		{"unknown label", ProfileOptions{LabelColumn: "z"}, 0, nil, ErrLabelColumn, `label column "z"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ComputeProfile(data, c.opts)
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("err = %v, want %v with %q", err, c.err, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range p.Features {
				names = append(names, f.Name)
			}
			if p.Label != c.label || !slices.Equal(names, c.features) {
				t.Fatalf("label %d features %v", p.Label, names)
			}
		})
	}
}

func TestBinOfAndPSI(t *testing.T) {
	edges := []float64{1, 2, 3}
	for x, want := range map[float64]int{-5: 0, 1: 0, 1.5: 1, 2: 1, 3: 2, 3.1: 3, 1e9: 3} {
		if got := BinOf(edges, x); got != want {
			t.Errorf("BinOf(%v) = %d, want %d", x, got, want)
		}
	}
	ref := []int64{100, 100, 100, 100}
	if psi := PSI(ref, []float64{50, 50, 50, 50}); psi != 0 {
		t.Errorf("same shares: PSI %v", psi)
	}
	if psi := PSI(ref, []float64{0, 0, 100, 100}); !(psi > 1) || math.IsInf(psi, 0) {
		t.Errorf("half the bins empty: PSI %v, want large and finite", psi)
	}
	if ks := BinnedKS(ref, []float64{0, 0, 100, 100}); ks != 0.5 {
		t.Errorf("KS %v, want 0.5", ks)
	}
	if !math.IsNaN(PSI(ref, []float64{0, 0, 0, 0})) || !math.IsNaN(PSI(ref, []float64{1})) {
		t.Error("PSI of nothing, or of other bins, is not NaN")
	}
}

func TestParseProfileRefuses(t *testing.T) {
	for name, js := range map[string]string{
		"not json":       "nope",
		"other format":   `{"format": 9, "features": [{"edges": [], "counts": [1]}]}`,
		"no features":    `{"format": 1, "features": []}`,
		"counts ≠ edges": `{"format": 1, "features": [{"edges": [1, 2], "counts": [1]}]}`,
		"unsorted edges": `{"format": 1, "features": [{"edges": [2, 1], "counts": [1, 1, 1]}]}`,
	} {
		if _, err := ParseProfile([]byte(js)); !errors.Is(err, ErrData) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestCheckDataBreastCancer profiles the demo model's training split and
// checks other data sets against it.
func TestCheckDataBreastCancer(t *testing.T) {
	p := trainProfile(t)
	train, holdout := readFile(t, trainCSV), readFile(t, holdoutCSV)
	const meanTexture = 1
	pass := map[string][]byte{
		"the reference itself":     train,
		"the holdout split":        holdout,
		"a bootstrap of the train": resample(t, train, 200, 11),
	}
	for name, data := range pass {
		t.Run(name, func(t *testing.T) {
			rep, err := CheckData(p, data, dataOptions(name))
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for _, f := range rep.Features {
				worst = max(worst, f.PSI)
			}
			t.Logf("%s: %d rows, worst PSI %.4f", name, rep.Rows, worst)
			if !rep.Passed() || DataExitCode(rep, nil) != 0 {
				t.Fatalf("failed:\n%s", rep.Text())
			}
			if name == "the reference itself" && worst != 0 {
				t.Errorf("the reference against itself: PSI %v, want 0", worst)
			}
		})
	}

	shifted := scaleColumn(t, holdout, meanTexture, 1.5)
	rep, err := CheckData(p, shifted, dataOptions("shifted.csv"))
	if err != nil {
		t.Fatal(err)
	}
	failed := rep.Failed()
	if rep.Passed() || DataExitCode(rep, nil) != 1 || len(failed) != 1 || failed[0].Name != "mean texture" {
		t.Fatalf("mean texture × 1.5: want exactly that feature failed:\n%s", rep.Text())
	}
	t.Logf("mean texture × 1.5: PSI %.3f, KS %.3f, %d out of range; %s", failed[0].PSI, failed[0].KS, failed[0].OutOfRange, strings.Join(failed[0].Problems, "; "))
	for _, face := range []string{rep.Text(), rep.Markdown()} {
		if !strings.Contains(face, "mean texture") || !strings.Contains(face, "PSI") {
			t.Errorf("report does not name the feature and its PSI:\n%s", face)
		}
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Verdict  string `json:"verdict"`
		Features []struct {
			Name   string   `json:"name"`
			Passed bool     `json:"passed"`
			PSI    *float64 `json:"psi"`
		} `json:"features"`
	}
	if err := jsonUnmarshal(js, &back); err != nil || back.Verdict != "fail" || len(back.Features) != 30 ||
		back.Features[meanTexture].Passed || back.Features[meanTexture].PSI == nil || *back.Features[meanTexture].PSI <= 1 {
		t.Fatalf("report.json: %v\n%s", err, js)
	}
}

func TestCheckDataSchema(t *testing.T) {
	p := trainProfile(t)
	holdout := readFile(t, holdoutCSV)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"a missing column", editCSV(t, holdout, func(recs [][]string) [][]string {
			for i, r := range recs {
				recs[i] = slices.Delete(r, 3, 4) // mean area
			}
			return recs
		}), `the data has 30 columns, the profile 31; missing: "mean area"`},
		{"a non-numeric value", editCSV(t, holdout, func(recs [][]string) [][]string {
			recs[5][2] = "eighty"
			return recs
		}), `line 6, column 2 ("mean perimeter"): "eighty" is not a finite number`},
		{"a ragged row", []byte(strings.Replace(string(holdout), ",0\n", "\n", 1)), "wrong number of fields"},
		{"columns swapped", editCSV(t, holdout, func(recs [][]string) [][]string {
			recs[0][0], recs[0][1] = recs[0][1], recs[0][0]
			return recs
		}), `column 0 is "mean texture", the profile's is "mean radius"`},
		{"no header, one column short", editCSV(t, holdout, func(recs [][]string) [][]string {
			recs = recs[1:]
			for i, r := range recs {
				recs[i] = r[1:]
			}
			return recs
		}), "the data has 30 columns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := CheckData(p, c.data, dataOptions("bad.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Passed() || rep.Schema.Passed || DataExitCode(rep, nil) != 1 || !strings.Contains(rep.Schema.Message, c.want) {
				t.Fatalf("schema %+v, want a failure with %q", rep.Schema, c.want)
			}
			if !strings.Contains(rep.Text(), c.want) || !strings.Contains(rep.Markdown(), "schema") {
				t.Errorf("the report does not show the schema failure:\n%s", rep.Text())
			}
		})
	}
}

func TestCheckDataMissingAndRange(t *testing.T) {
	p := trainProfile(t)
	holdout := readFile(t, holdoutCSV)
	// 10 of 113 rows lose "mean smoothness"; 8 rows get a huge "mean area"
	// (of 113 fresh values, about 0.26 are expected above the maximum of
	// the 427 reference ones), one a negative one.
	data := editCSV(t, holdout, func(recs [][]string) [][]string {
		for _, r := range recs[1:11] {
			r[4] = ""
		}
		for _, r := range recs[20:28] {
			r[3] = "1e6"
		}
		recs[30][3] = "-500"
		return recs
	})
	rep, err := CheckData(p, data, dataOptions("gaps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]FeatureCheck{}
	for _, f := range rep.Features {
		byName[f.Name] = f
	}
	if f := byName["mean smoothness"]; f.Passed || f.Missing != 10 || !strings.Contains(strings.Join(f.Problems, ";"), "missing rate") {
		t.Errorf("mean smoothness: %+v", f)
	}
	problems := strings.Join(byName["mean area"].Problems, ";")
	if f := byName["mean area"]; f.Passed || f.OutOfRange != 9 || !strings.Contains(problems, "above the reference maximum") || strings.Contains(problems, "below") {
		t.Errorf("mean area: %+v", f)
	}
	// A size of effect the rejected test must also reach: 9 of 113 out of
	// range is less than half.
	o := DefaultDataOptions()
	o.MaxOutOfRange, o.MaxPSI = 0.5, 100
	rep, err = CheckData(p, data, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Features {
		if f.Name == "mean area" && !f.Passed {
			t.Errorf("mean area with sizes of effect: %v", f.Problems)
		}
	}
	// An absolute limit on missing values fails what the test alone may not.
	o = DefaultDataOptions()
	o.MaxMissing = 0.01
	one := editCSV(t, holdout, func(recs [][]string) [][]string { recs[1][5] = ""; recs[2][5] = ""; return recs })
	if rep, err = CheckData(p, one, o); err != nil || rep.Passed() {
		t.Fatalf("two missing values over a limit of 1%%: %v\n%s", err, rep.Text())
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func dataOptions(name string) DataOptions {
	o := DefaultDataOptions()
	o.Name = name
	return o
}
