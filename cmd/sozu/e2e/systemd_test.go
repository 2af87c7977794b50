package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// unitPath is the example unit file of docs/systemd.md.
const unitPath = "../../../docs/examples/sozu.service"

// unitCapabilities reads CapabilityBoundingSet and NoNewPrivileges from
// the example unit.
func unitCapabilities(t *testing.T) (caps []string, noNewPrivs bool) {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		switch {
		case !ok:
		case k == "CapabilityBoundingSet":
			caps = strings.Fields(v)
		case k == "NoNewPrivileges":
			noNewPrivs = v == "yes"
		}
	}
	if len(caps) == 0 {
		t.Fatalf("%s: no CapabilityBoundingSet", unitPath)
	}
	return caps, noNewPrivs
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the example
// unit, with the binary under test in place of /usr/bin/sozu.
func TestSystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "sozu.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/bin/sozu", sozutest.Bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// privilegedPort returns a free TCP port below 1024 on 127.0.0.1.
func privilegedPort(t *testing.T) int {
	t.Helper()
	for p := 700 + os.Getpid()%200; p < 1024; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below 1024")
	return 0
}

// TestUnitCapabilitiesSuffice runs the supervisor as root with exactly the
// example unit's capability bounding set (and no_new_privs, as
// NoNewPrivileges=yes sets it), and exercises what each capability is
// there for: a listener below 1024 (CAP_NET_BIND_SERVICE), a command
// socket given to a group (CAP_CHOWN), workers that drop to nobody
// (CAP_SETUID, CAP_SETGID), a reload of a file read with the client's
// identity (the same two), and a hung worker of another uid killed and
// replaced (CAP_KILL). Without CAP_KILL the supervisor reports the kill but
// the worker lives on; without CAP_CHOWN `sozu start` fails.
func TestUnitCapabilitiesSuffice(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv is not installed")
	}
	caps, nnp := unitCapabilities(t)
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	dir, err := os.MkdirTemp("", "sozu-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // uid 65534 reaches the socket and the files
	sock := filepath.Join(dir, "sozu.sock")
	front := fmt.Sprintf("127.0.0.1:%d", privilegedPort(t))
	origin := nameOrigin(t, "app")
	cfgPath := filepath.Join(dir, "config.toml")
	base := strings.Replace(reloadConfig(dir, sock, front, ""), "worker_timeout = 10", "worker_timeout = 2", 1)
	if err := os.WriteFile(cfgPath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	p := sozutest.StartWith(t, dir, cfgPath, sock, func(cmd *exec.Cmd) {
		args := []string{"setpriv", "--bounding-set=" + bounding, "--inh-caps=-all"}
		if nnp {
			args = append(args, "--no-new-privs")
		}
		cmd.Path = setpriv
		cmd.Args = append(append(args, "--"), cmd.Args...)
	})
	sozutest.WaitFor(t, 20*time.Second, "the listener below 1024 accepts", func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil || !strings.Contains(string(status), "NoNewPrivs:\t1") && nnp {
		t.Errorf("the supervisor does not run with no_new_privs: %v\n%s", err, status)
	}

	next := filepath.Join(dir, "next.toml")
	os.WriteFile(next, []byte(base+fmt.Sprintf(`
[clusters.app]
protocol = "http"
frontends = [ { address = %[1]q, hostname = "app.test" } ]
backends = [ { address = %[2]q } ]
`, front, origin.addr)), 0o644)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if out, errOut, code := p.CLIAs(nobody, "reload", "-f", next); code != 0 {
		t.Fatalf("reload as uid 65534: exit %d\n%s%s", code, out, errOut)
	}
	if code, body, err := getHost(&http.Client{Timeout: 10 * time.Second}, front, "app.test"); err != nil || code != 200 || body != "app" {
		t.Errorf("app.test through the listener below 1024: %d %q %v", code, body, err)
	}

	hung := workerPIDs(t, sock)[0]
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(hung, syscall.SIGKILL) })
	sozutest.WaitFor(t, 30*time.Second, fmt.Sprintf("hung worker %d killed by the supervisor", hung), func() bool {
		return syscall.Kill(hung, 0) != nil // gone (reaped)
	})
}
