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
