package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
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
// directory when that directory is writable by its owner only. The
// supervisor refuses to start unless its socket directory is owned by root
// or by its own uid and writable by neither group nor others, so that owner
// is the supervisor's uid (the configuration has no key naming it); a
// directory others may write in names no one.
func trustedServerUIDs(path string, euid uint32) []uint32 {
	uids := []uint32{0}
	if !slices.Contains(uids, euid) {
		uids = append(uids, euid)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return uids
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !slices.Contains(uids, st.Uid) {
		uids = append(uids, st.Uid)
	}
	return uids
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
