package validation

import (
	"fmt"

	"github.com/modelgate/modelgate/stats"
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
	t, err := stats.ReadTable(data, false, ErrHoldout, func(line, width int, header []string) error {
		if width < 2 {
			return fmt.Errorf("%w: line %d has %d column; a holdout needs at least one feature and the label", ErrHoldout, line, width)
		}
		var err error
		if h.label, err = stats.LabelIndex(labelColumn, header, width, "holdout"); err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.header, h.cols, h.lines = t.Header, t.Width-1, t.Lines
	h.features = make([]float64, 0, t.Rows()*h.cols)
	h.labels = make([]float64, 0, t.Rows())
	for r := range t.Rows() {
		for i, v := range t.Row(r) {
			if i == h.label {
				h.labels = append(h.labels, v)
			} else {
				h.features = append(h.features, v)
			}
		}
	}
	return h, nil
}
