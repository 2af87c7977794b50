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

	"golang.org/x/sys/unix"
)

// listenCommandSocket creates the command socket at path, mode 0600, or
// 0660 owned by group when group is not empty (so that the uids given roles
// can connect at all: the kernel's permission check stays the first gate).
//
// It refuses to start when the socket's directory is writable by everyone
// (anyone could replace the socket) or when the path is a symbolic link. A
// stale socket left by a previous run is removed; any other kind of file at
// the path is an error. The socket is created under a umask that leaves no
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
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("command socket directory %s: %w", dir, err)
	}
	if !di.IsDir() {
		return nil, fmt.Errorf("command socket directory %s is not a directory", dir)
	}
	if di.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("command socket directory %s is world-writable (mode %04o): refusing to create the socket there", dir, di.Mode().Perm())
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
