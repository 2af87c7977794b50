package accesslog

import (
	"math/bits"
	"slices"

	"github.com/oklog/ulid/v2"
)

// appendUint appends u in decimal, as strconv.AppendUint does, writing
// the digits in place at the end of dst rather than through a buffer of
// its own: records are mostly numbers.
func appendUint(dst []byte, u uint64) []byte {
	n := decimalLen(u)
	dst = slices.Grow(dst, n)
	end := len(dst) + n
	b := dst[len(dst):end]
	i := n
	for u >= 100 {
		q := u / 100
		d := 2 * (u - q*100)
		b[i-1], b[i-2] = pairs[d+1], pairs[d]
		i -= 2
		u = q
	}
	if u >= 10 {
		b[1], b[0] = pairs[2*u+1], pairs[2*u]
	} else {
		b[0] = byte('0' + u)
	}
	return dst[:end]
}

// pairs holds the two digits of every number below 100.
const pairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" + "30313233343536373839" +
	"40414243444546474849" + "50515253545556575859" + "60616263646566676869" + "70717273747576777879" +
	"80818283848586878889" + "90919293949596979899"

// pow10 holds the powers of ten a uint64 holds.
var pow10 = func() (t [20]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// decimalLen is the number of decimal digits of u.
func decimalLen(u uint64) int {
	// log10(2) ≈ 1233/4096: from the bit length, the number of digits
	// less one, or that less one more (u below the next power of ten).
	n := (bits.Len64(u) * 1233) >> 12
	if u >= pow10[n] {
		n++
	}
	return max(n, 1)
}

// appendInt appends v in decimal, as strconv.AppendInt does.
func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		return appendUint(append(dst, '-'), uint64(-v)) // -MinInt64 wraps to its own magnitude as a uint64
	}
	return appendUint(dst, uint64(v))
}

// appendULID appends id's 26-character text, in place.
func appendULID(dst []byte, id ulid.ULID) []byte {
	dst = slices.Grow(dst, ulid.EncodedSize)
	end := len(dst) + ulid.EncodedSize
	id.MarshalTextTo(dst[len(dst):end])
	return dst[:end]
}
