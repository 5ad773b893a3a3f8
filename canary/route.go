package canary

import (
	"hash/fnv"
	"math/rand/v2"
)

// Bucket maps a routing key to a point in [0, 100). A key's point never
// changes, so the keys below a weight stay below it as the weight grows:
// a key on the candidate at 5 % is still on it at 25 %.
func Bucket(key string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	// FNV's low bits are weak for short keys; finish with a 64-bit mixer
	// (splitmix64's) before taking the point.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53) * 100
}

// ToCandidate reports whether a request goes to the candidate when it
// takes weight percent of the traffic. With a key the choice is sticky
// (Bucket(key) < weight); without one it is random.
func ToCandidate(key string, weight float64) bool {
	switch {
	case weight <= 0:
		return false
	case weight >= 100:
		return true
	case key != "":
		return Bucket(key) < weight
	default:
		return rand.Float64()*100 < weight
	}
}
