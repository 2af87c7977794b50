package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// stalledPeer accepts TCP connections and never reads them; its receive
// buffer is as small as the kernel allows, so that it fills at once.
func stalledPeer(t *testing.T) string {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-stop; c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// readingPeer accepts TCP connections and reads (discards) everything.
func readingPeer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// longPath makes each access record about 3 KB: a few hundred requests
// are then more than a stalled peer's socket buffers hold.
var longPath = strings.Repeat("p", 3000)

// latencies sends n keep-alive GETs to front and returns their durations,
// sorted.
func latencies(t *testing.T, front string, n int) []time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var ds []time.Duration
	for i := range n {
		start := time.Now()
		resp, err := client.Get(fmt.Sprintf("http://%s/r%d/%s", front, i, longPath))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// TestStalledLogTargetDoesNotSlowRequests: an access log target that stops
// reading (a TCP peer that accepts and never reads; a UDP socket nobody
// reads) does not slow requests, measured against a target that reads;
// the records it loses are counted and reported in the main log.
func TestStalledLogTargetDoesNotSlowRequests(t *testing.T) {
	const n = 600
	origin := okOrigin(t)
	run := func(target string) (*sozutest.Proxy, string, []time.Duration) {
		dir := t.TempDir()
		sock := filepath.Join(dir, "sozu.sock")
		front, tcpFront := freeAddr(t), freeAddr(t)
		p := startProxy(t, dir, sock, accessConfig(sock, front, tcpFront, origin.addr,
			fmt.Sprintf("access_logs_target = %q\naccess_logs_format = \"json\"", target)), front)
		latencies(t, front, 20) // warm up
		return p, sock, latencies(t, front, n)
	}
	_, _, base := run("tcp://" + readingPeer(t))
	stalledAddr := stalledPeer(t)
	stalled, stalledSock, slow := run("tcp://" + stalledAddr)
	deafUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer deafUDP.Close()
	_, _, udp := run("udp://" + deafUDP.LocalAddr().String())

	p50, p99 := func(d []time.Duration) time.Duration { return d[len(d)/2] }, func(d []time.Duration) time.Duration { return d[len(d)*99/100] }
	t.Logf("request latency p50/p99: reading target %v/%v, stalled TCP target %v/%v, unread UDP target %v/%v",
		p50(base), p99(base), p50(slow), p99(slow), p50(udp), p99(udp))
	// The machine is shared: bounds catch a blocked writer (a request
	// waiting on the log), not noise.
	for name, d := range map[string][]time.Duration{"stalled TCP": slow, "unread UDP": udp} {
		if p50(d) > 3*p50(base)+5*time.Millisecond || d[len(d)-1] > time.Second {
			t.Errorf("%s target: p50 %v, max %v, against p50 %v with a reading target", name, p50(d), d[len(d)-1], p50(base))
		}
	}
	// The stalled peer's batches time out (write timeout): dropped,
	// counted and reported.
	sozutest.WaitFor(t, 30*time.Second, "a drop report for the stalled target", func() bool {
		return strings.Contains(stalled.Out.String(), "log target tcp://"+stalledAddr+": dropped")
	})
	// … and in the metrics, where a drop report sent to the same dead
	// target would be lost.
	dropped := queryMetrics(t, stalledSock, &command.QueryMetricsOptions{}).GetMain()[pm.LogTargetDrops].GetCount()
	if dropped <= 0 {
		t.Fatalf("%s = %d after drops", pm.LogTargetDrops, dropped)
	}
}
