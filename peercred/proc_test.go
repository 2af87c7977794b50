package peercred

import (
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// stat builds a /proc/<pid>/stat line with the given comm and starttime.
func stat(pid, comm, start string) string {
	// Fields 3..21, then 22 = starttime, then a few more.
	return pid + " (" + comm + ") S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 " + start + " 1000 200 18446744073709551615\n"
}

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint64
		err      string
	}{
		{name: "plain", in: stat("42", "sleep", "123456"), want: 123456},
		{name: "spaces and parens in comm", in: stat("42", "a) (b) S 9 9 9", "777"), want: 777},
		{name: "closing paren last in comm", in: stat("42", "x)", "5"), want: 5},
		{name: "empty comm", in: stat("42", "", "9"), want: 9},
		{name: "zero start is 1", in: stat("1", "init", "0"), want: 1},
		{name: "no paren", in: "42 sleep S 1 2 3", err: "no ')' closing the comm field"},
		{name: "truncated", in: "42 (sleep) S 1 1 1 0", err: "5 fields after the comm, want at least 20"},
		{name: "not a number", in: stat("42", "sleep", "12x"), err: `field 22 (starttime) "12x" is not a number`},
		{name: "negative", in: stat("42", "sleep", "-1"), err: `field 22 (starttime) "-1" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartTime([]byte(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func FuzzParseStartTime(f *testing.F) {
	f.Add(stat("42", "sleep", "123456"), "sleep", uint64(123456))
	f.Add(stat("7", "a) (b", "1"), "x) 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22", uint64(3))
	f.Fuzz(func(t *testing.T, line, comm string, start uint64) {
		parseStartTime([]byte(line)) // must not panic
		// Invariant: whatever the comm holds, the real start time is found.
		if start == 0 {
			start = 1
		}
		got, err := parseStartTime([]byte(stat("42", comm, uitoa(start))))
		if err != nil || got != start {
			t.Fatalf("comm %q: = %d, %v; want %d", comm, got, err, start)
		}
	})
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func TestProcComm(t *testing.T) {
	tree := fstest.MapFS{
		"42/stat": {Data: []byte(stat("42", "sozu (ctl)", "1000"))},
		"42/comm": {Data: []byte("sozu (ctl)\n")},
		"43/stat": {Data: []byte(stat("43", "garbage", "x"))},
		"43/comm": {Data: []byte("garbage\n")},
		"44/stat": {Data: []byte(stat("44", "nocomm", "5"))},
	}
	p := Proc{FS: tree}
	tests := []struct {
		name string
		c    Cred
		want string
	}{
		{name: "same start time", c: Cred{Known: true, PID: 42, Start: 1000}, want: "sozu (ctl)"},
		{name: "PID reused (other start time)", c: Cred{Known: true, PID: 42, Start: 999}, want: Unknown},
		{name: "gone at capture", c: Cred{Known: true, PID: 42}, want: Unknown},
		{name: "gone now", c: Cred{Known: true, PID: 77, Start: 1000}, want: Unknown},
		{name: "unparsable stat", c: Cred{Known: true, PID: 43, Start: 1000}, want: Unknown},
		{name: "no comm file", c: Cred{Known: true, PID: 44, Start: 5}, want: Unknown},
		{name: "outside our PID namespace", c: Cred{Known: true, PID: 0, Start: 1000}, want: Unknown},
		{name: "not known", c: Cred{PID: 42, Start: 1000}, want: Unknown},
	}
	for _, tt := range tests {
		if got := p.Comm(tt.c); got != tt.want {
			t.Errorf("%s: Comm = %q, want %q", tt.name, got, tt.want)
		}
	}
	if st, err := p.StartTime(42); err != nil || st != 1000 {
		t.Errorf("StartTime(42) = %d, %v", st, err)
	}
	if _, err := p.StartTime(77); err == nil || !strings.Contains(err.Error(), "/proc/77/stat") {
		t.Errorf("StartTime(77) error = %v, want it to name /proc/77/stat", err)
	}
}

// reusingFS serves a stat whose start time changes after the first read:
// the PID is reused while comm is being read.
type reusingFS struct {
	fstest.MapFS
	stats atomic.Int32
}

func (r *reusingFS) Open(name string) (fs.File, error) {
	if name == "42/stat" && r.stats.Add(1) > 1 {
		return fstest.MapFS{name: {Data: []byte(stat("42", "tail", "2000"))}}.Open(name)
	}
	return r.MapFS.Open(name)
}

func TestProcCommReusedDuringRead(t *testing.T) {
	fsys := &reusingFS{MapFS: fstest.MapFS{
		"42/stat": {Data: []byte(stat("42", "sozu", "1000"))},
		"42/comm": {Data: []byte("tail\n")},
	}}
	if got := (Proc{FS: fsys}).Comm(Cred{Known: true, PID: 42, Start: 1000}); got != Unknown {
		t.Fatalf("Comm = %q, want %q", got, Unknown)
	}
	if n := fsys.stats.Load(); n != 2 {
		t.Fatalf("stat read %d times, want before and after comm", n)
	}
}
