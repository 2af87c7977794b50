package peercred

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FromConn captures the credentials of conn's peer: uid, gid and pid from
// SO_PEERCRED, supplementary groups from SO_PEERGROUPS (nil on kernels
// without it), and the start time of the peer's process from p.
//
// Where the kernel offers SO_PEERPIDFD (Linux 6.5+), the start time is kept
// only if the peer process itself was still alive (possibly a zombie) after
// it was read, so a PID freed and reused before the accept cannot lend its
// start time, and later its name, to the peer. Without SO_PEERPIDFD that
// window (peer exits and its PID is reused between connect and this call)
// is not closed; Comm's start-time check covers everything after it.
//
// The error names the socket when the kernel gives no credentials; the
// returned Cred is then not Known. FromConn is safe for concurrent use.
func (p Proc) FromConn(conn *net.UnixConn) (Cred, error) {
	if conn == nil {
		return Cred{}, errors.New("peercred: nil connection")
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peercred: socket %s: %w", conn.LocalAddr(), err)
	}
	var (
		uc     *unix.Ucred
		ucErr  error
		groups []uint32
		pidfd  = -1
		pfErr  error
	)
	if err := rc.Control(func(fd uintptr) {
		uc, ucErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if ucErr != nil {
			return
		}
		groups, _ = peerGroups(int(fd)) // optional: nil on old kernels
		pidfd, pfErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		return Cred{}, fmt.Errorf("peercred: socket %s: %w", conn.LocalAddr(), err)
	}
	if ucErr != nil {
		return Cred{}, fmt.Errorf("peercred: SO_PEERCRED on socket %s: %w", conn.LocalAddr(), ucErr)
	}
	if pfErr == nil {
		defer unix.Close(pidfd)
	}
	c := Cred{Known: true, UID: uc.Uid, GID: uc.Gid, Groups: groups, PID: uc.Pid}
	if c.PID <= 0 {
		return c, nil
	}
	switch {
	case pfErr == nil:
		start, err := p.StartTime(c.PID)
		// Read, then check: alive (or zombie) now means the PID was held by
		// the peer all along, so what was read is the peer's.
		if err == nil && unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil {
			c.Start = start
		}
	case errors.Is(pfErr, unix.ESRCH):
		// The peer is already reaped: leave Start at 0.
	default:
		// No SO_PEERPIDFD (older kernel, or refused): best effort.
		if start, err := p.StartTime(c.PID); err == nil {
			c.Start = start
		}
	}
	return c, nil
}

// peerGroups reads SO_PEERGROUPS, growing the buffer once if the peer has
// more groups than the first guess.
func peerGroups(fd int) ([]uint32, error) {
	n := 64
	for range 2 {
		buf := make([]uint32, n)
		size := uint32(n * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch e {
		case 0:
			return buf[: size/4 : size/4], nil
		case unix.ERANGE:
			n = int(size/4) + 1
		default:
			return nil, e
		}
	}
	return nil, unix.ERANGE
}
