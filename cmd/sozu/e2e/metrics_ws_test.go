package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// The bytes a WebSocket (an upgraded connection) relays count in bytes_in
// and bytes_out, at the proxy level and for the cluster and backend, as
// upstream counts every byte read from and written to a client
// (its pipe's bytes_in and bytes_out): not only the upgrade's heads. The
// access record counts them too.
func TestMetricsWebSocketBytes(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	ws := startRawOrigin(t, wsEcho)
	front := freeAddr(t)
	cfg := strings.Replace(simpleHTTPConfig(sock, front, ws.addr, 2), "backends = [ { address", `backends = [ { backend_id = "ws-0", address`, 1)
	cfg = fmt.Sprintf("access_logs_target = \"file://%s/access.log\"\naccess_logs_format = \"json\"\n", dir) + cfg
	startProxy(t, dir, sock, cfg, front)
	before := queryMetrics(t, sock, nil)

	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	const size, n = 10000, 5
	payload := bytes.Repeat([]byte("x"), size)
	for range n {
		c.Write(wsFrame(2, payload, []byte{1, 2, 3, 4}))
		if _, got, err := readFrame(br); err != nil || len(got) != size {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	c.Write(wsFrame(8, nil, []byte{1, 2, 3, 4}))
	c.Close()

	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the upgrade is recorded", func() bool {
		am = queryMetrics(t, sock, nil)
		return am.GetProxying()[pm.HTTPRequests].GetCount() == 1 && am.GetProxying()[pm.ClientConnections].GetGauge() == 0
	})
	for _, name := range []string{pm.BytesIn, pm.BytesOut} {
		got := am.GetProxying()[name].GetCount() - before.GetProxying()[name].GetCount()
		if got < n*size {
			t.Errorf("%s grew by %d over a WebSocket that relayed %d bytes each way", name, got, n*size)
		}
		cl := am.GetClusters()["app"]
		if c := cl.GetCluster()[name].GetCount(); c != got {
			t.Errorf("cluster %s %d, proxy %d", name, c, got)
		}
		if b := cl.GetBackends(); len(b) != 1 || b[0].GetMetrics()[name].GetCount() != got {
			t.Errorf("backend %s: %v, proxy %d", name, b, got)
		}
	}
	if got := am.GetProxying()[pm.Status1xx].GetCount(); got != 1 {
		t.Errorf("%s = %d, want 1", pm.Status1xx, got)
	}
	rec := accessRecords(t, filepath.Join(dir, "access.log"), 1)[0]
	for _, f := range []string{"http.request.bytes", "http.response.bytes"} {
		if got, _ := ecs(rec, f).(float64); got < n*size {
			t.Errorf("access record: %s %v over a WebSocket that relayed %d bytes each way", f, ecs(rec, f), n*size)
		}
	}
}

// A chunked request body counts in bytes_in as read, framing included (a
// Content-Length one as read too): upstream counts
// every byte read from the client. Only the head was counted.
func TestMetricsChunkedBodyBytesIn(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}))
	front := freeAddr(t)
	startProxy(t, dir, sock, simpleHTTPConfig(sock, front, origin.addr, 1), front)
	before := queryMetrics(t, sock, nil)

	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n")
	const chunk, chunks = 1000, 10
	for range chunks {
		fmt.Fprintf(c, "%x\r\n%s\r\n", chunk, bytes.Repeat([]byte("b"), chunk))
	}
	io.WriteString(c, "0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != fmt.Sprint(chunk*chunks) {
		t.Fatalf("origin read %s bytes, want %d", body, chunk*chunks)
	}
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the request is recorded", func() bool {
		am = queryMetrics(t, sock, nil)
		return am.GetProxying()[pm.HTTPRequests].GetCount() == before.GetProxying()[pm.HTTPRequests].GetCount()+1
	})
	got := am.GetProxying()[pm.BytesIn].GetCount() - before.GetProxying()[pm.BytesIn].GetCount()
	if got < chunk*chunks {
		t.Errorf("bytes_in grew by %d for a chunked upload of %d bytes", got, chunk*chunks)
	}
	if c := am.GetClusters()["app"].GetCluster()[pm.BytesIn].GetCount(); c != got {
		t.Errorf("cluster bytes_in %d, proxy %d", c, got)
	}
}

// The bytes of a head refused before it could be parsed (a field past
// the head's limit: 431) count in bytes_in, as the access record counts
// them: every request byte read counts. They counted 0.
func TestMetricsUnparsedHeadBytesIn(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := freeAddr(t)
	startProxy(t, dir, sock, simpleHTTPConfig(sock, front, okOrigin(t).addr, 1), front)
	before := queryMetrics(t, sock, nil)
	c, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	huge := "GET /huge HTTP/1.1\r\nHost: a.test\r\nX-Big: " + strings.Repeat("a", 70000) + "\r\n\r\n"
	go c.Write([]byte(huge)) // the proxy answers before reading it all
	if b, _ := io.ReadAll(c); !strings.HasPrefix(string(b), "HTTP/1.1 431 ") {
		t.Fatalf("answer %.40q, want a 431", b)
	}
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the 431 is recorded", func() bool {
		am = queryMetrics(t, sock, nil)
		return am.GetProxying()[pm.HTTPRequests].GetCount() == before.GetProxying()[pm.HTTPRequests].GetCount()+1
	})
	if got := am.GetProxying()[pm.BytesIn].GetCount() - before.GetProxying()[pm.BytesIn].GetCount(); got <= 0 || got > int64(len(huge)) {
		t.Errorf("bytes_in grew by %d for a refused head of which the proxy read up to %d bytes", got, len(huge))
	}
}
