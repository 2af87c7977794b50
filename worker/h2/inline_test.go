package h2

import (
	"bytes"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

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
// each of sequential requests, sent once the writer is idle, is answered
// by a write from its handler's goroutine.
func TestLoneResponseWrittenInline(t *testing.T) {
	h := HandlerFunc(func(s *Stream) {
		s.WriteResponse(200, []HeaderField{{Name: []byte("content-type"), Value: []byte("text/plain")}}, []byte("hello"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type served struct {
		wc *stackWriteCounter
		c  *Conn
	}
	conns := make(chan served, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wc := &stackWriteCounter{Conn: nc}
		c := NewConn(wc, Limits{}, h, nil)
		conns <- served{wc, c}
		c.Serve()
	}()
	rc := dialRaw(t, ln.Addr().String())
	sv := <-conns
	// idle waits until the writer has no batch in hand and the previous
	// stream is gone: a request that comes while the writer is still
	// returning from its previous write, or while the previous handler
	// has not yet released its stream (the client may read the response
	// first), is not a lone response to an idle writer.
	idle := func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			sv.c.mu.Lock()
			busy := sv.c.writing || sv.c.pendingLocked() || len(sv.c.streams) > 0
			sv.c.mu.Unlock()
			if !busy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer stayed busy")
			}
			runtime.Gosched()
		}
	}
	// The server's SETTINGS ACK is the writer's last frame before the
	// requests: once read, the writer is done with the preface.
	rc.waitFor("the SETTINGS ACK", func(f http2.Frame) bool {
		sf, ok := f.(*http2.SettingsFrame)
		return ok && sf.IsAck()
	})
	const requests = 20
	for i := range requests {
		id := uint32(2*i + 1)
		idle()
		rc.get(id, true)
		rc.waitFor("the response", func(f http2.Frame) bool {
			return f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type == http2.FrameData
		})
	}
	if got := sv.wc.handler.Load(); got != requests {
		t.Fatalf("%d of %d lone responses written by their handler (%d writes by others)", got, requests, sv.wc.other.Load())
	}
	rc.nc.Close()
	<-done
}
