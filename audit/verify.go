package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// VerifyError names the first record of a JSON audit file that breaks the
// chain: edited, deleted, reordered, duplicated, or cut short.
type VerifyError struct {
	Line   int    // 1-based line number in the file
	Seq    uint64 // the record's seq when it could be read, else 0
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("audit verify: line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit verify: line %d: %s", e.Line, e.Reason)
}

// Summary describes what was verified: the whole file when the error is
// nil or a declared gap, else the records before the broken one.
type Summary struct {
	Records      int
	FirstSeq     uint64
	FirstPrevSeq uint64 // prev_seq of the first record: 0 when the file starts a chain
	LastSeq      uint64
	LastChain    string // hex
	Anchors      int    // records carrying prev_seq/prev_chain (opens, reopens, recoveries)
	HeadSeq      uint64 // the sealed head the file reaches (VerifyOptions.Head); 0 = not checked
	// Tampers are the file's audit.tamper records: the supervisor found,
	// at a start, the trail's end not where its sealed head said. They
	// are reported whether or not the chain holds.
	Tampers []Tamper
}

// Tamper is one audit.tamper record of a verified file.
type Tamper struct {
	Line    int
	Seq     uint64
	Reason  string // the record's reason: what the supervisor found
	Missing string // the gap its anchor declares ("seq 5 to 9"), or ""
}

// VerifyOptions are what a file is held to beyond its own chain.
type VerifyOptions struct {
	// Rotated accepts a file that starts at any anchoring record: a piece
	// that logrotate moved away, or the current file after a rotation.
	// Without it the first record must start a chain (prev_seq 0 and a
	// zero prev_chain), so that records deleted at the head show.
	Rotated bool
	// Head, when set, is the sealed head of the file's sink (ReadHead):
	// the file must hold the head's record (same seq and chain); records
	// after it were written since and are accepted. A file that ends
	// before it had records cut off its end.
	Head *HeadSink
}

// maxLine bounds one line of a JSON audit file.
const maxLine = 1 << 20

// Verify reads a JSON audit file and checks its chain with key. It returns
// nil when every record verifies, a *VerifyError naming the first broken
// record, or another error when r cannot be read.
//
// What it proves: no record was edited (each chain is the HMAC of the
// previous chain and the record), none deleted, moved or duplicated (seq
// grows by one, except at an anchoring record whose prev_seq/prev_chain
// name the previous line exactly), the last line is complete, and the
// file starts a chain (its first record anchors on prev_seq 0). What it
// cannot prove from the file alone: that no records were cut off the very
// end at a line boundary; VerifyWith with the sealed head (VerifyOptions.Head)
// does, and the supervisor checks it at every start (audit.tamper).
func Verify(r io.Reader, key []byte) error {
	_, err := VerifySummary(r, key)
	return err
}

// VerifySummary is Verify, also returning a summary of what was verified.
func VerifySummary(r io.Reader, key []byte) (Summary, error) {
	return VerifyWith(r, key, VerifyOptions{})
}

// VerifyWith is VerifySummary with options: a rotated piece, a sealed
// head to reach. Besides the errors of Verify, it returns a *VerifyError
// when the file does not start a chain (unless opts.Rotated), when it
// does not reach opts.Head, and at an audit.tamper record whose anchor
// declares missing records; verification goes on past such a declared
// gap (the summary covers the whole file) and the first error in file
// order is returned.
func VerifyWith(r io.Reader, key []byte, opts VerifyOptions) (Summary, error) {
	var sum Summary
	var firstErr error // a declared gap: reported once the file is read
	br := bufio.NewReaderSize(r, 64<<10)
	var prevSeq uint64
	var prevChain [32]byte
	havePrev := false
	for n := 1; ; n++ {
		data, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return sum, &VerifyError{Line: n, Reason: err.Error()}
			}
			return sum, fmt.Errorf("audit verify: reading line %d: %w", n, err)
		}
		if len(data) == 0 {
			if n == 1 {
				return sum, &VerifyError{Line: 1, Reason: "no records: the file is empty"}
			}
			if firstErr != nil {
				return sum, firstErr
			}
			return sum, reachesHead(&sum, opts.Head, n)
		}
		if data[len(data)-1] != '\n' {
			return sum, &VerifyError{Line: n, Reason: "cut short: the last line has no newline (a torn write or a truncated file)"}
		}
		data = data[:len(data)-1]
		canonical, chainHex, err := splitChain(data)
		if err != nil {
			return sum, &VerifyError{Line: n, Reason: "malformed record: " + err.Error()}
		}
		rec, link, err := DecodeJSON(data)
		if err != nil {
			return sum, &VerifyError{Line: n, Reason: err.Error()}
		}
		chain, _ := decodeChain(chainHex)
		fail := func(reason string) (Summary, error) {
			if firstErr != nil {
				return sum, firstErr
			}
			return sum, &VerifyError{Line: n, Seq: rec.Seq, Reason: reason}
		}
		if rec.Seq == 0 {
			return fail("seq 0: sequence numbers start at 1")
		}
		var prev [32]byte
		missing := "" // the gap an audit.tamper record declares
		if link.PrevSeq != nil {
			pc, ok := decodeChain(link.PrevChain)
			tamper := rec.Code == CodeAuditTamper
			switch {
			case !ok:
				return fail("prev_chain is not 64 lowercase hex digits")
			case *link.PrevSeq >= rec.Seq:
				return fail(fmt.Sprintf("prev_seq %d is not below seq %d", *link.PrevSeq, rec.Seq))
			case !havePrev && !opts.Rotated && (*link.PrevSeq != 0 || pc != [32]byte{}):
				return fail(fmt.Sprintf("the file starts at seq %d, anchored on seq %d, not at the start of a chain (prev_seq 0): records deleted at the head, or a piece rotated off (verify it with --rotated)", rec.Seq, *link.PrevSeq))
			case havePrev && tamper && *link.PrevSeq > prevSeq:
				missing = fmt.Sprintf("seq %d to %d", prevSeq+1, *link.PrevSeq)
			case havePrev && tamper && (*link.PrevSeq != prevSeq || pc != prevChain):
				missing = fmt.Sprintf("the records after seq %d (replaced: the anchor follows seq %d, another chain)", prevSeq, *link.PrevSeq)
			case havePrev && *link.PrevSeq != prevSeq:
				return fail(fmt.Sprintf("prev_seq %d but the previous line holds seq %d: records deleted, moved or edited", *link.PrevSeq, prevSeq))
			case havePrev && pc != prevChain:
				return fail("prev_chain is not the previous line's chain: records deleted, moved or edited")
			}
			prev = pc
			sum.Anchors++
		} else {
			switch {
			case !havePrev:
				return fail("the first record carries no prev_seq/prev_chain anchor: the file does not start where a chain starts (records deleted at the head?)")
			case rec.Seq == prevSeq:
				return fail(fmt.Sprintf("seq %d appears twice: a record was duplicated", rec.Seq))
			case rec.Seq < prevSeq:
				return fail(fmt.Sprintf("seq %d after seq %d: records reordered (or this record edited)", rec.Seq, prevSeq))
			case rec.Seq != prevSeq+1:
				return fail(fmt.Sprintf("seq %d follows seq %d: seq %d missing (deleted or moved, or this record edited)", rec.Seq, prevSeq, prevSeq+1))
			}
			prev = prevChain
		}
		want := chainOf(key, prev, canonical)
		if !hmac.Equal(want[:], chain[:]) {
			return fail("chain mismatch: the record was altered (or the key is not the one that wrote it)")
		}
		if rec.Code == CodeAuditTamper {
			sum.Tampers = append(sum.Tampers, Tamper{Line: n, Seq: rec.Seq, Reason: rec.Reason, Missing: missing})
			if missing != "" && firstErr == nil {
				firstErr = &VerifyError{Line: n, Seq: rec.Seq, Reason: fmt.Sprintf(
					"%s missing: cut off or replaced while the supervisor was down (this line is its audit.tamper record)", missing)}
			}
		}
		if opts.Head != nil && opts.Head.Seq == rec.Seq {
			if chainHex != opts.Head.Chain {
				return fail("not the record the sealed head holds (another chain): the file was rewritten or replaced")
			}
			sum.HeadSeq = rec.Seq
		}
		if sum.Records == 0 {
			sum.FirstSeq = rec.Seq
			if link.PrevSeq != nil {
				sum.FirstPrevSeq = *link.PrevSeq
			}
		}
		sum.Records++
		sum.LastSeq, sum.LastChain = rec.Seq, chainHex
		prevSeq, prevChain, havePrev = rec.Seq, chain, true
	}
}

// reachesHead checks, at the end of a file of lines-1 lines, that it
// reached head (nil: nothing to check).
func reachesHead(sum *Summary, head *HeadSink, lines int) error {
	switch {
	case head == nil || head.Seq == 0 || sum.HeadSeq != 0:
		return nil
	case sum.LastSeq < head.Seq:
		return &VerifyError{Line: lines, Reason: fmt.Sprintf(
			"end of file at seq %d, but the sealed head is seq %d: seq %d to %d were cut off the end",
			sum.LastSeq, head.Seq, sum.LastSeq+1, head.Seq)}
	default:
		return &VerifyError{Line: lines, Reason: fmt.Sprintf(
			"the sealed head (seq %d) is not in the file (seq %d to %d): a stale head, or the head of another file",
			head.Seq, sum.FirstSeq, sum.LastSeq)}
	}
}

// VerifyFile verifies the JSON audit file at path with the key in keyPath
// (ReadKeyFile: owner and mode are not checked, so a copy will do), and
// what opts asks. Both are opened with O_NOFOLLOW.
func VerifyFile(path, keyPath string, opts VerifyOptions) (Summary, error) {
	key, err := ReadKeyFile(keyPath)
	if err != nil {
		return Summary{}, err
	}
	f, err := openNoFollow(path)
	if err != nil {
		return Summary{}, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	return VerifyWith(f, key, opts)
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes: not an audit record", maxLine)

// readLine returns the next line with its newline, or what is left at EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(out)+len(frag) > maxLine {
			return nil, errLineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			out = append(out, frag...)
			continue
		}
		if out == nil {
			return bytes.Clone(frag), err
		}
		return append(out, frag...), err
	}
}

// openNoFollow opens path for reading, refusing a symlink.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s %w", path, errSymlink)
		}
		return nil, err
	}
	return f, nil
}
