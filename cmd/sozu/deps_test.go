package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadClientConfigSkipsKeys: the CLI's configuration read takes the
// client keys and opens none of the files the rest of the file names (here
// a key that does not exist), where `sozu config check` reports them.
func TestLoadClientConfigSkipsKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	cfg := `command_socket = "sozu.sock"
max_command_buffer_size = 3000000
ctl_command_timeout = 2500

[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
certificate = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadClientConfig(path)
	if err != nil {
		t.Fatalf("loadClientConfig: %v", err)
	}
	want := clientConfig{socket: filepath.Join(dir, "sozu.sock"), maxFrame: 3_000_000, timeout: 2500 * time.Millisecond}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, _, err := checkFullConfig(path); err == nil {
		t.Error("checkFullConfig accepts a configuration whose key does not exist")
	}
}
