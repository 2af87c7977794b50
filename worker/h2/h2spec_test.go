package h2

import (
	"bytes"
	"crypto/tls"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestH2Spec runs h2spec's generic, http2 and hpack sections against a
// cleartext prior-knowledge server with a trivial handler (read the body,
// answer a short text).
func TestH2Spec(t *testing.T) {
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		bin, err = exec.LookPath("/root/go/bin/h2spec")
	}
	if err != nil {
		t.Fatal("h2spec not found; install it with: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible")
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "tls"}[useTLS], func(t *testing.T) { runH2Spec(t, bin, useTLS, helloHandler) })
	}
	// A handler that answers at once, before the request's end (a 404):
	// its streams linger while h2spec sends the rest of malformed requests.
	t.Run("early/tls", func(t *testing.T) { runH2Spec(t, bin, true, earlyHandler) })
}

func runH2Spec(t *testing.T, bin string, useTLS bool, h Handler) {
	var cfg *tls.Config
	args := []string{"generic", "http2", "hpack", "-h", "127.0.0.1", "-o", "1", "-S"}
	if useTLS {
		cert, _ := testCert(t)
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
		args = append(args, "-t", "-k")
	}
	ts := startServer(t, Limits{}, h, cfg, nil)
	_, port, _ := net.SplitHostPort(ts.addr)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, append(args, "-p", port)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	text := out.String()
	summary := text
	if i := strings.LastIndex(text, "Failures:"); i >= 0 {
		summary = text[i:]
	}
	if runErr != nil || !strings.Contains(text, " 0 failed") {
		t.Fatalf("h2spec failed (%v):\n%s", runErr, summary)
	}
	i := strings.LastIndex(text, "tests,")
	t.Logf("h2spec: %s", strings.TrimSpace(text[max(0, strings.LastIndex(text[:max(i, 0)], "\n")):]))
}
