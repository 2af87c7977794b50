// Package splice moves bytes from one socket to another through a kernel
// pipe with splice(2), so that they are never copied to user space.
//
// A Pipe is taken for a transfer with Get, filled from the source socket
// and emptied into the destination, waiting in Go's poller through the
// connections' syscall.RawConn (so their deadlines hold): FillFrom and
// DrainTo. A caller that runs its own RawConn.Read callback (to take the
// pipe only once the socket is readable) calls Fill in it, which returns
// unix.EAGAIN when the socket has nothing. Put gives
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
	"syscall"

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
func SetCapacity(n uint64) error {
	capacity.Store(0)
	if n == 0 {
		return nil
	}
	if n > 1<<30 {
		return fmt.Errorf("splice pipe capacity %d: over 1 GiB", n)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return os.NewSyscallError("pipe2", err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, int(n)); err != nil {
		return fmt.Errorf("splice pipe capacity %d: %w", n, os.NewSyscallError("fcntl F_SETPIPE_SZ", err))
	}
	capacity.Store(int64(n))
	return nil
}

// Capacity returns how many bytes a pipe of Get holds at least: the
// capacity set (SetCapacity), else 64 KiB, the kernel's default (16
// pages; more with larger pages).
func Capacity() int {
	if n := capacity.Load(); n > 0 {
		return int(n)
	}
	return 64 << 10
}

// Pipe is a non-blocking pipe and the count of bytes in it. Used by one
// goroutine at a time.
type Pipe struct {
	r, w int
	n    int

	// The RawConn callbacks of FillFrom and DrainTo, bound once per pipe,
	// and what they pass back.
	fillFn, drainFn func(fd uintptr) bool
	limit, moved    int
	err             error
	// ask and asked: FillFromAsking's hook, and whether it ran.
	ask   func(fd uintptr)
	asked bool
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
	p := &Pipe{r: fds[0], w: fds[1]}
	p.fillFn, p.drainFn = p.fillCallback, p.drainCallback
	return p, nil
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

// Fill moves up to limit bytes (at most the pipe's free room) from the
// socket fd into p. It returns 0 and nil at the socket's end of stream, and
// unix.EAGAIN when it has nothing now.
func (p *Pipe) Fill(fd int, limit int) (int, error) {
	limit = min(limit, maxFill)
	for {
		n, err := unix.Splice(fd, nil, p.w, nil, limit, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
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

// FillFrom waits, within rc's read deadline, for its socket to have bytes
// and moves up to limit of them into p. It returns 0 and nil at the
// socket's end of stream.
func (p *Pipe) FillFrom(rc syscall.RawConn, limit int) (int, error) {
	n, _, err := p.FillFromAsking(rc, limit, nil, true)
	return n, err
}

// FillFromAsking is FillFrom that, unless asked is already true, calls
// ask with the socket's descriptor once: before it waits for bytes, or
// when a fill moves fewer than limit (more are to come). It reports
// whether ask was called, or asked was true. A caller has the kernel
// acknowledge what it holds at once this way (TCP_QUICKACK) only when a
// wait follows.
func (p *Pipe) FillFromAsking(rc syscall.RawConn, limit int, ask func(fd uintptr), asked bool) (int, bool, error) {
	p.limit, p.moved, p.err, p.ask, p.asked = limit, 0, nil, ask, asked
	err := rc.Read(p.fillFn)
	p.ask = nil
	if err != nil {
		return 0, p.asked, err
	}
	return p.moved, p.asked, p.err
}

func (p *Pipe) fillCallback(fd uintptr) bool {
	p.moved, p.err = p.Fill(int(fd), p.limit)
	if !p.asked && (p.err == unix.EAGAIN || p.err == nil && p.moved > 0 && p.moved < p.limit) {
		p.asked = true
		p.ask(fd)
	}
	if p.err == unix.EAGAIN {
		return false
	}
	if p.err != nil {
		p.err = os.NewSyscallError("splice", p.err)
	}
	return true
}

// DrainTo moves p's bytes into rc's socket, waiting within its write
// deadline while the socket is full, until p is empty or an error; it
// returns how many it moved.
func (p *Pipe) DrainTo(rc syscall.RawConn) (int, error) {
	p.moved, p.err = 0, nil
	err := rc.Write(p.drainFn)
	if err == nil {
		err = p.err
	}
	return p.moved, err
}

func (p *Pipe) drainCallback(fd uintptr) bool {
	n, err := p.drain(int(fd))
	p.moved += n
	switch {
	case err == unix.EAGAIN:
		return false
	case err != nil && err != ErrShortWrite:
		err = os.NewSyscallError("splice", err)
	}
	p.err = err
	return true
}

// drain moves p's bytes into the socket fd until p is empty; it returns
// how many it moved, with unix.EAGAIN when the socket took no more.
func (p *Pipe) drain(fd int) (int, error) {
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
