package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestCertificateReplaceUnderWrk replaces the certificate of an HTTPS
// listener while wrk runs against it, every request on a new connection
// (so that handshakes happen before, during and after the replacement):
// wrk must report no error and no non-2xx answer, and the new certificate
// is served afterwards by every worker.
func TestCertificateReplaceUnderWrk(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed: `make deps` installs it")
	}
	dir := t.TempDir()
	ca := newTestCA(t)
	oldCert, oldKey := ca.issue(t, dir, "old", "localhost")
	var served atomic.Int64
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "ok")
	}))
	port := sozutest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q

[clusters.a]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "localhost", certificate = %[3]q, key = %[4]q } ]
backends = [ { address = %[5]q } ]
`, sock, addr, oldCert, oldKey, origin.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sozutest.Start(t, dir, cfgPath, sock)
	client := sozutest.Dial(t, sock)

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	leaf := func() (string, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			return "", err
		}
		defer c.Close()
		sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
		return hex.EncodeToString(sum[:]), nil
	}
	oldPEM, err := os.ReadFile(oldCert)
	if err != nil {
		t.Fatal(err)
	}
	sozutest.WaitFor(t, 20*time.Second, "the listener serves the first certificate", func() bool {
		fp, err := leaf()
		return err == nil && fp == fingerprint(oldPEM)
	})

	// Connection: close makes wrk open a connection (a full handshake:
	// no session tickets by default) for every request.
	script := filepath.Join(dir, "close.lua")
	if err := os.WriteFile(script, []byte(`wrk.headers["Connection"] = "close"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(wrk, "-t2", "-c8", "-d60s", "-s", script, fmt.Sprintf("https://localhost:%d/", port))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-done
		}
	})

	const each = 300 // requests on each side of the replacement
	sozutest.WaitFor(t, 30*time.Second, "requests before the replacement", func() bool { return served.Load() >= each })
	newC, newK := ca.issuePEM(t, nil, nil, "localhost")
	client.MustOK(t, &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
		Address:        command.NewSocketAddress(netip.MustParseAddrPort(addr)),
		OldFingerprint: proto.String(fingerprint(oldPEM)),
		NewCertificate: &command.CertificateAndKey{Certificate: proto.String(string(newC)), Key: proto.String(string(newK))},
	}}})
	after := served.Load()
	sozutest.WaitFor(t, 30*time.Second, "requests after the replacement", func() bool { return served.Load() >= after+each })

	// wrk prints its summary when interrupted.
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		stopped = true
	case <-time.After(20 * time.Second):
		t.Fatalf("wrk did not stop on SIGINT:\n%s", out.String())
	}
	report := out.String()
	t.Logf("wrk:\n%s", report)
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no request count in wrk's report")
	}
	if n, _ := strconv.Atoi(m[1]); n < 2*each {
		t.Errorf("wrk made %d requests, want at least %d", n, 2*each)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx or 3xx responses"} {
		if bytes.Contains(out.Bytes(), []byte(bad)) {
			t.Errorf("wrk reports %s", bad)
		}
	}
	for range 8 { // both workers, whichever accepts
		if fp, err := leaf(); err != nil || fp != fingerprint(newC) {
			t.Fatalf("after the replacement: served %s, %v; want %s", fp, err, fingerprint(newC))
		}
	}
}
