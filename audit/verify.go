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

// Summary describes a file that verified.
type Summary struct {
	Records   int
	FirstSeq  uint64
	LastSeq   uint64
	LastChain string // hex
	Anchors   int    // records carrying prev_seq/prev_chain (opens, reopens, recoveries)
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
// name the previous line exactly), and the last line is complete. What it
// cannot prove from the file alone: that no records were cut off the very
// end at a line boundary. The next record the supervisor writes exposes
// such a cut (its seq or chain no longer follows); until then compare
// Summary.LastSeq with the live supervisor or the SIEM's copy.
func Verify(r io.Reader, key []byte) error {
	_, err := VerifySummary(r, key)
	return err
}

// VerifySummary is Verify, also returning a summary of what was verified.
func VerifySummary(r io.Reader, key []byte) (Summary, error) {
	var sum Summary
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
			return sum, nil
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
			return sum, &VerifyError{Line: n, Seq: rec.Seq, Reason: reason}
		}
		if rec.Seq == 0 {
			return fail("seq 0: sequence numbers start at 1")
		}
		var prev [32]byte
		if link.PrevSeq != nil {
			pc, ok := decodeChain(link.PrevChain)
			switch {
			case !ok:
				return fail("prev_chain is not 64 lowercase hex digits")
			case *link.PrevSeq >= rec.Seq:
				return fail(fmt.Sprintf("prev_seq %d is not below seq %d", *link.PrevSeq, rec.Seq))
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
		if sum.Records == 0 {
			sum.FirstSeq = rec.Seq
		}
		sum.Records++
		sum.LastSeq, sum.LastChain = rec.Seq, chainHex
		prevSeq, prevChain, havePrev = rec.Seq, chain, true
	}
}

// VerifyFile verifies the JSON audit file at path with the key in keyPath
// (ReadKeyFile: owner and mode are not checked, so a copy will do). Both
// are opened with O_NOFOLLOW.
func VerifyFile(path, keyPath string) (Summary, error) {
	key, err := ReadKeyFile(keyPath)
	if err != nil {
		return Summary{}, err
	}
	f, err := openNoFollow(path)
	if err != nil {
		return Summary{}, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	return VerifySummary(f, key)
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
