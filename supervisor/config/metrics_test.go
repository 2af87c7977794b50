package config

import (
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// [metrics]: statsd and Prometheus addresses as written; a Prometheus
// address off loopback is accepted and noted, a loopback or unix one is
// not; statsd goes to the workers' ServerConfig only when written.
func TestMetricsTable(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		prom       string
		statsd     bool
		note       string
	}{
		{"statsd only", "[metrics]\naddress = \"127.0.0.1:8125\"\n", "", true, ""},
		{"prometheus loopback", "[metrics]\nprometheus_address = \"127.0.0.1:9100\"\n", "127.0.0.1:9100", false, ""},
		{"prometheus v6 loopback", "[metrics]\nprometheus_address = \"[::1]:9100\"\n", "[::1]:9100", false, ""},
		{"prometheus unix", "[metrics]\nprometheus_address = \"unix:/run/sozu/m.sock\"\n", "unix:/run/sozu/m.sock", false, ""},
		{"prometheus everywhere", "[metrics]\naddress = \"127.0.0.1:8125\"\nprometheus_address = \"0.0.0.0:9100\"\n", "0.0.0.0:9100", true,
			"t.toml:3:22: metrics.prometheus_address: 0.0.0.0:9100 is not a loopback address: the supervisor serves /metrics (cluster and backend ids, traffic figures) to the network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			if c.Metrics.Prometheus != tc.prom {
				t.Errorf("Prometheus %q, want %q", c.Metrics.Prometheus, tc.prom)
			}
			if got := c.ServerConfig().GetMetrics() != nil; got != tc.statsd {
				t.Errorf("ServerConfig carries statsd: %v, want %v", got, tc.statsd)
			}
			if c.Metrics.Detail != command.MetricDetail_DETAIL_CLUSTER {
				t.Errorf("detail %v, want the default, cluster", c.Metrics.Detail)
			}
			var notes []string
			for _, n := range c.Notes {
				if strings.Contains(n.Key, "metrics") {
					notes = append(notes, strings.TrimPrefix(n.String(), ""))
				}
			}
			switch {
			case tc.note == "" && len(notes) > 0:
				t.Errorf("notes %q", notes)
			case tc.note != "" && (len(notes) != 1 || !strings.HasSuffix(notes[0], tc.note[len("t.toml:3:22: "):])):
				t.Errorf("notes %q, want %q", notes, tc.note)
			}
		})
	}
}
