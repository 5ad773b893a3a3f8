package payloadlog

import (
	"math/rand/v2"
)

// Draw is a request's place in [0, 1) for sampling: with an id, the id's
// hash (FNV-1a, then splitmix64's finalizer so that ids differing in their
// last character spread over the whole range) read as a fraction, so that
// the same id is decided the same way on every replica and protocol;
// without one, a random draw. A request is in a sample of rate r when its
// draw is below r, so samples of smaller rates nest in larger ones.
func Draw(id string) float64 {
	if id == "" {
		return rand.Float64()
	}
	return fraction(id)
}

// inSample reports whether draw falls in a sample of rate: all draws at 1,
// none at 0.
func inSample(draw, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	}
	return draw < rate
}

// fraction maps id to [0, 1), uniformly for distinct ids.
func fraction(id string) float64 {
	h := uint64(14695981039346656037) // FNV-1a 64 offset basis
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return float64(h>>11) / (1 << 53)
}

// NewID returns a random request id in the form of a UUID version 4 (RFC
// 9562), for requests that came without one, as KServe's logger makes one.
func NewID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // the RFC's variant
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
