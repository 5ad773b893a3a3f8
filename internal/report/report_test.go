package report

import (
	"math"
	"testing"
)

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		113: "113", 0: "0", 0.9646017699115044: "0.9646", 0.0708: "0.0708", 12.3456: "12.35",
		1234.5: "1234", 123456.7: "123457", 0.000012345: "1.234e-05", math.NaN(): "n/a", -0.5: "-0.5",
	} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestFormatAgainst(t *testing.T) {
	for _, c := range []struct {
		v, ref float64
		want   string
	}{
		{0.9646017699115044, 0.99, "0.9646"},
		{0.94996, 0.95, "0.94996"},
		{0.24221, 0.24224, "0.24221"},
		{0.5, 0.5, "0.5"},
		{113, 100, "113"},
	} {
		if got := FormatAgainst(c.v, c.ref); got != c.want {
			t.Errorf("FormatAgainst(%v, %v) = %q, want %q", c.v, c.ref, got, c.want)
		}
	}
}
