package tcp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/splice"
)

// TestIdleRelaysHoldNoBuffers holds many relayed connections quiet after
// an exchange each and checks through the buffer counter that no relay
// direction holds a buffer or a splice pipe meanwhile; then that every relay still carries
// bytes both ways.
func TestIdleRelaysHoldNoBuffers(t *testing.T) {
	const n = 500
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{}, false, o.addr)
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		relayEcho(t, conns[i], fmt.Sprintf("hello %d\n", i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for BuffersCheckedOut() != 0 || splice.CheckedOut() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d relay buffers and %d pipes checked out by %d quiet relays, want 0", BuffersCheckedOut(), splice.CheckedOut(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, c := range conns {
		relayEcho(t, c, fmt.Sprintf("again %d\n", i))
	}
}

// relayEcho writes msg on c and reads it back.
func relayEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, []byte(msg)) {
		t.Fatalf("echoed %q, %v; want %q", got, err, msg)
	}
}
