package h2

import (
	"bytes"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// stackWriteCounter counts the writes made to a connection from a stream
// handler's goroutine (its stack holds runHandler) and the others.
type stackWriteCounter struct {
	net.Conn
	handler, other atomic.Int64
}

func (w *stackWriteCounter) Write(p []byte) (int, error) {
	buf := make([]byte, 16<<10)
	if bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("runHandler")) {
		w.handler.Add(1)
	} else {
		w.other.Add(1)
	}
	return w.Conn.Write(p)
}

// TestLoneResponseWrittenInline checks that the whole response of a
// connection's only stream is written by its handler as it queues it
// (flushInlineLocked), not handed to the writer goroutine to wake up:
// sequential requests are answered by writes from their handler's
// goroutine. Most, not all: a request that comes while the writer is still
// finishing its previous batch (the SETTINGS exchange, or the moment
// between a write and its return) leaves its response to the writer.
func TestLoneResponseWrittenInline(t *testing.T) {
	h := HandlerFunc(func(s *Stream) {
		s.WriteResponse(200, []HeaderField{{Name: []byte("content-type"), Value: []byte("text/plain")}}, []byte("hello"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wc := make(chan *stackWriteCounter, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := &stackWriteCounter{Conn: nc}
		wc <- c
		NewConn(c, Limits{}, h, nil).Serve()
	}()
	rc := dialRaw(t, ln.Addr().String())
	c := <-wc
	const requests = 20
	for i := range requests {
		id := uint32(2*i + 1)
		rc.get(id, true)
		rc.waitFor("the response", func(f http2.Frame) bool {
			return f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type == http2.FrameData
		})
	}
	if got := c.handler.Load(); got < requests/2 {
		t.Fatalf("%d of %d lone responses written by their handler (%d writes by others)", got, requests, c.other.Load())
	}
	rc.nc.Close()
	<-served
}
