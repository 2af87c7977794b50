package h2

import (
	"bufio"
	"sync"
	"sync/atomic"
)

// An idle connection holds no buffers (docs/architecture.md). A connection
// checks its read buffer out of a pool when bytes come and gives it back
// once its reader has consumed every byte read (awaitFrame), when its
// connection can wait for the next ones without a buffer (IdleWaiter); its
// writer checks a batch buffer out for each batch it writes.

// IdleWaiter is implemented by a connection (the nc of NewConn) that can
// wait for its peer's next bytes without a read buffer.
type IdleWaiter interface {
	// WaitReadable blocks until a Read may return without waiting for
	// the peer (bytes, the end, an error), within the connection's read
	// deadline: it returns the deadline's error (os.ErrDeadlineExceeded
	// matches it) when it runs out, or the error a Read would return.
	// It consumes nothing: what it had to read to know is for the next
	// Read. Only the connection's reader calls it, between Reads.
	WaitReadable() error
}

// readBufSize is the size of a connection's read buffer: a frame of the
// largest size we accept (SETTINGS_MAX_FRAME_SIZE, 16 KiB) and its header
// fit whole.
const readBufSize = 16 << 10

// batchKeep bounds the batch buffers kept in the pool: a batch is at most
// batchBytes and one frame more; a buffer grown past this is dropped.
const batchKeep = 2 * batchBytes

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	batchPool  = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

	// buffersOut counts the read and batch buffers checked out.
	buffersOut atomic.Int64
)

// BuffersCheckedOut returns how many pooled read and batch buffers HTTP/2
// connections hold now: a read buffer per connection whose reader has
// bytes in flight (a frame being read, frames read and not processed yet),
// a batch buffer per batch being written. An idle connection over an
// IdleWaiter holds none, nor does one that has ended.
func BuffersCheckedOut() int64 { return buffersOut.Load() }

// takeReader checks the read buffer out, if the reader holds none.
func (c *Conn) takeReader() {
	if c.br == nil {
		buffersOut.Add(1)
		c.br = readerPool.Get().(*bufio.Reader)
		c.br.Reset(c.nc)
	}
}

// releaseReader gives the read buffer back; no unread byte may be in it.
func (c *Conn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
		buffersOut.Add(-1)
	}
}

// frameSource is what the reading Framer reads: the connection's read
// buffer, whichever one it holds (c.br changes as buffers are taken and
// given back). A struct of one pointer: no allocation as an io.Reader.
type frameSource struct{ c *Conn }

func (r frameSource) Read(p []byte) (int, error) { return r.c.br.Read(p) }

// batchBuf is the batch being built by its writer (writeLoop, or a
// handler's flushInlineLocked): a pooled buffer while a batch is built and
// written, none between batches.
type batchBuf struct {
	p *[]byte // the pooled buffer, nil between batches
	b []byte  // the batch: (*p)[:len] as it grows
}

// Write appends to the batch (the Framer's writer).
func (w *batchBuf) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// start checks a buffer out for a batch.
func (w *batchBuf) start() {
	if w.p == nil {
		buffersOut.Add(1)
		w.p = batchPool.Get().(*[]byte)
		w.b = (*w.p)[:0]
	}
}

// done gives the batch's buffer back once it is written (one that grew
// past batchKeep is left to the garbage collector).
func (w *batchBuf) done() {
	if w.p == nil {
		return
	}
	if cap(w.b) <= batchKeep {
		*w.p = w.b[:0]
		batchPool.Put(w.p)
	}
	w.p, w.b = nil, nil
	buffersOut.Add(-1)
}
