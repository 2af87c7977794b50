package tcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/proxyproto"
	"github.com/sozu-go/sozu/worker/relay"
)

// session is one client connection and, once connected, its backend one.
type session struct {
	srv    *Server
	client net.Conn

	mu      sync.Mutex
	backend net.Conn // set once connected
	aborted bool
}

// abort closes both connections: every pending read and write fails.
func (ss *session) abort() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.aborted = true
	ss.client.Close()
	if ss.backend != nil {
		ss.backend.Close()
	}
}

// setBackend records the backend connection, or reports false when the
// session was aborted meanwhile.
func (ss *session) setBackend(c net.Conn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.aborted {
		return false
	}
	ss.backend = c
	return true
}

func (ss *session) run(cfg *Listener) {
	log := ss.srv.opt.Log
	defer ss.srv.forget(ss)
	defer ss.client.Close()
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Panics.Add(1)
			log.Errorf("panic relaying a connection from %v: %v\n%s", ss.client.RemoteAddr(), v, debug.Stack())
			ss.abort()
		}
	}()

	cl := cfg.Cluster
	src, dst := addrPort(ss.client.RemoteAddr()), addrPort(ss.client.LocalAddr())
	sl := sessionLog{start: time.Now()}
	defer ss.logSession(cfg, &sl) // the session's end: its access record (accesslog.go)
	var received []byte           // the client's PROXY header, as received
	if cfg.ExpectProxy || cl != nil && cl.ExpectProxy {
		// The whole header within the front timeout, counted from the
		// accept: a header trickled byte by byte does not extend it.
		ss.client.SetReadDeadline(time.Now().Add(cfg.FrontTimeout))
		h, raw, err := proxyproto.Read(ss.client, 0, nil)
		if err != nil {
			log.Debugf("client %v: reading its PROXY header: %v", src, err)
			if proxyproto.Malformed(err) {
				ss.srv.opt.Metrics.ProxyProtocolError()
			}
			return
		}
		received = raw
		if h.Command == proxyproto.Proxy {
			src, dst = unmap(h.Source), unmap(h.Destination)
		}
	}
	sl.client = src
	if cl == nil || cl.Backends == nil {
		log.Debugf("client %v: no cluster on this listener: closing", src)
		return
	}
	sl.cluster = cl.ID
	if caps := ss.srv.opt.IPCaps; caps != nil {
		sl := ipcap.Slot{Cluster: cl.ID, IP: src.Addr()}
		ok, held := caps.Acquire(sl, caps.Cap(cl.MaxConnsPerIP))
		if !ok {
			log.Debugf("client %v: over max_connections_per_ip of cluster %s: closing", src, cl.ID)
			return
		}
		if held {
			defer caps.Release(sl)
		}
	}
	bc, err := cl.Backends.Connect(ss.srv.ctx, cfg.ConnectTimeout, true, backends.KeyOf(src.Addr()))
	if err != nil {
		log.Infof("client %v: %v", src, err)
		return
	}
	defer bc.Release(false) // closes it: TCP backends are never pooled
	sl.backend = bc.Backend
	counted := ss.srv.opt.Metrics.TCPSession(cl.ID, bc.Backend.ID, bc.ConnectTime)
	if !ss.setBackend(bc.Conn) {
		return
	}
	if cl.SendProxy {
		hdr := received
		if !cl.RelayProxy || hdr == nil {
			hdr = proxyproto.Append(make([]byte, 0, 52), src, dst)
		}
		bc.SetWriteDeadline(time.Now().Add(cfg.BackTimeout))
		if _, err := bc.Write(hdr); err != nil {
			log.Infof("client %v: writing the PROXY header to %s: %v", src, bc.Backend.AddrString(), err)
			return
		}
	}
	if err := relayBoth(ss.client, bc.Conn, cfg.FrontTimeout, cfg.BackTimeout, &sl.in, &sl.out, counted); err != nil {
		var pe *panicError
		if errors.As(err, &pe) {
			ss.srv.Panics.Add(1)
			log.Errorf("panic relaying a connection from %v: %v\n%s", src, pe.v, pe.stack)
			return
		}
		log.Debugf("client %v, backend %s: %v", src, bc.Backend.AddrString(), err)
	}
}

// panicError carries a panic recovered on the relay's second goroutine.
type panicError struct {
	v     any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.v) }

// addrPort returns a's address with an IPv4-mapped address unmapped, or the
// zero AddrPort when a is not a TCP address.
func addrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	return unmap(ta.AddrPort())
}

func unmap(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }

// relayBoth copies client → backend and backend → client until both
// directions have ended. A direction ends at EOF, which is passed on as a
// half-close (CloseWrite) of the other connection, so that a client may
// shut its side and still receive the rest of the answer. Any other error
// (a reset, a timeout) ends both directions at once. relayBoth does not close
// the connections.
//
// in and out receive the bytes relayed from the client and to it, once
// relayBoth returns; counted records them in the metrics as they go.
func relayBoth(client, backend net.Conn, front, back time.Duration, in, out *int64, counted metrics.Stream) error {
	var tr relay.Traffic
	tr.Moved(time.Now())
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				client.Close()
				backend.Close()
				errc <- &panicError{v: v, stack: debug.Stack()}
			}
		}()
		err := pipe(backend, client, front, back, &tr, in, counted.In)
		if err != nil {
			err = fmt.Errorf("client to backend: %w", err)
			closeBoth(client, backend, err) // unblock the other direction: it must end too
		}
		errc <- err
	}()
	err := pipe(client, backend, back, front, &tr, out, counted.Out)
	if err != nil {
		err = fmt.Errorf("backend to client: %w", err)
		closeBoth(client, backend, err)
	}
	err2 := <-errc
	var pe *panicError
	if err == nil || errors.As(err2, &pe) {
		return err2
	}
	return err
}

// closeBoth closes both connections after err ended a direction. A reset
// (one side aborted: ECONNRESET, or EPIPE writing to it) is passed on as a
// reset: SO_LINGER 0 makes the close send a TCP RST, so that the other
// peer cannot take a cut stream for a complete one, as a FIN would let it.
func closeBoth(client, backend net.Conn, err error) {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		for _, c := range []net.Conn{client, backend} {
			if l, ok := c.(interface{ SetLinger(int) error }); ok {
				l.SetLinger(0)
			}
		}
	}
	client.Close()
	backend.Close()
}

// pipe copies src to dst until src's EOF, then half-closes dst. A read
// waits until srcIdle has passed without traffic in either direction
// (tr), a write up to dstIdle without a byte moved.
//
// The read deadline is moved on this direction's reads only when it has
// drifted by more than srcIdle/8 (a deadline costs a timer update); when it
// fires while the other direction was busy, it is moved to srcIdle after
// that last traffic, or srcIdle on while the other direction is in a write
// (which its own write deadline bounds: a slow reader that still takes
// bytes is no idle peer). The connection thus ends srcIdle after its last
// byte, never sooner, and never much later. It adds the bytes written to
// *moved, and passes them to count (the metrics) as they go.
func pipe(dst, src net.Conn, srcIdle, dstIdle time.Duration, tr *relay.Traffic, moved *int64, count func(int64)) error {
	rd := time.Now().Add(srcIdle)
	var wdl deadline.Lazy
	src.SetReadDeadline(rd)
	r := relay.NewReader(src, dst, relayBuffers{}, nil, true) // holds a buffer or pipe only while bytes are on hand
	defer r.Release()
	var acked uint64 // the peer's acknowledged bytes at send's last look (TCP_INFO)
	for {
		n, err := r.Next()
		if n > 0 {
			now := time.Now()
			tr.Moved(now)
			if want := now.Add(srcIdle); want.Sub(rd) > srcIdle/8 {
				rd = want
				src.SetReadDeadline(rd)
			}
			// A quarter of dstIdle: a write that outlasts it looks at the
			// peer's progress (send).
			deadline.Write(dst, &wdl, now, dstIdle/4)
			if werr := send(r, dst, &wdl, now, dstIdle, &acked, tr, moved, count); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			return closeWrite(dst)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Not idle if the other direction moved meanwhile, or is
			// writing still.
			if want, ok := tr.ReadAgainUntil(time.Now(), srcIdle); ok {
				rd = want
				src.SetReadDeadline(rd)
				continue
			}
			return err
		default:
			return err
		}
	}
}

// send writes what r has on hand to dst, the bytes read at start.
// dstIdle bounds the peer's silence, not the write: the write's deadline
// (a quarter of dstIdle, armed by pipe) passing, send looks at how many
// bytes the peer has acknowledged (TCP_INFO), and goes on while it
// acknowledged some less than dstIdle ago (a slow but steady reader, a
// large pipe to drain). Bytes the kernel still takes into the socket's
// send buffer are no progress of the peer's: a reader that stopped is cut
// between dstIdle and 5/4 dstIdle after its last acknowledgement (after
// start, at the soonest). The first sample of a write has nothing taken at
// start to compare with: it counts as progress, since the peer may have
// acknowledged bytes just after start, unless it equals the last sample of
// an earlier write (*acked: nothing acknowledged since, so none after
// start either). The bytes written are added to *moved and
// passed to count; while it writes, tr tells the other direction so (its
// peer is not idle).
func send(r *relay.Reader, dst net.Conn, wdl *deadline.Lazy, start time.Time, dstIdle time.Duration, acked *uint64, tr *relay.Traffic, moved *int64, count func(int64)) error {
	tr.BeginWrite()
	defer tr.EndWrite()
	last := start // the peer's last progress seen
	for {
		w, err := r.Send(dst)
		*moved += int64(w)
		count(int64(w))
		if err == nil {
			if w > 0 {
				tr.Moved(time.Now())
			}
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			r.Release()
			return err
		}
		now := time.Now()
		if n, ok := r.PeerAcked(); !ok {
			if w > 0 { // no TCP_INFO: bytes moved are the progress
				last = now
			}
		} else if n != *acked { // *acked: the last look, this write's or an earlier one's; on a first look, progress since start at a time unknown
			*acked, last = n, now
		}
		if last.Equal(now) { // progress seen now: traffic for the other direction
			tr.Moved(now)
		}
		at := last.Add(dstIdle)
		if !at.After(now) {
			r.Release()
			return err
		}
		if next := now.Add(dstIdle / 4); next.Before(at) {
			at = next
		}
		dst.SetWriteDeadline(at)
		wdl.Forget() // set exactly: the next write re-arms
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}
