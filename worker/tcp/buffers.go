package tcp

import (
	"sync"
	"sync/atomic"
)

// bufSize is the size of a relay buffer.
const bufSize = 32 << 10

var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	// buffersOut counts the relay buffers checked out.
	buffersOut atomic.Int64
)

// BuffersCheckedOut returns how many relay buffers the server's relays
// hold right now: one per direction that is moving bytes, none for a
// direction that waits for them.
func BuffersCheckedOut() int64 { return buffersOut.Load() }

func getBuf() *[]byte  { buffersOut.Add(1); return bufPool.Get().(*[]byte) }
func putBuf(p *[]byte) { buffersOut.Add(-1); bufPool.Put(p) }

// relayBuffers are the relay buffers of a relay.Reader (worker/relay),
// counted in buffersOut.
type relayBuffers struct{}

func (relayBuffers) Get() *[]byte  { return getBuf() }
func (relayBuffers) Put(p *[]byte) { putBuf(p) }
