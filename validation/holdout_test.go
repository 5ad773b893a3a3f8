package validation

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseHoldout(t *testing.T) {
	cases := []struct {
		name     string
		csv      string
		label    string
		header   []string
		labelIdx int
		features []float64
		labels   []float64
		lines    []int
	}{
		{
			name: "header detected, label last", csv: "a,b,label\n1,2,0\n3,4,1\n",
			header: []string{"a", "b", "label"}, labelIdx: 2,
			features: []float64{1, 2, 3, 4}, labels: []float64{0, 1}, lines: []int{2, 3},
		},
		{
			name: "no header", csv: "1,2,0\n3,4,1\n",
			labelIdx: 2, features: []float64{1, 2, 3, 4}, labels: []float64{0, 1}, lines: []int{1, 2},
		},
		{
			name: "one name in a numeric header makes it a header", csv: "1,2,y\n3,4,1\n",
			header: []string{"1", "2", "y"}, labelIdx: 2, features: []float64{3, 4}, labels: []float64{1}, lines: []int{2},
		},
		{
			name: "label by name", csv: "y,a,b\n0,1,2\n1,3,4\n", label: "y",
			header: []string{"y", "a", "b"}, labelIdx: 0, features: []float64{1, 2, 3, 4}, labels: []float64{0, 1}, lines: []int{2, 3},
		},
		{
			name: "label by name, any case", csv: "Target,a\n0,1\n", label: "target",
			header: []string{"Target", "a"}, labelIdx: 0, features: []float64{1}, labels: []float64{0}, lines: []int{2},
		},
		{
			name: "label by index", csv: "0,1,2\n1,3,4\n", label: "0",
			labelIdx: 0, features: []float64{1, 2, 3, 4}, labels: []float64{0, 1}, lines: []int{1, 2},
		},
		{
			name: "label by index with a header", csv: "a,y,b\n1,0,2\n", label: "1",
			header: []string{"a", "y", "b"}, labelIdx: 1, features: []float64{1, 2}, labels: []float64{0}, lines: []int{2},
		},
		{
			name: "spaces, CRLF, blank lines and a byte order mark", csv: "\ufeff a , b \r\n\r\n 1 , 2 \r\n 3,-4.5e1\r\n",
			header: []string{"a", "b"}, labelIdx: 1, features: []float64{1, 3}, labels: []float64{2, -45}, lines: []int{3, 4},
		},
		{
			name: "quoted numbers", csv: `"x","y"` + "\n" + `"1.5","1"` + "\n",
			header: []string{"x", "y"}, labelIdx: 1, features: []float64{1.5}, labels: []float64{1}, lines: []int{2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseHoldout([]byte(c.csv), c.label)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.header, c.header) || h.label != c.labelIdx || h.cols != len(c.features)/len(c.labels) ||
				!slices.Equal(h.features, c.features) || !slices.Equal(h.labels, c.labels) || !slices.Equal(h.lines, c.lines) {
				t.Errorf("got header %q label %d cols %d features %v labels %v lines %v", h.header, h.label, h.cols, h.features, h.labels, h.lines)
			}
		})
	}
}

func TestParseHoldoutErrors(t *testing.T) {
	cases := []struct {
		name, csv, label string
		want             error
		msg              string
	}{
		{name: "empty", csv: "", want: ErrHoldout, msg: "no data rows"},
		{name: "header only", csv: "a,b\n", want: ErrHoldout, msg: "no data rows"},
		{name: "one column", csv: "1\n2\n", want: ErrHoldout, msg: "line 1 has 1 column; a holdout needs at least one feature and the label"},
		{name: "ragged", csv: "a,b\n1,2\n3\n", want: ErrHoldout, msg: "record on line 3: wrong number of fields"},
		{name: "not a number", csv: "a,b\n1,2\n3,x\n", want: ErrHoldout, msg: `line 3, column 1 ("b"): "x" is not a finite number`},
		{name: "NaN in a first data line", csv: "NaN,1\n", want: ErrHoldout, msg: `line 1, column 0: "NaN" is not a finite number`},
		{name: "infinity", csv: "a,b\n1,Inf\n", want: ErrHoldout, msg: `"Inf" is not a finite number`},
		{name: "missing value", csv: "a,b\n1,\n", want: ErrHoldout, msg: `line 2, column 1 ("b"): empty value (impute missing values first)`},
		{name: "missing value in a first data line", csv: ",1\n", want: ErrHoldout, msg: "line 1, column 0: empty value"},
		{name: "bad quoting", csv: "a,b\n\"1,2\n", want: ErrHoldout, msg: "extraneous or missing"},
		{name: "unknown label name", csv: "a,b\n1,2\n", label: "y", want: ErrUsage, msg: `label column "y" is not in the holdout's header (a, b)`},
		{name: "label name without a header", csv: "1,2\n", label: "y", want: ErrUsage, msg: "no header line, so give a 0-based index"},
		{name: "label index out of range", csv: "1,2\n", label: "2", want: ErrUsage, msg: "label column 2 is out of range: the holdout has 2 columns (0 to 1)"},
		{name: "ambiguous label name", csv: "Label,LABEL,b\n1,2,3\n", label: "label", want: ErrUsage, msg: `label column "label" is not in the holdout's header`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseHoldout([]byte(c.csv), c.label)
			if !errors.Is(err, c.want) || err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v with %q", err, c.want, c.msg)
			}
		})
	}
}

func FuzzParseHoldout(f *testing.F) {
	f.Add([]byte("a,b,label\n1,2,0\n3,4,1\n"), "")
	f.Add([]byte("1,2,0\n"), "0")
	f.Add([]byte("\ufeffx,y\n\"1\",2\n"), "x")
	f.Add([]byte("NaN,1\n,\n"), "1")
	f.Fuzz(func(t *testing.T, data []byte, label string) {
		h, err := parseHoldout(data, label)
		if err != nil {
			if !errors.Is(err, ErrHoldout) && !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v wraps neither ErrHoldout nor ErrUsage", err)
			}
			return
		}
		if h.rows() == 0 || h.cols < 1 || len(h.features) != h.rows()*h.cols || len(h.lines) != h.rows() {
			t.Fatalf("inconsistent holdout: %d rows, %d cols, %d features, %d lines", h.rows(), h.cols, len(h.features), len(h.lines))
		}
		if h.label < 0 || h.label > h.cols || (h.header != nil && len(h.header) != h.cols+1) {
			t.Fatalf("label %d, header %q, cols %d", h.label, h.header, h.cols)
		}
	})
}
