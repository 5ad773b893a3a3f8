package stats

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

// Table is a numeric CSV file: an optional header line and rows of Width
// values each.
type Table struct {
	Header []string  // column names, nil when the file has no header line
	Width  int       // columns
	Values []float64 // rows × Width, row-major; NaN marks a missing value
	Lines  []int     // the file line of each row, for messages
}

// Rows is the number of data rows.
func (t *Table) Rows() int { return len(t.Lines) }

// Row is row r's values.
func (t *Table) Row(r int) []float64 { return t.Values[r*t.Width : (r+1)*t.Width] }

// Column names column i for messages: `column 3 ("mean area")`.
func (t *Table) Column(i int) string {
	if t.Header != nil {
		return fmt.Sprintf("column %d (%q)", i, t.Header[i])
	}
	return fmt.Sprintf("column %d", i)
}

// missingWords are the fields read as a missing value where missing values
// are allowed (besides the empty field).
var missingWords = []string{"na", "n/a", "nan", "null", "none"}

// ReadTable reads a numeric CSV. The first line is a header of names when
// any of its fields is neither empty nor a number. Every other field must
// be a finite number; with allowMissing an empty field and the words NA,
// N/A, NaN, null and None (any case) are read as NaN, a missing value.
// Surrounding spaces and a UTF-8 byte order mark are ignored; empty lines
// are skipped; every line must have as many fields as the first. first, if
// not nil, is called once with the first line's number, its width and the
// header, and may refuse the file. Errors about the contents wrap kind.
func ReadTable(data []byte, allowMissing bool, kind error, first func(line, width int, header []string) error) (*Table, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	t := &Table{}
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
			t.Width = len(rec)
			if isHeader(rec) {
				t.Header = append([]string(nil), rec...)
			}
			if first != nil {
				if err := first(line, t.Width, t.Header); err != nil {
					return nil, err
				}
			}
			if t.Header != nil {
				continue
			}
		}
		for i, field := range rec {
			if allowMissing && (field == "" || slices.Contains(missingWords, strings.ToLower(field))) {
				t.Values = append(t.Values, math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(field, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				if field == "" {
					return nil, fmt.Errorf("%w: line %d, %s: empty value (impute missing values first)", kind, line, t.Column(i))
				}
				return nil, fmt.Errorf("%w: line %d, %s: %q is not a finite number", kind, line, t.Column(i), field)
			}
			t.Values = append(t.Values, v)
		}
		t.Lines = append(t.Lines, line)
	}
	if t.Rows() == 0 {
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

// ErrLabelColumn: the label column named does not exist in the data.
var ErrLabelColumn = errors.New("no such label column")

// labelError is an ErrLabelColumn whose message is the detail alone.
type labelError struct{ msg string }

func (e *labelError) Error() string        { return e.msg }
func (e *labelError) Is(target error) bool { return target == ErrLabelColumn }

// LabelIndex resolves the label column of data with width columns and
// header (nil for none): "" is the last column; otherwise a header name
// (exact, then the only case-insensitive match), else a 0-based index.
// what names the file in messages ("holdout", "data"). Errors wrap
// ErrLabelColumn.
func LabelIndex(spec string, header []string, width int, what string) (int, error) {
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
			return 0, &labelError{fmt.Sprintf("label column %d is out of range: the %s has %d columns (0 to %d)", i, what, width, width-1)}
		}
		return i, nil
	}
	if header == nil {
		return 0, &labelError{fmt.Sprintf("label column %q: the %s has no header line, so give a 0-based index", spec, what)}
	}
	return 0, &labelError{fmt.Sprintf("label column %q is not in the %s's header (%s)", spec, what, strings.Join(header, ", "))}
}
