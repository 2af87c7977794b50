// Package safefile opens the files and directories a configuration names
// (answers, certificates, keys, audit sinks) as the supervisor, often root,
// without following any symbolic link and only when their owner and mode
// show that no other user could have planted or changed them.
//
// Every path must be absolute. No component of it may be a symbolic link:
// paths are resolved with openat2(RESOLVE_NO_SYMLINKS), or, where the kernel
// lacks openat2, by opening one component at a time with O_NOFOLLOW. The
// rules on what is opened (Rules) are checked on the open descriptor
// (fstat), so nothing can be swapped in between check and use. Only the
// file itself (or, for MkdirAll and OpenDir, the last directory) is held to
// the owner and mode rules; the directories above it must only not be
// symbolic links.
//
// The package imports nothing of the project: the supervisor, its config
// package and the audit package all use it.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Size caps of the kinds of files a configuration names.
const (
	MaxAnswerSize = 1 << 20 // answer templates
	MaxPEMSize    = 1 << 20 // certificates, chains, private keys
)

// Error is a refused or failed open: Path names the file, Reason says why
// in operator terms ("is a symbolic link", "is writable by group or
// others (mode 0664)"). Err is the system error behind it, if any.
type Error struct {
	Path   string
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Unwrap returns the system error, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrRefused matches (errors.Is) every Error that is a refusal by the
// rules, not a system failure such as ENOENT or EACCES.
var ErrRefused = errors.New("refused by the file rules")

// Is reports ErrRefused for refusals (errors without an Err).
func (e *Error) Is(target error) bool { return target == ErrRefused && e.Err == nil }

func refuse(path, format string, args ...any) *Error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func failed(path, what string, err error) *Error {
	return &Error{Path: path, Reason: fmt.Sprintf("%s: %v", what, err), Err: err}
}

// TrustedOwner reports whether uid may own a file the supervisor trusts:
// root, or the user the process runs as.
func TrustedOwner(uid uint32) bool { return uid == 0 || uid == uint32(os.Geteuid()) }

// ReadFile reads the regular file at path, which must be owned by root or
// the process's user, not writable by group or others, and at most max
// bytes long. A FIFO, device, socket or directory is refused without
// blocking (the file is opened O_NONBLOCK and checked before any read).
func ReadFile(path string, max int64) ([]byte, error) {
	return readFile(path, max, false)
}

// ReadServedFile is ReadFile for a file whose bytes go to anonymous
// network clients (an answer template): it must moreover have a single
// link. Root owns its secrets too: a second name for a root-owned file
// (a hard link to /etc/shadow, made by root or, where
// fs.protected_hardlinks is off, by anyone) passes the owner and mode
// rules, and would be served.
func ReadServedFile(path string, max int64) ([]byte, error) {
	return readFile(path, max, true)
}

func readFile(path string, max int64, singleLink bool) ([]byte, error) {
	fd, err := Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, failed(path, "fstat", err)
	}
	if err := CheckFile(path, &st, max); err != nil {
		return nil, err
	}
	if singleLink && st.Nlink > 1 {
		return nil, refuse(path, "has %d hard links: it is served to clients, and another name could make it a file that must not be; give it its own file", st.Nlink)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, failed(path, "read", unwrapPath(err))
	}
	if int64(len(data)) > max {
		return nil, refuse(path, "grew beyond %s while being read", size(max))
	}
	return data, nil
}

// CheckFile applies the rules of ReadFile to st, the fstat of path.
func CheckFile(path string, st *unix.Stat_t, max int64) error {
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return refuse(path, "is %s, not a regular file", typeName(t))
	}
	if err := checkOwnerMode(path, st, 0o022, "group or others"); err != nil {
		return err
	}
	if st.Size > max {
		return refuse(path, "is %d bytes long: the limit is %s", st.Size, size(max))
	}
	return nil
}

// CheckSink refuses st (the fstat of path) unless it is a file the
// supervisor may append to: owned by root or the process's user, and a
// regular file with a single link (a hard link could make it append to
// some other file), a FIFO or a character device. Its mode is not
// checked: the audit package tightens a wider one.
func CheckSink(path string, st *unix.Stat_t) error {
	switch t := st.Mode & unix.S_IFMT; t {
	case unix.S_IFREG:
		if st.Nlink > 1 {
			return refuse(path, "has %d hard links: another name for the same file could be a file the supervisor must not write; give it its own file", st.Nlink)
		}
	case unix.S_IFIFO, unix.S_IFCHR:
	default:
		return refuse(path, "is %s: want a regular file, a FIFO or a character device", typeName(t))
	}
	return checkOwnerMode(path, st, 0, "")
}

// CheckSecret refuses st (the fstat of path) unless it is a regular file
// owned by root or the process's user, with no access at all for group
// and others, and at most max bytes long.
func CheckSecret(path string, st *unix.Stat_t, max int64) error {
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return refuse(path, "is %s, not a regular file", typeName(t))
	}
	if err := checkOwnerMode(path, st, 0, ""); err != nil {
		return err
	}
	if perm := st.Mode & 0o7777; perm&0o077 != 0 {
		return refuse(path, "is open to group or others (mode %04o): chmod 0600", perm)
	}
	if st.Size > max {
		return refuse(path, "is %d bytes long: the limit is %s", st.Size, size(max))
	}
	return nil
}

// Stat fstats path, opened O_PATH without following symlinks (it needs
// no permission on the file itself).
func Stat(path string) (*unix.Stat_t, error) {
	fd, err := Open(path, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, failed(path, "fstat", err)
	}
	return &st, nil
}

// CheckDir refuses st (the fstat of directory path) unless it is a
// directory owned by root or the process's user and not writable by
// others. Group write is allowed (Debian's /var/log is root:syslog 0775).
func CheckDir(path string, st *unix.Stat_t) error {
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFDIR {
		return refuse(path, "is %s, not a directory", typeName(t))
	}
	return checkOwnerMode(path, st, 0o002, "others")
}

func checkOwnerMode(path string, st *unix.Stat_t, forbidden uint32, who string) error {
	if !TrustedOwner(st.Uid) {
		return refuse(path, "is owned by uid %d: only root or this process's user (uid %d) may own it", st.Uid, os.Geteuid())
	}
	if perm := st.Mode & 0o7777; perm&forbidden != 0 {
		return refuse(path, "is writable by %s (mode %04o): chmod %s-w", who, perm, map[uint32]string{0o022: "go", 0o002: "o"}[forbidden])
	}
	return nil
}

// OpenDir opens the existing directory at path for reading and checks it
// with CheckDir.
func OpenDir(path string) (*os.File, error) {
	fd, err := Open(path, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, failed(path, "fstat", err)
	}
	if err := CheckDir(path, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// MkdirAll opens the directory at path, creating it and its missing
// parents with mode perm (whatever the umask), and checks it with
// CheckDir. No component may be a symbolic link. It returns the open
// directory (for openat) and the directories it created, outermost first.
func MkdirAll(path string, perm uint32) (*os.File, []string, error) {
	parts, err := split(path)
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, failed("/", "open", err)
	}
	var created []string
	cur := "/"
	for _, part := range parts {
		next := filepath.Join(cur, part)
		nfd, err := unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(fd, part, perm); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, nil, failed(next, "mkdir", err)
			} else if err == nil {
				created = append(created, next)
			}
			nfd, err = unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil && len(created) > 0 && created[len(created)-1] == next {
				if err := unix.Fchmod(nfd, perm); err != nil { // whatever the umask
					unix.Close(nfd)
					unix.Close(fd)
					return nil, nil, failed(next, fmt.Sprintf("chmod %04o", perm), err)
				}
				unix.Fsync(fd) // best effort: the new entry survives a crash
			}
		}
		unix.Close(fd)
		if err != nil {
			return nil, nil, openError(path, err)
		}
		fd, cur = nfd, next
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, failed(path, "fstat", err)
	}
	if err := CheckDir(path, &st); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), path), created, nil
}

// Open opens path with flags (O_CLOEXEC is added; O_CREAT is not allowed)
// without following any symbolic link, and returns the descriptor. It
// checks nothing else: see ReadFile, OpenDir and the Check functions.
func Open(path string, flags int) (int, error) {
	if flags&unix.O_CREAT != 0 {
		return -1, refuse(path, "safefile.Open: O_CREAT is not supported")
	}
	parts, err := split(path)
	if err != nil {
		return -1, err
	}
	flags |= unix.O_CLOEXEC
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_NO_SYMLINKS,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS):
			noOpenat2.Store(true) // kernel before 5.6, or a filter: walk instead
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EPERM):
			// Retry by walking: EPERM is what older container seccomp
			// profiles answer for openat2; if it is real, the walk says so.
		default:
			return -1, openError(path, err)
		}
	}
	return walk(path, parts, flags)
}

// noOpenat2 is set once openat2 proved unavailable; tests set it to run
// the component walk.
var noOpenat2 atomic.Bool

// walk opens path one component at a time, each O_NOFOLLOW.
func walk(path string, parts []string, flags int) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, failed("/", "open", err)
	}
	if len(parts) == 0 {
		unix.Close(fd)
		fd, err := unix.Open("/", flags, 0)
		if err != nil {
			return -1, failed("/", "open", err)
		}
		return fd, nil
	}
	for i, part := range parts {
		f := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags | unix.O_NOFOLLOW
		}
		nfd, err := unix.Openat(fd, part, f, 0)
		unix.Close(fd)
		if err != nil {
			return -1, openError(path, err)
		}
		fd = nfd
	}
	return fd, nil
}

// openError names the symbolic link in path behind ELOOP (or ENOTDIR from
// an O_DIRECTORY open of one), or wraps another error.
func openError(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		if link := firstSymlink(path); link != "" {
			if link == path {
				return refuse(path, "is a symbolic link: paths in the configuration are opened without following symlinks; name the real path")
			}
			return refuse(path, "%s is a symbolic link: paths in the configuration are opened without following symlinks; name the real path", link)
		}
	}
	if errors.Is(err, unix.ENXIO) {
		return failed(path, "open", errors.New("is a FIFO with no reader, or a socket"))
	}
	return failed(path, "open", err)
}

// firstSymlink returns the first prefix of path that is a symbolic link,
// or "" (only to word an error: the open itself never follows one).
func firstSymlink(path string) string {
	parts, err := split(path)
	if err != nil {
		return ""
	}
	cur := "/"
	for _, part := range parts {
		cur = filepath.Join(cur, part)
		var st unix.Stat_t
		if unix.Lstat(cur, &st) != nil {
			return ""
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return cur
		}
	}
	return ""
}

// split checks that path is absolute and clean and returns its components.
func split(path string) ([]string, error) {
	if !filepath.IsAbs(path) {
		return nil, refuse(path, "is not an absolute path")
	}
	if filepath.Clean(path) != path {
		return nil, refuse(path, "is not a clean path (it has //, . or .. components)")
	}
	if path == "/" {
		return nil, nil
	}
	return strings.Split(path[1:], "/"), nil
}

func typeName(t uint32) string {
	switch t {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFREG:
		return "a regular file"
	}
	return fmt.Sprintf("a file of type %#o", t)
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
