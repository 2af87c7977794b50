package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// startSimple starts sozu (two workers) with one HTTP listener routing
// every host to origin, and returns it with the listener's address.
func startSimple(t *testing.T, origin string) (*sozutest.Proxy, string) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	return startProxy(t, dir, sock, simpleHTTPConfig(sock, addr, origin, 2), addr), addr
}

// blockingOrigin holds every request until release is closed.
func blockingOrigin(t *testing.T) (o *httpOrigin, arrived chan struct{}, release chan struct{}) {
	arrived, release = make(chan struct{}, 16), make(chan struct{})
	o = startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	return o, arrived, release
}

type result struct {
	status int
	close  bool
	body   string
	err    error
}

func getAsync(addr string) chan result {
	ch := make(chan result, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get("http://" + addr + "/work")
		if err != nil {
			ch <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- result{status: resp.StatusCode, close: resp.Close, body: string(b), err: err}
	}()
	return ch
}

func TestSoftStopDrains(t *testing.T) {
	origin, arrived, release := blockingOrigin(t)
	p, addr := startSimple(t, origin.addr)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	inflight := getAsync(addr)
	<-arrived

	stopped := make(chan string, 1)
	go func() {
		out, errOut, code := p.CLI("-t", "30000", "shutdown")
		stopped <- fmt.Sprintf("exit %d: %s%s", code, out, errOut)
	}()
	// The idle keep-alive connection is closed by its worker's soft stop…
	idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection during a soft stop: %d bytes, %v", n, err)
	}
	// … while the request in flight holds its worker, and so the stop.
	select {
	case r := <-inflight:
		t.Fatalf("in-flight request ended before its backend answered: %+v", r)
	case s := <-stopped:
		t.Fatalf("soft stop returned with a request in flight: %s", s)
	default:
	}
	close(release)
	r := <-inflight
	// The in-flight request may sit on the other worker, which may not have
	// read its SoftStop yet when the backend answers: Connection: close is
	// then not promised, only the complete answer.
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %+v, want 200 \"finished\"", r)
	}
	if s := <-stopped; s[:6] != "exit 0" {
		t.Fatalf("shutdown: %s", s)
	}
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not exit after the soft stop")
	}
}

func TestHardStopCloses(t *testing.T) {
	origin, arrived, release := blockingOrigin(t)
	defer close(release)
	p, addr := startSimple(t, origin.addr)
	inflight := getAsync(addr)
	<-arrived
	start := time.Now()
	if out, errOut, code := p.CLI("-t", "30000", "shutdown", "--hard"); code != 0 {
		t.Fatalf("shutdown --hard: exit %d %s%s", code, out, errOut)
	}
	r := <-inflight
	if r.err == nil {
		t.Fatalf("in-flight request survived a hard stop: %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("hard stop took %v", d)
	}
}
