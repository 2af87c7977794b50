// Package splice moves bytes from one socket to another through a kernel
// pipe with splice(2), so that they are never copied to user space.
//
// A Pipe is taken for a transfer with Get, filled from the source socket
// with Fill and emptied into the destination with Drain, both
// non-blocking: they return unix.EAGAIN when the socket has nothing to give
// or no room, for the caller to wait in Go's poller (syscall.RawConn Read
// and Write callbacks, which honour the connections' deadlines). Put gives
// an empty pipe back to a small free list and closes one that still holds
// bytes. A pipe costs two descriptors and, while it holds bytes, their
// pages in the kernel; holding none between transfers costs nothing.
package splice

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxFill bounds one Fill; the kernel moves at most the pipe's capacity
// (64 KiB by default, SetCapacity).
const maxFill = 1 << 20

// maxFree bounds the pipes kept for reuse; more are closed.
const maxFree = 64

var (
	free struct {
		sync.Mutex
		l []*Pipe
	}
	out      atomic.Int64 // pipes taken and not given back
	moved    atomic.Int64 // bytes drained
	capacity atomic.Int64 // capacity asked of new pipes; 0: the kernel's default
)

// CheckedOut returns how many pipes are taken right now.
func CheckedOut() int64 { return out.Load() }

// Moved returns how many bytes all pipes have drained so far.
func Moved() int64 { return moved.Load() }

// SetCapacity sets the capacity of the pipes made from now on
// (splice_pipe_capacity_bytes; 0: the kernel's default), after checking it
// on a pipe: the kernel rounds it up to a power-of-two number of pages and
// refuses more than /proc/sys/fs/pipe-max-size to an unprivileged process.
// On an error, pipes keep the kernel's default.
func SetCapacity(n int) error {
	capacity.Store(0)
	if n == 0 {
		return nil
	}
	if n < 0 || n > 1<<30 {
		return fmt.Errorf("splice pipe capacity %d: out of range", n)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return os.NewSyscallError("pipe2", err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, n); err != nil {
		return fmt.Errorf("splice pipe capacity %d: %w", n, os.NewSyscallError("fcntl F_SETPIPE_SZ", err))
	}
	capacity.Store(int64(n))
	return nil
}

// Pipe is a non-blocking pipe and the count of bytes in it. Used by one
// goroutine at a time.
type Pipe struct {
	r, w int
	n    int
}

// Get takes a pipe from the free list, or makes one.
func Get() (*Pipe, error) {
	free.Lock()
	if n := len(free.l); n > 0 {
		p := free.l[n-1]
		free.l[n-1] = nil
		free.l = free.l[:n-1]
		free.Unlock()
		out.Add(1)
		return p, nil
	}
	free.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	if n := capacity.Load(); n > 0 {
		unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, int(n)) // checked by SetCapacity; the default otherwise
	}
	out.Add(1)
	return &Pipe{r: fds[0], w: fds[1]}, nil
}

// Put gives p back: to the free list when it is empty, else (bytes left by
// a failed transfer) it is closed with them.
func (p *Pipe) Put() {
	out.Add(-1)
	if p.n == 0 {
		free.Lock()
		if len(free.l) < maxFree {
			free.l = append(free.l, p)
			free.Unlock()
			return
		}
		free.Unlock()
	}
	unix.Close(p.r)
	unix.Close(p.w)
}

// Len returns the bytes in p.
func (p *Pipe) Len() int { return p.n }

// ErrShortWrite reports a splice into a socket that moved nothing.
var ErrShortWrite = errors.New("splice: socket took no byte")

// Fill moves up to max bytes (at most the pipe's free room) from the
// socket fd into p. It returns 0 and nil at the socket's end of stream, and
// unix.EAGAIN when it has nothing now.
func (p *Pipe) Fill(fd int, max int) (int, error) {
	max = min(max, maxFill)
	for {
		n, err := unix.Splice(fd, nil, p.w, nil, max, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		p.n += int(n)
		return int(n), nil
	}
}

// Drain moves p's bytes into the socket fd until p is empty; it returns
// how many it moved, with unix.EAGAIN when the socket took no more.
func (p *Pipe) Drain(fd int) (int, error) {
	done := 0
	var err error
	for p.n > 0 {
		var n int64
		n, err = unix.Splice(p.r, nil, fd, nil, p.n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = ErrShortWrite
		}
		if err != nil {
			break
		}
		p.n -= int(n)
		done += int(n)
	}
	moved.Add(int64(done))
	return done, err
}
