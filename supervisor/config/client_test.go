package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A configuration whose HTTPS listener names a key nobody can read, with a
// cluster Parse refuses and a key it does not know: none of it is the
// client's business.
const clientWithKeys = `
command_socket = "run/sozu.sock"
max_command_buffer_size = 3000000
ctl_command_timeout = 2500
audit_logs_json_target = "audit/audit.json"
unknown_key = 1

[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
certificate = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"

[clusters.shop]
protocol = "http"
frontends = [{ address = "127.0.0.1:9", hostname = "a", rewrite_path = "/$PATH[7]" }]
`

func TestParseClient(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want ClientConfig // Path is filled in
		errs []string     // expected problems, in order (substrings)
	}{
		{
			name: "defaults",
			toml: "",
			want: ClientConfig{CommandSocket: "/etc/sozu/sozu.sock", CommandBufferSize: 1_000_000, MaxCommandBufferSize: 2_000_000},
		},
		{
			name: "other keys neither read nor checked",
			toml: clientWithKeys,
			want: ClientConfig{CommandSocket: "/etc/sozu/run/sozu.sock", CommandBufferSize: 1_000_000, MaxCommandBufferSize: 3_000_000,
				CtlCommandTimeout: 2500 * time.Millisecond, AuditHMACKeyFile: "/etc/sozu/audit/audit.json.key", AuditLogsJSONTarget: "/etc/sozu/audit/audit.json"},
		},
		{
			name: "explicit hmac key",
			toml: "command_socket = \"/run/s.sock\"\naudit_hmac_key_file = \"k/chain.key\"\n",
			want: ClientConfig{CommandSocket: "/run/s.sock", CommandBufferSize: 1_000_000, MaxCommandBufferSize: 2_000_000, AuditHMACKeyFile: "/etc/sozu/k/chain.key"},
		},
		{
			name: "syntax error is positioned",
			toml: "command_socket = \"/run/s.sock\"\n[[listeners]\n",
			errs: []string{"/etc/sozu/config.toml:3:12: syntax error: expected end of table array name"},
		},
		{
			name: "wrong type",
			toml: "worker_count = 2\ncommand_buffer_size = \"big\"\n",
			errs: []string{"/etc/sozu/config.toml:2:23: command_buffer_size: expected an integer, found a string"},
		},
		{
			name: "max below buffer",
			toml: "command_buffer_size = 20000\nmax_command_buffer_size = 17000\n",
			errs: []string{"/etc/sozu/config.toml:2:27: max_command_buffer_size: must be at least command_buffer_size (20000): upstream refuses a maximum below command_buffer_size, and so does this proxy, though command_buffer_size sizes no buffer here"},
		},
		{
			name: "max below the floor",
			toml: "command_buffer_size = 10\nmax_command_buffer_size = 10\n",
			errs: []string{"/etc/sozu/config.toml:2:27: max_command_buffer_size: must be at least 16384 bytes"},
		},
		{
			name: "empty socket, zero timeout",
			toml: "command_socket = \"\"\nctl_command_timeout = 0\n",
			errs: []string{"command_socket: must not be empty", "ctl_command_timeout: must be at least 1"},
		},
		{
			name: "socket path too long",
			toml: "command_socket = \"/" + strings.Repeat("s", 120) + "\"\n",
			errs: []string{"command_socket: socket path", "unix sockets allow at most 107"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseClient([]byte(tt.toml), "/etc/sozu/config.toml")
			if len(tt.errs) > 0 {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want %q", err, tt.errs)
				}
				for _, want := range tt.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClient: %v", err)
			}
			tt.want.Path = "/etc/sozu/config.toml"
			if *c != tt.want {
				t.Errorf("got  %+v\nwant %+v", *c, tt.want)
			}
		})
	}
}

// TestLoadClientOpensNoOtherFile: LoadClient succeeds where Load fails for
// a key file it cannot read.
func TestLoadClientOpensNoOtherFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(clientWithKeys), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "/nonexistent/") {
		t.Fatalf("Load: %v, want an error about the unreadable files", err)
	}
	c, err := LoadClient(path)
	if err != nil {
		t.Fatalf("LoadClient: %v", err)
	}
	if c.CommandSocket != filepath.Join(dir, "run/sozu.sock") {
		t.Errorf("socket %q", c.CommandSocket)
	}
	if _, err := LoadClient(filepath.Join(dir, "missing.toml")); err == nil || !errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestParseClientAgrees: on every valid example, ParseClient gives what
// Parse gives.
func TestParseClientAgrees(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.toml")
	examples, _ := filepath.Glob("../../docs/examples/*.toml")
	files = append(files, examples...)
	if len(files) == 0 {
		t.Fatal("no configuration files")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		checkClientAgrees(t, data, file)
	}
}

// checkClientAgrees fails when Parse accepts data and ParseClient does not,
// or gives other values.
func checkClientAgrees(t *testing.T, data []byte, path string) {
	t.Helper()
	full, err := Parse(data, path)
	if err != nil {
		return
	}
	c, err := ParseClient(data, path)
	if err != nil {
		t.Fatalf("%s: Parse accepts, ParseClient refuses: %v", path, err)
	}
	want := ClientConfig{Path: full.Path, CommandSocket: full.CommandSocket, CommandBufferSize: full.CommandBufferSize,
		MaxCommandBufferSize: full.MaxCommandBufferSize, CtlCommandTimeout: c.CtlCommandTimeout, AuditHMACKeyFile: full.Audit.HMACKeyFile, AuditLogsJSONTarget: full.AuditLogsJSONTarget}
	if c.CtlCommandTimeout != 0 && c.CtlCommandTimeout != full.CtlCommandTimeout {
		t.Errorf("%s: ctl_command_timeout %v, Parse %v", path, c.CtlCommandTimeout, full.CtlCommandTimeout)
	}
	if *c != want {
		t.Errorf("%s: ParseClient %+v\nParse gives %+v", path, *c, want)
	}
}

// FuzzParseClient checks that no input makes ParseClient panic, that a
// refusal is a well-formed Errors, and that ParseClient accepts, with the
// same values, whatever Parse accepts.
func FuzzParseClient(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(clientWithKeys))
	f.Add([]byte("command_buffer_size = 10\nmax_command_buffer_size = 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseClient(data, "fuzz.toml")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" || ce.File != "fuzz.toml" {
					t.Fatalf("malformed problem %#v", e)
				}
			}
		}
		checkClientAgrees(t, data, "fuzz.toml")
	})
}
