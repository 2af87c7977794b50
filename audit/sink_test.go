package audit

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestModesWhateverTheUmask: files 0640, new directories 0750, the key
// 0600, under umask 000.
func TestModesWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	e := newEnv(t)
	e.text = filepath.Join(e.dir, "a", "b", "c", "audit.log")
	e.json = filepath.Join(e.dir, "j", "audit.json")
	e.key = filepath.Join(e.dir, "k", "audit.key")
	b := e.open(t)
	b.Log(sample(testIDs(), "cluster.add"))
	for _, p := range []string{e.text, e.json} {
		if got := perm(t, p); got != FileMode {
			t.Errorf("%s: mode %04o, want %04o", p, got, FileMode)
		}
	}
	for _, d := range []string{"a", "a/b", "a/b/c", "j", "k"} {
		if got := perm(t, filepath.Join(e.dir, d)); got != DirMode {
			t.Errorf("%s: mode %04o, want %04o", d, got, DirMode)
		}
	}
	if got := perm(t, e.key); got != 0o600 {
		t.Errorf("key: mode %04o, want 0600", got)
	}
	// Rotation creates the new file with the same modes.
	os.Rename(e.json, e.json+".1")
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, e.json); got != FileMode {
		t.Errorf("reopened file: mode %04o", got)
	}
}

func TestExistingWideFileIsTightened(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.text), 0o755)
	os.WriteFile(e.text, nil, 0o666)
	os.Chmod(e.text, 0o666)
	e.open(t)
	if got := perm(t, e.text); got != FileMode {
		t.Errorf("mode %04o, want %04o", got, FileMode)
	}
	recs := decodeAll(t, e.json)
	if !strings.Contains(recs[0].Reason, "tightened from 0666 to 0640") {
		t.Errorf("reason %q", recs[0].Reason)
	}
}

func TestSymlinkAtSinkPathRefused(t *testing.T) {
	for _, dangling := range []bool{false, true} {
		e := newEnv(t)
		victim := filepath.Join(e.dir, "victim")
		if !dangling {
			os.WriteFile(victim, []byte("precious\n"), 0o600)
		}
		os.MkdirAll(filepath.Dir(e.text), 0o750)
		if err := os.Symlink(victim, e.text); err != nil {
			t.Fatal(err)
		}
		_, err := Open(e.options())
		var se *SinkError
		if !errors.As(err, &se) || se.Target != e.text || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("dangling=%v: Open over a symlink: %v", dangling, err)
		}
		data, _ := os.ReadFile(victim)
		if dangling && data != nil || !dangling && string(data) != "precious\n" {
			t.Errorf("dangling=%v: the symlink's target was touched: %q", dangling, data)
		}
	}
}

func TestKeyFileChecks(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("0f", 32) + "\n"
	cases := []struct {
		name, content string
		mode          os.FileMode
		uid           int
		want          string
	}{
		{"group readable", good, 0o640, 0, "has mode 0640"},
		{"world readable", good, 0o604, 0, "has mode 0604"},
		{"other owner", good, 0o600, 1234, "owned by uid 1234"},
		{"short", strings.Repeat("0f", 16), 0o600, 0, "16-byte key"},
		{"not hex", strings.Repeat("zz", 32), 0o600, 0, "hex key"},
		{"odd", strings.Repeat("0", 65), 0o600, 0, "hex key"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		os.WriteFile(p, []byte(c.content), 0o600)
		os.Chmod(p, c.mode)
		if c.uid != 0 {
			if err := os.Chown(p, c.uid, c.uid); err != nil {
				t.Logf("%s: skipped (not root: %v)", c.name, err)
				continue
			}
		}
		_, _, err := LoadOrCreateKey(p)
		var ke *KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want a KeyError naming the file and %q", c.name, err, c.want)
		}
	}
	// The verifier's reader checks neither mode nor owner.
	p := filepath.Join(dir, "group_readable")
	if k, err := ReadKeyFile(p); err != nil || len(k) != 32 {
		t.Errorf("ReadKeyFile of a 0640 copy: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "x"), link)
	if _, _, err := LoadOrCreateKey(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked key: %v", err)
	}
	k1, created, err := LoadOrCreateKey(filepath.Join(dir, "new", "key"))
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create: %v %v %d", err, created, len(k1))
	}
	k2, created, err := LoadOrCreateKey(filepath.Join(dir, "new", "key"))
	if err != nil || created || !slices.Equal(k1, k2) {
		t.Errorf("reload: %v %v", err, created)
	}
}

func TestFIFOWithoutReaderRefused(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.text), 0o750)
	if err := unix.Mkfifo(e.text, 0o640); err != nil {
		t.Skip(err)
	}
	if _, err := Open(e.options()); err == nil || !strings.Contains(err.Error(), "FIFO with no reader") {
		t.Errorf("got %v", err)
	}
}

func TestStdoutTarget(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := os.Stdout
	os.Stdout = w
	e := newEnv(t)
	b, err := Open(Options{TextTarget: TargetStdout, JSONTarget: e.json, HMACKeyFile: e.key, Now: e.clock.Now})
	os.Stdout = old
	if err != nil {
		t.Fatal(err)
	}
	b.Log(sample(testIDs(), "cluster.add"))
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	w.Close()
	sc := bufio.NewScanner(r)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if len(got) != 3 || !strings.Contains(got[0], "event=audit.open") || !strings.Contains(got[2], "event=audit.reopen") {
		t.Errorf("stdout:\n%s", strings.Join(got, "\n"))
	}
}

// TestTmpfsFull is the fail-closed path on a real full filesystem: a
// record cut short by ENOSPC is cut back off the file (no torn line), Log
// refuses, and once space is freed the records resume with audit.recovered.
func TestTmpfsFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o750)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0750"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	e := newEnv(t)
	e.text, e.json = "", filepath.Join(mnt, "audit.json")
	b := e.open(t)
	filler, _ := os.Create(filepath.Join(mnt, "filler"))
	for {
		if _, err := filler.Write(make([]byte, 1024)); err != nil {
			break
		}
	}
	filler.Close()
	ids := testIDs()
	var failed error
	for i := 0; i < 200 && failed == nil; i++ {
		failed = b.Log(sample(ids, "cluster.add"))
	}
	var le *LogError
	if !errors.As(failed, &le) || !errors.Is(failed, syscall.ENOSPC) {
		t.Fatalf("Log on a full tmpfs: %v", failed)
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatalf("after ENOSPC the file has a torn record: %v", err)
	}
	os.Remove(filepath.Join(mnt, "filler"))
	if err := b.Log(sample(ids, "cluster.add")); err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, e.json)
	if recs[len(recs)-1].Code != CodeAuditRecovered {
		t.Errorf("last record %s", recs[len(recs)-1].Code.Name())
	}
	if err := Verify(mustOpen(t, e.json), e.keyBytes(t)); err != nil {
		t.Fatal(err)
	}
}

// A FIFO sink whose reader stopped reading fails each write after
// sinkWriteTimeout, as a full disk does, instead of holding the broker,
// and every command and the shutdown with it, for ever: the records go on
// to the other sink (Log succeeds while one sink takes them) and Close
// returns.
func TestStalledFIFOSinkFailsClosed(t *testing.T) {
	defer func(d time.Duration) { sinkWriteTimeout = d }(sinkWriteTimeout)
	sinkWriteTimeout = 20 * time.Millisecond
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.text), 0o750)
	if err := unix.Mkfifo(e.text, 0o640); err != nil {
		t.Skip(err)
	}
	rfd, err := unix.Open(e.text, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0) // a reader that never reads
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	b, err := Open(e.options())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300 // the pipe (64 KiB) fills within a couple of hundred records
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := b.Log(sample(testIDs(), "cluster.add")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Log: %v (the JSON sink takes every record)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Log still blocked on a FIFO whose reader stopped")
	}
	if st := b.Stats(); st.Records < n {
		t.Errorf("records %d, want %d", st.Records, n)
	}
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close still blocked on a FIFO whose reader stopped")
	}
}
