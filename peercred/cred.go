// Package peercred identifies the process at the other end of a unix socket:
// kernel-recorded credentials, a PID-reuse-safe process name, cached user names.
package peercred

import (
	"net"
	"strconv"
	"strings"
)

// Unknown is the answer for a process or user name that cannot be known for
// sure: the process is gone or its PID was reused, the name service failed,
// did not answer in time, or has no entry.
const Unknown = "unknown"

// Cred is a peer as the kernel recorded it when the peer called connect(2)
// (SO_PEERCRED, SO_PEERGROUPS), plus the start time of its process read when
// the connection was accepted.
//
// The zero Cred has Known false: it stands for "no credentials" and must be
// refused, never read as uid 0. A Cred is a value; Groups is owned by the
// Cred and must not be modified once shared.
type Cred struct {
	Known  bool     // the kernel supplied UID, GID and PID
	UID    uint32   // effective uid at connect time
	GID    uint32   // effective (primary) gid at connect time
	Groups []uint32 // supplementary gids at connect time; nil when the kernel cannot tell (< 4.13)
	PID    int32    // 0 when the peer is outside our PID namespace
	// Start is the start time of PID (clock ticks after boot, field 22 of
	// /proc/<pid>/stat) read at capture and checked, where the kernel offers
	// SO_PEERPIDFD, to belong to the peer itself. 0 when the process was
	// already gone: Comm then answers Unknown.
	Start uint64
}

// InGroup reports whether gid is c's primary gid or one of its
// supplementary gids. It is false for a Cred that is not Known.
func (c Cred) InGroup(gid uint32) bool {
	if !c.Known {
		return false
	}
	if c.GID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// String formats c for logs: "uid=1000 gid=1000 groups=1000,27 pid=4242",
// or "unknown" when c is not Known.
func (c Cred) String() string {
	if !c.Known {
		return Unknown
	}
	var b strings.Builder
	b.WriteString("uid=")
	b.WriteString(strconv.FormatUint(uint64(c.UID), 10))
	b.WriteString(" gid=")
	b.WriteString(strconv.FormatUint(uint64(c.GID), 10))
	if c.Groups != nil {
		b.WriteString(" groups=")
		for i, g := range c.Groups {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(uint64(g), 10))
		}
	}
	b.WriteString(" pid=")
	b.WriteString(strconv.FormatInt(int64(c.PID), 10))
	return b.String()
}

// FromConn captures the credentials of conn's peer and the start time of its
// process from /proc. It is Proc{}.FromConn.
func FromConn(conn *net.UnixConn) (Cred, error) { return Proc{}.FromConn(conn) }
