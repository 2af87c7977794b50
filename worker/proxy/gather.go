package proxy

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
)

// A TLS record carries at most 16 KiB of content: crypto/tls writes a
// larger Write, and the small records it opens a connection with (its
// dynamic record sizing), one write(2) each. While a session writes a
// response run to a TLS client, its polledConn gathers those records
// into one buffer and writes them at the end in one write(2) (gather,
// flushGather): the same bytes in the same order, fewer system calls.
//
// gatherSize bounds the records gathered: two full records and their
// overheads (a response run of a read buffer, bufSize, and its head),
// beyond which what is gathered is written first. The buffer is held
// only while a write is under way, a stalled client's included: more
// would add as much to what such a client holds.
const gatherSize = 2 * (16<<10 + 256)

// tlsWrites counts the writes of polledConns to their sockets, for the
// tests.
var tlsWrites atomic.Int64

var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, gatherSize); return &b }}

// gathered holds the records a polledConn gathers, and orders its writes:
// a record crypto/tls writes from another goroutine meanwhile (a reply to
// a KeyUpdate read by the request body's copier, an alert) is gathered
// after those before it, as crypto/tls encrypted them.
type gathered struct {
	mu sync.Mutex
	on bool
	b  *[]byte // a gatherPool buffer while on or holding records; nil otherwise
}

// Write writes p, or gathers it while a gather is on.
func (c *polledConn) Write(p []byte) (int, error) {
	g := &c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.on {
		tlsWrites.Add(1)
		return c.TCPConn.Write(p)
	}
	if g.b == nil {
		g.b = gatherPool.Get().(*[]byte)
	}
	if len(*g.b)+len(p) > cap(*g.b) {
		if err := c.writeGathered(); err != nil {
			return 0, err
		}
		if len(p) > cap(*g.b) {
			tlsWrites.Add(1)
			return c.TCPConn.Write(p)
		}
	}
	*g.b = append(*g.b, p...)
	return len(p), nil
}

// gather makes the writes of crypto/tls wait in a buffer until
// flushGather.
func (c *polledConn) gather() {
	c.g.mu.Lock()
	c.g.on = true
	c.g.mu.Unlock()
}

// flushGather ends the gather and writes what it holds, in one write(2)
// unless the socket takes it in parts, within the write deadline.
func (c *polledConn) flushGather() error {
	g := &c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.on = false
	if g.b == nil {
		return nil
	}
	err := c.writeGathered()
	gatherPool.Put(g.b)
	g.b = nil
	return err
}

// writeGathered writes the records gathered and empties the buffer (also
// when the write fails: the connection is then of no further use).
func (c *polledConn) writeGathered() error {
	g := &c.g
	if len(*g.b) == 0 {
		return nil
	}
	tlsWrites.Add(1)
	_, err := c.TCPConn.Write(*g.b)
	*g.b = (*g.b)[:0]
	return err
}

// gatherOn returns the polledConn under the session's TLS connection, with
// a gather begun on it; nil for other connections, which are written as
// they are.
func (s *session) gatherOn() *polledConn {
	if tc, ok := s.conn.(*tls.Conn); ok {
		if pc, ok := tc.NetConn().(*polledConn); ok {
			pc.gather()
			return pc
		}
	}
	return nil
}

// writeClient writes p to the client, a TLS client's records in one
// write(2) (gather). A gathered write whose flush fails counts none of its
// bytes as written.
func (s *session) writeClient(p []byte) (int, error) {
	pc := s.gatherOn()
	n, err := s.conn.Write(p)
	if pc != nil {
		if ferr := pc.flushGather(); ferr != nil && err == nil {
			n, err = 0, ferr
		}
	}
	return n, err
}

// Write writes p to the TLS connection, the records crypto/tls cuts it
// into in one write(2) (gather): an HTTP/2 connection's writer writes a
// batch of frames at once, often more than a record holds.
func (c *waitTLSConn) Write(p []byte) (int, error) {
	c.pc.gather()
	n, err := c.Conn.Write(p)
	if ferr := c.pc.flushGather(); ferr != nil && err == nil {
		n, err = 0, ferr
	}
	return n, err
}
