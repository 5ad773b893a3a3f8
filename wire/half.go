package wire

import "math"

// The 16-bit float formats. FP16 is IEEE 754 binary16: a sign bit, a 5-bit
// exponent biased by 15 and a 10-bit fraction. BF16 (bfloat16) is the upper
// half of a float32: a sign bit, an 8-bit exponent biased by 127 and a 7-bit
// fraction. Both are held as their bits (Float16, BFloat16) and widened
// exactly to float32 for arithmetic and JSON.

// Float32 is h widened (exactly) to a float32.
func (h Float16) Float32() float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	v := float32(math.Ldexp(float64(frac), -24)) // subnormal: frac × 2^-24, exact
	if sign != 0 {
		v = -v
	}
	return v
}

// IsFinite reports whether h is neither infinite nor NaN.
func (h Float16) IsFinite() bool { return h&0x7c00 != 0x7c00 }

// Float32 is b widened (exactly) to a float32.
func (b BFloat16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// IsFinite reports whether b is neither infinite nor NaN.
func (b BFloat16) IsFinite() bool { return b&0x7f80 != 0x7f80 }

// ToFloat16 rounds v to the nearest FP16 value (ties to even); false when
// v is not finite or rounds beyond FP16's largest finite value (65504).
func ToFloat16(v float64) (Float16, bool) {
	bits, ok := roundSmall(v, 10, 15)
	return Float16(bits), ok
}

// ToBFloat16 rounds v to the nearest BF16 value (ties to even); false when
// v is not finite or rounds beyond BF16's largest finite value.
func ToBFloat16(v float64) (BFloat16, bool) {
	bits, ok := roundSmall(v, 7, 127)
	return BFloat16(bits), ok
}

// roundSmall rounds v to a 16-bit binary float with fracBits fraction bits
// and the given exponent bias (1 sign bit, 15-fracBits exponent bits),
// ties to even, subnormals included.
func roundSmall(v float64, fracBits, bias int) (uint16, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	if v == 0 {
		return sign, true
	}
	_, e := math.Frexp(v) // v = m × 2^e, m in [0.5, 1)
	e--                   // v = (2m) × 2^e, 2m in [1, 2)
	if minE := 1 - bias; e < minE {
		e = minE // subnormal: the smallest exponent, no implicit one
	}
	// q: v in units of the last place at exponent e, in [2^fracBits,
	// 2^(fracBits+1)] for normals after rounding, below 2^fracBits for
	// subnormals. Scaling by a power of two is exact.
	q := math.RoundToEven(math.Ldexp(v, fracBits-e))
	// bits = (e+bias) << fracBits | (q - 2^fracBits) for a normal, which is
	// (e+bias-1) << fracBits + q: a q that rounded up to 2^(fracBits+1)
	// carries into the exponent, a subnormal (e+bias-1 = 0) is q itself.
	bits := (e+bias-1)<<fracBits + int(q)
	maxBits := (1<<(15-fracBits) - 1) << fracBits // the exponent of Inf and NaN
	if bits >= maxBits {
		return 0, false
	}
	return sign | uint16(bits), true
}
