package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	trainData   = "../../examples/breast-cancer/train.csv"
	holdoutData = "../../examples/breast-cancer/holdout.csv"
)

// writeCSV reads a CSV, lets edit change its records (header first) and
// writes the result into the test's temporary directory.
func writeCSV(t *testing.T, src, name string, edit func(recs [][]string) [][]string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs = edit(recs)
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	if err := w.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// scaled multiplies one column of every data row by f.
func scaled(t *testing.T, src string, col int, f float64) string {
	return writeCSV(t, src, "shifted.csv", func(recs [][]string) [][]string {
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

// bootstrap draws n rows of src with replacement: a fresh sample from the
// same distribution.
func bootstrap(t *testing.T, src string, n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 2))
	return writeCSV(t, src, "sample.csv", func(recs [][]string) [][]string {
		out := [][]string{recs[0]}
		for range n {
			out = append(out, recs[1+rng.IntN(len(recs)-1)])
		}
		return out
	})
}

func TestProfileAndCheckData(t *testing.T) {
	reg := t.TempDir()
	r := promote(t, reg, "push", "breast-cancer", "1", demo, "--train-data", trainData)
	if r.code != 0 || !strings.Contains(r.stdout, "stored the data profile of train.csv") {
		t.Fatalf("push --train-data: %+v", r)
	}
	// The stored profile: 30 features (the label column left out).
	prof, err := os.ReadFile(filepath.Join(reg, "models", "breast-cancer", "versions", "1", "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Rows     int `json:"rows"`
		Label    int `json:"label"`
		Features []struct {
			Name  string    `json:"name"`
			Edges []float64 `json:"edges"`
		} `json:"features"`
	}
	if err := json.Unmarshal(prof, &p); err != nil || p.Rows != 456 || p.Label != 30 || len(p.Features) != 30 || p.Features[1].Name != "mean texture" || len(p.Features[1].Edges) != 9 {
		t.Fatalf("profile.json: %v %+v", err, p)
	}

	pass := map[string]string{
		"the training data itself":    trainData,
		"the holdout split":           holdoutData,
		"a bootstrap of the training": bootstrap(t, trainData, 250, 3),
	}
	for name, file := range pass {
		t.Run(name, func(t *testing.T) {
			r := promote(t, reg, "check-data", "breast-cancer", "1", "--data", file)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "PASS ") {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	t.Run("one feature scaled by 1.5", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "report")
		// The stable version is the default.
		r := promote(t, reg, "check-data", "breast-cancer", "--data", scaled(t, holdoutData, 1, 1.5), "--report-dir", dir)
		if r.code != 1 || !strings.HasPrefix(r.stdout, "FAIL ") || !strings.Contains(r.stderr, `features failed: "mean texture"`) {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var rep struct {
			Verdict  string `json:"verdict"`
			Features []struct {
				Name     string   `json:"name"`
				Passed   bool     `json:"passed"`
				PSI      float64  `json:"psi"`
				Problems []string `json:"problems"`
			} `json:"features"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil || rep.Verdict != "fail" || len(rep.Features) != 30 {
			t.Fatalf("report.json: %v\n%s", err, b)
		}
		var failed []string
		for _, f := range rep.Features {
			if !f.Passed {
				failed = append(failed, f.Name)
			}
		}
		if !slices.Equal(failed, []string{"mean texture"}) || rep.Features[1].PSI < 1 {
			t.Fatalf("failed features %v, mean texture %+v", failed, rep.Features[1])
		}
		md, err := os.ReadFile(filepath.Join(dir, "report.md"))
		if err != nil || !strings.Contains(string(md), "**mean texture**: distribution shifted") {
			t.Fatalf("report.md: %v\n%s", err, md)
		}
		// The same as JSON on stdout.
		r = promote(t, reg, "check-data", "breast-cancer", "1", "--data", scaled(t, holdoutData, 1, 1.5), "--output", "json")
		if r.code != 1 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"verdict": "fail"`) {
			t.Fatalf("--output json: exit %d\n%s", r.code, r.stdout)
		}
		// Sizes of effect the shift does not reach let it through.
		r = promote(t, reg, "check-data", "breast-cancer", "1", "--data", scaled(t, holdoutData, 1, 1.5), "--max-psi", "10", "--max-out-of-range", "0.5")
		if r.code != 0 {
			t.Fatalf("sizes of effect: exit %d\n%s", r.code, r.stdout)
		}
		// An alpha outside (0, 1) is a usage error.
		if r := promote(t, reg, "check-data", "breast-cancer", "1", "--data", scaled(t, holdoutData, 1, 1.5), "--alpha", "2"); r.code != 2 || !strings.Contains(r.stderr, "--alpha must be in (0, 1)") {
			t.Errorf("--alpha 2: %+v", r)
		}
		// A stricter alpha is harder to fail, never easier.
		r = promote(t, reg, "check-data", "breast-cancer", "1", "--data", scaled(t, holdoutData, 1, 1.5), "--alpha", "1e-30")
		if r.code != 1 {
			t.Fatalf("alpha 1e-30 on a 50%% scaled feature: exit %d\n%s", r.code, r.stdout)
		}
	})

	schema := []struct {
		name, file, want string
	}{
		{"a missing column", writeCSV(t, holdoutData, "missing.csv", func(recs [][]string) [][]string {
			for i, r := range recs {
				recs[i] = slices.Delete(r, 2, 3)
			}
			return recs
		}), `schema: FAIL: the data has 30 columns, the profile 31; missing: "mean perimeter"`},
		{"a non-numeric value", writeCSV(t, holdoutData, "text.csv", func(recs [][]string) [][]string {
			recs[3][7] = "n/a?"
			return recs
		}), `schema: FAIL: line 4, column 7 ("mean concave points"): "n/a?" is not a finite number`},
	}
	for _, c := range schema {
		t.Run(c.name, func(t *testing.T) {
			r := promote(t, reg, "check-data", "breast-cancer", "1", "--data", c.file)
			if r.code != 1 || !strings.Contains(r.stdout, c.want) || !strings.Contains(r.stderr, "the schema does not match") {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	// promote profile replaces a profile, or adds one to a version pushed without.
	v2 := filepath.Join(t.TempDir(), "v2.onnx")
	b, _ := os.ReadFile(demo)
	if err := os.WriteFile(v2, append(b, 0x52, 0x00), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := promote(t, reg, "push", "breast-cancer", "2", v2); r.code != 0 {
		t.Fatalf("push v2: %+v", r)
	}
	if r := promote(t, reg, "check-data", "breast-cancer", "2", "--data", holdoutData); r.code != 2 || !strings.Contains(r.stderr, "no data profile") {
		t.Fatalf("check-data without a profile: %+v", r)
	}
	if r := promote(t, reg, "profile", "breast-cancer", "2", "--data", holdoutData); r.code != 0 || !strings.Contains(r.stdout, `113 rows, 30 features, label: column 30 ("label")`) {
		t.Fatalf("profile: %+v", r)
	}
	if r := promote(t, reg, "check-data", "breast-cancer", "2", "--data", holdoutData); r.code != 0 {
		t.Fatalf("check-data against the new profile: %+v", r)
	}
}

func TestDataRefusals(t *testing.T) {
	reg := t.TempDir()
	short := writeCSV(t, trainData, "short.csv", func(recs [][]string) [][]string {
		for i, r := range recs {
			recs[i] = r[2:]
		}
		return recs
	})
	cases := []refusal{
		{"push with unusable training data", []string{"push", "m", "1", demo, "--train-data", short}, 1, "the data has 29 columns, but the model takes 30 features"},
		{"push with a missing training file", []string{"push", "m", "1", demo, "--train-data", "/nonexistent.csv"}, 1, "no such file"},
		{"push with an unknown label column", []string{"push", "m", "1", demo, "--train-data", trainData, "--label-column", "diagnosis"}, 2, `label column "diagnosis"`},
		{"profile without --data", []string{"profile", "m", "1"}, 2, "needs --data"},
		{"check-data without --data", []string{"check-data", "m"}, 2, "needs --data"},
		{"check-data of an unknown model", []string{"check-data", "nope", "--data", trainData}, 2, "not found"},
		{"check-data, bad output", []string{"check-data", "m", "--data", trainData, "--output", "yaml"}, 2, "--output"},
	}
	checkRefusals(t, reg, cases)
}
