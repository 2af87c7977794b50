package identity

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sozu-go/sozu/peercred"
	"github.com/sozu-go/sozu/supervisor/admission"
)

func TestResolve(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sozu.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	users, err := peercred.NewUsers(peercred.UsersConfig{Lookup: func(uid uint32) (string, error) {
		return fmt.Sprintf("user%d", uid), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := ulid.MustParse("01JGJ5Y7D8000000000000000A")
	r := &Resolver{
		Socket: sock,
		Policy: admission.Policy{ReadOnlyUIDs: []uint32{uint32(os.Getuid())}, SelfUID: uint32(os.Getuid())},
		Users:  users,
		NewID:  func() ulid.ULID { return sess },
		Now:    func() time.Time { return at },
	}
	id, err := r.Resolve(conn, 7)
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(os.Getuid())
	if !id.Known || id.UID != uid || id.GID != uint32(os.Getgid()) || id.PID != int32(os.Getpid()) {
		t.Fatalf("identity = %+v", id)
	}
	if id.Session != sess || id.Client != 7 || id.Socket != sock || !id.Connected.Equal(at) {
		t.Fatalf("envelope = %+v", id)
	}
	if id.Role != admission.ReadOnly || id.User != fmt.Sprintf("user%d", uid) || id.Comm == peercred.Unknown || id.Comm == "" {
		t.Fatalf("role %v, user %q, comm %q", id.Role, id.User, id.Comm)
	}
	f := id.Fields()
	for _, k := range []string{"session", "client", "uid", "gid", "pid", "comm", "user", "role", "socket", "connected"} {
		if _, ok := f[k]; !ok {
			t.Errorf("Fields lacks %q: %v", k, f)
		}
	}
	if f["role"] != "read-only" || f["session"] != sess.String() || f["connected"] != "2025-01-02T03:04:05Z" {
		t.Errorf("Fields = %v", f)
	}
	want := fmt.Sprintf("uid=%d user=%q gid=%d pid=%d comm=%q role=read-only session=%s", uid, id.User, os.Getgid(), os.Getpid(), id.Comm, sess)
	if id.String() != want {
		t.Errorf("String = %q, want %q", id.String(), want)
	}
}

func TestResolveNoCredentials(t *testing.T) {
	r := &Resolver{Socket: "/run/sozu/sozu.sock"}
	id, err := r.Resolve(nil, 1)
	if err == nil {
		t.Fatal("no error for a connection without credentials")
	}
	if id.Known || id.Role != admission.None || id.User != peercred.Unknown || id.Comm != peercred.Unknown {
		t.Fatalf("identity = %+v", id)
	}
	if (id.Session == ulid.ULID{}) || id.Connected.IsZero() || id.Socket != "/run/sozu/sozu.sock" {
		t.Fatalf("envelope not filled: %+v", id)
	}
	if f := id.Fields(); f["uid"] != "unknown" || f["pid"] != nil {
		t.Fatalf("Fields = %v", f)
	}
	if d := admission.Decide(r.Policy, id.Cred, "status"); d.Allowed {
		t.Fatalf("peer without credentials admitted: %+v", d)
	}
}

func TestStringEscapes(t *testing.T) {
	id := Identity{Cred: peercred.Cred{Known: true, UID: 1, GID: 2, PID: 3}, Comm: "evil\nrole=admin", User: "x\x1b[31m", Role: admission.None}
	got := id.String()
	want := `uid=1 user="x\x1b[31m" gid=2 pid=3 comm="evil\nrole=admin" role=none session=00000000000000000000000000`
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

// pair returns the accepted end of a fresh connection to a listener.
func pair(t *testing.T) *net.UnixConn {
	t.Helper()
	addr := fmt.Sprintf("@identity-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestResolveWedgedNameService: with a user lookup that never answers,
// Resolve (and so the connection's first request) waits the lookup timeout
// and no more, measured on the real clock; once the name service answers,
// later connections are served from the cache.
func TestResolveWedgedNameService(t *testing.T) {
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	users, err := peercred.NewUsers(peercred.UsersConfig{Timeout: timeout, Lookup: func(uint32) (string, error) {
		<-release
		return "operator", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Socket: "test", Users: users, Policy: admission.Policy{SelfUID: uint32(os.Getuid())}}

	start := time.Now()
	id, err := r.Resolve(pair(t), 1)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != peercred.Unknown || id.Role != admission.Admin {
		t.Fatalf("user %q role %v, want unknown and admin (the role does not wait for names)", id.User, id.Role)
	}
	if took < timeout || took > timeout+400*time.Millisecond {
		t.Fatalf("Resolve took %v with a wedged name service, want about %v", took, timeout)
	}
	if users.Timeouts() != 1 {
		t.Fatalf("Timeouts = %d, want 1", users.Timeouts())
	}

	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		start := time.Now()
		id, _ := r.Resolve(pair(t), 2)
		if id.User == "operator" {
			if d := time.Since(start); d > timeout/2 {
				t.Fatalf("cached Resolve took %v", d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the late answer never reached the cache")
		}
	}
}
