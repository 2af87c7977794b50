package logtarget

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStalledFIFOReopenAndClose: a file target that is a FIFO whose
// reader stopped reading (a hung log shipper) fills the pipe; writes time
// out after the write timeout and drop, so that Reopen (SIGHUP: the
// supervisor's signal goroutine waits for it) and Close (at exit) still
// return. The file is opened as Options.OpenFile's contract says: its
// descriptor non-blocking, pollable.
func TestStalledFIFOReopenAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	rfd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(rfd) // the reader never reads; closing it frees a stuck writer
	open := func(p string) (*os.File, error) {
		fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), p), nil // non-blocking: pollable
	}
	tg, err := Open("file://"+path, Options{OpenFile: open, QueueLen: 256, WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 1023) + "\n")
	size, err := unix.FcntlInt(uintptr(rfd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Lines until the pipe is full, the writer waiting on it, then more
	// than the queue holds.
	waitFor(t, "the pipe to fill", func() bool {
		tg.Write(line)
		n, err := unix.IoctlGetInt(rfd, unix.TIOCINQ) // FIONREAD: the bytes in the pipe
		if err != nil {
			t.Fatal(err)
		}
		return n > size-len(line)
	})
	for range 300 {
		tg.Write(line)
	}
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return within 5 s: the writer is stuck on the FIFO", what)
		}
	}
	within("Reopen", func() {
		if err := tg.Reopen(); err != nil {
			t.Error(err)
		}
	})
	within("Close", tg.Close)
	if tg.Dropped() == 0 {
		t.Error("nothing dropped")
	}
}
