package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestUpstreamSamples loads configurations shaped like upstream Sōzu's
// own samples (testdata/upstream, our values): both load, with warnings
// for the keys this implementation has no use for, and bin.toml's tcp
// frontend, which upstream's sample leaves without a listener, gets one.
func TestUpstreamSamples(t *testing.T) {
	for _, tc := range []struct {
		file      string
		listeners []Listener
		notes     []string
	}{
		{
			file: "testdata/upstream/bin.toml",
			listeners: []Listener{
				{ProtocolHTTP, netip.MustParseAddrPort("0.0.0.0:8180")},
				{ProtocolHTTPS, netip.MustParseAddrPort("0.0.0.0:8543")},
				{ProtocolTCP, netip.MustParseAddrPort("0.0.0.0:8181")},
			},
			notes: []string{"clusters.Ledger.frontends[0].address: no [[listeners]] entry at 0.0.0.0:8181: a tcp listener with default settings is created for it"},
		},
		{
			file: "testdata/upstream/os-build.toml",
			listeners: []Listener{
				{ProtocolHTTP, netip.MustParseAddrPort("0.0.0.0:8280")},
				{ProtocolHTTPS, netip.MustParseAddrPort("0.0.0.0:8643")},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Listeners) != len(tc.listeners) {
				t.Fatalf("listeners %v, want %v", c.Listeners, tc.listeners)
			}
			for i, l := range tc.listeners {
				if c.Listeners[i] != l {
					t.Errorf("listener %d = %v, want %v", i, c.Listeners[i], l)
				}
			}
			if len(c.Notes) != len(tc.notes) {
				t.Fatalf("notes %v, want %q", c.Notes, tc.notes)
			}
			for i, n := range c.Notes {
				if !strings.Contains(n.String(), tc.notes[i]) {
					t.Errorf("note %s, want %q", n, tc.notes[i])
				}
			}
			for _, w := range c.Warnings {
				if w.Class != Meaningless && w.Key != "pid_file_path" {
					t.Errorf("unexpected warning %s", w)
				}
			}
		})
	}
}
