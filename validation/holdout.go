package validation

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// holdout is a parsed holdout CSV: the features of each row (flat,
// row-major, cols values per row) and its label.
type holdout struct {
	header   []string  // column names, nil when the file has no header line
	label    int       // the label's column
	cols     int       // feature columns
	features []float64 // rows × cols
	labels   []float64
	lines    []int // the file line of each row, for messages
}

// rows is the number of data rows.
func (h *holdout) rows() int { return len(h.labels) }

// labelName names the label column for messages.
func (h *holdout) labelName() string {
	if h.header != nil {
		return fmt.Sprintf("%q", h.header[h.label])
	}
	return fmt.Sprintf("column %d", h.label)
}

// parseHoldout reads a holdout CSV. Every field is a number; the first line
// is a header of names when any of its fields is neither empty nor a
// number. The label is the column labelColumn names (a header name, else a
// 0-based index), the last one when labelColumn is empty; the other columns
// are the features, in file order. Surrounding spaces and a UTF-8 byte
// order mark are ignored; empty lines are skipped. Errors wrap ErrHoldout
// or, for a label column that does not exist, ErrUsage.
func parseHoldout(data []byte, labelColumn string) (*holdout, error) {
	h := &holdout{}
	t, err := readTable(data, false, ErrHoldout, func(line, width int, header []string) error {
		if width < 2 {
			return fmt.Errorf("%w: line %d has %d column; a holdout needs at least one feature and the label", ErrHoldout, line, width)
		}
		var err error
		h.label, err = labelIndex(labelColumn, header, width)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.header, h.cols, h.lines = t.header, t.width-1, t.lines
	h.features = make([]float64, 0, t.rows()*h.cols)
	h.labels = make([]float64, 0, t.rows())
	for r := range t.rows() {
		for i, v := range t.row(r) {
			if i == h.label {
				h.labels = append(h.labels, v)
			} else {
				h.features = append(h.features, v)
			}
		}
	}
	return h, nil
}

// table is a numeric CSV file: an optional header line and rows of width
// values each.
type table struct {
	header []string  // column names, nil when the file has no header line
	width  int       // columns
	values []float64 // rows × width, row-major; NaN marks a missing value
	lines  []int     // the file line of each row, for messages
}

func (t *table) rows() int           { return len(t.lines) }
func (t *table) row(r int) []float64 { return t.values[r*t.width : (r+1)*t.width] }
func (t *table) column(i int) string {
	if t.header != nil {
		return fmt.Sprintf("column %d (%q)", i, t.header[i])
	}
	return fmt.Sprintf("column %d", i)
}

// missingWords are the fields read as a missing value where missing values
// are allowed (besides the empty field).
var missingWords = []string{"na", "n/a", "nan", "null", "none"}

// readTable reads a numeric CSV. The first line is a header of names when
// any of its fields is neither empty nor a number. Every other field must
// be a finite number; with allowMissing an empty field and the words NA,
// N/A, NaN, null and None (any case) are read as NaN, a missing value.
// Surrounding spaces and a UTF-8 byte order mark are ignored; empty lines
// are skipped; every line must have as many fields as the first. first, if
// not nil, is called once with the first line's number, its width and the
// header, and may refuse the file. Errors about the contents wrap kind.
func readTable(data []byte, allowMissing bool, kind error, first func(line, width int, header []string) error) (*table, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	t := &table{}
	for isFirst := true; ; isFirst = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", kind, err)
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if isFirst {
			t.width = len(rec)
			if isHeader(rec) {
				t.header = append([]string(nil), rec...)
			}
			if first != nil {
				if err := first(line, t.width, t.header); err != nil {
					return nil, err
				}
			}
			if t.header != nil {
				continue
			}
		}
		for i, field := range rec {
			if allowMissing && (field == "" || slices.Contains(missingWords, strings.ToLower(field))) {
				t.values = append(t.values, math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(field, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				if field == "" {
					return nil, fmt.Errorf("%w: line %d, %s: empty value (impute missing values first)", kind, line, t.column(i))
				}
				return nil, fmt.Errorf("%w: line %d, %s: %q is not a finite number", kind, line, t.column(i), field)
			}
			t.values = append(t.values, v)
		}
		t.lines = append(t.lines, line)
	}
	if t.rows() == 0 {
		return nil, fmt.Errorf("%w: no data rows", kind)
	}
	return t, nil
}

// isHeader reports whether a first line is a header: some field is neither
// empty nor a number. ("NaN" and "Inf" count as numbers here, so that a
// data line holding them is refused as such rather than taken for names.)
func isHeader(rec []string) bool {
	for _, f := range rec {
		if f == "" {
			continue
		}
		if _, err := strconv.ParseFloat(f, 64); err != nil {
			return true
		}
	}
	return false
}

// labelIndex resolves the label column: "" is the last column; otherwise a
// header name (exact, then the only case-insensitive match), else a 0-based
// index.
func labelIndex(spec string, header []string, width int) (int, error) {
	if spec == "" {
		return width - 1, nil
	}
	if header != nil {
		for i, name := range header {
			if name == spec {
				return i, nil
			}
		}
		found := -1
		for i, name := range header {
			if strings.EqualFold(name, spec) {
				if found >= 0 {
					found = -2
					break
				}
				found = i
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	if i, err := strconv.Atoi(spec); err == nil {
		if i < 0 || i >= width {
			return 0, fmt.Errorf("%w: label column %d is out of range: the holdout has %d columns (0 to %d)", ErrUsage, i, width, width-1)
		}
		return i, nil
	}
	if header == nil {
		return 0, fmt.Errorf("%w: label column %q: the holdout has no header line, so give a 0-based index", ErrUsage, spec)
	}
	return 0, fmt.Errorf("%w: label column %q is not in the holdout's header (%s)", ErrUsage, spec, strings.Join(header, ", "))
}
