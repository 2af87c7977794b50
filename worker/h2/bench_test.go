package h2

import (
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var benchResp = []HeaderField{{Name: []byte("content-type"), Value: []byte("text/plain")}, {Name: []byte("server"), Value: []byte("sozu")}}
var benchBody = []byte("hello, world\n")

var benchHandler = HandlerFunc(func(s *Stream) {
	s.WriteHeader(200, benchResp)
	s.Write(benchBody)
	s.Close()
})

// benchmarkGets sends b.N GET requests, inflight at a time, over one
// connection with raw frames and counts the whole process's allocations
// (client side included: the raw framer reuses frames, the HPACK encoder is
// fed constant strings).
func benchmarkGets(b *testing.B, inflight int) {
	srv, cli := net.Pipe()
	go NewConn(srv, Limits{}, benchHandler, nil).Serve()
	defer cli.Close()
	rc := &rawClient{nc: cli, fr: http2.NewFramer(cli, cli)}
	rc.fr.SetReuseFrames()
	go func() {
		cli.Write([]byte(http2.ClientPreface))
		rc.fr.WriteSettings()
	}()
	if _, err := rc.fr.ReadFrame(); err != nil { // server SETTINGS
		b.Fatal(err)
	}
	rc.enc = hpack.NewEncoder(&rc.buf)
	block := func() []byte {
		rc.buf.Reset()
		for i := 0; i < len(getReq); i += 2 {
			rc.enc.WriteField(hpack.HeaderField{Name: getReq[i], Value: getReq[i+1]})
		}
		return rc.buf.Bytes()
	}
	sendq := make(chan uint32, inflight)
	go func() {
		rc.fr.WriteSettingsAck()
		rc.fr.WriteWindowUpdate(0, 1<<30)
		for id := range sendq {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(), EndStream: true, EndHeaders: true})
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	next := uint32(1)
	sent, done := 0, 0
	for ; sent < inflight && sent < b.N; sent++ {
		sendq <- next
		next += 2
	}
	for done < b.N {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		if !d.StreamEnded() {
			continue
		}
		done++
		if sent < b.N {
			sendq <- next
			next += 2
			sent++
		}
	}
	b.StopTimer()
	close(sendq)
}

func BenchmarkGetSequential(b *testing.B)  { benchmarkGets(b, 1) }
func BenchmarkGetPipelined10(b *testing.B) { benchmarkGets(b, 10) }
