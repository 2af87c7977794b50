package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// udpEcho is a UDP backend written for these tests: it answers each
// datagram with "<name>|<port>|<payload>", port being the source port the
// datagram came from (one per flow: each flow has its own backend socket).
// A datagram starting with a PROXY v2 header has the header decoded and
// recorded, and only the payload after it echoed.
type udpEcho struct {
	name string
	addr string
	pc   *net.UDPConn

	mu      sync.Mutex
	headers []proxyproto.Header
	plain   int // datagrams without a header
}

func startUDPEcho(t *testing.T, name string) *udpEcho {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	e := &udpEcho{name: name, addr: pc.LocalAddr().String(), pc: pc}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			payload := buf[:n]
			e.mu.Lock()
			if proxyproto.IsDgram(payload) {
				if h, hn, err := proxyproto.ParseBytes(payload, 0); err == nil {
					e.headers = append(e.headers, h)
					payload = payload[hn:]
				}
			} else {
				e.plain++
			}
			e.mu.Unlock()
			pc.WriteToUDPAddrPort(fmt.Appendf(nil, "%s|%d|%s", name, from.Port(), payload), from)
		}
	}()
	return e
}

// freeUDPPort returns a loopback UDP port free at the time of the call.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// udpClient is one client socket, connected to a listener of the proxy: it
// receives only datagrams sent from the listener's address.
type udpClient struct {
	pc  *net.UDPConn
	buf []byte
}

func dialUDP(t *testing.T, addr string) *udpClient {
	t.Helper()
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &udpClient{pc: pc, buf: make([]byte, 65536)}
}

// reply is a parsed answer of udpEcho.
type reply struct {
	backend string
	port    int // the backend-side source port: one per flow
	body    string
}

// ask sends msg and waits for the reply carrying it, sending again after
// each wait (UDP may lose a datagram) up to tries times. Replies to
// earlier copies are skipped.
func (c *udpClient) ask(msg string, wait time.Duration, tries int) (reply, bool) {
	for range tries {
		if _, err := c.pc.Write([]byte(msg)); err != nil {
			return reply{}, false
		}
		deadline := time.Now().Add(wait)
		for {
			c.pc.SetReadDeadline(deadline)
			n, err := c.pc.Read(c.buf)
			if err != nil {
				break
			}
			parts := strings.SplitN(string(c.buf[:n]), "|", 3)
			if len(parts) != 3 {
				continue
			}
			port, _ := strconv.Atoi(parts[1])
			if r := (reply{parts[0], port, parts[2]}); r.body == msg {
				return r, true
			}
		}
	}
	return reply{}, false
}

func (c *udpClient) local() netip.AddrPort { return c.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestUDP runs sozu (two workers, seccomp in kill mode) with three UDP
// listeners in upstream's shape (tcp clusters whose frontends are on udp
// listeners, [clusters.<id>.udp]) over UDP echo backends written here:
// flows per client address stick to one backend and spread over three;
// a flow ends after its responses; a flooding client does not stop
// another's replies; the PROXY v2 header reaches the backend.
func TestUDP(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	echoes := []*udpEcho{startUDPEcho(t, "a"), startUDPEcho(t, "b"), startUDPEcho(t, "c")}
	dns, pp := startUDPEcho(t, "dns"), startUDPEcho(t, "pp")
	game := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	oneShot := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	proxied := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "udp"
address = %[2]q
max_flows = 1000

[[listeners]]
protocol = "udp"
address = %[3]q

[[listeners]]
protocol = "udp"
address = %[4]q

[clusters.game]
protocol = "tcp"
frontends = [ { address = %[2]q } ]
backends = [ { address = %[5]q, backend_id = "a" }, { address = %[6]q, backend_id = "b" }, { address = %[7]q, backend_id = "c" } ]

[clusters.game.udp]
affinity_key = "SOURCE_IP_PORT"

[clusters.dns]
protocol = "tcp"
frontends = [ { address = %[3]q } ]
backends = [ { address = %[8]q } ]

[clusters.dns.udp]
responses = 1

[clusters.pp]
protocol = "tcp"
frontends = [ { address = %[4]q } ]
backends = [ { address = %[9]q } ]

[clusters.pp.udp]
send_proxy_protocol = true
`, sock, game, oneShot, proxied, echoes[0].addr, echoes[1].addr, echoes[2].addr, dns.addr, pp.addr)
	p := startProxy(t, dir, sock, cfg)
	for _, addr := range []string{game, oneShot, proxied} {
		c := dialUDP(t, addr)
		sozutest.WaitFor(t, 20*time.Second, "UDP listener "+addr+" to relay", func() bool {
			_, ok := c.ask("ready", 100*time.Millisecond, 1)
			return ok
		})
	}

	t.Run("8 clients x 50 datagrams, sticky and spread", func(t *testing.T) {
		const clients, datagrams = 8, 50
		type result struct {
			backends map[string]bool
			ports    map[int]bool
			replies  int
		}
		results := make([]result, clients)
		var wg sync.WaitGroup
		for i := range clients {
			c := dialUDP(t, game)
			wg.Go(func() {
				r := result{backends: map[string]bool{}, ports: map[int]bool{}}
				for j := range datagrams {
					rep, ok := c.ask(fmt.Sprintf("client %d datagram %d", i, j), 500*time.Millisecond, 10)
					if !ok {
						continue
					}
					r.replies++
					r.backends[rep.backend] = true
					r.ports[rep.port] = true
				}
				results[i] = r
			})
		}
		wg.Wait()
		spread := map[string]bool{}
		for i, r := range results {
			if r.replies != datagrams {
				t.Errorf("client %d: %d replies on its socket, want %d", i, r.replies, datagrams)
			}
			if len(r.backends) != 1 || len(r.ports) != 1 {
				t.Errorf("client %d: its flow moved: backends %v, backend-side ports %v", i, r.backends, r.ports)
			}
			for b := range r.backends {
				spread[b] = true
			}
		}
		if len(spread) < 2 {
			t.Errorf("8 flows all on backends %v: not spread", spread)
		}
	})

	t.Run("a flow ends after its responses", func(t *testing.T) {
		c := dialUDP(t, oneShot)
		ports := map[int]bool{}
		for i := range 5 {
			rep, ok := c.ask(fmt.Sprintf("query %d", i), time.Second, 5)
			if !ok {
				t.Fatalf("query %d: no reply", i)
			}
			ports[rep.port] = true
		}
		// responses = 1: each query is a new flow, from a new backend socket.
		if len(ports) != 5 {
			t.Fatalf("5 queries reached the backend from %d flows (ports %v), want 5", len(ports), ports)
		}
		// Without responses, the flows of the game listener keep theirs.
		g := dialUDP(t, game)
		first, _ := g.ask("g1", time.Second, 5)
		second, _ := g.ask("g2", time.Second, 5)
		if first.port == 0 || first.port != second.port {
			t.Fatalf("a flow without responses changed backend socket: %d then %d", first.port, second.port)
		}
	})

	t.Run("a flooding client does not stop another's replies", func(t *testing.T) {
		const flood, exchanges = 100_000, 30
		f := dialUDP(t, game)
		var sent atomic.Int64
		stop := make(chan struct{})
		floodDone := make(chan struct{})
		go func() {
			defer close(floodDone)
			payload := bytes.Repeat([]byte("f"), 512)
			for {
				select {
				case <-stop:
					if sent.Load() >= flood {
						return
					}
				default:
				}
				if _, err := f.pc.Write(payload); err == nil {
					sent.Add(1)
				}
			}
		}()
		sozutest.WaitFor(t, 10*time.Second, "the flood to start", func() bool { return sent.Load() >= 1000 })
		v := dialUDP(t, game)
		got, during := 0, 0
		for i := range exchanges {
			if _, ok := v.ask(fmt.Sprintf("victim %d", i), 500*time.Millisecond, 10); ok {
				got++
				select {
				case <-floodDone:
				default:
					during++
				}
			}
		}
		close(stop)
		<-floodDone
		if got != exchanges {
			t.Fatalf("the victim got %d of %d replies during the flood", got, exchanges)
		}
		if during == 0 {
			t.Fatal("no victim reply arrived while the flood ran")
		}
		t.Logf("flood: %d datagrams; victim: %d replies, %d while flooding", sent.Load(), got, during)
		if !p.Alive() {
			t.Fatal("the proxy died under the flood")
		}
	})

	t.Run("PROXY v2 header decoded by the backend", func(t *testing.T) {
		c := dialUDP(t, proxied)
		for i := range 3 {
			if _, ok := c.ask(fmt.Sprintf("pp %d", i), time.Second, 5); !ok {
				t.Fatalf("datagram %d: no reply", i)
			}
		}
		pp.mu.Lock()
		defer pp.mu.Unlock()
		var mine []proxyproto.Header
		for _, h := range pp.headers {
			if h.Source == c.local() {
				mine = append(mine, h)
			}
		}
		// First datagram only (proxy_protocol_every_datagram false).
		if len(mine) != 1 {
			t.Fatalf("headers from this client: %d, want 1 (first datagram only); all: %v", len(mine), pp.headers)
		}
		if h := mine[0]; h.Command != proxyproto.Proxy || h.Destination.String() != proxied {
			t.Fatalf("header %+v: want PROXY from %v to %s", h, c.local(), proxied)
		}
	})

	t.Run("CLI and state file", func(t *testing.T) {
		if out := p.MustCLI("listener", "udp", "list"); !strings.Contains(out, oneShot) || strings.Contains(out, "TCP listeners") {
			t.Fatalf("listener udp list:\n%s", out)
		}
		if out := p.MustCLI("-j", "listener", "udp", "list"); !strings.Contains(out, `"udp_listeners"`) || !strings.Contains(out, `"max_flows"`) {
			t.Fatalf("listener udp list --json:\n%s", out)
		}
		// A new listener, by the CLI only: add, frontend, activate, relay.
		events := subscribeEvents(t, sock)
		extra := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
		p.MustCLI("listener", "udp", "add", "--address", extra, "--max-flows", "50", "--max-rx-datagram-size", "64")
		p.MustCLI("frontend", "udp", "add", "--address", extra, "--id", "dns")
		sozutest.WaitFor(t, 10*time.Second, "LISTENER_ADDED and FRONTEND_ADDED events", func() bool {
			return events.count(command.EventKind_LISTENER_ADDED, "", "") == 1 && events.count(command.EventKind_FRONTEND_ADDED, "dns", "") == 1 // mutation events name their cluster
		})
		p.MustCLI("listener", "udp", "activate", "--address", extra)
		c := dialUDP(t, extra)
		if _, ok := c.ask("via cli", time.Second, 5); !ok {
			t.Fatal("a listener added by the CLI does not relay")
		}
		if _, ok := c.ask(strings.Repeat("x", 100), 300*time.Millisecond, 1); ok {
			t.Fatal("a datagram over --max-rx-datagram-size 64 was relayed")
		}
		p.MustCLI("listener", "udp", "update", "--address", extra, "--max-rx-datagram-size", "4096")
		if _, ok := c.ask(strings.Repeat("y", 100), time.Second, 5); !ok {
			t.Fatal("listener udp update did not raise max_rx_datagram_size")
		}
		if out := p.MustCLI("frontend", "udp", "list"); !strings.Contains(out, extra) || !strings.Contains(out, "dns") {
			t.Fatalf("frontend udp list:\n%s", out)
		}
		// The state file says it all, and loads back (upstream's format).
		state := filepath.Join(dir, "state.json")
		p.MustCLI("state", "save", "--file", state)
		raw, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"ADD_UDP_LISTENER"`, `"ADD_UDP_FRONTEND"`, `"max_rx_datagram_size":4096`, `"udp":{"affinity_key":null,"responses":1`} {
			if !bytes.Contains(raw, []byte(want)) {
				t.Errorf("state file lacks %s:\n%s", want, raw)
			}
		}
		p.MustCLI("frontend", "udp", "remove", "--address", extra, "--id", "dns")
		p.MustCLI("listener", "udp", "deactivate", "--address", extra)
		p.MustCLI("listener", "udp", "remove", "--address", extra)
		if out := p.MustCLI("listener", "udp", "list"); strings.Contains(out, extra) {
			t.Fatalf("removed listener still listed:\n%s", out)
		}
		p.MustCLI("state", "load", "--file", state)
		if _, ok := dialUDP(t, extra).ask("reloaded", time.Second, 5); !ok {
			t.Fatal("the listener loaded back from the state file does not relay")
		}
	})
}

// TestUDPHealth: [clusters.<id>.udp.health] in TCP_PROBE mode probes each
// backend's tcp_port; when the probes fail (the UDP backend itself still
// answers), fail_open = false drops new flows, fail_open = true (the
// default) keeps sending; when the probe passes again (rise), flows
// resume.
func TestUDPHealth(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	strictEcho, openEcho := startUDPEcho(t, "strict"), startUDPEcho(t, "open")
	// The TCP side the probes connect to, one per cluster; closed and
	// reopened on the same port by the test.
	listenTCP := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln
	}
	strictTCP, openTCP := listenTCP("127.0.0.1:0"), listenTCP("127.0.0.1:0")
	t.Cleanup(func() { strictTCP.Close(); openTCP.Close() })
	strictFront := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	openFront := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "udp"
address = %[2]q

[[listeners]]
protocol = "udp"
address = %[3]q

[clusters.strict]
protocol = "tcp"
frontends = [ { address = %[2]q } ]
backends = [ { address = %[4]q } ]

[clusters.strict.udp]
affinity_key = "SOURCE_IP_PORT"

[clusters.strict.udp.health]
mode = "TCP_PROBE"
tcp_port = %[6]d
rise = 1
fall = 1
fail_open = false
probe_interval_seconds = 1
probe_timeout_seconds = 1

[clusters.open]
protocol = "tcp"
frontends = [ { address = %[3]q } ]
backends = [ { address = %[5]q } ]

[clusters.open.udp]
affinity_key = "SOURCE_IP_PORT"

[clusters.open.udp.health]
mode = "TCP_PROBE"
tcp_port = %[7]d
rise = 1
fall = 1
probe_interval_seconds = 1
probe_timeout_seconds = 1
`, sock, strictFront, openFront, strictEcho.addr, openEcho.addr,
		strictTCP.Addr().(*net.TCPAddr).Port, openTCP.Addr().(*net.TCPAddr).Port)
	startProxy(t, dir, sock, cfg)
	events := subscribeEvents(t, sock)
	// answers reports whether a new client of front gets a reply. One
	// worker: its health state is the proxy's, so once a new flow is
	// dropped every later one is (with two, a new client port may hash to
	// the worker whose probe has not failed yet).
	answers := func(front string) bool {
		_, ok := dialUDP(t, front).ask("q", 500*time.Millisecond, 3)
		return ok
	}
	sozutest.WaitFor(t, 20*time.Second, "both listeners to relay", func() bool { return answers(strictFront) && answers(openFront) })

	strictTCP.Close()
	openTCP.Close()
	sozutest.WaitFor(t, 20*time.Second, "the strict cluster to drop new flows", func() bool { return !answers(strictFront) })
	sozutest.WaitFor(t, 20*time.Second, "both backends reported unhealthy", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "open", "") > 0 &&
			events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "strict", "") > 0
	})
	for i := range 3 {
		if !answers(openFront) {
			t.Fatalf("fail_open = true: new flow %d dropped while its backend is held down", i)
		}
		if answers(strictFront) {
			t.Fatalf("fail_open = false: new flow %d sent to a backend held down", i)
		}
	}

	strictTCP = listenTCP(strictTCP.Addr().String())
	sozutest.WaitFor(t, 20*time.Second, "the strict cluster to take flows again (rise 1)", func() bool { return answers(strictFront) })
}
