package h2

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// writeCounter counts the writes made to a connection.
type writeCounter struct {
	net.Conn
	n atomic.Int64
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.n.Add(1)
	return w.Conn.Write(p)
}

// TestBurstOneWrite checks that responses completed together go out
// together: 10 handlers released at once each answer a small response,
// and the connection writes them in fewer socket writes than responses
// (a HEADERS frame and its DATA in separate writes made 20).
func TestBurstOneWrite(t *testing.T) {
	const streams = 10
	for round := range 5 {
		var started sync.WaitGroup
		started.Add(streams)
		release := make(chan struct{})
		h := HandlerFunc(func(s *Stream) {
			started.Done()
			<-release
			s.WriteHeader(200, []HeaderField{{Name: []byte("content-type"), Value: []byte("text/plain")}})
			s.Write([]byte("hello"))
			s.Close()
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var wc *writeCounter
		served := make(chan struct{})
		go func() {
			defer close(served)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wc = &writeCounter{Conn: nc}
			NewConn(wc, Limits{}, h, nil).Serve()
		}()
		rc := dialRaw(t, ln.Addr().String())
		for i := range streams {
			rc.get(uint32(2*i+1), true)
		}
		started.Wait()
		before := wc.n.Load()
		close(release)
		ended := 0
		rc.waitFor("every response", func(f http2.Frame) bool {
			if f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type == http2.FrameData {
				ended++
			}
			return ended == streams
		})
		if got := wc.n.Load() - before; got >= streams {
			t.Fatalf("round %d: %d responses released together took %d writes", round, streams, got)
		}
		rc.nc.Close()
		<-served
	}
}
