package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// sampleDir holds the configurations shaped like upstream's samples.
const sampleDir = "../../../supervisor/config/testdata"

// writeSample writes dir/config.toml from the sample file, with every
// listener address ("0.0.0.0:N") moved to a free port of 127.0.0.1, the
// backend addresses replaced by backends, the files it names made
// absolute and what it writes put in dir. It returns the config path, the
// command socket and the new address of each old listener address.
func writeSample(t *testing.T, dir, file string, backends map[string]string) (cfgPath, sock string, addrs map[string]string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(sampleDir, "upstream", file))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, "sozu.sock")
	addrs = map[string]string{}
	cfg := regexp.MustCompile(`"0\.0\.0\.0:[0-9]+"`).ReplaceAllStringFunc(string(src), func(q string) string {
		old := strings.Trim(q, `"`)
		if addrs[old] == "" {
			addrs[old] = fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
		}
		return fmt.Sprintf("%q", addrs[old])
	})
	for old, n := range backends {
		cfg = strings.ReplaceAll(cfg, fmt.Sprintf("%q", old), fmt.Sprintf("%q", n))
	}
	cfg = strings.NewReplacer(
		`"../tls/`, `"`+abs+`/tls/`,
		`"../answers/`, `"`+abs+`/answers/`,
		`"run/sozu.sock"`, fmt.Sprintf("%q", sock),
		`"run/sozu.pid"`, fmt.Sprintf("%q", filepath.Join(dir, "sozu.pid")),
		`"state/`, `"`+dir+`/`,
	).Replace(cfg)
	cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, sock, addrs
}

// configCheck runs `sozu config check` on path: its exit code and stderr.
func configCheck(t *testing.T, path string) (int, string) {
	t.Helper()
	cmd := exec.Command(sozutest.Bin, "config", "check", "-c", path)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := sozutest.RunWithTimeout(cmd, 30*time.Second)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// httpStatus sends one GET for host on c and returns the status line.
func httpStatus(t *testing.T, c net.Conn, host string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer for %s: %v", host, err)
	}
	return strings.TrimSpace(line)
}

// TestUpstreamBinSample: the configuration shaped like upstream's
// bin/config.toml passes config check (with a note for the tcp frontend
// that has no listener) and starts: its http and https frontends reach
// their backend, and the listener created for the tcp frontend relays.
func TestUpstreamBinSample(t *testing.T) {
	dir := t.TempDir()
	web := startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	echo := startRawOrigin(t, tcpEcho)
	cfgPath, sock, addrs := writeSample(t, dir, "bin.toml", map[string]string{
		"127.0.0.1:9026": web.addr, "127.0.0.1:9400": echo.addr, "127.0.0.1:9401": echo.addr,
	})

	code, stderr := configCheck(t, cfgPath)
	if code != 0 || !strings.Contains(stderr, "note: ") ||
		!strings.Contains(stderr, "clusters.Ledger.frontends[0].address: no [[listeners]] entry at "+addrs["0.0.0.0:8181"]+": a tcp listener") {
		t.Fatalf("config check: exit %d, stderr:\n%s", code, stderr)
	}

	sozutest.Start(t, dir, cfgPath, sock)
	dial := func(addr string) net.Conn {
		var c net.Conn
		sozutest.WaitFor(t, 20*time.Second, "a connection to "+addr, func() bool {
			var err error
			c, err = net.DialTimeout("tcp", addr, time.Second)
			return err == nil
		})
		t.Cleanup(func() { c.Close() })
		return c
	}

	if got := httpStatus(t, dial(addrs["0.0.0.0:8180"]), "shop.example.com"); got != "HTTP/1.1 200 OK" {
		t.Errorf("http: %q", got)
	}
	if got := httpStatus(t, dial(addrs["0.0.0.0:8180"]), "other.example.com"); !strings.HasPrefix(got, "HTTP/1.1 404") {
		t.Errorf("http, unknown host: %q", got)
	}
	tc := tls.Client(dial(addrs["0.0.0.0:8543"]), &tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if got := httpStatus(t, tc, "shop.example.com"); got != "HTTP/1.1 200 OK" {
		t.Errorf("https: %q", got)
	}
	if cs := tc.ConnectionState(); cs.Version != tls.VersionTLS13 || len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != "shop.example.com" {
		t.Errorf("https: version %x, certificates %d", cs.Version, len(cs.PeerCertificates))
	}

	c := dial(addrs["0.0.0.0:8181"])
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("tcp through the implicit listener: %q, %v", buf, err)
	}
}

// TestUpstreamOSBuildSample: the configuration shaped like upstream's
// os-build/config.toml (listeners with custom answers and a cipher list,
// no cluster) passes config check and starts: both listeners answer with
// its 404 answer.
func TestUpstreamOSBuildSample(t *testing.T) {
	dir := t.TempDir()
	cfgPath, sock, addrs := writeSample(t, dir, "os-build.toml", nil)
	if code, stderr := configCheck(t, cfgPath); code != 0 {
		t.Fatalf("config check: exit %d, stderr:\n%s", code, stderr)
	}
	sozutest.Start(t, dir, cfgPath, sock)
	for _, tt := range []struct {
		addr string
		tls  bool
	}{{addrs["0.0.0.0:8280"], false}, {addrs["0.0.0.0:8643"], true}} {
		var c net.Conn
		sozutest.WaitFor(t, 20*time.Second, "a connection to "+tt.addr, func() bool {
			var err error
			c, err = net.DialTimeout("tcp", tt.addr, time.Second)
			return err == nil
		})
		defer c.Close()
		if tt.tls {
			// No certificate anywhere: the handshake fails, the listener is up.
			tc := tls.Client(c, &tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err == nil {
				t.Errorf("%s: a TLS handshake without any certificate succeeded", tt.addr)
			}
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: nobody.example.com\r\nConnection: close\r\n\r\n")
		got, err := io.ReadAll(c)
		if !strings.HasPrefix(string(got), "HTTP/1.1 404 Not Found\r\n") || !strings.HasSuffix(string(got), "\r\n\r\nnot found") {
			t.Errorf("%s: %q (%v), want the sample's answer_404 (body \"not found\")", tt.addr, got, err)
		}
	}
}
