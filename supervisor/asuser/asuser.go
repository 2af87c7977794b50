// Package asuser runs file operations with the filesystem identity of a
// command-socket peer, so that the supervisor, usually root, opens a path
// a client names (save_state, load_state) only where that client could
// open it itself: an operator admitted to the socket does not gain root's
// access to the filesystem.
//
// Linux keeps the filesystem uid and gid (setfsuid(2), setfsgid(2)) and the
// supplementary groups per thread. Do switches them on a dedicated, locked
// OS thread that is discarded afterwards (the goroutine exits without
// unlocking it, so the runtime terminates the thread, after Do has put its
// identity back), and never touches
// the credentials of the supervisor's other threads. Leaving fsuid 0 also
// drops the filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, ...) of
// that thread, so permission checks apply as they would to the client.
//
// A process that is not root cannot take another identity: it would open
// the path with its own rights, which another client may not have. Do then
// refuses every uid but the process's own and root's (NotSelfError).
package asuser

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Identity is whose filesystem rights an operation gets.
type Identity struct {
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups; nil: none
}

// NotSelfError refuses a path named by a client whose identity the process
// cannot take: the process is not root, so fn would run with the
// process's own rights, which the client may not have (it could write over
// the supervisor's own files, its audit trail first).
type NotSelfError struct {
	UID  uint32 // the client's
	Self int    // the process's effective uid
}

func (e *NotSelfError) Error() string {
	return fmt.Sprintf("uid %d may not name files for this supervisor: it runs as uid %d, not root, so it cannot open a path with uid %d's rights; only uid %d (or root) may name paths",
		e.UID, e.Self, e.UID, e.Self)
}

// Do runs fn with the filesystem identity id, and returns its error. fn
// must do its work on the calling goroutine (no goroutines of its own: they
// would run on other threads, with the supervisor's rights).
//
// When id is root, fn runs as it is. When the process is not root it
// cannot take another identity (setfsuid needs CAP_SETUID): fn runs as it
// is if id is the process's own uid or root (fn then grants nothing the
// client does not have), and otherwise Do returns a *NotSelfError without
// running fn.
func Do(id Identity, fn func() error) error {
	if self := os.Geteuid(); self != 0 {
		if id.UID != uint32(self) && id.UID != 0 {
			return &NotSelfError{UID: id.UID, Self: self}
		}
		return fn()
	}
	if id.UID == 0 {
		return fn()
	}
	self, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("getgroups: %w", err)
	}
	back := Identity{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	for _, g := range self {
		back.Groups = append(back.Groups, uint32(g))
	}
	errc := make(chan error, 1)
	go func() {
		// Not unlocked on purpose: the thread leaves with this goroutine.
		// Its identity is also put back before Do returns, so that no
		// thread holds the client's even while the runtime ends it.
		runtime.LockOSThread()
		err := become(id)
		if err == nil {
			err = fn()
		}
		become(back)
		errc <- err
	}()
	return <-errc
}

// become sets the calling thread's supplementary groups, fsgid and fsuid
// (in that order: the first two need the capabilities the last one drops),
// and checks that they took.
func become(id Identity) error {
	var p unsafe.Pointer
	if len(id.Groups) > 0 {
		p = unsafe.Pointer(&id.Groups[0]) // gid_t is uint32 on Linux
	}
	// The raw system call changes this thread only (the libc and Go
	// wrappers change every thread of the process).
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(id.Groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("setgroups for uid %d: %w", id.UID, e)
	}
	unix.Setfsgid(int(id.GID))
	unix.Setfsuid(int(id.UID))
	// setfsuid and setfsgid answer the previous value and no error: an
	// invalid id (-1) reads the current one back.
	if cur, _ := unix.SetfsgidRetGid(-1); cur != int(id.GID) {
		return fmt.Errorf("setfsgid(%d) did not take (fsgid %d)", id.GID, cur)
	}
	if cur, _ := unix.SetfsuidRetUid(-1); cur != int(id.UID) {
		return fmt.Errorf("setfsuid(%d) did not take (fsuid %d)", id.UID, cur)
	}
	return nil
}
