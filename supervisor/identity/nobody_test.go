package identity

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/peercred"
	"github.com/sozu-go/sozu/supervisor/admission"
)

// With nobodyEnv set, the test binary becomes a peer: it drops to uid/gid
// 65534, connects to that abstract socket, then execs sleep.
const nobodyEnv = "IDENTITY_TEST_CONNECT_AS_NOBODY"

func TestMain(m *testing.M) {
	if addr := os.Getenv(nobodyEnv); addr != "" {
		if syscall.Setgroups([]int{65534}) != nil || syscall.Setgid(65534) != nil || syscall.Setuid(65534) != nil {
			os.Exit(3)
		}
		if _, err := net.Dial("unix", addr); err != nil {
			os.Exit(4)
		}
		sleep, err := exec.LookPath("sleep")
		if err == nil {
			syscall.Exec(sleep, []string{"sleep", "60"}, os.Environ())
		}
		os.Exit(5)
	}
	os.Exit(m.Run())
}

// TestNobodyPeer: a peer running as uid 65534 is identified as such (user
// "nobody", comm "sleep"), refused with upstream's wording when not listed,
// and allowed read-only verbs only when listed read-only.
func TestNobodyPeer(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the peer as uid 65534")
	}
	nobody, err := user.LookupId("65534")
	if err != nil {
		t.Skipf("no user 65534 here: %v", err)
	}
	addr := "@identity-nobody-" + time.Now().Format("150405.000000000")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nobodyEnv+"="+addr, "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	l.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Wait for the exec, so that the comm to expect is "sleep".
	c, err := peercred.FromConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); (peercred.Proc{}).Comm(c) != "sleep"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("peer comm stays %q", (peercred.Proc{}).Comm(c))
		}
	}

	users, err := peercred.NewUsers(peercred.UsersConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Socket: addr, Users: users, Policy: admission.Policy{SelfUID: 0}}
	id, err := r.Resolve(conn, 1)
	if err != nil {
		t.Fatal(err)
	}
	if id.UID != 65534 || id.GID != 65534 || id.User != nobody.Username || id.Comm != "sleep" || id.PID != int32(cmd.Process.Pid) {
		t.Fatalf("identity = %s", id)
	}
	d := admission.Decide(r.Policy, id.Cred, "status")
	if d.Allowed || d.Reason != "unauthorized: actor UID 65534 not in command_allowed_uids (not set: only root is admitted)" {
		t.Fatalf("unlisted nobody: %+v", d)
	}

	ro := admission.Policy{ReadOnlyUIDs: []uint32{65534}}
	if d := admission.Decide(ro, id.Cred, "status"); !d.Allowed || d.Role != admission.ReadOnly {
		t.Fatalf("read-only nobody, status: %+v", d)
	}
	if d := admission.Decide(ro, id.Cred, "add_cluster"); d.Allowed ||
		d.Reason != "unauthorized: verb add_cluster needs the admin role; UID 65534 has read-only" {
		t.Fatalf("read-only nobody, add_cluster: %+v", d)
	}
}
