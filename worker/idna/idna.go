// Package idna converts internationalized host names to their ASCII form
// (IDNA A-labels, RFC 5890/3492), for routing rules and certificate names.
package idna

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ToASCII returns name with every label that holds a non-ASCII character
// replaced by its A-label, "xn--" followed by the label's Punycode (RFC
// 3492), the form in which clients put an internationalized name in the
// Host field and SNI, and CAs in a SAN. ASCII labels are kept as they are,
// so an ASCII name is returned unchanged and ToASCII is a fixed point. It
// does no IDNA mapping or normalization beyond what the caller did: give
// it names lower-cased (strings.ToLower) and in NFC. It fails on invalid
// UTF-8 and on a label too long for Punycode's arithmetic.
func ToASCII(name string) (string, error) {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return name, nil
	}
	if !utf8.ValidString(name) {
		return "", errors.New("not valid UTF-8")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if IsASCII(l) {
			continue
		}
		p, err := punycode(l)
		if err != nil {
			return "", err
		}
		labels[i] = "xn--" + p
	}
	return strings.Join(labels, "."), nil
}

// IsASCII reports whether s holds only ASCII bytes.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Punycode parameters, RFC 3492 §5.
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

var errPunycodeOverflow = errors.New("label too long for Punycode")

// punycode encodes one label (RFC 3492 §6.3): its basic code points as
// they are, then "-" if there were any, then the deltas of the others.
func punycode(label string) (string, error) {
	in := []rune(label)
	var out []byte
	for _, r := range in {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(pcInitialN), 0, pcInitialBias
	const maxInt = int(^uint32(0) >> 1)
	for h < len(in) {
		m := rune(utf8.MaxRune + 1)
		for _, r := range in {
			if r >= n && r < m {
				m = r
			}
		}
		if int(m-n) > (maxInt-delta)/(h+1) {
			return "", errPunycodeOverflow
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range in {
			if r < n {
				delta++
				if delta == maxInt {
					return "", errPunycodeOverflow
				}
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < t {
					break
				}
				out = append(out, pcDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out = append(out, pcDigit(q))
			bias = pcAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), nil
}

func pcDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

func pcAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
