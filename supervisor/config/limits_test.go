package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNestingBlowUps: deeply nested values (arrays, inline tables, dotted
// keys, table headers) are refused at once with a positioned error, in
// little time and memory. Before the cap, 10^5 nested arrays cost 15 GB
// and 32 s in the position scanner; the depths grow so that a regression
// fails on the small one before the large one can hurt the machine.
func TestNestingBlowUps(t *testing.T) {
	shapes := []struct {
		name string
		doc  func(n int) string
		want string // the error, once the depth passes the cap
	}{
		{"arrays", func(n int) string {
			return "a = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
		}, "t.toml:1:69: nesting deeper than 64 levels (tables, arrays and dotted keys count)"},
		{"inline tables", func(n int) string {
			return "a = " + strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n) + "\n"
		}, "t.toml:1:195: nesting deeper than 64 levels (tables, arrays and dotted keys count)"},
		{"dotted key", func(n int) string {
			return strings.Repeat("a.", n) + "a = 1\n"
		}, "t.toml:1:129: nesting deeper than 64 levels (tables, arrays and dotted keys count)"},
		{"table header", func(n int) string {
			return "[" + strings.Repeat("a.", n) + "a]\n"
		}, "t.toml:1:130: nesting deeper than 64 levels (tables, arrays and dotted keys count)"},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			for _, n := range []int{10_000, 100_000} {
				doc := s.doc(n)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				_, err := parseWithin(t, 20*time.Second, []byte(doc), "t.toml")
				took := time.Since(start)
				runtime.ReadMemStats(&after)
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
					t.Fatalf("depth %d: Parse allocated %d MiB", n, alloc>>20)
				}
				if took > 5*time.Second {
					t.Fatalf("depth %d: Parse took %v", n, took)
				}
				if err == nil || err.Error() != s.want {
					t.Fatalf("depth %d: got %v\nwant %s", n, err, s.want)
				}
			}
		})
	}
	// At the cap, still accepted by the scanner (the schema refuses it).
	doc := "a = " + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "\n"
	if _, err := Parse([]byte(doc), "t.toml"); err == nil || strings.Contains(err.Error(), "nesting") {
		t.Errorf("depth 64: %v", err)
	}
}

// TestConfigFileLimits: the configuration file itself must be a regular
// file of at most 16 MiB; a FIFO or a device is refused without blocking.
func TestConfigFileLimits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxConfigSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{fifo, fifo + ": cannot read configuration: is a FIFO, not a regular file"},
		{"/dev/zero", "/dev/zero: cannot read configuration: is a character device, not a regular file"},
		{dir, dir + ": cannot read configuration: is a directory, not a regular file"},
		{big, big + ": cannot read configuration: is 16777219 bytes long: the limit is 16 MiB"},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { _, err := Load(c.path); done <- err }()
		timer := time.NewTimer(10 * time.Second)
		select {
		case err := <-done:
			timer.Stop()
			if err == nil || err.Error() != c.want {
				t.Errorf("Load(%s): %v\nwant %s", c.path, err, c.want)
			}
		case <-timer.C:
			t.Fatalf("Load(%s) blocked", c.path)
		}
	}
	data := []byte("# " + strings.Repeat("x", MaxConfigSize) + "\n")
	if _, err := Parse(data, "t.toml"); err == nil || err.Error() != "t.toml: the configuration is 16777219 bytes long: the limit is 16 MiB" {
		t.Errorf("Parse of %d bytes: %v", len(data), err)
	}
}

// TestKeyLengthAndErrorCaps: a key longer than 256 bytes is refused before
// parsing (every value below it would carry it in its key path: a long
// cluster id times many backends made gigabytes of paths), and a file with
// many problems lists the first 100 found and counts the rest.
func TestKeyLengthAndErrorCaps(t *testing.T) {
	id := strings.Repeat("k", 256<<10)
	doc := "[clusters." + id + "]\nprotocol = \"http\"\nbackends = [" + strings.Repeat("{x=1},", 1000) + "]\n"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := parseWithin(t, 20*time.Second, []byte(doc), "t.toml")
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("Parse allocated %d MiB", alloc>>20)
	}
	if want := "t.toml:1:11: key is 262144 bytes long: keys may be at most 256 bytes"; err == nil || err.Error() != want {
		t.Errorf("long cluster id: %.300v\nwant %s", err, want)
	}
	long := strings.Repeat("k", 257)
	if _, err := Parse([]byte("\""+long[:254]+"\" = 1\n"), "t.toml"); err == nil || err.Error() != "t.toml:1:1: "+long[:254]+": unknown key" {
		t.Errorf("a key of 256 bytes as written (quotes included): %v", err)
	}
	if _, err := Parse([]byte("\""+long+"\" = 1\n"), "t.toml"); err == nil || err.Error() != "t.toml:1:1: key is 259 bytes long: keys may be at most 256 bytes" {
		t.Errorf("a key of 259 bytes as written: %v", err)
	}

	var b strings.Builder
	for i := range 1000 {
		b.WriteString("unknown_" + strings.Repeat("x", i%7) + "_" + string(rune('a'+i%26)) + strings.Repeat("y", i/26) + " = 1\n")
	}
	_, err = Parse([]byte(b.String()), "t.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 101 || lines[100] != "t.toml: and 900 more problems (only the first 100 found are listed)" {
		t.Errorf("%d lines, the last %q", len(lines), lines[len(lines)-1])
	}
}
