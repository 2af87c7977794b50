package udp

import (
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// BenchmarkRelay measures datagrams through a Server: one client keeps
// window datagrams in flight to an echo backend over one flow. It reports
// relayed datagrams per second (both directions counted once: a request
// and its reply are one round) and the CPU time of the whole process per
// round, which includes the test's client and echo backend (so it bounds
// the proxy's cost from above). make bench runs it.
func BenchmarkRelay(b *testing.B) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(b, "a")
	_, addr := startServer(b, &Listener{Cluster: cluster(b, reg, e)}, Options{})
	c := dialClient(b, addr)
	const window = 32
	payload := make([]byte, 64)
	buf := make([]byte, 2048)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	sent, got, lost := 0, 0, 0
	for sent < min(window, b.N) {
		c.pc.Write(payload)
		sent++
	}
	for got+lost < b.N {
		c.pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.pc.Read(buf); err != nil {
			lost += sent - got - lost // the window is lost: send it again
			for i := 0; i < window && sent < b.N+lost; i++ {
				c.pc.Write(payload)
				sent++
			}
			continue
		}
		got++
		if sent < b.N {
			c.pc.Write(payload)
			sent++
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	b.ReportMetric(float64(got)/elapsed.Seconds(), "datagrams/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(got, 1)), "cpu-µs/datagram")
	b.ReportMetric(float64(lost), "lost")
}
