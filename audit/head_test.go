package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// cutLines keeps the first n lines of the file at path.
func cutLines(t *testing.T, path string, n int) {
	t.Helper()
	ls := lines(t, path)
	out := ""
	if n > 0 {
		out = strings.Join(ls[:n], "\n") + "\n"
	}
	if err := os.WriteFile(path, []byte(out), 0o640); err != nil {
		t.Fatal(err)
	}
}

// logN writes n sample records.
func logN(t *testing.T, b *Broker, n int) {
	t.Helper()
	ids := testIDs()
	for range n {
		if err := b.Log(sample(ids, "cluster.add")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTruncatedTrailAtRestart is security review item 9 at the broker: 9
// records, the JSON file cut to 4 lines at a line boundary while the
// broker is down, a restart and one record. The restart writes an
// audit.tamper record before audit.open, anchored on the sealed head (seq
// 9), so the verifier names the missing records instead of "intact".
func TestTruncatedTrailAtRestart(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	logN(t, b, 8) // audit.open + 8 = seq 1 to 9
	b.Close()
	cutLines(t, e.json, 4)

	b2 := e.open(t)
	logN(t, b2, 1)
	b2.Close()
	recs := decodeAll(t, e.json)
	if got := events(recs[4:]); strings.Join(got, " ") != "audit.tamper audit.open command.completed" {
		t.Fatalf("records after the cut: %v", got)
	}
	tam := recs[4]
	if tam.Seq != 10 || tam.Result != ResultErr || tam.ErrorCode != "truncated" ||
		!strings.Contains(tam.Reason, "the JSON file ends at seq 4 but its sealed head is seq 9: seq 5 to 9 missing") {
		t.Errorf("tamper record: seq %d %s %s %q", tam.Seq, tam.Result, tam.ErrorCode, tam.Reason)
	}
	_, link, _ := DecodeJSON([]byte(lines(t, e.json)[4]))
	if link.PrevSeq == nil || *link.PrevSeq != 9 {
		t.Errorf("the tamper record does not anchor on the sealed head: %+v", link)
	}
	key := e.keyBytes(t)
	sum, err := VerifySummary(mustOpen(t, e.json), key)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 5 || !strings.Contains(err.Error(), "seq 5 to 9 missing") {
		t.Fatalf("Verify = %v, want line 5 naming seq 5 to 9", err)
	}
	// Verification went on past the declared gap: the whole file was read.
	if sum.Records != 7 || sum.LastSeq != 12 || len(sum.Tampers) != 1 || sum.Tampers[0].Missing != "seq 5 to 9" {
		t.Errorf("summary %+v", sum)
	}
	// The text file was not cut: it goes on from 9 too.
	text := lines(t, e.text)
	if len(text) != 12 || !strings.Contains(text[9], "event=audit.tamper, code=SZ3006, seq=10,") {
		t.Errorf("text file:\n%s", strings.Join(text, "\n"))
	}
}

// TestHeadAtOpen: what the broker makes of each way the end of the trail
// and its sealed head can disagree, and of the head's own defects.
func TestHeadAtOpen(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, e *testEnv)
		code   string // error_code of the audit.tamper record; "" = none
		reason string
		note   string // in the audit.open record
	}{
		{name: "intact", change: func(*testing.T, *testEnv) {}},
		{name: "json cut", change: func(t *testing.T, e *testEnv) { cutLines(t, e.json, 3) },
			code: "truncated", reason: "ends at seq 3 but its sealed head is seq 6: seq 4 to 6 missing"},
		{name: "text cut", change: func(t *testing.T, e *testEnv) { cutLines(t, e.text, 5) },
			code: "truncated", reason: "the text file ends at seq 5 but its sealed head is seq 6"},
		{name: "json emptied", change: func(t *testing.T, e *testEnv) { cutLines(t, e.json, 0) },
			code: "truncated", reason: "holds no records but its sealed head is seq 6"},
		{name: "json deleted", change: func(t *testing.T, e *testEnv) { os.Remove(e.json) },
			code: "truncated", reason: "holds no records but its sealed head is seq 6"},
		{name: "seal broken", change: func(t *testing.T, e *testEnv) {
			data := readFile(t, HeadPath(e.key))
			data = bytes.Replace(data, []byte(`"seq":6`), []byte(`"seq":3`), 1)
			writeFile(t, HeadPath(e.key), data)
		}, code: "head_invalid", reason: "the seal does not match"},
		{name: "head missing", change: func(t *testing.T, e *testEnv) { os.Remove(HeadPath(e.key)) },
			code: "head_missing", reason: "is missing while"},
		{name: "head missing, files disagree", change: func(t *testing.T, e *testEnv) {
			os.Remove(HeadPath(e.key))
			cutLines(t, e.text, 4)
		}, code: "head_missing", reason: "the text file ends at seq 4 but the JSON file at seq 6"},
		{name: "head readable by others", change: func(t *testing.T, e *testEnv) { os.Chmod(HeadPath(e.key), 0o644) },
			code: "head_invalid", reason: "has mode 0644"},
		{name: "head a symlink", change: func(t *testing.T, e *testEnv) {
			p := HeadPath(e.key)
			os.Rename(p, p+".real")
			os.Symlink(p+".real", p)
		}, code: "head_invalid", reason: "symbolic link"},
		// A stale head: a stop between a record and the head's update
		// leaves the head behind; its record is among the last lines.
		{name: "head stale by a batch", change: func(t *testing.T, e *testEnv) {
			writeFile(t, HeadPath(e.key), e.saved)
		}, note: "was 3 records behind it"},
		// An old head whose record is no longer among the last lines: the
		// file was replaced, or the head is an old copy.
		{name: "head stale, record gone", change: func(t *testing.T, e *testEnv) {
			writeFile(t, HeadPath(e.key), e.saved)
			ls := lines(t, e.json)
			writeFile(t, e.json, []byte(strings.Join(append(ls[:1], ls[4:]...), "\n")+"\n"))
		}, code: "head_mismatch", reason: "beyond its sealed head (seq 3)"},
		// Same seq, another chain: the JSON file was replaced by another
		// trail of the same length (e.g. rebuilt by someone with the key).
		{name: "json replaced", change: func(t *testing.T, e *testEnv) {
			writeFile(t, e.json, e.other)
		}, code: "head_mismatch", reason: "is not the one its sealed head holds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// Another trail of 6 records with the same key, for "replaced".
			o := newEnv(t)
			o.key, o.text = e.key, ""
			ob := o.open(t)
			logN(t, ob, 5)
			ob.Close()
			os.Remove(HeadPath(e.key))
			e.other = readFile(t, o.json)

			b := e.open(t)
			logN(t, b, 2) // seq 1 to 3
			e.saved = readFile(t, HeadPath(e.key))
			logN(t, b, 3) // seq 4 to 6
			b.Close()
			tc.change(t, e)

			b2 := e.open(t)
			b2.Close()
			recs := decodeAll(t, e.json)
			var tamper, open *Record
			for i := range recs {
				switch {
				case recs[i].BootGeneration != 2:
				case recs[i].Code == CodeAuditTamper:
					tamper = &recs[i]
				case recs[i].Code == CodeAuditOpen:
					open = &recs[i]
				}
			}
			if open == nil {
				t.Fatalf("no audit.open in the second boot: %v", events(recs))
			}
			switch {
			case tc.code == "" && tamper != nil:
				t.Errorf("unexpected audit.tamper: %s %q", tamper.ErrorCode, tamper.Reason)
			case tc.code != "" && tamper == nil:
				t.Errorf("no audit.tamper record (%s); records %v", tc.code, events(recs))
			case tc.code != "" && (tamper.ErrorCode != tc.code || !strings.Contains(tamper.Reason, tc.reason)):
				t.Errorf("audit.tamper %s %q, want %s with %q", tamper.ErrorCode, tamper.Reason, tc.code, tc.reason)
			}
			if tc.note != "" && !strings.Contains(open.Reason, tc.note) {
				t.Errorf("audit.open reason %q, want %q", open.Reason, tc.note)
			}
			// Whatever happened, the broker left a sound head for the next
			// start: a third boot finds nothing wrong.
			b3 := e.open(t)
			b3.Close()
			for _, r := range decodeAll(t, e.json) {
				if r.BootGeneration == 3 && r.Code == CodeAuditTamper {
					t.Errorf("third boot: audit.tamper %q", r.Reason)
				}
			}
			fi, err := os.Lstat(HeadPath(e.key))
			if err != nil || fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
				t.Errorf("head file after the restart: %v %v", fi.Mode(), err)
			}
		})
	}
}

// TestVerifyStartAndHead: a file that does not start a chain needs
// Rotated (which names where it starts); a sealed head must be reached.
func TestVerifyStartAndHead(t *testing.T) {
	e := newEnv(t)
	e.text = ""
	b := e.open(t)
	logN(t, b, 3) // seq 1 to 4
	if err := os.Rename(e.json, e.json+".1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Reopen(); err != nil { // seq 5 starts the new file
		t.Fatal(err)
	}
	logN(t, b, 4) // seq 6 to 9
	b.Close()
	key := e.keyBytes(t)
	head, err := ReadHead(HeadPath(e.key), key, true)
	if err != nil {
		t.Fatal(err)
	}
	full := readFile(t, e.json)
	ls := splitLines(full)
	short := bytes.Join(ls[:3], nil) // seq 5 to 7
	other := *head.JSONEntry()
	other.Chain = strings.Repeat("ab", 32)
	stale := *head.JSONEntry()
	stale.Seq = 2

	tests := []struct {
		name string
		data []byte
		opts VerifyOptions
		err  string // "" = verifies
		sum  func(Summary) bool
	}{
		{"rotated piece, strict", full, VerifyOptions{}, "line 1 (seq 5): the file starts at seq 5, anchored on seq 4, not at the start of a chain", nil},
		{"rotated piece, --rotated", full, VerifyOptions{Rotated: true}, "",
			func(s Summary) bool { return s.FirstSeq == 5 && s.FirstPrevSeq == 4 && s.LastSeq == 9 }},
		{"first file, strict", readFile(t, e.json+".1"), VerifyOptions{}, "",
			func(s Summary) bool { return s.FirstSeq == 1 && s.FirstPrevSeq == 0 }},
		{"reaches its head", full, VerifyOptions{Rotated: true, Head: head.JSONEntry()}, "",
			func(s Summary) bool { return s.HeadSeq == 9 }},
		{"cut off the end", short, VerifyOptions{Rotated: true, Head: head.JSONEntry()},
			"line 4: end of file at seq 7, but the sealed head is seq 9: seq 8 to 9 were cut off the end", nil},
		{"head of another trail", full, VerifyOptions{Rotated: true, Head: &other},
			"line 5 (seq 9): not the record the sealed head holds", nil},
		{"stale head", full, VerifyOptions{Rotated: true, Head: &stale},
			"the sealed head (seq 2) is not in the file (seq 5 to 9)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sum, err := VerifyWith(bytes.NewReader(tc.data), key, tc.opts)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("VerifyWith: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("VerifyWith = %v, want %q", err, tc.err)
			case tc.sum != nil && !tc.sum(sum):
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

// TestHeadFile: the head file's own contract: mode 0600 whatever the
// umask, a sealed round trip, refusal of edits, of another key, of a
// symlink at the temporary path.
func TestHeadFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, KeySize)
	path := dir + "/k.head"
	h := &Head{Boot: 2, Seq: 9, Sinks: []HeadSink{{Format: "json", Target: "/a.json", Seq: 9, Chain: strings.Repeat("0f", 32)}, {Format: "text", Target: "/a.log", Seq: 8}}}
	if err := WriteHead(path, key, h, true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("head file: %v %v", fi.Mode(), err)
	}
	got, err := ReadHead(path, key, true)
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(*h) {
		t.Fatalf("ReadHead = %+v, %v; want %+v", got, err, h)
	}
	if e := got.Entry(FormatText, "/a.log"); e == nil || e.Seq != 8 {
		t.Errorf("Entry(text) = %+v", e)
	}
	if _, err := ReadHead(path, bytes.Repeat([]byte{8}, KeySize), true); err == nil || !strings.Contains(err.Error(), "seal does not match") {
		t.Errorf("another key: %v", err)
	}
	if _, err := ReadHead(dir+"/none", key, true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing head: %v", err)
	}
	data := readFile(t, path)
	for _, bad := range []struct{ name, data, want string }{
		{"one line", strings.SplitN(string(data), "\n", 2)[0] + "\n", "not two lines"},
		{"seal not hex", strings.Replace(string(data), "\n", "\nzz", 1), "not 64 lowercase hex"},
		{"extra line", string(data) + "x\n", "not two lines"},
		{"edited", strings.Replace(string(data), `"boot":2`, `"boot":3`, 1), "seal does not match"},
	} {
		if _, err := DecodeHead([]byte(bad.data), key); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.name, err, bad.want)
		}
	}
	if err := os.Symlink(dir+"/elsewhere", path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := WriteHead(path, key, h, false); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("WriteHead through a symlinked temporary file: %v", err)
	}
	if _, err := os.Stat(dir + "/elsewhere"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was created: %v", err)
	}
}

// FuzzDecodeHead: no input crashes DecodeHead, and what it accepts
// re-encodes to a head it accepts again, equal to the first.
func FuzzDecodeHead(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	good, err := encodeHead(key, &Head{Boot: 1, Seq: 3, Sinks: []HeadSink{{Format: "json", Target: "/a", Seq: 3, Chain: strings.Repeat("00", 32)}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("{}\n" + strings.Repeat("0", 64) + "\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHead(data, key)
		if err != nil {
			return
		}
		again, err := encodeHead(key, h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := DecodeHead(again, key)
		if err != nil || fmt.Sprint(*h2) != fmt.Sprint(*h) {
			t.Fatalf("round trip: %+v %v, want %+v", h2, err, h)
		}
	})
}

// BenchmarkWriteHead is the cost the head adds to each batch of records.
func BenchmarkWriteHead(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			path := b.TempDir() + "/k.head"
			key := bytes.Repeat([]byte{7}, KeySize)
			h := &Head{Boot: 2, Seq: 9, Sinks: []HeadSink{{Format: "json", Target: "/var/log/sozu/audit.json", Seq: 9, Chain: strings.Repeat("0f", 32)}, {Format: "text", Target: "/var/log/sozu/audit.log", Seq: 9}}}
			for b.Loop() {
				if err := WriteHead(path, key, h, fsync); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}
