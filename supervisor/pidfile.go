package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The PID file (pid_file_path): one line, the supervisor's pid in decimal.
// It is written atomically at start (a temporary file in the same
// directory, mode 0644 whatever the umask, fsync, rename), rewritten by the
// new supervisor of a hot upgrade, and removed on a clean exit when it
// still names this process. A file naming a live sozu supervisor other than
// this one refuses the start; a file naming a dead process, or a live
// process that is not a sozu (a recycled pid), is stale and replaced with a
// warning.

// maxPIDFile bounds what is read of an existing PID file.
const maxPIDFile = 64

// parsePIDFile reads the pid of a PID file's content: decimal digits,
// optionally surrounded by blanks and one trailing newline, between 1 and
// the kernel's largest pid (2^22).
func parsePIDFile(data []byte) (int, error) {
	text := string(bytes.TrimSpace(data))
	if text == "" {
		return 0, errors.New("empty: no pid")
	}
	for _, r := range text {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a decimal pid", clampEcho(text))
		}
	}
	pid, err := strconv.Atoi(text)
	if err != nil || pid < 1 || pid > 1<<22 {
		return 0, fmt.Errorf("%q is not a pid (1..%d)", clampEcho(text), 1<<22)
	}
	return pid, nil
}

// pidHolder says who an existing PID file names, for claimPIDFile.
type pidHolder int

const (
	holderNone  pidHolder = iota // no file, or a file naming no live process
	holderSozu                   // a live sozu supervisor
	holderOther                  // a live process that is not a sozu: the pid was recycled
)

// processIsSozu reports whether the live process pid runs a sozu binary:
// its /proc/PID/exe names a file called like ours (a replaced binary reads
// "… (deleted)"), or its argv[0] does. A process whose exe cannot be read
// counts as a sozu, so that doubt refuses the start rather than taking a
// running proxy's PID file.
func processIsSozu(pid int, self string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return true
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	if base == filepath.Base(self) || base == "sozu" {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(argv0)) == "sozu"
}

// processAlive reports whether pid names a process that is not a zombie.
func processAlive(pid int) bool {
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S …": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// classifyPID says who pid is, for a PID file naming it.
func classifyPID(pid int, self string) pidHolder {
	switch {
	case !processAlive(pid):
		return holderNone
	case processIsSozu(pid, self):
		return holderSozu
	default:
		return holderOther
	}
}

// claimPIDFile writes pid into the PID file at path. An existing file is
// read first (O_NOFOLLOW, at most maxPIDFile bytes): when it names a live
// sozu other than pid and predecessor (the supervisor handing over in a hot
// upgrade; 0 = none), the start is refused with an error naming the file
// and the pid; when it is unreadable, malformed, or names a dead process or
// one that is not a sozu, it is replaced and the returned warning says why.
// classify is classifyPID, or a test's stand-in.
func claimPIDFile(path string, pid, predecessor int, classify func(int) pidHolder) (warning string, err error) {
	data, rerr := readPIDFile(path)
	switch {
	case errors.Is(rerr, fs.ErrNotExist):
	case rerr != nil:
		return "", fmt.Errorf("pid_file_path %s: %w", path, rerr)
	default:
		old, perr := parsePIDFile(data)
		switch {
		case perr != nil:
			warning = fmt.Sprintf("pid_file_path %s: replacing a malformed PID file (%v)", path, perr)
		case old == pid || (predecessor != 0 && old == predecessor):
		default:
			switch classify(old) {
			case holderSozu:
				return "", fmt.Errorf("pid_file_path %s names pid %d, a running sozu: another supervisor runs with this PID file; refusing to start (stop it, or remove the file if that process is not a sozu supervisor)", path, old)
			case holderOther:
				warning = fmt.Sprintf("pid_file_path %s: replacing a stale PID file: pid %d is alive but is not a sozu (a recycled pid)", path, old)
			default:
				warning = fmt.Sprintf("pid_file_path %s: replacing a stale PID file: pid %d is not running", path, old)
			}
		}
	}
	return warning, writePIDFile(path, pid)
}

// readPIDFile reads the PID file at path without following a symbolic
// link. A link, or anything but a regular file, is an error.
func readPIDFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, errors.New("is a symbolic link: refusing it")
		}
		return nil, unwrapPathErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	}
	return io.ReadAll(io.LimitReader(f, maxPIDFile))
}

// writePIDFile replaces the file at path with pid, atomically: path's
// directory gets a new temporary file (O_EXCL, O_NOFOLLOW, mode 0644
// whatever the umask), fsync'ed and renamed over path.
func writePIDFile(path string, pid int) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("pid_file_path %s: creating %s: %w", path, tmp, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	fail := func(op string, err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("pid_file_path %s: %s %s: %w", path, op, tmp, unwrapPathErr(err))
	}
	if err := f.Chmod(0o644); err != nil {
		return fail("chmod 0644", err)
	}
	if _, err := f.WriteString(strconv.Itoa(pid) + "\n"); err != nil {
		return fail("writing", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid_file_path %s: closing %s: %w", path, tmp, unwrapPathErr(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid_file_path %s: renaming %s over it: %w", path, tmp, unwrapPathErr(err))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removePIDFile removes the PID file at path if it still names pid (a
// successor may have rewritten it). Errors are returned for the log.
func removePIDFile(path string, pid int) error {
	data, err := readPIDFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("pid_file_path %s: %w", path, err)
	}
	if old, err := parsePIDFile(data); err != nil || old != pid {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pid_file_path %s: removing it: %w", path, unwrapPathErr(err))
	}
	return nil
}

// unwrapPathErr drops the path an *os.PathError repeats, for errors that
// already name the file.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
