package tcp

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRelaySplices sends a few MiB through a relay between TCP connections
// to an echo origin and checks that they come back intact, that both
// directions moved most of them with splice(2) (the byte counter), and that no
// pipe stays checked out once the connection is quiet.
func TestRelaySplices(t *testing.T) {
	const size = 4 << 20
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	payload := make([]byte, size)
	rand.Read(payload)
	before := SplicedBytes()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		errc <- err
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("the echoed bytes differ from those sent")
	}
	// A direction splices once a read has filled a buffer: all but its
	// first bytes, in each direction.
	if moved := SplicedBytes() - before; moved < size {
		t.Fatalf("%d bytes spliced, want at least %d (most of both directions)", moved, size)
	}
	deadline := time.Now().Add(5 * time.Second)
	for PipesCheckedOut() != 0 || BuffersCheckedOut() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pipes and %d buffers checked out by a quiet relay, want 0", PipesCheckedOut(), BuffersCheckedOut())
		}
		time.Sleep(5 * time.Millisecond)
	}
	relayEcho(t, c, "still there\n")
}

// TestSetPipeCapacity: splice_pipe_capacity_bytes sizes the pipes made
// after it is set; 0 gives the kernel's default back.
func TestSetPipeCapacity(t *testing.T) {
	defer SetPipeCapacity(0)
	size := func() int {
		t.Helper()
		p, err := getPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { pipesOut.Add(-1); p.close() }()
		n, err := unix.FcntlInt(uintptr(p.r), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	def := size()
	if err := SetPipeCapacity(256 << 10); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != 256<<10 {
		t.Fatalf("pipe capacity %d after SetPipeCapacity(256 KiB), want %d", got, 256<<10)
	}
	if err := SetPipeCapacity(-1); err == nil {
		t.Fatal("SetPipeCapacity(-1) accepted")
	}
	if err := SetPipeCapacity(0); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != def {
		t.Fatalf("pipe capacity %d after SetPipeCapacity(0), want the default %d", got, def)
	}
}
