package wire

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFloat16EveryValue: every finite FP16 value widens to the float32 the
// format defines and rounds back to itself; Inf and NaN stay so.
func TestFloat16EveryValue(t *testing.T) {
	for bits := 0; bits < 1<<16; bits++ {
		h := Float16(bits)
		f := h.Float32()
		sign, exp, frac := bits>>15, (bits>>10)&0x1f, bits&0x3ff
		var want float64
		switch {
		case exp == 0x1f && frac == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			if !math.IsNaN(float64(f)) || h.IsFinite() {
				t.Fatalf("%#04x: %v, want NaN", bits, f)
			}
			continue
		case exp == 0:
			want = math.Ldexp(float64(frac), -24)
		default:
			want = math.Ldexp(1+float64(frac)/1024, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != (sign == 1) {
			t.Fatalf("%#04x: %v, want %v", bits, f, want)
		}
		if math.IsInf(want, 0) {
			if h.IsFinite() {
				t.Fatalf("%#04x is infinite", bits)
			}
			if _, ok := ToFloat16(want); ok {
				t.Fatalf("ToFloat16(%v) is finite", want)
			}
			continue
		}
		if back, ok := ToFloat16(want); !ok || back != h {
			t.Fatalf("ToFloat16(%v) = %#04x %v, want %#04x", want, uint16(back), ok, bits)
		}
	}
}

// TestFloat16Rounding: halfway between two FP16 values goes to the even
// one, just past halfway to the nearer; beyond 65504 + half an ulp is out
// of range.
func TestFloat16Rounding(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want Float16
		ok   bool
	}{
		{1 + math.Ldexp(1, -11), 0x3c00, true},                      // halfway 1 and 1+2^-10: to even (1)
		{1 + 3*math.Ldexp(1, -11), 0x3c02, true},                    // halfway 1+2^-10 and 1+2^-9: to even
		{1 + math.Ldexp(1, -11) + math.Ldexp(1, -30), 0x3c01, true}, // just past halfway
		{math.Ldexp(1, -25), 0, true},                               // half the smallest subnormal: to even (0)
		{math.Ldexp(1.5, -25), 1, true},
		{math.Ldexp(1, -15) - math.Ldexp(1, -26), 0x0200, true}, // a subnormal rounding up
		{math.Ldexp(1, -14) - math.Ldexp(1, -26), 0x0400, true}, // a subnormal rounding up into the normals
		{65504, 0x7bff, true},
		{65519.99, 0x7bff, true},
		{65520, 0, false},
		{-65520, 0, false},
		{1e300, 0, false},
		{math.NaN(), 0, false},
		{math.Copysign(0, -1), 0x8000, true},
		{-1e-300, 0x8000, true},
	} {
		got, ok := ToFloat16(c.v)
		if got != c.want || ok != c.ok {
			t.Errorf("ToFloat16(%v) = %#04x %v, want %#04x %v", c.v, uint16(got), ok, uint16(c.want), c.ok)
		}
	}
}

// TestBFloat16AgainstFloat32Bits: BF16 is the upper half of a float32, so
// rounding a float32 to it is adding to the bits and cutting (ties to even):
// compare with that on random float32 values and on every BF16 value.
func TestBFloat16AgainstFloat32Bits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(f float32) {
		u := math.Float32bits(f)
		want := uint16((u + 0x7fff + (u>>16)&1) >> 16)
		got, ok := ToBFloat16(float64(f))
		wantOK := want&0x7f80 != 0x7f80
		if ok != wantOK || (ok && uint16(got) != want) {
			t.Fatalf("ToBFloat16(%v) = %#04x %v, want %#04x %v", f, uint16(got), ok, want, wantOK)
		}
		if ok && math.Float32bits(got.Float32()) != uint32(want)<<16 {
			t.Fatalf("%#04x widens to %v", want, got.Float32())
		}
	}
	for range 200000 {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		check(f)
	}
	for bits := 0; bits < 1<<16; bits++ {
		b := BFloat16(bits)
		if !b.IsFinite() {
			continue
		}
		check(b.Float32())
		check(math.Float32frombits(uint32(bits)<<16 | 0x8000)) // exactly halfway to the next
	}
}
