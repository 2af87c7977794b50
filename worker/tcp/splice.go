package tcp

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Between two plain TCP connections a relay direction moves its bytes with
// splice(2): from the source socket into a pipe, then from the pipe into
// the destination socket, so that they are never copied to user space. The
// pipe is held only while bytes are in it, like a relay buffer; a direction
// waiting for bytes holds none. Pipes are reused through a small free list:
// making one costs a system call, and holding idle ones costs descriptors.

// maxSplice bounds one splice into a pipe; the kernel moves at most the
// pipe's capacity (64 KiB by default, splice_pipe_capacity_bytes).
const maxSplice = 1 << 20

// maxFreePipes bounds the pipes kept for reuse; more are closed.
const maxFreePipes = 64

// kpipe is a non-blocking, close-on-exec pipe.
type kpipe struct{ r, w int }

var (
	freePipes struct {
		sync.Mutex
		l []*kpipe
	}
	// pipesOut counts the pipes held by relay directions.
	pipesOut atomic.Int64
	// spliced counts the bytes relayed by splice.
	spliced atomic.Int64
	// pipeCapacity is the capacity asked of new pipes; 0: the kernel's
	// default (64 KiB).
	pipeCapacity atomic.Int64
)

// SetPipeCapacity sets the capacity of the pipes made from now on
// (splice_pipe_capacity_bytes; 0: the kernel's default), and checks it on
// a pipe: the kernel rounds it up to a power-of-two number of pages and
// refuses more than /proc/sys/fs/pipe-max-size to an unprivileged process.
// On an error pipes keep the kernel's default.
func SetPipeCapacity(n int) error {
	if n < 0 || n > 1<<31-1 {
		return fmt.Errorf("splice pipe capacity %d: out of range", n)
	}
	pipeCapacity.Store(0)
	if n == 0 {
		return nil
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
	pipeCapacity.Store(int64(n))
	return nil
}

// PipesCheckedOut returns how many splice pipes the server's relays hold
// right now: one per direction moving bytes between two TCP connections.
func PipesCheckedOut() int64 { return pipesOut.Load() }

// SplicedBytes returns how many bytes relays have moved with splice.
func SplicedBytes() int64 { return spliced.Load() }

func getPipe() (*kpipe, error) {
	freePipes.Lock()
	if n := len(freePipes.l); n > 0 {
		p := freePipes.l[n-1]
		freePipes.l[n-1] = nil
		freePipes.l = freePipes.l[:n-1]
		freePipes.Unlock()
		pipesOut.Add(1)
		return p, nil
	}
	freePipes.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	if n := pipeCapacity.Load(); n > 0 {
		unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, int(n)) // checked by SetPipeCapacity; the default otherwise
	}
	pipesOut.Add(1)
	return &kpipe{r: fds[0], w: fds[1]}, nil
}

// putPipe gives back an empty pipe.
func putPipe(p *kpipe) {
	pipesOut.Add(-1)
	freePipes.Lock()
	if len(freePipes.l) < maxFreePipes {
		freePipes.l = append(freePipes.l, p)
		freePipes.Unlock()
		return
	}
	freePipes.Unlock()
	p.close()
}

func (p *kpipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// splicer is the splice mode of a reader: its destination's raw connection
// and the pipe holding the bytes on hand. Used by one goroutine.
type splicer struct {
	dst  syscall.RawConn // nil: no splice mode
	out  func(fd uintptr) bool
	p    *kpipe // held while bytes are in it, or during a fill
	n    int    // bytes in p
	wn   int
	werr error
}

// init enters splice mode when dst is a TCP connection.
func (s *splicer) init(dst net.Conn) {
	tc, ok := dst.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	s.dst, s.out = rc, s.write
}

func (s *splicer) on() bool { return s.dst != nil }

// take makes sure a pipe is held; false when none can be had.
func (s *splicer) take() bool {
	if s.p != nil {
		return true
	}
	p, err := getPipe()
	if err != nil {
		return false
	}
	s.p = p
	return true
}

// fill splices what fd has into the held (empty) pipe. wait reports that
// fd had nothing (EAGAIN): the pipe is then given back.
func (s *splicer) fill(fd uintptr) (n int, err error, wait bool) {
	for {
		m, err := unix.Splice(int(fd), nil, s.p.w, nil, maxSplice, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			s.release()
			return 0, nil, true
		case err != nil:
			return 0, err, false
		case m == 0:
			return 0, io.EOF, false
		}
		s.n = int(m)
		return int(m), nil, false
	}
}

func (s *splicer) holding() bool { return s.p != nil && s.n > 0 }

// drain splices the pipe's bytes into the destination, waiting in the
// poller while its socket is full (within its write deadline).
func (s *splicer) drain() (int, error) {
	s.wn, s.werr = 0, nil
	err := s.dst.Write(s.out)
	if err == nil {
		err = s.werr
	}
	spliced.Add(int64(s.wn))
	return s.wn, err
}

// write is drain's RawConn callback: false (park until writable) while the
// socket takes nothing more.
func (s *splicer) write(fd uintptr) bool {
	for s.n > 0 {
		m, err := unix.Splice(s.p.r, nil, int(fd), nil, s.n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			s.werr = os.NewSyscallError("splice", err)
			return true
		case m == 0:
			s.werr = io.ErrShortWrite
			return true
		}
		s.n -= int(m)
		s.wn += int(m)
	}
	return true
}

// release gives the pipe back, or closes it when bytes are left in it (a
// failed write: they are dropped with the connection).
func (s *splicer) release() {
	if s.p == nil {
		return
	}
	if s.n > 0 {
		pipesOut.Add(-1)
		s.p.close()
	} else {
		putPipe(s.p)
	}
	s.p, s.n = nil, 0
}
