package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
)

// numFeatures and numClasses fix the shape of the breast-cancer data set,
// which is the only data set this trainer is written for.
const (
	numFeatures = 30
	numClasses  = 2
)

// holdoutFraction is the share of each class that is held out of training.
const holdoutFraction = 0.2

// featureNames are the column names of the 30 features, in file order, as
// scikit-learn names them (see data.rst: the mean, standard error and
// "worst" value of ten measurements of the cell nuclei).
var featureNames = []string{
	"mean radius", "mean texture", "mean perimeter", "mean area",
	"mean smoothness", "mean compactness", "mean concavity",
	"mean concave points", "mean symmetry", "mean fractal dimension",
	"radius error", "texture error", "perimeter error", "area error",
	"smoothness error", "compactness error", "concavity error",
	"concave points error", "symmetry error", "fractal dimension error",
	"worst radius", "worst texture", "worst perimeter", "worst area",
	"worst smoothness", "worst compactness", "worst concavity",
	"worst concave points", "worst symmetry", "worst fractal dimension",
}

// labelColumn names the label column of holdout.csv.
const labelColumn = "label"

// Dataset holds labelled rows of features. Raw keeps each row's fields as
// they were written in the source file, so that holdout.csv repeats them
// byte for byte instead of reformatting the numbers.
type Dataset struct {
	Classes  []string    // class names, indexed by label
	Features [][]float32 // one row of numFeatures values per example
	Labels   []int       // class index per example
	Raw      [][]string  // the source fields of each row, label included
}

// Len returns the number of rows.
func (d *Dataset) Len() int { return len(d.Labels) }

// subset returns the rows at the given indices, in that order.
func (d *Dataset) subset(idx []int) *Dataset {
	s := &Dataset{Classes: d.Classes}
	for _, i := range idx {
		s.Features = append(s.Features, d.Features[i])
		s.Labels = append(s.Labels, d.Labels[i])
		s.Raw = append(s.Raw, d.Raw[i])
	}
	return s
}

// LoadDataset reads the breast-cancer CSV as scikit-learn ships it: a header
// line "rows,features,class0,class1", then one line per example holding the
// features followed by the integer label.
func LoadDataset(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := readDataset(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func readDataset(r io.Reader) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if len(header) != 2+numClasses {
		return nil, fmt.Errorf("header %q: want rows,features and %d class names", strings.Join(header, ","), numClasses)
	}
	rows, err1 := strconv.Atoi(header[0])
	cols, err2 := strconv.Atoi(header[1])
	if err1 != nil || err2 != nil || cols != numFeatures {
		return nil, fmt.Errorf("header %q: want a row count and %d features", strings.Join(header, ","), numFeatures)
	}
	d := &Dataset{Classes: header[2:]}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(rec) != numFeatures+1 {
			return nil, fmt.Errorf("line %d: %d fields, want %d", line, len(rec), numFeatures+1)
		}
		x := make([]float32, numFeatures)
		for j := range x {
			v, err := strconv.ParseFloat(rec[j], 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("line %d, column %d: bad feature %q", line, j+1, rec[j])
			}
			x[j] = float32(v)
		}
		y, err := strconv.Atoi(rec[numFeatures])
		if err != nil || y < 0 || y >= numClasses {
			return nil, fmt.Errorf("line %d: bad label %q", line, rec[numFeatures])
		}
		d.Features = append(d.Features, x)
		d.Labels = append(d.Labels, y)
		d.Raw = append(d.Raw, rec)
	}
	if d.Len() != rows {
		return nil, fmt.Errorf("header announces %d rows, file has %d", rows, d.Len())
	}
	return d, nil
}

// Split divides d into training and holdout rows, stratified by class: for
// each class, the rows are shuffled with a generator seeded by seed and the
// first round(fraction × count) of them are held out. Both parts keep the
// rows in file order, and the same seed always gives the same split.
func Split(d *Dataset, fraction float64, seed uint64) (train, holdout *Dataset) {
	rng := newRNG(seed, streamSplit)
	var trainIdx, holdIdx []int
	for c := range d.Classes {
		var idx []int
		for i, y := range d.Labels {
			if y == c {
				idx = append(idx, i)
			}
		}
		rng.shuffle(idx)
		k := int(math.Round(fraction * float64(len(idx))))
		holdIdx = append(holdIdx, idx[:k]...)
		trainIdx = append(trainIdx, idx[k:]...)
	}
	sort.Ints(trainIdx)
	sort.Ints(holdIdx)
	return d.subset(trainIdx), d.subset(holdIdx)
}

// HoldoutCSV renders rows as holdout.csv: a header line of feature names and
// "label", then each row's original fields with the label last.
func HoldoutCSV(d *Dataset) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	header := append(append([]string(nil), featureNames...), labelColumn)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(d.Raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Standardisation holds the per-feature mean and standard deviation used to
// scale inputs to zero mean and unit variance: z = (x − Mean) / Std.
type Standardisation struct {
	Mean []float32
	Std  []float32
}

// FitStandardisation computes the mean and population standard deviation of
// each feature over the rows of d (in float64, rounded to float32 at the
// end). A feature that does not vary gets a standard deviation of 1.
func FitStandardisation(d *Dataset) Standardisation {
	n := float64(d.Len())
	s := Standardisation{Mean: make([]float32, numFeatures), Std: make([]float32, numFeatures)}
	for j := range numFeatures {
		var sum float64
		for _, x := range d.Features {
			sum += float64(x[j])
		}
		mean := sum / n
		var ss float64
		for _, x := range d.Features {
			dx := float64(x[j]) - mean
			ss += dx * dx
		}
		std := math.Sqrt(ss / n)
		if std == 0 {
			std = 1
		}
		s.Mean[j], s.Std[j] = float32(mean), float32(std)
	}
	return s
}

// Random streams, so that the split and the weight initialisation draw from
// independent sequences of the same seed.
const (
	streamSplit = 0x73706c6974 // "split"
	streamInit  = 0x696e6974   // "init"
)

// rng is a deterministic random generator built on the PCG source of
// math/rand/v2, whose output sequence is fixed by its algorithm. Shuffling
// and float generation are done here rather than with rand.Rand's helpers,
// so that the split and the initial weights cannot change with Go releases.
type rng struct{ src *rand.PCG }

func newRNG(seed, stream uint64) *rng { return &rng{src: rand.NewPCG(seed, stream)} }

// intn returns a number in [0, n); the modulo bias is negligible for the
// small n used here.
func (r *rng) intn(n int) int { return int(r.src.Uint64() % uint64(n)) }

// float32 returns a number in [0, 1) with 24 random bits.
func (r *rng) float32() float32 { return float32(r.src.Uint64()>>40) / (1 << 24) }

// shuffle permutes s in place (Fisher–Yates).
func (r *rng) shuffle(s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}
