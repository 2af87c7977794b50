package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/supervisor"
)

// This file is the CLI's check of who serves the command socket: anyone
// who could write in the socket's directory could have replaced the
// supervisor's socket with their own, and would then receive what the
// operator sends (certificate keys included).

// ServerUIDError is a command socket served by a process whose uid the CLI
// does not trust. Nothing was sent on the connection.
type ServerUIDError struct {
	Path    string   // the socket path
	UID     uint32   // the listening process's uid, as the kernel recorded it
	Trusted []uint32 // the uids that would have been accepted
}

func (e *ServerUIDError) Error() string {
	return fmt.Sprintf("the process listening on %s runs as uid %d, not as one the CLI trusts (uids %v: root, this user, or the owner of a socket directory only its owner may write); someone may have replaced the supervisor's socket: nothing was sent",
		e.Path, e.UID, e.Trusted)
}

// trustedServerUIDs returns the uids a supervisor listening on path may run
// as: root; the CLI's own effective uid; and the owner of the socket's
// directory when the socket's path passes, for that owner, the rules the
// supervisor itself starts under (supervisor.CheckSocketDir: the directory
// writable by its owner only, every directory above it owned by root or
// that owner and writable by others only when sticky, every symbolic link
// on the way owned by root or that owner). That owner is then the
// supervisor's uid (the configuration has no key naming it); a path others
// may change, through a directory or a link, names no one.
func trustedServerUIDs(path string, euid uint32) []uint32 {
	uids := []uint32{0}
	if !slices.Contains(uids, euid) {
		uids = append(uids, euid)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return uids
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || slices.Contains(uids, st.Uid) || supervisor.CheckSocketDir(dir, int(st.Uid)) != nil || !grantedPath(dir, st.Uid) {
		return uids
	}
	return append(uids, st.Uid)
}

// grantedPath reports whether no component of dir (as written and as
// resolved) that uid owns was made by uid in a directory others may write
// in: the topmost such component must sit in a directory owned by someone
// else and writable by its owner only. In a sticky shared directory such
// as /tmp anyone may create a name the configuration uses (a directory, or
// a link to one) and own it; CheckSocketDir for that owner accepts it, but
// the owner got it by itself, not from root.
func grantedPath(dir string, uid uint32) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return false
	}
	for _, d := range []string{abs, real} {
		for p := d; p != filepath.Dir(p); p = filepath.Dir(p) {
			var st, parent unix.Stat_t
			if unix.Lstat(p, &st) != nil || unix.Lstat(filepath.Dir(p), &parent) != nil {
				return false
			}
			if st.Uid == uid && parent.Uid != uid && parent.Mode&0o022 != 0 {
				return false
			}
		}
	}
	return true
}

// checkServer reads the listening process's credentials (SO_PEERCRED,
// recorded by the kernel when it called listen) and returns a
// *ServerUIDError unless its uid is trusted for path.
func checkServer(conn *net.UnixConn, path string) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("reading the credentials of the process listening on %s: %w", path, err)
	}
	var (
		uc    *unix.Ucred
		ucErr error
	)
	if err := rc.Control(func(fd uintptr) {
		uc, ucErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("reading the credentials of the process listening on %s: %w", path, err)
	}
	if ucErr != nil {
		return fmt.Errorf("reading the credentials of the process listening on %s (SO_PEERCRED): %w", path, ucErr)
	}
	trusted := trustedServerUIDs(path, uint32(os.Geteuid()))
	if !slices.Contains(trusted, uc.Uid) {
		return &ServerUIDError{Path: path, UID: uc.Uid, Trusted: trusted}
	}
	return nil
}
