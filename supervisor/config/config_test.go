package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// render prints a configuration as the golden files hold it: the worker
// bootstrap frame, then one request per line, each as compact protojson.
// json.Compact removes the whitespace protojson randomises on purpose.
func render(t *testing.T, c *Config) []byte {
	t.Helper()
	var b bytes.Buffer
	line := func(prefix string, m proto.Message) {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, js); err != nil {
			t.Fatal(err)
		}
		b.WriteString(prefix)
		b.Write(compact.Bytes())
		b.WriteByte('\n')
	}
	line("server_config ", c.ServerConfig())
	for _, r := range c.Requests() {
		line("", r)
	}
	return b.Bytes()
}

// TestGolden renders each testdata/*.toml into testdata/*.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := render(t, c)
			// Absolute paths depend on where the repository lives.
			dir, _ := filepath.Abs("testdata")
			got = bytes.ReplaceAll(got, []byte(dir), []byte("$TESTDATA"))
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendering (go test -update rewrites it):\n%s", golden, diffLines(string(want), string(got)))
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, "/etc/sozu/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Path", c.Path, "/etc/sozu/config.toml"},
		{"CommandSocket", c.CommandSocket, "/etc/sozu/sozu.sock"},
		{"CommandBufferSize", c.CommandBufferSize, uint64(1_000_000)},
		{"MaxCommandBufferSize", c.MaxCommandBufferSize, uint64(2_000_000)},
		{"WorkerCount", c.WorkerCount, 2},
		{"WorkerAutomaticRestart", c.WorkerAutomaticRestart, true},
		{"WorkerTimeout", c.WorkerTimeout, 10 * time.Second},
		{"SoftStopDeadline", c.SoftStopDeadline, 60 * time.Second},
		{"SavedState", c.SavedState, ""},
		{"AutomaticStateSave", c.AutomaticStateSave, false},
		{"ActivateListeners", c.ActivateListeners, true},
		{"LogLevel", c.LogLevel, "info"},
		{"LogTarget", c.LogTarget, "stdout"},
		{"AuditLogsTarget", c.AuditLogsTarget, ""},
		{"AuditLogsJSONTarget", c.AuditLogsJSONTarget, ""},
		{"BufferSize", c.BufferSize, uint64(16_393)},
		{"FrontTimeout", c.FrontTimeout, 60 * time.Second},
		{"CtlCommandTimeout", c.CtlCommandTimeout, time.Second},
		{"requests", len(c.Requests()), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// Every required ServerConfig field is set.
	if err := proto.CheckInitialized(c.ServerConfig()); err != nil {
		t.Errorf("ServerConfig: %v", err)
	}
}

// TestRequestsInitialized checks that every generated request carries all
// the fields proto2 marks required (so upstream can decode what we save).
func TestRequestsInitialized(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Requests() {
		if err := proto.CheckInitialized(r); err != nil {
			t.Errorf("%s: %v", r.GetId(), err)
		}
	}
	if err := proto.CheckInitialized(c.ServerConfig()); err != nil {
		t.Errorf("ServerConfig: %v", err)
	}
}

// TestRequestsAreCopies checks that callers cannot alter the configuration
// through the messages they receive.
func TestRequestsAreCopies(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	first := c.Requests()
	first[0].GetContent().GetAddHttpListener().StickyName = proto.String("changed")
	c.ServerConfig().LogLevel = proto.String("changed")
	if got := c.Requests()[0].GetContent().GetAddHttpListener().GetStickyName(); got != "SOZUBALANCEID" {
		t.Errorf("sticky name = %q after a caller changed its copy", got)
	}
	if got := c.ServerConfig().GetLogLevel(); got == "changed" {
		t.Error("ServerConfig shares its message with callers")
	}
}

// TestExampleConfig checks that every TOML file under docs/examples parses
// (style: every example config in docs parses).
func TestExampleConfig(t *testing.T) {
	files, _ := filepath.Glob("../../docs/examples/*.toml")
	if len(files) == 0 {
		t.Fatal("no example configuration under docs/examples")
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if filepath.Base(f) != "config.toml" {
			continue
		}
		// The demo `make run` relies on: one HTTP listener, the demo
		// cluster routing localhost and 127.0.0.1 to 127.0.0.1:8081.
		var verbs []string
		for _, r := range c.Requests() {
			verbs = append(verbs, command.StateKey(r.GetContent()))
		}
		want := "ADD_HTTP_LISTENER ADD_CLUSTER ADD_HTTP_FRONTEND ADD_HTTP_FRONTEND ADD_BACKEND ACTIVATE_LISTENER"
		if got := strings.Join(verbs, " "); got != want {
			t.Errorf("%s: requests %s, want %s", f, got, want)
		}
		if c.WorkerCount != 2 || !strings.HasSuffix(c.CommandSocket, "/run/sozu.sock") {
			t.Errorf("%s: worker_count %d, command socket %s", f, c.WorkerCount, c.CommandSocket)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v; want ErrInvalid and os.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "testdata/does-not-exist.toml: cannot read configuration: ") {
		t.Errorf("err = %q", err)
	}
}
