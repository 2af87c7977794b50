package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// CheckSocketDir reports why dir is no safe home for the command socket, or
// nil. Whoever may write in the socket's directory may unlink the socket and
// bind their own in its place; clients would then hand it their requests,
// certificate keys included. So:
//
//   - dir must be owned by root or by euid (the supervisor's own user), and
//     writable by neither its group nor others, sticky bit or not: a sticky
//     directory still lets anyone create the path while the supervisor is
//     down, and its group would still see a socket it may not remove as
//     something it can squat on restart;
//   - every directory above it must be owned by root or euid and, when
//     writable by its group or others, be sticky (as /tmp is): otherwise the
//     directory holding the socket could be renamed away and replaced.
//
// The path is checked as written and as resolved. A symbolic link in it
// must be owned by root or euid (its owner may point it elsewhere at any
// time, even in a sticky directory); the directory holding it is checked
// next. The error names the directory or link, its mode and its owner.
//
// The CLI applies the same rules to decide whether the owner of a socket
// directory may be trusted as the supervisor's uid.
func CheckSocketDir(dir string, euid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("command socket directory %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("command socket directory %s: %w", dir, err)
	}
	for _, d := range []string{abs, real} {
		for p, first := d, true; ; p, first = filepath.Dir(p), false {
			if err := checkDirEntry(p, first, euid); err != nil {
				return err
			}
			if p == filepath.Dir(p) {
				break
			}
		}
	}
	return nil
}

// checkDirEntry checks one directory of CheckSocketDir's walk: own is true
// for the socket's own directory. A symbolic link is checked for its owner
// only (the directory holding it is checked next); the resolved walk checks
// its target.
func checkDirEntry(p string, own bool, euid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("command socket directory %s: %w", p, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != euid {
			return fmt.Errorf("the command socket path goes through %s, a symbolic link owned by uid %d, neither root nor the supervisor's uid %d: its owner could point it at a socket of its own; refusing to start (name the real directory)",
				p, st.Uid, euid)
		}
		return nil
	}
	if !fi.IsDir() {
		return fmt.Errorf("command socket directory %s is not a directory", p)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("command socket directory %s: no owner information", p)
	}
	perm, owner := fi.Mode().Perm(), int(st.Uid)
	what := "the command socket directory"
	if !own {
		what = "a directory above the command socket"
	}
	switch {
	case owner != 0 && owner != euid:
		return fmt.Errorf("%s, %s (mode %04o, owner uid %d, group gid %d), is owned by neither root nor the supervisor's uid %d: its owner could replace the socket; refusing to start",
			what, p, modeBits(fi), owner, st.Gid, euid)
	case own && perm&0o022 != 0, !own && perm&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		who := "its group"
		if perm&0o002 != 0 {
			who = "everyone (world-writable)"
		}
		return fmt.Errorf("%s, %s (mode %04o, owner uid %d, group gid %d), is writable by %s, who could replace the socket; refusing to start (make it 0755 or stricter, owned by root or uid %d)",
			what, p, modeBits(fi), owner, st.Gid, who, euid)
	}
	return nil
}

// modeBits is fi's permission bits with setuid, setgid and sticky, as chmod
// takes them.
func modeBits(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// listenCommandSocket creates the command socket at path, mode 0600, or
// 0660 owned by group when group is not empty (so that the uids given roles
// can connect at all: the kernel's permission check stays the first gate).
//
// It refuses to start when the socket's directory could let someone else
// replace the socket (see CheckSocketDir) or when the path is a symbolic
// link. A stale socket left by a previous run is removed; any other kind of
// file at the path is an error. The socket is created under a umask that leaves no
// window in which it is reachable with a wider mode.
func listenCommandSocket(path, group string) (*net.UnixListener, error) {
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("command_socket_group %q: %w", group, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("command_socket_group %q: gid %q", group, g.Gid)
		}
	}
	if err := CheckSocketDir(filepath.Dir(path), os.Geteuid()); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("command socket path %s is a symbolic link: refusing to use it", path)
	case err == nil && fi.Mode()&fs.ModeSocket != 0:
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale command socket %s: %w", path, err)
		}
	case err == nil:
		return nil, fmt.Errorf("command socket path %s exists and is not a socket (%s)", path, fi.Mode().Type())
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("command socket path %s: %w", path, err)
	}

	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("command socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	mode := os.FileMode(0o600)
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("command socket %s: chown to group %s: %w", path, group, err)
		}
		mode = 0o660
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("command socket %s: chmod %04o: %w", path, mode, err)
	}
	return l, nil
}
