//go:build linux && cgo

package sandbox

/*
#include <malloc.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"unsafe"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// loaded is set by the Load that loads the filter.
var loaded atomic.Bool

var errLoaded = errors.New("sandbox: the filter is already loaded in this process")

// Supported reports whether this build can load a filter (cgo on Linux).
const Supported = true

// verifyRules are allowed only between the two loads of Load: Verify reads
// /proc/self/task/*/status with them, then the seal (one more seccomp call)
// forbids them again. They never reach the worker's steady state.
var verifyRules = []Rule{
	{Syscall: "openat", Conds: []Cond{argMasked(2, unix.O_ACCMODE|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND, unix.O_RDONLY)},
		Why: "Verify opens /proc/self/task and its status files, read-only"},
	{Syscall: "getdents64", Why: "Verify lists /proc/self/task"},
	{Syscall: "seccomp", Conds: []Cond{argEq(0, unix.SECCOMP_SET_MODE_FILTER), argEq(1, unix.SECCOMP_FILTER_FLAG_TSYNC)},
		Why: "loading the seal"},
}

// mallocArenaMax bounds glibc's malloc arenas. Go code does not use malloc;
// cgo does, a few bytes per thread start, so two arenas are plenty.
const mallocArenaMax = 2

// prepareLibc fixes glibc's malloc arena limit. glibc computes it from
// /sys/devices/system/cpu/online the first time more than eight threads
// have called malloc, and cgo starts every runtime thread through
// pthread_create, which mallocs: confined, that open would kill the worker.
func prepareLibc() error {
	if C.mallopt(C.M_ARENA_MAX, mallocArenaMax) != 1 {
		return fmt.Errorf("sandbox: mallopt(M_ARENA_MAX, %d) failed", mallocArenaMax)
	}
	return nil
}

// Load confines every thread of the calling process to the policy (Rules):
// a call the policy does not allow kills the process (ModeKill) or fails
// with EPERM (ModeErrno). ModeOff loads nothing and returns nil; the caller
// logs and audits that.
//
// Load builds the filter with libseccomp, sets no_new_privs and loads it
// with TSYNC, so that every thread of the process gets it and every thread
// started later inherits it. It then reads /proc/self/task/*/status
// (Verify) and fails unless every thread shows Seccomp 2 and NoNewPrivs 1.
// Reading /proc needs openat and getdents64, which the policy forbids: they
// are allowed by the first filter and forbidden again by a second one (the
// seal), loaded with TSYNC before Load returns. A non-nil error means the
// worker must exit without serving: part of the filter may be in place.
//
// Call it once (a later call fails without touching the filter), after
// DropPrivileges, once every file the worker needs is open and every
// descriptor it needs is held (Confine does the steps in order).
func Load(mode Mode) error {
	deny, err := denyAction(mode)
	if err != nil || mode == ModeOff {
		return err
	}
	if loaded.Load() {
		return errLoaded
	}
	// The policy of this process: tgkill only to its own thread group.
	rules := Bind(Rules(), os.Getpid())
	if err := Validate(rules); err != nil {
		return err
	}
	// Build both filters before loading the first: building runs libseccomp
	// code (malloc, flag probes) that the first filter would not allow.
	main, err := buildFilter(slices.Concat(rules, verifyRules), deny)
	if err != nil {
		return err
	}
	defer main.Release()
	seal, err := compileSeal(deny)
	if err != nil {
		return err
	}

	if err := prepareLibc(); err != nil {
		return err
	}
	// A second load would run under the seal, which forbids seccomp(2).
	if !loaded.CompareAndSwap(false, true) {
		return errLoaded
	}
	// libseccomp sets no_new_privs on the thread that loads, then TSYNC
	// gives the filter and no_new_privs to every thread.
	if err := main.Load(); err != nil {
		return fmt.Errorf("sandbox: loading the seccomp filter (%s mode, TSYNC): %w", mode, err)
	}
	verr := Verify(0)
	if err := loadRaw(seal); err != nil {
		return fmt.Errorf("sandbox: loading the seal after the filter (%s mode): %w", mode, err)
	}
	if verr != nil {
		return fmt.Errorf("sandbox: filter loaded (%s mode) but not in force everywhere: %w", mode, verr)
	}
	return nil
}

// denyAction is the action for calls the policy does not allow.
func denyAction(mode Mode) (seccomp.ScmpAction, error) {
	switch mode {
	case ModeKill:
		return seccomp.ActKillProcess, nil
	case ModeErrno:
		return seccomp.ActErrno.SetReturnCode(int16(unix.EPERM)), nil
	case ModeOff:
		return seccomp.ActAllow, nil
	}
	return seccomp.ActInvalid, fmt.Errorf("sandbox: invalid mode %q: want kill, errno or off", string(mode))
}

// buildFilter compiles rules into a libseccomp filter for the native
// architecture: deny is the default action and the action for calls made
// through another architecture's ABI (x32, int 0x80).
func buildFilter(rules []Rule, deny seccomp.ScmpAction) (*seccomp.ScmpFilter, error) {
	f, err := seccomp.NewFilter(deny)
	if err != nil {
		return nil, fmt.Errorf("sandbox: new seccomp filter: %w", err)
	}
	if err := f.SetBadArchAction(deny); err != nil {
		f.Release()
		return nil, fmt.Errorf("sandbox: seccomp filter bad-arch action: %w", err)
	}
	for i, r := range rules {
		if err := addRule(f, r); err != nil {
			f.Release()
			return nil, fmt.Errorf("sandbox: rule %d (%s): %w", i, r.Syscall, err)
		}
	}
	return f, nil
}

func addRule(f *seccomp.ScmpFilter, r Rule) error {
	nr, err := seccomp.GetSyscallFromName(r.Syscall)
	if err != nil {
		return fmt.Errorf("unknown to libseccomp on this architecture: %w", err)
	}
	act := seccomp.ActAllow
	if r.Errno != 0 {
		act = seccomp.ActErrno.SetReturnCode(int16(r.Errno))
	}
	if len(r.Conds) == 0 {
		return f.AddRule(nr, act)
	}
	conds := make([]seccomp.ScmpCondition, 0, len(r.Conds))
	for _, c := range r.Conds {
		var sc seccomp.ScmpCondition
		switch c.Op {
		case Equal:
			sc, err = seccomp.MakeCondition(c.Arg, seccomp.CompareEqual, c.Value)
		case MaskedEqual:
			// libseccomp: (arg & first) == second.
			sc, err = seccomp.MakeCondition(c.Arg, seccomp.CompareMaskedEqual, c.Mask, c.Value)
		case EqualPID:
			err = fmt.Errorf("argument %d: EqualPID condition not bound to a pid (Bind)", c.Arg)
		default:
			err = fmt.Errorf("unknown operator %d", c.Op)
		}
		if err != nil {
			return err
		}
		conds = append(conds, sc)
	}
	return f.AddRuleConditional(nr, act, conds)
}

// compileSeal builds the second filter: everything allowed except the
// verifyRules calls, which get deny. It returns the BPF program, to be
// loaded by a single seccomp(2) call under the first filter.
func compileSeal(deny seccomp.ScmpAction) ([]unix.SockFilter, error) {
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("sandbox: new seal filter: %w", err)
	}
	defer f.Release()
	if err := f.SetBadArchAction(deny); err != nil {
		return nil, fmt.Errorf("sandbox: seal bad-arch action: %w", err)
	}
	for _, r := range verifyRules {
		nr, err := seccomp.GetSyscallFromName(r.Syscall)
		if err != nil {
			return nil, fmt.Errorf("sandbox: seal rule %s: %w", r.Syscall, err)
		}
		if err := f.AddRule(nr, deny); err != nil {
			return nil, fmt.Errorf("sandbox: seal rule %s: %w", r.Syscall, err)
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: pipe for the seal: %w", err)
	}
	defer pr.Close()
	// The program is a few hundred bytes: it fits in the pipe's buffer.
	err = f.ExportBPF(pw)
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: exporting the seal: %w", err)
	}
	b, err := io.ReadAll(pr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: reading the seal: %w", err)
	}
	const insn = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(b) == 0 || len(b)%insn != 0 || len(b)/insn > 0xffff {
		return nil, fmt.Errorf("sandbox: seal program of %d bytes is not a BPF program", len(b))
	}
	prog := make([]unix.SockFilter, len(b)/insn)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(b)), b)
	return prog, nil
}

// loadRaw loads a BPF program on every thread (TSYNC). The calling thread
// must have no_new_privs (the first filter's TSYNC gave it to all).
func loadRaw(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread %d could not be synchronised", r)
	}
	return nil
}
