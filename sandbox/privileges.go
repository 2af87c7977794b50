package sandbox

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Account is the identity a worker drops to, resolved to ids before the
// sandbox (a confined worker cannot read /etc/passwd or ask NSS).
type Account struct {
	User  string // as configured: name or numeric uid
	Group string // as configured, or the user's primary group
	UID   int
	GID   int
}

func (a Account) String() string {
	return fmt.Sprintf("%s(%d):%s(%d)", a.User, a.UID, a.Group, a.GID)
}

// ErrRoot is returned (wrapped) by DropPrivileges when the worker would
// keep uid or gid 0 and root was not allowed.
var ErrRoot = errors.New("refusing to run a worker as root")

// DropPrivileges makes a the identity of every thread of the process.
//
// Started as root (any of the real, effective or saved uids 0), it calls
// setgroups([]), setresgid(gid, gid, gid) and setresuid(uid, uid, uid);
// Go applies each to all threads. It then checks getresuid, getresgid and
// getgroups on the calling thread, and Uid, Gid, Groups and capabilities of
// every thread in /proc/self/task, and returns an error naming the first
// thread that differs. The process then holds no capability.
//
// Started as another user, it changes nothing and only checks that no id
// of any thread is 0 (the account the supervisor runs as is kept).
//
// With allowRoot false, an account with uid or gid 0, or a process left
// with uid 0, is refused (ErrRoot). Call it before Load: the policy
// forbids the set*id calls.
func DropPrivileges(a Account, allowRoot bool) error {
	if !allowRoot && (a.UID == 0 || a.GID == 0) {
		return fmt.Errorf("sandbox: %w: account %s has uid or gid 0; set worker_user/worker_group to an unprivileged account, or worker_allow_root = true", ErrRoot, a)
	}
	ruid, euid, suid := unix.Getresuid()
	if ruid != 0 && euid != 0 && suid != 0 {
		return checkThreads(nil, allowRoot)
	}
	// syscall's set*id functions run on every thread (glibc's broadcast with
	// cgo, AllThreadsSyscall without).
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("sandbox: setgroups([]): %w", err)
	}
	if err := syscall.Setresgid(a.GID, a.GID, a.GID); err != nil {
		return fmt.Errorf("sandbox: setresgid(%d): %w", a.GID, err)
	}
	if err := syscall.Setresuid(a.UID, a.UID, a.UID); err != nil {
		return fmt.Errorf("sandbox: setresuid(%d): %w", a.UID, err)
	}
	r, e, s := unix.Getresuid()
	if r != a.UID || e != a.UID || s != a.UID {
		return fmt.Errorf("sandbox: after dropping to %s: getresuid = %d %d %d", a, r, e, s)
	}
	r, e, s = unix.Getresgid()
	if r != a.GID || e != a.GID || s != a.GID {
		return fmt.Errorf("sandbox: after dropping to %s: getresgid = %d %d %d", a, r, e, s)
	}
	if gs, err := unix.Getgroups(); err != nil || len(gs) != 0 {
		return fmt.Errorf("sandbox: after dropping to %s: getgroups = %v (%v), want none", a, gs, err)
	}
	return checkThreads(&a, allowRoot)
}

// checkThreads reads every thread's status: with want, each must carry
// exactly that identity, no supplementary group and (unless uid 0) no
// capability; without, no id may be 0 unless allowRoot.
func checkThreads(want *Account, allowRoot bool) error {
	var threads []ThreadStatus
	var err error
	// A thread that glibc has not reached yet cannot exist: setresuid
	// returns after every thread took it. Retrying covers a thread
	// started during the read, which inherits the new identity anyway.
	for range 3 {
		if threads, err = Status(0); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		return err
	}
	for _, t := range threads {
		if want != nil {
			for i := range 4 {
				if t.UIDs[i] != want.UID || t.GIDs[i] != want.GID {
					return fmt.Errorf("sandbox: after dropping to %s: thread %d (%s) has Uid %v Gid %v", want, t.TID, t.Name, t.UIDs, t.GIDs)
				}
			}
			if len(t.Groups) != 0 {
				return fmt.Errorf("sandbox: after dropping to %s: thread %d (%s) keeps groups %v", want, t.TID, t.Name, t.Groups)
			}
			if want.UID != 0 && (t.CapEff != 0 || t.CapPrm != 0) {
				return fmt.Errorf("sandbox: after dropping to %s: thread %d (%s) keeps capabilities (CapEff %016x, CapPrm %016x)", want, t.TID, t.Name, t.CapEff, t.CapPrm)
			}
			continue
		}
		if !allowRoot && (hasID(t.UIDs, 0) || hasID(t.GIDs, 0)) {
			return fmt.Errorf("sandbox: %w: thread %d (%s) has Uid %v Gid %v", ErrRoot, t.TID, t.Name, t.UIDs, t.GIDs)
		}
	}
	return nil
}

func hasID(ids [4]int, v int) bool {
	for _, id := range ids {
		if id == v {
			return true
		}
	}
	return false
}

// SetNoNewPrivs sets no_new_privs on the calling thread: execve can then
// grant no privilege (setuid bits, file capabilities). Load sets it too and
// TSYNC copies it to every thread; with ModeOff only the calling thread and
// the threads it starts later have it.
func SetNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	return nil
}

// DisableCoreDumps sets RLIMIT_CORE to 0 (soft and hard, so it cannot be
// raised again) and makes the process not dumpable (PR_SET_DUMPABLE 0). A
// worker holds TLS private keys: no core file, no core_pattern pipe, and no
// ptrace or /proc/<pid>/mem access by other processes of the same uid.
// /proc/<pid>/status stays readable (Status works on the worker).
func DisableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("sandbox: setrlimit(RLIMIT_CORE, 0): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
