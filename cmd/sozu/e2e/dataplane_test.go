package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// env is one sozu with two workers and two HTTP listeners: main routes
// web.test, ws.test, empty.test, dead.test and "*" (a raw origin that
// counts every byte it receives); strict (back_timeout = 1) routes only
// slow.test.
type env struct {
	p            *sozutest.Proxy
	main, strict string
	web          *httpOrigin
	raw          *rawOrigin
}

// downloadBody is what the web origin answers to GET /download.
var downloadBody = func() []byte {
	b := make([]byte, 10<<20)
	for i := range b {
		b[i] = byte(i * 31 >> 3)
	}
	return b
}()

func setup(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{}
	e.web = startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/download" {
			w.Header().Set("Content-Length", fmt.Sprint(len(downloadBody)))
			w.Write(downloadBody)
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Sozu-Id", r.Header.Get("Sozu-Id"))
		w.Header().Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		fmt.Fprintf(w, "%s %s %d %x", r.Method, r.URL.Path, n, h.Sum(nil))
	}))
	ws := startRawOrigin(t, wsEcho)
	e.raw = startRawOrigin(t, okResponder)
	slow := startRawOrigin(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // never answers
	})
	dead := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	e.main = fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	e.strict = fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
log_level = "info"
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[[listeners]]
protocol = "http"
address = %[3]q
back_timeout = 1

[clusters.web]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "web.test" } ]
backends = [ { address = %[4]q, backend_id = "web-1" } ]

[clusters.ws]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "ws.test" } ]
backends = [ { address = %[5]q } ]

[clusters.empty]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "empty.test" } ]
backends = []

[clusters.dead]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "dead.test" } ]
backends = [ { address = %[6]q, backend_id = "dead-1" } ]

[clusters.raw]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "*" } ]
backends = [ { address = %[7]q } ]

[clusters.slow]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "slow.test" } ]
backends = [ { address = %[8]q } ]
`, sock, e.main, e.strict, e.web.addr, ws.addr, dead, e.raw.addr, slow.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.p = sozutest.Start(t, dir, cfgPath, sock)
	waitListening(t, e.main, e.strict)
	return e
}

// status runs curl and returns the status code and the body.
func status(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out := curl(t, append([]string{"-o", "-", "-w", "\n%{http_code}"}, args...)...)
	i := strings.LastIndexByte(out, '\n')
	return out[i+1:], out[:i]
}

func TestDataPlane(t *testing.T) {
	e := setup(t)

	t.Run("GET", func(t *testing.T) {
		out := curl(t, "-i", "-H", "Host: web.test", "http://"+e.main+"/hello")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		body, _ := io.ReadAll(resp.Body)
		empty := sha256.Sum256(nil)
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("GET /hello 0 %x", empty) {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		id := resp.Header.Get("Sozu-Id")
		if len(id) != 26 || resp.Header.Get("X-Seen-Sozu-Id") != id {
			t.Errorf("Sozu-Id %q on the response, %q at the backend", id, resp.Header.Get("X-Seen-Sozu-Id"))
		}
		if xff := resp.Header.Get("X-Seen-XFF"); xff != "127.0.0.1" {
			t.Errorf("backend saw X-Forwarded-For %q", xff)
		}
	})

	t.Run("POST 10 MiB streamed", func(t *testing.T) {
		const size = 10 << 20
		path := filepath.Join(t.TempDir(), "body")
		data := make([]byte, size)
		rand.Read(data)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		pids := workerPIDs(t, e.p.Sock)
		before := map[int]int{}
		for _, pid := range pids {
			before[pid] = vmRSS(t, pid)
		}
		code, body := status(t, "-H", "Host: web.test", "--data-binary", "@"+path, "http://"+e.main+"/upload")
		if code != "200" || body != fmt.Sprintf("POST /upload %d %x", size, sum) {
			t.Fatalf("got %s %q", code, body)
		}
		for _, pid := range pids {
			after := vmRSS(t, pid)
			if grew := after - before[pid]; grew > size/2/1024 {
				t.Errorf("worker %d: RSS grew by %d KiB (from %d KiB) for a %d KiB body", pid, grew, before[pid], size/1024)
			} else {
				t.Logf("worker %d: RSS %d KiB -> %d KiB", pid, before[pid], after)
			}
		}
	})

	t.Run("GET 10 MiB spliced", func(t *testing.T) {
		// The body goes through splice(2) (worker/proxy/splice.go): the
		// workers, under their seccomp filter, must survive it.
		pids := workerPIDs(t, e.p.Sock)
		path := filepath.Join(t.TempDir(), "got")
		code := curl(t, "-s", "-o", path, "-w", "%{http_code}", "-H", "Host: web.test", "http://"+e.main+"/download")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if code != "200" || sha256.Sum256(got) != sha256.Sum256(downloadBody) {
			t.Fatalf("got %s, %d bytes, want 200 and the origin's %d", code, len(got), len(downloadBody))
		}
		if after := workerPIDs(t, e.p.Sock); fmt.Sprint(after) != fmt.Sprint(pids) {
			t.Fatalf("workers %v before the download, %v after", pids, after)
		}
	})

	t.Run("chunked upload", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "body")
		data := bytes.Repeat([]byte("chunk of data "), 100000)
		os.WriteFile(path, data, 0o600)
		sum := sha256.Sum256(data)
		out := curl(t, "-i", "-H", "Host: web.test", "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+path, "http://"+e.main+"/chunked")
		// curl -i shows the interim 100 Continue too.
		out = strings.TrimPrefix(out, "HTTP/1.1 100 Continue\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("POST /chunked %d %x", len(data), sum) {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if te := resp.Header.Get("X-Seen-TE"); te != "chunked" {
			t.Errorf("backend saw Transfer-Encoding %q", te)
		}
	})

	t.Run("keep-alive reuse", func(t *testing.T) {
		before := e.web.conns.Load()
		var urls []string
		for i := 0; i < 10; i++ {
			urls = append(urls, fmt.Sprintf("http://%s/ka/%d", e.main, i))
		}
		out := curl(t, append([]string{"-H", "Host: web.test", "-w", "%{num_connects}\n"}, urls...)...)
		if n := strings.Count(out, "GET /ka/"); n != 10 {
			t.Fatalf("%d answers of 10:\n%s", n, out)
		}
		if c := strings.Count(out, "\n1\n") + strings.Count(out, "1\n"); c == 0 {
			t.Logf("curl connects: %q", out)
		}
		if got := e.web.conns.Load() - before; got >= 10 {
			t.Fatalf("the backend saw %d new connections for 10 requests", got)
		} else {
			t.Logf("the backend saw %d new connections for 10 requests", got)
		}
	})

	t.Run("WebSocket echo", func(t *testing.T) {
		c, err := net.Dial("tcp", e.main)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
		}
		for _, msg := range [][]byte{[]byte("hello"), bytes.Repeat([]byte{0xA5}, 70000)} {
			op := byte(1)
			if len(msg) > 100 {
				op = 2
			}
			c.Write(wsFrame(op, msg, []byte{1, 2, 3, 4}))
			gotOp, got, err := readFrame(br)
			if err != nil || gotOp != op || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(msg), gotOp, len(got), err)
			}
		}
		c.Write(wsFrame(8, nil, []byte{1, 2, 3, 4}))
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("after close: %q %v", rest, err)
		}
	})

	t.Run("404 unknown host", func(t *testing.T) {
		if code, body := status(t, "-H", "Host: nowhere.test", "http://"+e.strict+"/"); code != "404" {
			t.Fatalf("got %s %q", code, body)
		}
	})

	t.Run("503 no backend", func(t *testing.T) {
		if code, body := status(t, "-H", "Host: empty.test", "http://"+e.main+"/"); code != "503" {
			t.Fatalf("got %s %q", code, body)
		}
	})

	t.Run("504 slow backend", func(t *testing.T) {
		start := time.Now()
		code, body := status(t, "-H", "Host: slow.test", "http://"+e.strict+"/")
		if code != "504" {
			t.Fatalf("got %s %q", code, body)
		}
		if d := time.Since(start); d < 800*time.Millisecond || d > 5*time.Second {
			t.Fatalf("504 after %v, back_timeout is 1 s (re-armed lazily: 7/8 s at least)", d)
		}
	})

	t.Run("BACKEND_DOWN event", func(t *testing.T) {
		c := sozutest.Dial(t, e.p.Sock)
		sub := &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}
		if err := frame.WriteMessage(c.Conn, sub, frame.DefaultMaxSize); err != nil {
			t.Fatal(err)
		}
		events := make(chan *command.Event, 64)
		go func() {
			r := frame.NewReader(c.Conn, frame.DefaultMaxSize)
			for {
				resp := &command.Response{}
				if r.ReadMessage(resp) != nil {
					close(events)
					return
				}
				if ev := resp.GetContent().GetEvent(); ev != nil {
					events <- ev
				}
			}
		}()
		// Ten refused connects: one of the two workers sees at least five,
		// past the threshold of three consecutive failures.
		for i := 0; i < 10; i++ {
			if code, _ := status(t, "-H", "Host: dead.test", "http://"+e.main+"/"); code != "503" {
				t.Fatalf("request %d to a dead backend: %s", i, code)
			}
		}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("event stream closed")
				}
				if ev.GetKind() == command.EventKind_BACKEND_DOWN {
					if ev.GetClusterId() != "dead" || ev.GetBackendId() != "dead-1" {
						t.Fatalf("BACKEND_DOWN for %s/%s", ev.GetClusterId(), ev.GetBackendId())
					}
					return
				}
			case <-deadline:
				t.Fatal("no BACKEND_DOWN event")
			}
		}
	})

	t.Run("malformed requests", func(t *testing.T) { malformed(t, e) })
}
