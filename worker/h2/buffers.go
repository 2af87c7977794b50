package h2

import (
	"sync"
	"sync/atomic"
)

// An idle connection holds no buffers (docs/architecture.md): its writer
// checks a batch buffer out for each batch it writes.

// batchKeep bounds the batch buffers kept in the pool: a batch is at most
// batchBytes and one frame more; a buffer grown past this is dropped.
const batchKeep = 2 * batchBytes

var (
	batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

	// buffersOut counts the batch buffers checked out.
	buffersOut atomic.Int64
)

// BuffersCheckedOut returns how many pooled batch buffers HTTP/2
// connections hold now: one per batch being written.
func BuffersCheckedOut() int64 { return buffersOut.Load() }

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
