package accesslog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/logframe"
)

// TestFileShipperWritesRecordsAsTheyAre: a file shipper writes the
// encoded records with no framing, each whole; after Swap the records go
// to the new file only.
func TestFileShipperWritesRecordsAsTheyAre(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	w, _ := packetPair(t)
	main := NewShipper(w, 0, 0, "worker 0")
	file := NewFile(open("a.log"))
	s := NewFileShipper(file, 0, 0, "worker 0", main)
	go s.Run()
	defer s.Close()
	l := &Logger{Enc: Encoder{Format: JSON}, Ship: s}
	want := string(l.Enc.Append(nil, httpRecord()))
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	for range 100 {
		l.Log(httpRecord())
	}
	waitFor(t, 10*time.Second, "100 records in a.log", func() bool { return len(read("a.log")) >= 100*len(want) })
	if got := read("a.log"); got != strings.Repeat(want, 100) {
		t.Fatalf("a.log is not the 100 records as they are:\n%q", got[:min(len(got), 400)])
	}
	file.Swap(open("b.log"))
	l.Log(httpRecord())
	waitFor(t, 10*time.Second, "a record in b.log", func() bool { return read("b.log") == want })
	if n := len(read("a.log")); n != 100*len(want) {
		t.Errorf("a.log grew after the swap: %d bytes", n)
	}
	if d := s.Dropped.Load(); d != 0 {
		t.Errorf("%d records dropped", d)
	}
}

// TestFileShipperReportsDropsOnMain: records a file cannot take (here one
// open for reading only) are dropped, counted, and reported with the
// write's error on the main log's shipper, never in the access file.
func TestFileShipperReportsDropsOnMain(t *testing.T) {
	w, sup := packetPair(t)
	main := NewShipper(w, 0, 50*time.Millisecond, "worker 3")
	go main.Run()
	defer main.Close()
	f, err := os.CreateTemp(t.TempDir(), "access")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	file := NewFile(ro)
	s := NewFileShipper(file, 0, 50*time.Millisecond, "worker 3", main)
	go s.Run()
	defer s.Close()
	l := &Logger{Enc: Encoder{Format: Ascii}, Ship: s}
	l.Log(httpRecord())
	recs := readRecords(t, sup, 1)
	if r := recs[0]; r.kind != logframe.Main || !strings.Contains(r.rec, "worker 3: access log file slow or failing: dropped 1 log records") ||
		!strings.Contains(r.rec, "last error: write "+f.Name()+": bad file descriptor") {
		t.Errorf("report: %d %q", r.kind, r.rec)
	}
	if b, _ := os.ReadFile(f.Name()); len(b) != 0 || bytes.Contains(b, []byte("dropped")) {
		t.Errorf("the closed file got %q", b)
	}
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFileCutWriteEndsItsLine: after a write cut short (here a pipe that
// stops taking bytes; on a file, a full disk), the next write of a
// line-based log starts with a newline, so the cut record spoils no
// other.
func TestFileCutWriteEndsItsLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := NewFile(w)
	f.Lines = true
	defer w.Close()
	rec := []byte(strings.Repeat("x", 1<<20) + "\n") // more than the pipe holds
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := f.Write(rec)
	if err == nil || n == 0 || n >= len(rec) {
		t.Fatalf("the write was not cut: %d of %d bytes, %v", n, len(rec), err)
	}
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 64<<10)
		for len(all) < n+1+len("next\n") {
			m, err := r.Read(buf)
			all = append(all, buf[:m]...)
			if err != nil {
				break
			}
		}
		got <- all
	}()
	w.SetWriteDeadline(time.Time{})
	if _, err := f.Write([]byte("next\n")); err != nil {
		t.Fatal(err)
	}
	all := <-got
	if want := string(rec[:n]) + "\nnext\n"; string(all) != want {
		t.Fatalf("after a cut write of %d bytes the stream ends %q", n, all[max(len(all)-20, 0):])
	}
}

// blockedWriter never returns from Write until released: a file on a hung
// file system.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestBlockedFileWriteStillReported: the drops of a file shipper whose
// write never returns are still reported, by the main log's shipper.
func TestBlockedFileWriteStillReported(t *testing.T) {
	w, sup := packetPair(t)
	main := NewShipper(w, 0, 50*time.Millisecond, "worker 4")
	go main.Run()
	defer main.Close()
	bw := blockedWriter{make(chan struct{})}
	s := NewFileShipper(bw, 4, 0, "worker 4", main)
	go s.Run()
	defer func() { close(bw.release); s.Close() }()
	l := &Logger{Enc: Encoder{Format: JSON}, Ship: s}
	for range 100 {
		l.Log(httpRecord())
	}
	recs := readRecords(t, sup, 1)
	if r := recs[0]; r.kind != logframe.Main || !strings.Contains(r.rec, "worker 4: access log file slow or failing: dropped") {
		t.Errorf("report: %d %q", r.kind, r.rec)
	}
}
