package h2

// updateScan follows the representations of a header block fed to the
// HPACK decoder, fragment by fragment, to find a dynamic table size update
// that comes after a field: one is allowed only at the beginning of a
// block (RFC 7541 §4.2, §6.3; RFC 9113 §4.3.1), and x/net's decoder
// refuses a late one only while its dynamic table holds entries. It reads
// the representations' first bytes, integers and string lengths (RFC 7541
// §5.1, §5.2, §6), skipping string contents whole. It runs on bytes the
// decoder accepted, so their grammar is sound.
type updateScan struct {
	fields bool   // a field representation was seen
	strs   uint8  // string literals left in the current representation
	inInt  bool   // within an integer's continuation bytes
	isLen  bool   // that integer is a string length
	val    uint64 // the integer so far
	shift  uint
	skip   uint64 // string bytes left to skip
}

// feed scans p, the next bytes of the block, and reports whether a size
// update follows a field.
func (u *updateScan) feed(p []byte) bool {
	for len(p) > 0 {
		if u.skip > 0 {
			n := uint64(len(p))
			if u.skip < n {
				n = u.skip
			}
			p, u.skip = p[n:], u.skip-n
			continue
		}
		b := p[0]
		p = p[1:]
		switch {
		case u.inInt:
			if u.shift < 63 {
				u.val += uint64(b&0x7f) << u.shift
			}
			u.shift += 7
			if b&0x80 == 0 {
				u.inInt = false
				if u.isLen {
					u.skip, u.strs = u.val, u.strs-1
				}
			}
		case u.strs > 0: // a string's length, after its Huffman bit
			if b&0x7f == 0x7f {
				u.startInt(0x7f, true)
			} else {
				u.skip, u.strs = uint64(b&0x7f), u.strs-1
			}
		case b&0x80 != 0: // indexed field (§6.1)
			u.fields = true
			if b&0x7f == 0x7f {
				u.startInt(0x7f, false)
			}
		case b&0xe0 == 0x20: // dynamic table size update (§6.3)
			if u.fields {
				return true
			}
			if b&0x1f == 0x1f {
				u.startInt(0x1f, false)
			}
		default: // literal (§6.2): incremental indexing 01, else 0000 or 0001
			u.fields = true
			mask := byte(0x0f)
			if b&0xc0 == 0x40 {
				mask = 0x3f
			}
			u.strs = 1 // the value
			if b&mask == 0 {
				u.strs = 2 // and a new name before it
			}
			if b&mask == mask {
				u.startInt(uint64(mask), false)
			}
		}
	}
	return false
}

func (u *updateScan) startInt(prefix uint64, isLen bool) {
	u.inInt, u.isLen, u.val, u.shift = true, isLen, prefix, 0
}

// wholeReps returns the length of the longest prefix of p, a part of a
// header block that begins at a field representation, made of whole
// representations (RFC 7541 §6: an indexed field, a literal and its
// strings, a dynamic table size update), for decodeFragment. It returns
// len(p) when p holds what x/net's decoder refuses before the
// representation is whole, so that it refuses it at once, as it would
// given all of p: a string length over maxStr, an integer too long.
func wholeReps(p []byte, maxStr uint64) int {
	end := 0
	for i := 0; i < len(p); {
		b := p[i]
		var st repState
		switch {
		case b&0x80 != 0: // indexed field (§6.1)
			i, _, st = skipInt(p, i, 7)
		case b&0xe0 == 0x20: // dynamic table size update (§6.3)
			i, _, st = skipInt(p, i, 5)
		default: // literal (§6.2): incremental indexing 01, else 0000 or 0001
			prefix := uint(4)
			if b&0xc0 == 0x40 {
				prefix = 6
			}
			newName := b&(1<<prefix-1) == 0
			i, _, st = skipInt(p, i, prefix)
			if st == repWhole && newName {
				i, st = skipString(p, i, maxStr)
			}
			if st == repWhole {
				i, st = skipString(p, i, maxStr)
			}
		}
		switch st {
		case repMore:
			return end
		case repRefused:
			return len(p)
		}
		end = i
	}
	return end
}

// repState is what wholeReps found of a representation's part.
type repState uint8

const (
	repWhole   repState = iota // whole
	repMore                    // cut: more bytes are needed
	repRefused                 // one the decoder refuses
)

// skipInt reads the integer (RFC 7541 §5.1) of prefix bits at p[i] and
// returns the offset after it and its value; an integer too long is
// refused as x/net's readVarInt refuses it.
func skipInt(p []byte, i int, prefix uint) (int, uint64, repState) {
	max := uint64(1)<<prefix - 1
	v := uint64(p[i]) & max
	i++
	if v < max {
		return i, v, repWhole
	}
	var m uint
	for i < len(p) {
		b := p[i]
		i++
		v += uint64(b&0x7f) << m
		if b&0x80 == 0 {
			return i, v, repWhole
		}
		m += 7
		if m >= 63 {
			return i, 0, repRefused
		}
	}
	return i, 0, repMore
}

// skipString skips the string literal (RFC 7541 §5.2) at p[i]; one whose
// length is over maxStr is refused (x/net's decoder refuses its length).
func skipString(p []byte, i int, maxStr uint64) (int, repState) {
	if i >= len(p) {
		return i, repMore
	}
	i, n, st := skipInt(p, i, 7)
	switch {
	case st != repWhole:
		return i, st
	case n > maxStr:
		return i, repRefused
	case uint64(len(p)-i) < n:
		return i, repMore
	}
	return i + int(n), repWhole
}
