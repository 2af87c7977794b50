package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessLogLongHeadStillRecorded: a client cannot make its request
// leave no access record by sending a head whose values the encoding
// inflates. A User-Agent of 15 000 tabs fits the default buffer, but
// JSON writes each in six bytes: 90 KB, more than a UDP datagram carries,
// so the record was refused by the socket (EMSGSIZE) and lost. The
// record is now cut (the User-Agent ends with "…") and arrives whole.
func TestAccessLogLongHeadStillRecorded(t *testing.T) {
	origin := okOrigin(t)
	udp := listenUDP(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := freeAddr(t)
	cfg := fmt.Sprintf("access_logs_target = \"udp://%s\"\naccess_logs_format = \"json\"\n", udp.addr()) +
		simpleHTTPConfig(sock, front, origin.addr, 1)
	startProxy(t, dir, sock, cfg, front)

	conn, err := net.DialTimeout("tcp", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	ua := "x" + strings.Repeat("\t", 15000) + "y"
	fmt.Fprintf(conn, "GET /long-ua HTTP/1.1\r\nHost: a.test\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n", ua)

	rec := udp.record(t, "/long-ua")
	got, _ := ecs(rec, "user_agent.original").(string)
	if !strings.HasPrefix(got, "x\t\t") || !strings.HasSuffix(got, "…") || len(got) > 2048 {
		t.Errorf("user_agent.original: %d bytes, %.20q…%q; want the User-Agent's start, cut, ending with …", len(got), got, got[max(len(got)-8, 0):])
	}
	if ecs(rec, "http.request.bytes").(float64) < 15000 {
		t.Errorf("http.request.bytes %v: want the whole head counted", ecs(rec, "http.request.bytes"))
	}
}
