package emulator

import (
	"encoding/hex"
	"math/bits"
)

// Domain tags keep the hashes of different uses of the seed independent.
const (
	tagCatalog uint64 = iota + 1
	tagDevice
	tagRow
	tagCab
	tagCabMAC
	tagCabMask
	tagCabSize
	tagCabBytes
	tagRunFailure
	tagFault
)

// mix64 is the SplitMix64 output function: a bijection of uint64 that
// spreads every input bit over the output.
func mix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashOf folds parts into one well-mixed value. It is a pure function: the
// data set is derived from it, never from math/rand's global state.
func hashOf(parts ...uint64) uint64 {
	h := uint64(0x6a09e667f3bcc908)
	for _, p := range parts {
		h = mix64((h ^ p) + 0x9e3779b97f4a7c15)
	}
	return h
}

// stream is a SplitMix64 pseudo-random sequence, deterministic for its seed.
type stream struct{ state uint64 }

func newStream(parts ...uint64) *stream { return &stream{state: hashOf(parts...)} }

// next returns the next 64 pseudo-random bits.
func (s *stream) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	return mix64(s.state)
}

// intn returns a value in [0, n); n must be positive.
func (s *stream) intn(n int) int {
	hi, _ := bits.Mul64(s.next(), uint64(n))
	return int(hi)
}

// between returns a value in [lo, hi].
func (s *stream) between(lo, hi int) int { return lo + s.intn(hi-lo+1) }

// unit returns a value in [0, 1).
func (s *stream) unit() float64 { return float64(s.next()>>11) / (1 << 53) }

// chance returns true with probability p.
func (s *stream) chance(p float64) bool { return s.unit() < p }

// weighted returns an index of weights, chosen with probability
// proportional to its weight.
func (s *stream) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := s.intn(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// guid returns a random GUID string in lower-case 8-4-4-4-12 form.
func (s *stream) guid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := s.next()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return formatGUID(b)
}

// pick returns a uniformly chosen element of xs.
func pick[T any](s *stream, xs []T) T { return xs[s.intn(len(xs))] }

// formatGUID formats b in 8-4-4-4-12 hex form.
func formatGUID(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
