package tcp

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/splice"
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
	before := splice.Moved()
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
	if moved := splice.Moved() - before; moved < size {
		t.Fatalf("%d bytes spliced, want at least %d (most of both directions)", moved, size)
	}
	deadline := time.Now().Add(5 * time.Second)
	for splice.CheckedOut() != 0 || BuffersCheckedOut() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pipes and %d buffers checked out by a quiet relay, want 0", splice.CheckedOut(), BuffersCheckedOut())
		}
		time.Sleep(5 * time.Millisecond)
	}
	relayEcho(t, c, "still there\n")
}
