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

// disable_cluster_metrics may be written at the top level (upstream's
// place) or in [metrics] beside the other metrics keys; either makes the
// initial state end with CONFIGURE_METRICS(DISABLED); written in both
// places with different values, it is refused.
func TestDisableClusterMetricsEitherPlace(t *testing.T) {
	disabled := func(c *Config) bool {
		for _, r := range c.Requests() {
			if r.GetContent().GetConfigureMetrics() == command.MetricsConfiguration_DISABLED {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name, toml string
		want       bool
	}{
		{"top level", "disable_cluster_metrics = true\n[metrics]\naddress = \"127.0.0.1:8125\"\n", true},
		{"in [metrics]", "[metrics]\naddress = \"127.0.0.1:8125\"\ndisable_cluster_metrics = true\n", true},
		{"both, same", "disable_cluster_metrics = true\n[metrics]\naddress = \"127.0.0.1:8125\"\ndisable_cluster_metrics = true\n", true},
		{"in [metrics], false", "[metrics]\naddress = \"127.0.0.1:8125\"\ndisable_cluster_metrics = false\n", false},
		{"neither", "[metrics]\naddress = \"127.0.0.1:8125\"\n", false},
	} {
		c, err := Parse([]byte(tc.toml), "t.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.DisableClusterMetrics != tc.want || disabled(c) != tc.want {
			t.Errorf("%s: DisableClusterMetrics %v, CONFIGURE_METRICS(DISABLED) sent %v; want %v", tc.name, c.DisableClusterMetrics, disabled(c), tc.want)
		}
	}
	_, err := Parse([]byte("disable_cluster_metrics = false\n[metrics]\naddress = \"127.0.0.1:8125\"\ndisable_cluster_metrics = true\n"), "t.toml")
	if err == nil || !strings.Contains(err.Error(), "t.toml:4:27: metrics.disable_cluster_metrics: is true but the top-level disable_cluster_metrics is false") {
		t.Errorf("both places, different values: %v", err)
	}
}
