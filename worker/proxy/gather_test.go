package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// tlsPair returns the server side of a TLS connection over a polledConn,
// as the proxy serves it, and the client side, handshaken.
func tlsPair(t *testing.T) (*tls.Conn, *tls.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv := tls.Server(polled(sc), testTLSConfig(t, "a.test"))
	cli := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"})
	t.Cleanup(func() { srv.Close(); cli.Close() })
	srv.SetDeadline(time.Now().Add(20 * time.Second))
	cli.SetDeadline(time.Now().Add(20 * time.Second))
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// TestTLSRecordsOfAResponseRunInOneWrite: a response run that crypto/tls
// cuts into several records (over 16 KiB, or the small records it opens
// a connection with) reaches the socket in one write(2), not one per
// record (gather.go); a head and a body run written together
// (flushWith) too; the client reads the same bytes, in order.
func TestTLSRecordsOfAResponseRunInOneWrite(t *testing.T) {
	srv, cli := tlsPair(t)
	s := &session{conn: srv}
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<10) // 16 KiB: one full record, or many small ones
	body = append(body, body[:bufSize-len(body)]...)        // a read buffer's run: two records at least
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 20480\r\n\r\n")
	got := make(chan []byte, 1)
	want := append(append(append([]byte{}, body...), head...), body...)
	go func() {
		b := make([]byte, len(want))
		_, err := io.ReadFull(cli, b)
		if err != nil {
			b = nil
		}
		got <- b
	}()
	before := tlsWrites.Load()
	if n, err := s.writeClient(body); err != nil || n != len(body) {
		t.Fatalf("writeClient: %d, %v", n, err)
	}
	if w := tlsWrites.Load() - before; w != 1 {
		t.Fatalf("a %d-byte run took %d writes to the socket, want 1", len(body), w)
	}
	before = tlsWrites.Load()
	s.out = append(s.out[:0], head...)
	cfg := &Listener{FrontTimeout: time.Minute}
	if err := s.flushWith(cfg, body); err != nil {
		t.Fatal(err)
	}
	if w := tlsWrites.Load() - before; w != 1 {
		t.Fatalf("a head and a %d-byte body took %d writes to the socket, want 1", len(body), w)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the client read %d bytes, not the %d written", len(b), len(want))
	}
}

// TestTLSRecordsOfAnHTTP2BatchInOneWrite: an HTTP/2 connection's writer
// writes a batch of frames through waitTLSConn; the records crypto/tls
// cuts a batch into reach the socket in one write(2), and the client
// reads the same bytes.
func TestTLSRecordsOfAnHTTP2BatchInOneWrite(t *testing.T) {
	srv, cli := tlsPair(t)
	w := &waitTLSConn{Conn: srv, pc: srv.NetConn().(*polledConn)}
	batch := bytes.Repeat([]byte("frames, frames.."), 2<<10) // 32 KiB: two records
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(batch))
		if _, err := io.ReadFull(cli, b); err != nil {
			b = nil
		}
		got <- b
	}()
	before := tlsWrites.Load()
	if n, err := w.Write(batch); err != nil || n != len(batch) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if n := tlsWrites.Load() - before; n != 1 {
		t.Fatalf("a %d-byte batch took %d writes to the socket, want 1", len(batch), n)
	}
	if b := <-got; !bytes.Equal(b, batch) {
		t.Fatalf("the client read %d bytes, not the %d written", len(b), len(batch))
	}
}
