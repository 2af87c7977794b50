package udp

import (
	"net"
	"sync"
	"syscall"
)

// replyBufs holds the buffers replies are read into, each of the largest
// datagram size (plus one byte, to tell an oversized datagram). A flow
// takes one only while a reply is read and relayed, not while it waits:
// the memory of idle flows does not grow with max_rx_datagram_size (a
// flood of spoofed sources holding max_flows flows would otherwise hold
// max_flows buffers of that size, 650 MB for 10 000 flows of 64 KiB;
// upstream reads every datagram into one receive buffer per listener,
// lib/src/protocol/udp/LIFECYCLE.md, "Bounded rx").
var replyBufs = sync.Pool{New: func() any {
	b := make([]byte, maxDatagram+1)
	return &b
}}

// replyReader reads the replies of one flow's connected socket into
// buffers of replyBufs. Its closure is made once per flow: a read
// allocates nothing.
type replyReader struct {
	rc syscall.RawConn
	fn func(fd uintptr) bool

	buf *[]byte // set by fn
	n   int
	err error
}

func newReplyReader(c *net.UDPConn) (*replyReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &replyReader{rc: rc}
	r.fn = func(fd uintptr) bool {
		b := replyBufs.Get().(*[]byte)
		n, err := syscall.Read(int(fd), *b)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			replyBufs.Put(b)
			return false // wait until readable (or the deadline)
		}
		if err != nil {
			replyBufs.Put(b)
			b, n = nil, 0
		}
		r.buf, r.n, r.err = b, n, err
		return true
	}
	return r, nil
}

// read waits for the next datagram (until the socket's read deadline) and
// returns the buffer holding it, to give back with release, and its
// length (the buffer holds the largest UDP payload: the caller compares
// the length with the limit in force).
// On error no buffer is held.
func (r *replyReader) read() (buf []byte, n int, err error) {
	r.buf, r.n, r.err = nil, 0, nil
	if err := r.rc.Read(r.fn); err != nil {
		if r.buf != nil {
			replyBufs.Put(r.buf)
			r.buf = nil
		}
		return nil, 0, err
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return *r.buf, r.n, nil
}

// release gives back the buffer of the last read.
func (r *replyReader) release() {
	if r.buf != nil {
		replyBufs.Put(r.buf)
		r.buf = nil
	}
}
