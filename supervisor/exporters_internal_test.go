package supervisor

import (
	"net"
	"testing"
	"time"
)

// sendNow never waits: to a port where nobody listens, the kernel's
// refusals come back as errors (counted by runStatsd), and a thousand
// sends take no time at all.
func TestStatsdSendNeverWaits(t *testing.T) {
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().(*net.UDPAddr)
	l.Close() // nobody listens there any more
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	failed := 0
	for range 1000 {
		if sendNow(conn, []byte("sozu.WRK-00.http.requests:1|c")) != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no send failed to a closed port")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("1000 sends took %v", d)
	}
}
