package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestReadonlyOperatorCLI: an operator with the read-only role (uid 65534,
// member of the socket's group nogroup) who may read config.toml but not
// the HTTPS listener's key (0600 root) runs the query verbs: each exits 0
// and none prints key material. A mutation is refused (77). `sozu config
// check`, which reads every file, is refused the key (77) as before.
func TestReadonlyOperatorCLI(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the key is root's and the CLI runs as uid 65534")
	}
	// t.TempDir is 0700: uid 65534 could not reach config.toml or the socket.
	dir, err := os.MkdirTemp("", "sozu-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	c, k := ca.issuePEM(t, func(x *x509.Certificate) { x.NotAfter = time.Now().Add(90 * 24 * time.Hour) }, nil, "shop.test")
	certPath, keyPath := filepath.Join(dir, "shop.pem"), filepath.Join(dir, "shop.key")
	for path, data := range map[string][]byte{certPath: c, keyPath: k} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "sozu.sock")
	httpsPort := sozutest.FreePort(t)
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
command_allowed_uids = [0]
command_readonly_uids = [65534]
command_socket_group = "nogroup"

[[listeners]]
protocol = "https"
address = "127.0.0.1:%d"
certificate = %q
key = %q

[clusters.shop]
protocol = "http"
frontends = [{ address = "127.0.0.1:%d", hostname = "shop.test", certificate = %q, key = %q }]
backends = [{ address = "127.0.0.1:9" }]
`, sock, httpsPort, certPath, keyPath, httpsPort, certPath, keyPath)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)

	nobody := &syscall.Credential{Uid: 65534, Gid: 65534} // nobody:nogroup
	// The premise: this operator cannot read the key.
	if _, errOut, code := p.CLIAs(nobody, "config", "check"); code != 77 || !strings.Contains(errOut, "shop.key") {
		t.Errorf("config check as uid 65534: exit %d, want 77 naming the key\n%s", code, errOut)
	}
	for _, args := range [][]string{
		{"status"},
		{"cluster", "list"},
		{"frontend", "list"},
		{"certificate", "list"},
		{"certificate", "list", "--json"},
		{"status", "--json"},
		{"events", "-t", "300"}, // follows the events for 300 ms, then exits 0
	} {
		out, errOut, code := p.CLIAs(nobody, args...)
		if code != 0 {
			t.Errorf("sozu %s as uid 65534: exit %d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
		if strings.Contains(out+errOut, "PRIVATE KEY") {
			t.Errorf("sozu %s as uid 65534 printed key material:\n%s%s", strings.Join(args, " "), out, errOut)
		}
		if args[0] == "certificate" && !strings.Contains(out, "shop.test") {
			t.Errorf("sozu %s: the certificate of shop.test is not listed:\n%s", strings.Join(args, " "), out)
		}
	}
	// The compliance report reads the configuration's settings, not the
	// files it names: it runs (0: pass, 1: a check fails), key-free.
	if out, errOut, code := p.CLIAs(nobody, "compliance"); (code != 0 && code != 1) || !strings.Contains(out, "PCI DSS") || strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Errorf("compliance as uid 65534: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code := p.CLIAs(nobody, "cluster", "add", "--id", "evil")
	if code != 77 || !strings.Contains(out+errOut, "unauthorized") {
		t.Errorf("cluster add as uid 65534: exit %d, want 77 (unauthorized)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Errorf("cluster add printed key material:\n%s%s", out, errOut)
	}
	if out := p.MustCLI("cluster", "list"); strings.Contains(out, "evil") {
		t.Errorf("the refused cluster was added:\n%s", out)
	}
}
