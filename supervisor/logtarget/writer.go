package logtarget

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

const syscallCloexec = syscall.O_CLOEXEC

// run writes queued records until Close: streams (stdout, stderr, files,
// tcp://) in batches of up to batchSize bytes (a larger run of records in
// one write of its own), datagram targets (udp://, unix://) one record per
// datagram.
func (t *Target) run() {
	defer close(t.exited)
	defer t.closeOutput()
	batch := make([]byte, 0, batchSize)
	backoff := time.Duration(0)
	for {
		var r run
		select {
		case r = <-t.queue:
		case done := <-t.reopen:
			t.flush()
			done <- t.reopenFile()
			continue
		case <-t.done:
			t.drain(batch)
			return
		}
		t.queued.Add(-int64(r.n))
		if t.kind == kindTCP && t.connected() {
			if err := peerClosed(t.conn); err != nil {
				t.opt.Report(fmt.Sprintf("log target %s: %v: reconnecting", t.name, err))
				t.closeOutput()
			}
		}
		if !t.connected() && !t.connect(&backoff) {
			t.dropped.Add(uint64(r.n))
			r.free()
			continue
		}
		if t.datagram() {
			t.send(r.b)
			r.free()
			continue
		}
		batch, n := batch[:0], 0
	more:
		for {
			if len(batch) > 0 && len(batch)+len(r.b) > batchSize {
				t.writeBatch(batch, n)
				batch, n = batch[:0], 0
			}
			if len(batch) == 0 && len(r.b) >= batchSize/2 {
				t.writeBatch(r.b, r.n) // no copy for a worker's large batch
			} else {
				batch, n = append(batch, r.b...), n+r.n
			}
			r.free()
			select {
			case r = <-t.queue:
				t.queued.Add(-int64(r.n))
			default:
				break more
			}
		}
		if len(batch) > 0 {
			t.writeBatch(batch, n)
		}
	}
}

// flush writes the records queued now to a file target, run by run,
// within one write timeout (a FIFO whose reader stopped must not hold a
// reopen for a timeout per run; what is left goes to the new file):
// select picks at random between a reopen request and a queued record,
// and records queued before a Reopen belong to the old file.
func (t *Target) flush() {
	deadline := time.Now().Add(t.opt.WriteTimeout)
	for n := len(t.queue); n > 0 && time.Now().Before(deadline); n-- {
		r := <-t.queue
		t.queued.Add(-int64(r.n))
		t.writeBatch(r.b, r.n)
		r.free()
	}
}

// drain writes what is left in the queue at Close, within one write
// timeout.
func (t *Target) drain(batch []byte) {
	deadline := time.Now().Add(t.opt.WriteTimeout)
	for time.Now().Before(deadline) {
		select {
		case r := <-t.queue:
			t.queued.Add(-int64(r.n))
			if !t.connected() {
				t.dropped.Add(uint64(r.n))
			} else if t.datagram() {
				t.send(r.b)
			} else {
				t.writeBatch(append(batch[:0], r.b...), r.n)
			}
			r.free()
		default:
			return
		}
	}
}

func (t *Target) datagram() bool { return t.kind == kindUDP || t.kind == kindUnix }

func (t *Target) connected() bool { return t.w != nil }

// connect (re)connects a network target, after waiting the backoff when
// the last attempt failed; it reports whether it is connected. Records
// keep queueing (and dropping when full) while it waits.
func (t *Target) connect(backoff *time.Duration) bool {
	if *backoff > 0 {
		select {
		case <-time.After(*backoff):
		case <-t.done:
			return false
		}
	}
	var c net.Conn
	var err error
	switch t.kind {
	case kindUDP:
		c, err = net.DialTimeout("udp", t.addr, t.opt.WriteTimeout)
	case kindTCP:
		d := net.Dialer{Timeout: t.opt.WriteTimeout, Control: boundSendBuffer}
		c, err = d.Dial("tcp", t.addr)
	case kindUnix:
		c, err = net.DialTimeout("unixgram", t.addr, t.opt.WriteTimeout)
	default:
		return false
	}
	if err != nil {
		if t.kind == kindUnix && errors.Is(err, syscall.EPROTOTYPE) {
			// A stream (SOCK_STREAM) socket refuses a datagram
			// socket's connect: say what unix:// wants, not just errno.
			err = fmt.Errorf("%w: unix:// sends datagrams, as upstream's; %s is not a datagram (SOCK_DGRAM) socket", err, t.addr)
		}
		if *backoff == 0 {
			t.opt.Report(fmt.Sprintf("log target %s: %v: retrying with backoff", t.name, err))
		}
		*backoff = min(max(2**backoff, t.opt.MinBackoff), t.opt.MaxBackoff)
		return false
	}
	if *backoff > 0 {
		t.opt.Report(fmt.Sprintf("log target %s: connected again", t.name))
	}
	*backoff = 0
	t.conn, t.w, t.closer = c, c, c
	return true
}

// tcpSendBuffer bounds what a tcp:// peer that stops reading holds in the
// kernel (autotuning would let it grow to net.ipv4.tcp_wmem's maximum):
// beyond it, batches wait for the write timeout and are dropped.
const tcpSendBuffer = 256 << 10

func boundSendBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, tcpSendBuffer)
	})
	if err != nil {
		return err
	}
	return serr
}

// peerClosed reports whether a tcp:// peer closed or reset the connection,
// without waiting. A write would not tell: the kernel takes the first
// batch after the peer's FIN and fails only the next one, so the records
// of that batch would be lost without being counted. The stream is one
// way: whatever the peer sent is read and discarded, so that its FIN
// behind that data is seen too (a few reads at most; a peer still
// sending is alive). The peer closing between this check and the write
// still loses a batch.
func peerClosed(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var rerr error
	var b [4096]byte
	for range 16 {
		if err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_DONTWAIT)
			return true // never wait for the peer
		}); err != nil {
			return err
		}
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			return nil
		case rerr != nil:
			return fmt.Errorf("connection lost: %w", rerr)
		case n == 0:
			return errors.New("connection closed by the peer")
		}
	}
	return nil
}

// send writes one datagram; a failure drops it, and a refused one (no
// reader on a unix socket, an ICMP port unreachable) drops the connection
// so that the next record reconnects.
func (t *Target) send(rec []byte) {
	t.conn.SetWriteDeadline(time.Now().Add(t.opt.WriteTimeout))
	if _, err := t.conn.Write(rec); err != nil {
		t.lastErr.Store(&err)
		t.dropped.Add(1)
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || t.kind == kindUnix {
			t.closeOutput()
		}
	}
}

// writeBatch writes n records at once to a stream; a failure drops them
// (its error said in the next drop report).
// A network stream that fails (or stalls past the write timeout) is
// closed, and reconnected on the next record.
func (t *Target) writeBatch(b []byte, n int) {
	if !t.connected() { // an earlier batch of this round failed
		t.dropped.Add(uint64(n))
		return
	}
	if t.conn != nil {
		t.conn.SetWriteDeadline(time.Now().Add(t.opt.WriteTimeout))
	} else if f, ok := t.w.(*os.File); ok && t.kind == kindFile {
		// A FIFO or a device, pollable (Options.OpenFile): a reader
		// that stopped costs a write timeout per batch. A regular file
		// has no deadline (os.ErrNoDeadline).
		f.SetWriteDeadline(time.Now().Add(t.opt.WriteTimeout))
	}
	if _, err := t.w.Write(b); err != nil {
		t.lastErr.Store(&err)
		t.dropped.Add(uint64(n))
		if t.conn != nil {
			t.opt.Report(fmt.Sprintf("log target %s: %v: reconnecting", t.name, err))
			t.closeOutput()
		}
	}
}

// reopenFile replaces the file with a new open of its path.
func (t *Target) reopenFile() error {
	f, err := t.openFile()
	if err != nil {
		return err
	}
	t.closeOutput()
	t.w, t.closer = f, f
	return nil
}

// openFile opens the file target with Options.OpenFile.
func (t *Target) openFile() (*os.File, error) {
	f, err := t.opt.OpenFile(t.addr)
	if err != nil {
		return nil, fmt.Errorf("log target %s: %w", t.name, err)
	}
	return f, nil
}

// closeOutput closes the file or connection (never stdout or stderr).
func (t *Target) closeOutput() {
	if t.closer != nil {
		t.closer.Close()
	}
	if t.kind != kindStdout && t.kind != kindStderr {
		t.w = nil
	}
	t.conn, t.closer = nil, nil
}
