package audit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// At start the broker compares the end of each sink file with the sealed
// head (head.go). What does not match is tampering, or at least cannot be
// told from it: the broker writes an audit.tamper record before audit.open
// and, where the head is trusted and the file fell short of it, continues
// the chain from the head, so that `sozu audit verify` shows the gap.

// headScanLines is how many of a file's last lines resume keeps: enough to
// find the head's record when the head is a batch behind the file (a stop
// between a record's write and the head's update).
const headScanLines = 16

// tailRec is one of a sink file's last records.
type tailRec struct {
	seq      uint64
	chain    [32]byte
	hasChain bool // JSON
}

// parseTail reads seq (and chain) of each line it can; others are skipped.
func parseTail(format Format, lines [][]byte) []tailRec {
	var out []tailRec
	for _, line := range lines {
		if format == FormatText {
			m := textSeqPattern.FindSubmatch(line)
			if m == nil {
				continue
			}
			if seq, err := strconv.ParseUint(string(m[1]), 10, 64); err == nil {
				out = append(out, tailRec{seq: seq})
			}
			continue
		}
		_, chainHex, err := splitChain(line)
		if err != nil {
			continue
		}
		rec, _, err := DecodeJSON(line)
		if err != nil {
			continue
		}
		c, _ := decodeChain(chainHex)
		out = append(out, tailRec{seq: rec.Seq, chain: c, hasChain: true})
	}
	return out
}

// finding is one reason for an audit.tamper record.
type finding struct {
	code string // error_code of the record when it is the first finding
	text string
}

// checkHead compares every file sink's end (resume has run) with head,
// the sealed head read from headPath, or headErr when it could not be
// read. Where the head is trusted and a file ends before it (or at a
// different record), the sink continues from the head: its next record
// anchors on the head's seq and chain. It returns the findings (for an
// audit.tamper record) and notes (for audit.open).
func checkHead(sinks []*sink, headPath string, head *Head, headErr error) (finds []finding, notes []string) {
	var files []*sink
	var withRecords *sink
	for _, s := range sinks {
		if !s.regular {
			continue
		}
		files = append(files, s)
		if withRecords == nil && s.lastSeq > 0 {
			withRecords = s
		}
	}
	if headErr != nil {
		switch {
		case errors.Is(headErr, os.ErrNotExist) && withRecords != nil:
			finds = append(finds, finding{"head_missing", fmt.Sprintf(
				"the sealed head %s is missing while the %s file holds records up to seq %d: records cut off the end cannot be ruled out",
				headPath, withRecords.format, withRecords.lastSeq)})
		case !errors.Is(headErr, os.ErrNotExist):
			finds = append(finds, finding{"head_invalid", headErr.Error() + ": records cut off the end cannot be ruled out"})
		}
		// Without a head, the files can still be held against each other.
		var text, json *sink
		for _, s := range files {
			if s.format == FormatJSON {
				json = s
			} else {
				text = s
			}
		}
		if text != nil && json != nil && text.lastSeq != json.lastSeq {
			finds = append(finds, finding{"sinks_disagree", fmt.Sprintf(
				"the text file ends at seq %d but the JSON file at seq %d", text.lastSeq, json.lastSeq)})
		}
		return finds, notes
	}
	for _, s := range files {
		e := head.Entry(s.format, s.target)
		last := s.lastSeq
		switch {
		case e == nil:
			if last > 0 {
				finds = append(finds, finding{"head_mismatch", fmt.Sprintf(
					"the sealed head has no entry for the %s file %s, which holds records up to seq %d", s.format, s.target, last)})
			}
		case last < e.Seq && last == 0:
			finds = append(finds, finding{"truncated", fmt.Sprintf(
				"the %s file holds no records but its sealed head is seq %d: emptied, deleted or replaced (or rotated without `sozu audit reopen`)",
				s.format, e.Seq)})
			s.resumeFrom(e)
		case last < e.Seq:
			finds = append(finds, finding{"truncated", fmt.Sprintf(
				"the %s file ends at seq %d but its sealed head is seq %d: seq %d to %d missing (cut off the end, or the file replaced)",
				s.format, last, e.Seq, last+1, e.Seq)})
			s.resumeFrom(e)
		case last == e.Seq:
			if s.format == FormatJSON && e.Chain != hexChain(s.lastChain) {
				finds = append(finds, finding{"head_mismatch", fmt.Sprintf(
					"the last record of the %s file (seq %d) is not the one its sealed head holds (another chain): the file was rewritten or replaced",
					s.format, last)})
				s.resumeFrom(e)
			}
		default: // the file goes beyond the head
			if s.holds(e) {
				notes = append(notes, fmt.Sprintf("the sealed head of %s was %d records behind it (a stop between a record and the head's update)", s.target, last-e.Seq))
			} else {
				finds = append(finds, finding{"head_mismatch", fmt.Sprintf(
					"the %s file ends at seq %d, beyond its sealed head (seq %d), whose record is not among its last %d lines: the file was replaced, or the head is an old copy",
					s.format, last, e.Seq, headScanLines)})
			}
		}
	}
	return finds, notes
}

// resumeFrom makes the sink continue from the head e: its next record
// anchors on e's seq and chain.
func (s *sink) resumeFrom(e *HeadSink) {
	s.lastSeq, s.anchor = e.Seq, true
	if s.format == FormatJSON {
		s.lastChain, _ = decodeChain(e.Chain)
	}
}

// holds reports whether the file's tail has the head's record.
func (s *sink) holds(e *HeadSink) bool {
	want, _ := decodeChain(e.Chain)
	for _, r := range s.tail {
		if r.seq == e.Seq && (!r.hasChain || r.chain == want) {
			return true
		}
	}
	return false
}

// headOf is the head of the broker's sinks as they stand.
func (b *Broker) headOf() *Head {
	h := &Head{Boot: b.boot, Seq: b.seq, Sinks: []HeadSink{}}
	for _, s := range b.sinks {
		if !s.regular {
			continue
		}
		e := HeadSink{Format: formatName(s.format), Target: s.target, Seq: s.lastSeq}
		if s.format == FormatJSON {
			e.Chain = hexChain(s.lastChain)
		}
		h.Sinks = append(h.Sinks, e)
	}
	return h
}

// saveHead rewrites the sealed head after a batch of records. A failure
// is counted and logged (once until it works again), not returned: the
// records are in the files; only the truncation check of the next start
// is weakened, and it reports the stale head.
func (b *Broker) saveHead() {
	if b.headPath == "" {
		return
	}
	if err := WriteHead(b.headPath, b.key, b.headOf(), b.opts.Fsync); err != nil {
		b.stats.HeadErrors++
		if !b.headFailing {
			b.opts.Warnf("audit: %v (truncation of the trail will not be detectable at the next start until the head is written again)", err)
		}
		b.headFailing = true
		return
	}
	if b.headFailing {
		b.opts.Infof("audit: head file %s written again", b.headPath)
	}
	b.headFailing = false
}
