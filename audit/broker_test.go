package audit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestLogWritesEverySinkInOrder(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	ids := testIDs()
	for _, v := range []string{"cluster.add", "backend.add", "frontend.http.add"} {
		if err := b.Log(sample(ids, v)); err != nil {
			t.Fatal(err)
		}
	}
	recs := decodeAll(t, e.json)
	if got := events(recs); !slices.Equal(got, []string{"audit.open", "command.completed", "command.completed", "command.completed"}) {
		t.Fatalf("events %v", got)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.BootGeneration != 1 || r.Version != "1.0.0-test" || r.GitSHA != "0123456789abcdef" {
			t.Errorf("record %d: seq %d boot %d version %q git %q", i, r.Seq, r.BootGeneration, r.Version, r.GitSHA)
		}
		if i > 0 && !r.Time.After(recs[i-1].Time) {
			t.Errorf("record %d: time %v not after %v", i, r.Time, recs[i-1].Time)
		}
	}
	if recs[1].Verb != "cluster.add" || recs[1].Actor.User != "alice" || *recs[1].Actor.UID != 1000 {
		t.Errorf("record 1: %+v", recs[1])
	}
	text := lines(t, e.text)
	if len(text) != 4 {
		t.Fatalf("text sink has %d lines", len(text))
	}
	for i, l := range text {
		p, err := parseText(l + "\n")
		if err != nil {
			t.Fatalf("text line %d: %v", i+1, err)
		}
		if p.kv["seq"] != fmt.Sprint(i+1) || p.kv["event"] != recs[i].Code.Name() {
			t.Errorf("text line %d: seq %s event %s", i+1, p.kv["seq"], p.kv["event"])
		}
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Records != 4 || st.LastSeq != 4 || st.Refused != 0 || len(st.Sinks) != 2 {
		t.Errorf("stats %+v", st)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestConcurrentLogSeqIsFileOrder: seq is assigned under the write lock,
// so both files list 1..N in order and the chain verifies.
func TestConcurrentLogSeqIsFileOrder(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	ids := testIDs()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := b.Log(sample(ids, fmt.Sprintf("cluster.add%d", g))); err == nil {
					continue
				} else {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	recs := decodeAll(t, e.json)
	if len(recs) != 401 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("line %d has seq %d", i+1, r.Seq)
		}
	}
	for i, l := range lines(t, e.text) {
		if !strings.Contains(l, fmt.Sprintf(", seq=%d,", i+1)) {
			t.Fatalf("text line %d: %s", i+1, l)
		}
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatal(err)
	}
}

// swapTo points a sink at another file (a failing one: /dev/full), and
// returns a function that puts the original back.
func swapTo(t *testing.T, b *Broker, format Format, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.sinks {
		if s.format == format {
			old, oldRegular := s.f, s.regular
			s.f = f
			s.stat()
			return func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				s.f, s.regular = old, oldRegular
				f.Close()
			}
		}
	}
	t.Fatalf("no %s sink", format)
	return nil
}

// TestFailClosedAndRecovery: with the only sink failing, Log refuses (the
// caller refuses the action), counts, reuses the seq; the first success
// after it writes audit.recovered with the outage duration.
func TestFailClosedAndRecovery(t *testing.T) {
	e := newEnv(t)
	e.text = ""
	b := e.open(t)
	ids := testIDs()
	restore := swapTo(t, b, FormatJSON, "/dev/full")
	for range 3 {
		err := b.Log(sample(ids, "cluster.add"))
		var le *LogError
		if !errors.As(err, &le) {
			t.Fatalf("Log on /dev/full: %v, want a *LogError", err)
		}
		var se *SinkError
		if !errors.As(err, &se) || !errors.Is(err, syscall.ENOSPC) || se.Target != e.json {
			t.Fatalf("error %v does not name the sink and ENOSPC", err)
		}
		if le.Seq != 2 {
			t.Errorf("refused record would have had seq %d, want 2 (reused)", le.Seq)
		}
		e.clock.add(time.Second)
	}
	st := b.Stats()
	if st.Refused != 3 || st.Outages != 1 || st.OutageSince.IsZero() || st.Sinks[0].Failures != 3 || !st.Sinks[0].Failing {
		t.Errorf("stats during the outage: %+v", st)
	}
	restore()
	if err := b.Log(sample(ids, "cluster.add")); err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, e.json)
	if got := events(recs); !slices.Equal(got, []string{"audit.open", "command.completed", "audit.recovered"}) {
		t.Fatalf("events %v", got)
	}
	rec := recs[2]
	if rec.Extras.Elapsed == nil || *rec.Extras.Elapsed < 3*time.Second || *rec.Extras.Elapsed > 3*time.Second+time.Millisecond {
		t.Errorf("outage duration %v, want ~3s", rec.Extras.Elapsed)
	}
	if !strings.Contains(rec.Reason, "3 records refused") || !strings.Contains(rec.Reason, "first record taken after it: seq 2") {
		t.Errorf("reason %q", rec.Reason)
	}
	if recs[1].Seq != 2 || rec.Seq != 3 {
		t.Errorf("seqs %d %d", recs[1].Seq, rec.Seq)
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); !st.OutageSince.IsZero() || st.Sinks[0].Failing {
		t.Errorf("stats after recovery: %+v", st)
	}
}

func TestFailOpen(t *testing.T) {
	e := newEnv(t)
	e.text = ""
	var warned []string
	b := e.open(t, func(o *Options) {
		o.FailOpen = true
		o.Warnf = func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }
	})
	restore := swapTo(t, b, FormatJSON, "/dev/full")
	if err := b.Log(sample(testIDs(), "cluster.add")); err != nil {
		t.Fatalf("fail-open Log returned %v", err)
	}
	if st := b.Stats(); st.Refused != 1 {
		t.Errorf("refused %d", st.Refused)
	}
	if len(warned) == 0 || !strings.Contains(warned[0], "audit_fail_open") {
		t.Errorf("warnings %q", warned)
	}
	restore()
	if err := b.Log(sample(testIDs(), "cluster.add")); err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, e.json)
	if got := events(recs); !slices.Equal(got, []string{"audit.open", "audit.fail_open", "command.completed", "audit.recovered"}) {
		t.Fatalf("events %v", got)
	}
	if !strings.Contains(recs[3].Reason, "unrecorded") {
		t.Errorf("reason %q", recs[3].Reason)
	}
}

// TestOneSinkFailing: the text sink fails, JSON takes the records: Log
// succeeds, the JSON file says which sink failed and when it came back,
// and the text file, back, carries on.
func TestOneSinkFailing(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	ids := testIDs()
	restore := swapTo(t, b, FormatText, "/dev/full")
	for range 2 {
		if err := b.Log(sample(ids, "cluster.add")); err != nil {
			t.Fatalf("Log with one sink left: %v", err)
		}
	}
	e.clock.add(2 * time.Second)
	restore()
	if err := b.Log(sample(ids, "cluster.remove")); err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, e.json)
	want := []string{"audit.open", "command.completed", "audit.sink_failed", "command.completed", "command.completed", "audit.sink_recovered"}
	if got := events(recs); !slices.Equal(got, want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	if f := recs[2]; f.Result != ResultErr || f.ErrorCode != "ENOSPC" || !strings.Contains(f.Target, e.text) {
		t.Errorf("sink_failed record %+v", f)
	}
	if r := recs[5]; r.Extras.Elapsed == nil || *r.Extras.Elapsed < 2*time.Second || !strings.Contains(r.Reason, "2 failed writes") {
		t.Errorf("sink_recovered record %+v", r)
	}
	text := lines(t, e.text)
	if len(text) != 3 || !strings.Contains(text[1], "seq=5,") || !strings.Contains(text[2], "event=audit.sink_recovered") {
		t.Errorf("text sink after recovery:\n%s", strings.Join(text, "\n"))
	}
	if st := b.Stats(); st.Sinks[0].Failures != 2 || st.Refused != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestJSONGapIsAnchored: records the JSON sink missed (text took them) are
// a declared gap: the next JSON record carries prev_seq/prev_chain, and
// the file verifies.
func TestJSONGapIsAnchored(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	ids := testIDs()
	restore := swapTo(t, b, FormatJSON, "/dev/full")
	for range 3 {
		if err := b.Log(sample(ids, "cluster.add")); err != nil {
			t.Fatal(err)
		}
	}
	restore()
	if err := b.Log(sample(ids, "cluster.add")); err != nil {
		t.Fatal(err)
	}
	ls := lines(t, e.json)
	recs := decodeAll(t, e.json)
	if len(recs) != 3 || recs[1].Seq != 6 {
		t.Fatalf("JSON has %v (seqs %d…)", events(recs), recs[len(recs)-1].Seq)
	}
	_, link, _ := DecodeJSON([]byte(ls[1]))
	if link.PrevSeq == nil || *link.PrevSeq != 1 {
		t.Errorf("record after the gap: prev_seq %v, want 1", link.PrevSeq)
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatal(err)
	}
	text := lines(t, e.text)
	if len(text) != 7 || !strings.Contains(text[2], "event=audit.sink_failed") {
		t.Errorf("text:\n%s", strings.Join(text, "\n"))
	}
}

func TestRestartContinuesChain(t *testing.T) {
	e := newEnv(t)
	ids := testIDs()
	for boot := 1; boot <= 3; boot++ {
		b, err := Open(e.options())
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := b.Log(sample(ids, "cluster.add")); err != nil {
				t.Fatal(err)
			}
		}
		b.Close()
	}
	recs := decodeAll(t, e.json)
	if len(recs) != 9 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.BootGeneration != uint64(i/3+1) {
			t.Errorf("record %d: seq %d boot %d", i, r.Seq, r.BootGeneration)
		}
	}
	if !strings.Contains(recs[3].Reason, "continues its chain after seq 3") {
		t.Errorf("second audit.open: %q", recs[3].Reason)
	}
	sum, err := VerifySummary(mustOpen(t, e.json), e.keyBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 9 || sum.LastSeq != 9 || sum.Anchors != 3 {
		t.Errorf("summary %+v", sum)
	}
}

// TestTextOnlyRestart: with no JSON sink, seq and boot carry on from the
// text file, and a torn last line is not glued to the next record.
func TestTextOnlyRestart(t *testing.T) {
	e := newEnv(t)
	e.json = ""
	b := e.open(t)
	b.Log(sample(testIDs(), "cluster.add"))
	b.Close()
	f, _ := os.OpenFile(e.text, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("[- - - -]\tAUDIT\tComm")
	f.Close()
	b2 := e.open(t)
	b2.Log(sample(testIDs(), "cluster.add"))
	ls := lines(t, e.text)
	if len(ls) != 5 || ls[2] != "[- - - -]\tAUDIT\tComm" {
		t.Fatalf("text file:\n%s", strings.Join(ls, "\n"))
	}
	for i, want := range map[int]string{3: "seq=3, boot=2,", 4: "seq=4, boot=2,"} {
		if !strings.Contains(ls[i], want) {
			t.Errorf("line %d: %s, want %s", i+1, ls[i], want)
		}
	}
}

func TestRestartWithAnotherKeyIsNoted(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	b.Close()
	if err := os.WriteFile(e.key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b2 := e.open(t)
	b2.Close()
	recs := decodeAll(t, e.json)
	// The head sealed with the old key no longer unseals: tampering, or
	// at least truncation that can no longer be ruled out.
	if recs[1].Code != CodeAuditTamper || recs[1].ErrorCode != "head_invalid" || !strings.Contains(recs[1].Reason, "the seal does not match") {
		t.Errorf("record 2: %s %s %q", recs[1].Code, recs[1].ErrorCode, recs[1].Reason)
	}
	if !strings.Contains(recs[2].Reason, "does not verify with the HMAC key") {
		t.Errorf("reason %q", recs[2].Reason)
	}
}

// TestReopenRotation is logrotate: rename, then Reopen. Each file
// verifies on its own; the new file's first record links to the old
// file's last chain; both sinks have the rotation record.
func TestReopenRotation(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	ids := testIDs()
	b.Log(sample(ids, "cluster.add"))
	for _, p := range []string{e.json, e.text} {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	b.Log(sample(ids, "cluster.add")) // still to the renamed files
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	b.Log(sample(ids, "backend.add"))
	key := e.keyBytes(t)
	oldSum, err := VerifySummary(mustOpen(t, e.json+".1"), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySummary(mustOpen(t, e.json), key); err == nil || !strings.Contains(err.Error(), "--rotated") {
		t.Errorf("the new file verified as a whole trail: %v", err)
	}
	newSum, err := VerifyWith(mustOpen(t, e.json), key, VerifyOptions{Rotated: true})
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(t, e.json)
	first, link, _ := DecodeJSON([]byte(ls[0]))
	if first.Code != CodeAuditReopen || link.PrevSeq == nil || *link.PrevSeq != oldSum.LastSeq || link.PrevChain != oldSum.LastChain {
		t.Errorf("rotation record %+v link %+v, old file ends at seq %d %s", first, link, oldSum.LastSeq, oldSum.LastChain)
	}
	if !strings.Contains(first.Reason, e.json+": new file") {
		t.Errorf("reason %q", first.Reason)
	}
	if newSum.FirstSeq != oldSum.LastSeq+1 || newSum.FirstPrevSeq != oldSum.LastSeq {
		t.Errorf("new file starts at seq %d, old ends at %d", newSum.FirstSeq, oldSum.LastSeq)
	}
	text := lines(t, e.text)
	if len(text) != 2 || !strings.Contains(text[0], "event=audit.reopen") {
		t.Errorf("new text file:\n%s", strings.Join(text, "\n"))
	}
	fi, _ := os.Stat(e.json)
	if fi.Mode().Perm() != FileMode {
		t.Errorf("new file mode %v", fi.Mode())
	}
	// A reopen without rotation keeps appending to the same file.
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWith(mustOpen(t, e.json), key, VerifyOptions{Rotated: true}); err != nil {
		t.Fatal(err)
	}
	if recs := decodeAll(t, e.json); !strings.Contains(recs[len(recs)-1].Reason, ": same file") {
		t.Errorf("reason %q", recs[len(recs)-1].Reason)
	}
}

func TestReopenFailureKeepsTheOldFile(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	os.Rename(e.json, e.json+".1")
	if err := os.Symlink("/etc/passwd", e.json); err != nil {
		t.Fatal(err)
	}
	err := b.Reopen()
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Reopen over a symlink: %v", err)
	}
	recs := decodeAll(t, e.json+".1")
	if last := recs[len(recs)-1]; last.Code != CodeAuditReopen || last.Result != ResultErr || last.ErrorCode != "reopen_failed" {
		t.Errorf("last record %+v", last)
	}
}

func TestTornTailAtOpen(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	b.Log(sample(testIDs(), "cluster.add"))
	b.Close()
	f, _ := os.OpenFile(e.json, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"ts":"2025-`)
	f.Close()
	b2 := e.open(t)
	b2.Log(sample(testIDs(), "cluster.add"))
	ls := lines(t, e.json)
	if len(ls) != 5 || ls[2] != `{"ts":"2025-` {
		t.Fatalf("file:\n%s", strings.Join(ls, "\n"))
	}
	r, _, err := DecodeJSON([]byte(ls[3]))
	if err != nil || !strings.Contains(r.Reason, "cut-short record") || r.ErrorCode != "chain_anomaly" {
		t.Errorf("audit.open after a torn tail: %v %q", err, r.Reason)
	}
	var ve *VerifyError
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); !errors.As(err, &ve) || ve.Line != 3 {
		t.Errorf("Verify: %v, want the torn line 3 named", err)
	}
}

func TestValidateFile(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	b.Log(sample(testIDs(), "cluster.add"))
	if err := ValidateFile(mustOpen(t, e.json)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(e.json)
	bad := append(data, []byte(`{"ts":1}`+"\n")...)
	if err := ValidateFile(strings.NewReader(string(bad))); err == nil || !strings.HasPrefix(err.Error(), "line 3: ") {
		t.Errorf("got %v", err)
	}
}

func TestLogRefusesMalformedRecords(t *testing.T) {
	e := newEnv(t)
	b := e.open(t)
	var re *RecordError
	if err := b.Log(&Record{Verb: "cluster.add", Code: "SZ9999", Result: ResultOK}); !errors.As(err, &re) {
		t.Fatalf("got %v", err)
	}
	if n := len(lines(t, e.json)); n != 1 {
		t.Errorf("a malformed record was written (%d lines)", n)
	}
	b.Close()
	if err := b.Log(sample(testIDs(), "cluster.add")); !errors.Is(err, ErrClosed) {
		t.Errorf("Log after Close: %v", err)
	}
	if err := b.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close: %v", err)
	}
}

func TestOpenNeedsASink(t *testing.T) {
	if _, err := Open(Options{}); err == nil || !strings.Contains(err.Error(), "audit_logs_target") {
		t.Errorf("got %v", err)
	}
	e := newEnv(t)
	o := e.options()
	o.HMACKeyFile = ""
	if _, err := Open(o); err == nil || !strings.Contains(err.Error(), "audit_hmac_key_file") {
		t.Errorf("got %v", err)
	}
}

// BenchmarkLog measures the cost of a record on the test's filesystem,
// with and without fdatasync per record (audit_fsync).
func BenchmarkLog(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			dir := b.TempDir()
			br, err := Open(Options{TextTarget: dir + "/a.log", JSONTarget: dir + "/a.json", HMACKeyFile: dir + "/k", Fsync: fsync})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			ids := testIDs()
			rec := sample(ids, "cluster.add")
			b.ResetTimer()
			for b.Loop() {
				if err := br.Log(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
