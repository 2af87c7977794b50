package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// httpOrigin is a net/http backend counting the connections it accepts.
type httpOrigin struct {
	addr  string
	conns atomic.Int64
}

func startHTTPOrigin(t *testing.T, h http.Handler) *httpOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &httpOrigin{addr: ln.Addr().String()}
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

// rawOrigin accepts connections and runs handle on each, counting every
// byte it receives.
type rawOrigin struct {
	addr  string
	conns atomic.Int64
	bytes atomic.Int64
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func startRawOrigin(t *testing.T, handle func(net.Conn)) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(countingConn{c, &o.bytes})
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return o
}

// okResponder answers every request head it reads with a 200 naming the
// origin, and ignores bodies (the raw origin only serves bodiless requests).
func okResponder(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nraw"); err != nil {
			return
		}
	}
}

// wsEcho performs a WebSocket handshake (RFC 6455 §4.2.2) and echoes every
// frame it receives, unmasked, until the client closes.
func wsEcho(c net.Conn) {
	br := bufio.NewReader(c)
	key := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	for {
		op, payload, err := readFrame(br)
		if err != nil || op == 8 {
			return
		}
		if _, err := c.Write(wsFrame(op, payload, nil)); err != nil {
			return
		}
	}
}

// frame encodes one final WebSocket frame; a non-nil mask masks it (as a
// client must).
func wsFrame(op byte, payload []byte, mask []byte) []byte {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask == nil {
		return append(b, payload...)
	}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err = io.ReadFull(r, l[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err = io.ReadFull(r, l[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err = io.ReadFull(r, mask[:]); err != nil {
			return
		}
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	if h[1]&0x80 != 0 {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return
}

// curl runs /usr/bin/curl with args and returns its stdout; it fails the
// test when curl fails.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/curl", append([]string{"-sS", "--max-time", "20"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := sozutest.RunWithTimeout(cmd, 30*time.Second); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// rawExchange sends raw bytes on a new connection and returns what comes
// back until the proxy closes the connection.
func rawExchange(t *testing.T, addr string, raw []byte) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// workerPIDs asks the supervisor for the pids of its running workers.
func workerPIDs(t *testing.T, sock string) []int {
	t.Helper()
	c := sozutest.Dial(t, sock)
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	var pids []int
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		if w.GetRunState() == command.RunState_RUNNING {
			pids = append(pids, int(w.GetPid()))
		}
	}
	if len(pids) == 0 {
		t.Fatal("no running worker")
	}
	return pids
}

// vmRSS returns the resident set size of pid in KiB.
func vmRSS(t *testing.T, pid int) int { return procStatusKiB(t, pid, "VmRSS") }

// vmHWM returns the peak resident set size of pid in KiB.
func vmHWM(t *testing.T, pid int) int { return procStatusKiB(t, pid, "VmHWM") }

// procStatusKiB returns the field of /proc/PID/status named name, in KiB.
func procStatusKiB(t *testing.T, pid int, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return n
		}
	}
	t.Fatalf("no %s for pid %d", name, pid)
	return 0
}

// startProxy writes cfg as dir/config.toml, starts sozu on it (its command
// socket at sock) and waits until every address of listen accepts TCP
// connections.
func startProxy(t *testing.T, dir, sock, cfg string, listen ...string) *sozutest.Proxy {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, path, sock)
	waitListening(t, listen...)
	return p
}

// waitListening waits (20 s at most) until every address of addrs accepts
// TCP connections.
func waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	sozutest.WaitFor(t, 20*time.Second, "the listeners answer", func() bool {
		for _, a := range addrs {
			c, err := net.Dial("tcp", a)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
}

// simpleHTTPConfig is a configuration with one HTTP listener at front
// routing every host to origin, with workers workers.
func simpleHTTPConfig(sock, front, origin string, workers int) string {
	return fmt.Sprintf(`command_socket = %q
worker_count = %d
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %q

[clusters.app]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "*" } ]
backends = [ { address = %[4]q } ]
`, sock, workers, front, origin)
}

// tcpEchoConfig is a configuration of workers workers with one TCP
// listener on front, relaying to the cluster "echo" of one backend,
// "echo-0" at echo.
func tcpEchoConfig(sock, front, echo string, workers int) string {
	return fmt.Sprintf(`command_socket = %q
worker_count = %d
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "tcp"
address = %[3]q

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[3]q } ]
backends = [ { backend_id = "echo-0", address = %[4]q } ]
`, sock, workers, front, echo)
}
