package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNotifyWithoutSocketIsNoOp(t *testing.T) {
	t.Setenv(Env, "")
	if err := Notify(Ready); err != nil {
		t.Fatalf("Notify without %s: %v", Env, err)
	}
}

func TestNotifySendsStates(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "notify")
		name, env := path, path
		if abstract {
			name, env = "\x00sozu-test-"+filepath.Base(filepath.Dir(path)), "@sozu-test-"+filepath.Base(filepath.Dir(path))
		}
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(Env, env)
		if err := Notify(Reloading, MainPID(42), Status("reloading")); err != nil {
			t.Fatalf("Notify (abstract %v): %v", abstract, err)
		}
		buf := make([]byte, 256)
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := l.Read(buf)
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(buf[:n]), "RELOADING=1\nMAINPID=42\nSTATUS=reloading"; got != want {
			t.Fatalf("datagram %q, want %q", got, want)
		}
	}
}

func TestNotifyErrorsNameTheSocket(t *testing.T) {
	for _, env := range []string{"relative/path", "/nonexistent/dir/notify"} {
		t.Setenv(Env, env)
		err := Notify(Ready)
		if err == nil {
			t.Fatalf("%s=%q: no error", Env, env)
		}
		if got := err.Error(); !strings.Contains(got, env) {
			t.Fatalf("error %q does not name %q", got, env)
		}
	}
}

// TestMonotonicUsec: the field systemd ≥ 253 wants with RELOADING=1, in
// microseconds of CLOCK_MONOTONIC, never going back.
func TestMonotonicUsec(t *testing.T) {
	var prev int64
	for range 3 {
		v, ok := strings.CutPrefix(MonotonicUsec(), "MONOTONIC_USEC=")
		if !ok {
			t.Fatalf("%q lacks MONOTONIC_USEC=", MonotonicUsec())
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n < prev {
			t.Fatalf("MONOTONIC_USEC=%s: %v (previous %d)", v, err, prev)
		}
		prev = n
	}
}
