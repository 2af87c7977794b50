package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a deterministic clock: each reading advances it by 1 µs,
// and tests move it further with add.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is a broker on files in a temporary directory.
type testEnv struct {
	dir, text, json, key string
	clock                *fakeClock
	saved, other         []byte // head and trail copies for TestHeadAtOpen
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	return &testEnv{
		dir:   dir,
		text:  filepath.Join(dir, "log", "audit.log"),
		json:  filepath.Join(dir, "log", "audit.json"),
		key:   filepath.Join(dir, "keys", "audit.key"),
		clock: newClock(),
	}
}

func (e *testEnv) options() Options {
	return Options{
		TextTarget:  e.text,
		JSONTarget:  e.json,
		HMACKeyFile: e.key,
		Version:     "1.0.0-test",
		GitSHA:      "0123456789abcdef",
		Now:         e.clock.Now,
	}
}

func (e *testEnv) open(t *testing.T, mod ...func(*Options)) *Broker {
	t.Helper()
	o := e.options()
	for _, m := range mod {
		m(&o)
	}
	b, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func (e *testEnv) keyBytes(t testing.TB) []byte {
	t.Helper()
	k, err := ReadKeyFile(e.key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// lines returns the lines of a file, newlines dropped.
func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// decodeAll decodes every JSON line of a file, failing on a schema error.
func decodeAll(t *testing.T, path string) []Record {
	t.Helper()
	var out []Record
	for i, l := range lines(t, path) {
		if err := ValidateJSON([]byte(l)); err != nil {
			t.Fatalf("%s line %d: %v\n%s", path, i+1, err, l)
		}
		r, _, err := DecodeJSON([]byte(l))
		if err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		out = append(out, r)
	}
	return out
}

func events(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Code.Name()
	}
	return out
}

// sample is a completion record as the supervisor would write it.
func sample(ids *IDSource, verb string) *Record {
	ms := 12 * time.Millisecond
	fan := 2
	return &Record{
		SessionULID: ids.New(),
		RequestULID: ids.New(),
		Actor:       PeerActor(1000, 1000, 4242, "alice", "sozu", "admin"),
		ClientID:    "7",
		ConnectTime: time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC),
		Socket:      "/run/sozu/sozu.sock",
		Verb:        verb,
		Code:        CodeCommandCompleted,
		Target:      "cluster app1",
		Result:      ResultOK,
		ClusterID:   "app1",
		Extras:      Extras{Elapsed: &ms, Fanout: &fan, Workers: &Workers{OK: 2, Expected: 2}, RequestSHA256: "0123456789abcdef"},
	}
}

func testIDs() *IDSource {
	c := newClock()
	return NewIDSource(c.Now, bytes.NewReader(bytes.Repeat([]byte{7}, 1<<16)))
}

// parsedText is a text record split back into its parts.
type parsedText struct {
	prefix [4]string // "" for "-"
	kv     map[string]string
	keys   []string
}

// parseText parses a text record, undoing its escapes. It is the reference
// reader the fuzz test holds the writer to.
func parseText(line string) (parsedText, error) {
	var p parsedText
	if !strings.HasSuffix(line, ")\n") || strings.Count(line, "\n") != 1 {
		return p, errors.New("not one line ending in )")
	}
	head, body, ok := strings.Cut(line, "]\tAUDIT\tCommand(")
	if !ok || !strings.HasPrefix(head, "[") {
		return p, errors.New("no [prefix]<TAB>AUDIT<TAB>Command(")
	}
	fields := splitEscaped(head[1:], ' ')
	if len(fields) != 4 {
		return p, fmt.Errorf("prefix has %d fields", len(fields))
	}
	for i, f := range fields {
		if f != "-" {
			p.prefix[i] = unescape(f)
		}
	}
	p.kv = map[string]string{}
	body = strings.TrimSuffix(body, ")\n")
	for _, part := range splitEscaped(body, ',') {
		part = strings.TrimPrefix(part, " ")
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return p, fmt.Errorf("no = in %q", part)
		}
		if _, dup := p.kv[k]; dup {
			return p, fmt.Errorf("key %s twice", k)
		}
		p.kv[k] = unescape(v)
		p.keys = append(p.keys, k)
	}
	return p, nil
}

// splitEscaped splits s on sep bytes not preceded by an escaping backslash.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// scanLines counts newline-terminated lines of data.
func scanLines(data []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		n++
	}
	return n
}
