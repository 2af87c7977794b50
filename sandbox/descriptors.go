package sandbox

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Descriptors inherited across exec (security review item 11): whatever the
// process that started the supervisor left open without close-on-exec — a
// root-only file, a socket — would pass to every worker, and stay readable
// and writable there after the sandbox. Two defences, one per side:
//
//   - the supervisor marks every descriptor above 2 close-on-exec as it
//     starts (SetCloseOnExecFrom): what it inherited reaches no child, and
//     a worker receives exactly stdin, stdout, stderr and the three
//     bootstrap descriptors os/exec places at 3, 4 and 5;
//   - a worker closes, first thing, every descriptor it inherited but does
//     not expect (CloseInherited), in case it was started by something else
//     than this supervisor.
//
// How the worker tells an inherited descriptor from the Go runtime's own:
// a descriptor survives execve only without close-on-exec, and the Go
// runtime and standard library open every descriptor with close-on-exec
// (the netpoll epoll and eventfd, the cgroup files it keeps for GOMAXPROCS,
// os.Open, net sockets). So, before the worker's own code has run, a
// descriptor without FD_CLOEXEC was inherited; one with it is the runtime's.
// Enumerating /proc/self/fd "before the runtime opens more" cannot be done
// from Go (the runtime initialises before main), and would not be needed:
// the flag, not the time, tells them apart.

// SetCloseOnExecFrom sets close-on-exec on every open descriptor numbered
// first or more: close_range(first, ~0, CLOSE_RANGE_CLOEXEC) (Linux ≥ 5.11),
// or, where the kernel lacks it, F_SETFD on each descriptor listed in
// /proc/self/fd. Descriptors stay open; a later exec does not pass them,
// except those os/exec duplicates onto 0-2 and ExtraFiles. Safe to call at
// any time: Go opens its own descriptors close-on-exec anyway.
func SetCloseOnExecFrom(first int) error {
	if first < 0 {
		return fmt.Errorf("sandbox: close-on-exec from descriptor %d: negative", first)
	}
	err := unix.CloseRange(uint(first), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sandbox: close_range(%d, ~0, CLOSE_RANGE_CLOEXEC): %w", first, err)
	}
	return setCloseOnExecListed(first)
}

// setCloseOnExecListed is SetCloseOnExecFrom without close_range.
func setCloseOnExecListed(first int) error {
	fds, err := openDescriptors()
	if err != nil {
		return err
	}
	for _, fd := range fds {
		if fd < first {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("sandbox: close-on-exec on descriptor %d: %w", fd, err)
		}
	}
	return nil
}

// CloseInherited closes every descriptor above 2 that the process inherited
// across exec (FD_CLOEXEC clear) and that keep does not name, and returns
// the closed ones, sorted. Call it first thing in main, before any code of
// the program opens a descriptor without close-on-exec (Go's own never
// do): descriptors with FD_CLOEXEC set are the runtime's and are left alone.
// It reads /proc/self/fd: call it before Load.
func CloseInherited(keep ...int) ([]int, error) {
	fds, err := openDescriptors()
	if err != nil {
		return nil, err
	}
	var closed []int
	for _, fd := range fds {
		if fd <= 2 || slices.Contains(keep, fd) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if errors.Is(err, unix.EBADF) {
			continue // the directory read's own descriptor, closed since
		}
		if err != nil {
			return closed, fmt.Errorf("sandbox: flags of inherited descriptor %d: %w", fd, err)
		}
		if flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		if err := unix.Close(fd); err != nil {
			return closed, fmt.Errorf("sandbox: closing inherited descriptor %d: %w", fd, err)
		}
		closed = append(closed, fd)
	}
	return closed, nil
}

// openDescriptors lists the descriptors open in this process, sorted, from
// /proc/self/fd (the list includes the descriptor used to read it).
func openDescriptors() ([]int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("sandbox: listing descriptors: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: listing descriptors in /proc/self/fd: %w", err)
	}
	fds := make([]int, 0, len(names))
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil {
			return nil, fmt.Errorf("sandbox: /proc/self/fd: unexpected entry %q", n)
		}
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	return fds, nil
}
