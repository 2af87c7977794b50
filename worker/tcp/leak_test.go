package tcp

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// TestNoLeak runs many connections through every way a session ends (idle
// client, idle backend, connect timeout, refused backend, slowloris and
// malformed PROXY headers, client reset, normal close) and checks that
// every session and goroutine is gone afterwards.
func TestNoLeak(t *testing.T) {
	const n = 20
	const timeout = 300 * time.Millisecond
	o := startOrigin(t, echo)
	silent := startOrigin(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	reg := backends.NewRegistry(backends.Options{})
	t.Cleanup(reg.Close)
	l := func(expect bool, bs *backends.Set) *Listener {
		return &Listener{ExpectProxy: expect, FrontTimeout: timeout, BackTimeout: timeout, ConnectTimeout: timeout,
			Cluster: &Cluster{ID: "c", Backends: bs}}
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	// One registry, one Update: a cluster per backend behaviour.
	specs := []backends.Spec{
		{ClusterID: "echo", ID: "a", Addr: o.addr, Weight: 100},
		{ClusterID: "silent", ID: "a", Addr: silent.addr, Weight: 100},
		{ClusterID: "hole", ID: "a", Addr: blackhole(t), Weight: 100},
		{ClusterID: "dead", ID: "a", Addr: deadAddr(t), Weight: 100},
	}
	sets := reg.Update(specs, nil)
	servers := map[string]*Server{}
	addrs := map[string]string{}
	for _, m := range []struct {
		name    string
		expect  bool
		cluster string
	}{{"echo", false, "echo"}, {"silent", false, "silent"}, {"hole", false, "hole"}, {"dead", false, "dead"}, {"expect", true, "echo"}} {
		srv, addr := start(t, l(m.expect, sets[m.cluster]), false)
		servers[m.name], addrs[m.name] = srv, addr
	}
	var wg sync.WaitGroup
	client := func(name string, f func(c *net.TCPConn)) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addrs[name])
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				f(c.(*net.TCPConn))
			}()
		}
	}
	client("echo", func(c *net.TCPConn) { // normal exchange and close
		io.WriteString(c, "x")
		c.CloseWrite()
		io.ReadAll(c)
	})
	client("echo", func(c *net.TCPConn) { io.ReadAll(c) })                          // idle client
	client("silent", func(c *net.TCPConn) { io.ReadAll(c) })                        // idle backend
	client("hole", func(c *net.TCPConn) { io.ReadAll(c) })                          // connect timeout
	client("dead", func(c *net.TCPConn) { io.ReadAll(c) })                          // refused
	client("expect", func(c *net.TCPConn) { c.Write([]byte{0x0d}); io.ReadAll(c) }) // slowloris
	client("expect", func(c *net.TCPConn) { io.WriteString(c, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"); io.ReadAll(c) })
	client("expect", func(c *net.TCPConn) { // reset mid-stream
		c.Write(append(proxyproto.AppendLocal(nil), "x"...))
		io.ReadFull(c, make([]byte, 1))
		c.SetLinger(0)
	})
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := 0
		for _, s := range servers {
			open += s.Sessions()
		}
		// The servers' accept loops and the origins' handlers remain.
		g := runtime.NumGoroutine()
		if open == 0 && g <= before+len(servers)+2 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d sessions open, %d goroutines (%d before):\n%s", open, g, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
