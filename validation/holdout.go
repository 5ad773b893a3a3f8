package validation

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
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
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	h := &holdout{}
	width := 0
	for first := true; ; first = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHoldout, err)
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first {
			width = len(rec)
			if width < 2 {
				return nil, fmt.Errorf("%w: line %d has %d column; a holdout needs at least one feature and the label", ErrHoldout, line, width)
			}
			if isHeader(rec) {
				h.header = append([]string(nil), rec...)
			}
			if h.label, err = labelIndex(labelColumn, h.header, width); err != nil {
				return nil, err
			}
			h.cols = width - 1
			if h.header != nil {
				continue
			}
		}
		for i, field := range rec {
			v, err := strconv.ParseFloat(field, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				what := fmt.Sprintf("column %d", i)
				if h.header != nil {
					what = fmt.Sprintf("column %d (%q)", i, h.header[i])
				}
				if field == "" {
					return nil, fmt.Errorf("%w: line %d, %s: empty value (impute missing values first)", ErrHoldout, line, what)
				}
				return nil, fmt.Errorf("%w: line %d, %s: %q is not a finite number", ErrHoldout, line, what, field)
			}
			if i == h.label {
				h.labels = append(h.labels, v)
			} else {
				h.features = append(h.features, v)
			}
		}
		h.lines = append(h.lines, line)
	}
	if h.rows() == 0 {
		return nil, fmt.Errorf("%w: no data rows", ErrHoldout)
	}
	return h, nil
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
