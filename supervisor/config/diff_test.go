package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRestartChanges: a global key whose value changes is reported with
// both values, a path key is compared resolved (the same relative path in
// a file elsewhere is a change), and listeners and clusters, which a
// reload applies, never are.
func TestRestartChanges(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	const base = "command_socket = \"sozu.sock\"\nworker_count = 2\n"
	const more = "\n[[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:8080\"\n\n[clusters.app]\nprotocol = \"http\"\nbackends = [ { address = \"127.0.0.1:9000\" } ]\n"
	parse := func(t *testing.T, dir, text string) *Config {
		t.Helper()
		c, err := Parse([]byte(text), filepath.Join(dir, "config.toml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := parse(t, dir, base)
	for _, tc := range []struct {
		name, dir, text string
		want            []string
	}{
		{"same", dir, base, nil},
		{"listeners and clusters are not globals", dir, base + more, nil},
		{"worker_count and a new key", dir, "command_socket = \"sozu.sock\"\nworker_count = 3\nworker_timeout = 7\n",
			[]string{"worker_count: 2 → 3", "worker_timeout: 10 → 7"}},
		{"a relative path elsewhere", sub, base,
			[]string{"command_socket: " + quoteOrUnset(filepath.Join(dir, "sozu.sock")) + " → " + quoteOrUnset(filepath.Join(sub, "sozu.sock"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range parse(t, tc.dir, tc.text).RestartChanges(running) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
