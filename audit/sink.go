package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/supervisor/safefile"
)

// Format is the form a sink writes.
type Format int

const (
	FormatText Format = iota // audit_logs_target: Record.Text lines
	FormatJSON               // audit_logs_json_target: chained JSON lines
)

func (f Format) String() string {
	if f == FormatJSON {
		return "JSON"
	}
	return "text"
}

// File and directory modes of sinks, applied whatever the umask.
const (
	FileMode = 0o640
	DirMode  = 0o750
)

// Targets that name the process's standard streams instead of a file.
// They are never closed, reopened or read back; a JSON chain on them
// starts afresh at every boot.
const (
	TargetStdout = "stdout"
	TargetStderr = "stderr"
)

// SinkError is a sink failure: which sink, which operation, why. Errors of
// Open are operator errors (a path, a mode, a symlink: shown verbatim);
// errors of write are environment failures (disk full, I/O error).
type SinkError struct {
	Format Format
	Target string
	Op     string // "open", "write", "fsync", "reopen", …
	Err    error
}

func (e *SinkError) Error() string {
	return fmt.Sprintf("audit %s sink %s: %s: %v", e.Format, e.Target, e.Op, e.Err)
}

func (e *SinkError) Unwrap() error { return e.Err }

// errSymlink is the reason a symlink at a sink path is refused.
var errSymlink = errors.New("is a symbolic link: refusing it (O_NOFOLLOW); point the target at the real file")

// sink is one open target. The broker's lock serialises every use.
type sink struct {
	format  Format
	target  string
	f       *os.File
	std     bool // stdout or stderr
	regular bool // a regular file: fsync, read back, repair short writes
	fsync   bool
	dev     uint64
	ino     uint64

	// The JSON chain as this file holds it.
	lastSeq   uint64
	lastChain [32]byte
	anchor    bool // the next record carries prev_seq and prev_chain
	torn      bool // the file ends inside a line: start the next write with '\n'
	// tail is the file's last records as resume found them, oldest
	// first, for the comparison with the sealed head (checkHead).
	tail []tailRec

	failing   bool
	failSince time.Time
	failures  uint64
	lastErr   error
}

// openSink opens target for appending. notes collects facts worth stating
// in the audit.open record (file created, mode tightened).
func openSink(format Format, target string, fsync bool) (*sink, []string, error) {
	s := &sink{format: format, target: target, fsync: fsync, anchor: true}
	switch target {
	case TargetStdout:
		s.f, s.std = os.Stdout, true
		return s, nil, nil
	case TargetStderr:
		s.f, s.std = os.Stderr, true
		return s, nil, nil
	case "":
		return nil, nil, &SinkError{format, `""`, "open", errors.New("empty target")}
	}
	f, notes, err := openAppend(target)
	if err != nil {
		return nil, nil, &SinkError{format, target, "open", err}
	}
	s.f = f
	if err := s.stat(); err != nil {
		f.Close()
		return nil, nil, &SinkError{format, target, "open", err}
	}
	return s, notes, nil
}

// stat records what kind of file s.f is and its identity.
func (s *sink) stat() error {
	var st unix.Stat_t
	if err := fstat(s.f, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	s.regular = st.Mode&unix.S_IFMT == unix.S_IFREG
	s.dev, s.ino = st.Dev, st.Ino
	return nil
}

// openAppend opens path O_WRONLY|O_APPEND|O_CLOEXEC|O_NOFOLLOW, creating it
// (and its missing parent directories, DirMode) with FileMode when absent.
// No component of path may be a symbolic link: its directory is reached
// and created with safefile.MkdirAll (and must be owned by root or this
// process's user and not writable by others, safefile.CheckDir), and the
// file is opened relative to that directory. An existing file must pass
// safefile.CheckSink (trusted owner; a regular file with one link, a FIFO
// or a character device). An existing regular file with more permissions
// than FileMode is tightened to FileMode; one with fewer is left as it
// is. Devices and FIFOs are written as they are (a FIFO with no reader is
// refused rather than waited for).
func openAppend(path string) (*os.File, []string, error) {
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	dir, _, err := safefile.MkdirAll(filepath.Dir(abs), DirMode)
	if err != nil {
		return nil, nil, pathError(abs, err)
	}
	defer dir.Close()
	dfd, base := int(dir.Fd()), filepath.Base(abs)
	var notes []string
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat(dfd, base, flags, 0)
		if err == nil {
			f, err := adopt(fd, path)
			if err != nil {
				return nil, nil, err
			}
			if err := checkSink(f, abs); err != nil {
				f.Close()
				return nil, nil, err
			}
			if n, err := tighten(f); err != nil {
				f.Close()
				return nil, nil, err
			} else if n != "" {
				notes = append(notes, n)
			}
			return f, notes, nil
		}
		switch {
		case errors.Is(err, unix.ELOOP):
			return nil, nil, errSymlink
		case errors.Is(err, unix.ENXIO):
			return nil, nil, errors.New("is a FIFO with no reader")
		case !errors.Is(err, unix.ENOENT) || attempt > 2:
			return nil, nil, err
		}
		fd, err = unix.Openat(dfd, base, flags|unix.O_CREAT|unix.O_EXCL, FileMode)
		if errors.Is(err, unix.EEXIST) {
			continue // created meanwhile, or a symlink: open it (or refuse it) above
		}
		if err != nil {
			return nil, nil, err
		}
		if err := unix.Fchmod(fd, FileMode); err != nil { // whatever the umask
			unix.Close(fd)
			return nil, nil, fmt.Errorf("fchmod %04o: %w", FileMode, err)
		}
		f, err := adopt(fd, path)
		if err != nil {
			return nil, nil, err
		}
		dir.Sync() // best effort: the new entry survives a crash
		return f, append(notes, "created "+path), nil
	}
}

// OpenAppendFile opens path for appending with the rules of a file sink
// (openAppend: no symbolic link in any component, trusted owner, a single
// link, created FileMode in a directory created DirMode when missing),
// for another log the supervisor writes as root (log_target). A relative
// path is taken against the working directory. notes says what was
// created or tightened.
func OpenAppendFile(path string) (f *os.File, notes []string, err error) {
	return openAppend(path)
}

// checkSink applies safefile.CheckSink to the open file f.
func checkSink(f *os.File, abs string) error {
	var st unix.Stat_t
	if err := fstat(f, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	return pathError(abs, safefile.CheckSink(abs, &st))
}

// pathError drops the path from a safefile error about path itself (a
// SinkError names it already); errors about another path keep theirs.
func pathError(path string, err error) error {
	var se *safefile.Error
	if errors.As(err, &se) && se.Path == path {
		return reasonError{se}
	}
	return err
}

// reasonError is a safefile.Error worded without its path.
type reasonError struct{ e *safefile.Error }

func (r reasonError) Error() string { return r.e.Reason }
func (r reasonError) Unwrap() error { return r.e }

// adopt wraps fd, opened O_NONBLOCK so that opening a FIFO cannot block.
// A regular file gets a blocking descriptor again. A FIFO or a device
// keeps it non-blocking: its writes then wait in Go's poller and honour
// sinkWriteTimeout (sink.write), where a blocking write to a FIFO whose
// reader stopped would hold the broker's lock, and every command and the
// shutdown with it, for ever.
func adopt(fd int, path string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("clearing O_NONBLOCK: %w", err)
		}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// sinkWriteTimeout bounds a write to a sink that is not a regular file (a
// FIFO, a device): past it the write fails, as a full disk does (the
// record refused, fail-closed, or let through with fail_open).
var sinkWriteTimeout = 5 * time.Second

// tighten sets a regular file's mode to FileMode when it grants more.
func tighten(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("fstat: %w", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return "", nil
	}
	perm := fi.Mode().Perm()
	if perm&^FileMode == 0 {
		return "", nil
	}
	if err := f.Chmod(FileMode); err != nil {
		return "", fmt.Errorf("mode %04o is wider than %04o and chmod failed: %w", perm, FileMode, unwrapPath(err))
	}
	return fmt.Sprintf("mode of %s tightened from %04o to %04o", f.Name(), perm, FileMode), nil
}

// mkdirs creates dir and its missing parents with DirMode whatever the
// umask, without following any symbolic link, and checks dir with
// safefile.CheckDir (see openAppend). Existing directories keep their mode.
func mkdirs(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	d, _, err := safefile.MkdirAll(abs, DirMode)
	if err != nil {
		return err
	}
	return d.Close()
}

// syncDir fsyncs a directory so that a new entry in it survives a crash.
// Best effort: a failure leaves the entry as durable as the filesystem
// makes it anyway.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// errFsync marks an fsync failure after a complete write: the record is in
// the file (accepted), but may not survive a crash.
type errFsync struct{ err error }

func (e errFsync) Error() string { return "fsync: " + e.err.Error() }
func (e errFsync) Unwrap() error { return e.err }

// write appends one line (ending in '\n') with a single write(2) call
// where the kernel allows. A short write to a regular file is cut back off
// (ftruncate) so that no partial record stays in the file; if that fails,
// the next write starts with a newline so the torn line stands alone.
func (s *sink) write(line []byte) error {
	buf := line
	if s.torn {
		buf = make([]byte, 0, len(line)+1)
		buf = append(append(buf, '\n'), line...)
	}
	if !s.regular && !s.std {
		// A FIFO or a device (adopt): a reader that stopped fails the
		// write after sinkWriteTimeout. Where the poller cannot wait for
		// the file, there is no deadline (os.ErrNoDeadline) and none is
		// needed.
		s.f.SetWriteDeadline(time.Now().Add(sinkWriteTimeout))
	}
	n, err := s.f.Write(buf)
	if err != nil {
		if n > 0 {
			s.repair(n)
		}
		return unwrapPath(err)
	}
	s.torn = false
	if s.fsync && s.regular {
		if err := unix.Fdatasync(int(s.f.Fd())); err != nil {
			return errFsync{err}
		}
	}
	return nil
}

// repair removes the n bytes a failed write left at the end of the file.
func (s *sink) repair(n int) {
	if !s.regular {
		s.torn = true
		return
	}
	var st unix.Stat_t
	fd := int(s.f.Fd())
	if unix.Fstat(fd, &st) != nil || st.Size < int64(n) || unix.Ftruncate(fd, st.Size-int64(n)) != nil {
		s.torn = true
	}
}

// resume reads the end of an existing file to carry on from its last
// record: seq and boot generation, and for a JSON file its chain and
// whether that verifies with key. It returns the last record (nil when
// none; only Seq and BootGeneration for a text file), notes, and warnings
// (anomalies) for the audit.open record. A file that does not end with a
// newline is marked torn, so the next write starts on a line of its own.
func (s *sink) resume(key []byte) (last *Record, notes, warns []string, err error) {
	if !s.regular {
		return nil, nil, nil, nil
	}
	fi, err := s.f.Stat()
	if err != nil {
		return nil, nil, nil, &SinkError{s.format, s.target, "open", fmt.Errorf("fstat: %w", unwrapPath(err))}
	}
	r, err := s.reader()
	if err != nil {
		return nil, nil, nil, &SinkError{s.format, s.target, "open", fmt.Errorf("reading it back: %w", unwrapPath(err))}
	}
	defer r.Close()
	t, err := readTail(r, fi.Size(), headScanLines)
	if err != nil {
		return nil, nil, nil, &SinkError{s.format, s.target, "open", fmt.Errorf("reading its last record: %w", err)}
	}
	if t.torn > 0 {
		s.torn = true
		warns = append(warns, fmt.Sprintf("%s ends with %d bytes of a cut-short record (no newline): left in place, 'audit verify' reports it", s.target, t.torn))
	}
	if len(t.lines) == 0 {
		if fi.Size() > 0 {
			warns = append(warns, fmt.Sprintf("no complete record found at the end of %s: its sequence restarts", s.target))
		}
		return nil, nil, warns, nil
	}
	line := t.lines[len(t.lines)-1]
	if s.format == FormatText {
		m := textSeqPattern.FindSubmatch(line)
		if m == nil {
			warns = append(warns, fmt.Sprintf("the last line of %s is not a text audit record: its sequence restarts", s.target))
			return nil, nil, warns, nil
		}
		seq, err1 := strconv.ParseUint(string(m[1]), 10, 64)
		boot, err2 := strconv.ParseUint(string(m[2]), 10, 64)
		if err1 != nil || err2 != nil {
			warns = append(warns, fmt.Sprintf("the last line of %s has an unreadable seq or boot: its sequence restarts", s.target))
			return nil, nil, warns, nil
		}
		s.lastSeq, s.tail = seq, parseTail(s.format, t.lines)
		return &Record{Seq: seq, BootGeneration: boot}, nil, warns, nil
	}
	canonical, chainHex, err := splitChain(line)
	var rec Record
	var link Link
	if err == nil {
		rec, link, err = DecodeJSON(line)
	}
	if err != nil {
		warns = append(warns, fmt.Sprintf("the last line of %s is not an audit record (%v): the chain restarts", s.target, err))
		return nil, nil, warns, nil
	}
	chain, _ := decodeChain(chainHex)
	s.lastSeq, s.lastChain, s.tail = rec.Seq, chain, parseTail(s.format, t.lines)
	// Check the last record against the key: catches a changed key file.
	var prev [32]byte
	known := false
	if link.PrevSeq != nil {
		prev, known = decodeChain(link.PrevChain)
	} else if len(t.lines) >= 2 {
		if _, h, err := splitChain(t.lines[len(t.lines)-2]); err == nil {
			prev, known = decodeChain(h)
		}
	}
	if known && chainOf(key, prev, canonical) != chain {
		warns = append(warns, fmt.Sprintf("the last record of %s (seq %d) does not verify with the HMAC key: wrong key file, or the file was edited", s.target, rec.Seq))
	}
	notes = append(notes, fmt.Sprintf("%s continues its chain after seq %d", s.target, rec.Seq))
	return &rec, notes, warns, nil
}

// textSeqPattern finds seq and boot in a text record (Record.Text writes
// them in this order, right after the code).
var textSeqPattern = regexp.MustCompile(`\tAUDIT\tCommand\(verb=[^,]*, event=[^,]*, code=SZ[0-9]{4}, seq=([0-9]+), boot=([0-9]+),`)

// reader opens the sink's file again for reading, through /proc/self/fd
// so that it is the very file we append to (our fd is O_WRONLY), not
// whatever the path names by now.
func (s *sink) reader() (*os.File, error) {
	return os.Open(fmt.Sprintf("/proc/self/fd/%d", fdOf(s.f)))
}

// fdOf is f's descriptor, read through SyscallConn: f.Fd() would put a
// FIFO's descriptor back in blocking mode (os.File.Fd), and its write
// deadline (sink.write) out of force.
func fdOf(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(d uintptr) { fd = int(d) })
	}
	return fd
}

// fstat is unix.Fstat of f's descriptor (fdOf).
func fstat(f *os.File, st *unix.Stat_t) error {
	return unix.Fstat(fdOf(f), st)
}

// reopen opens the target again (logrotate moved it away) and swaps the
// file in. On failure the old file stays in use, so nothing is lost.
// It reports whether the new file is a different file from the old one.
func (s *sink) reopen() (bool, error) {
	if s.std {
		return false, nil
	}
	f, _, err := openAppend(s.target)
	if err != nil {
		return false, &SinkError{s.format, s.target, "reopen", err}
	}
	old, oldDev, oldIno := s.f, s.dev, s.ino
	s.f = f
	if err := s.stat(); err != nil {
		s.f = old
		f.Close()
		return false, &SinkError{s.format, s.target, "reopen", err}
	}
	if s.regular {
		unix.Fdatasync(int(old.Fd()))
	}
	old.Close()
	s.anchor = true
	s.torn = false
	if fi, err := s.f.Stat(); err == nil && fi.Size() > 0 && s.regular {
		if r, err := s.reader(); err == nil {
			if t, err := readTail(r, fi.Size(), 1); err == nil && t.torn > 0 {
				s.torn = true
			}
			r.Close()
		}
	}
	return s.dev != oldDev || s.ino != oldIno, nil
}

func (s *sink) close() error {
	if s.std {
		return nil
	}
	if s.regular {
		unix.Fdatasync(int(s.f.Fd()))
	}
	return s.f.Close()
}

// encodeJSON returns the JSON line of w as this sink's chain continues it,
// and the chain it will have once written.
func (s *sink) encodeJSON(key []byte, w wireRecord) ([]byte, [32]byte, error) {
	if s.anchor {
		ps, pc := s.lastSeq, hex.EncodeToString(s.lastChain[:])
		w.PrevSeq, w.PrevChain = &ps, &pc
	}
	canonical, err := marshalCanonical(&w)
	if err != nil {
		return nil, [32]byte{}, err
	}
	chain := chainOf(key, s.lastChain, canonical)
	return appendChain(canonical, hex.EncodeToString(chain[:])), chain, nil
}

// errnoName names a system error for error_code ("ENOSPC"), or "" when err
// carries no errno.
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno_%d", int(errno))
	}
	return ""
}
