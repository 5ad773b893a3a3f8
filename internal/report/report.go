// Package report holds what the gate reports (package validation) and the
// data reports (package stats) share in their machine and human faces: JSON
// that writes "<", ">" and "&" as such, numbers for people, Markdown that
// a pull-request comment shows as text, and the exit status of a check.
package report

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The verdicts of a report.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// MarshalPlain is json.Marshal without escaping <, > and &, which are
// common in messages and thresholds ("->", ">= 0.95").
func MarshalPlain(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalIndentPlain is indented JSON with a final newline, "<", ">" and
// "&" written as such.
func MarshalIndentPlain(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// FiniteOrNil is v, or nil (JSON null) when v is NaN or infinite.
func FiniteOrNil(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// FinitePtr is &v, or nil (JSON null) when v is NaN or infinite.
func FinitePtr(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

// ExitStatus is the exit status of a check: 2 when it could not run, else
// 0 when it passed and 1 when it failed.
func ExitStatus(ran, passed bool) int {
	switch {
	case !ran:
		return 2
	case passed:
		return 0
	}
	return 1
}

// FormatValue renders a metric for people: whole numbers as such, others
// with four significant digits.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 1e4:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// FormatLimit renders a threshold exactly as it was set.
func FormatLimit(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// FormatAgainst renders v as FormatValue does, with more digits when four
// would make it look equal to ref, the value it is compared with.
func FormatAgainst(v, ref float64) string {
	if v == ref {
		return FormatValue(v)
	}
	for p := 4; p <= 17; p++ {
		if s := strconv.FormatFloat(v, 'g', p, 64); s != strconv.FormatFloat(ref, 'g', p, 64) {
			if p == 4 {
				return FormatValue(v)
			}
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// MDCell escapes text for a Markdown table cell.
func MDCell(s string) string {
	return strings.ReplaceAll(MDText(s), "|", `\|`)
}

// MDText keeps text from being read as Markdown markup or HTML: emphasis
// and code marks are escaped, and so is a "<" that could open a tag.
func MDText(s string) string {
	s = strings.NewReplacer("*", `\*`, "`", "\\`", "\n", " ").Replace(s)
	return htmlOpen.ReplaceAllString(s, "&lt;$1")
}

// htmlOpen matches a "<" that could start an HTML tag or comment.
var htmlOpen = regexp.MustCompile(`<([A-Za-z/!?])`)
