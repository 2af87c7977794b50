package main

import (
	"strings"
	"testing"
	"time"
)

// TestHealthCheckFlags: upstream's flags and defaults; --timeout after the
// verb is the probe's (seconds), -t/--timeout before it the CLI's (ms).
func TestHealthCheckFlags(t *testing.T) {
	for _, tc := range []struct {
		line                                  string
		interval, timeout, healthy, unhealthy uint32
		expected                              uint32
		cliTimeout                            time.Duration // 0: not set
	}{
		{"cluster health-check set --id shop --uri /health", 10, 5, 3, 3, 0, 0},
		{"cluster health-check set -i shop -u /health --interval 2 --timeout 1 --healthy-threshold 4 --unhealthy-threshold 6 --expected-status 204", 2, 1, 4, 6, 204, 0},
		{"--timeout 2500 cluster health-check set --id shop --uri /health --timeout 7", 10, 7, 3, 3, 0, 2500 * time.Millisecond},
		{"-t 300 cluster health-check set --id shop --uri /health", 10, 5, 3, 3, 0, 300 * time.Millisecond},
	} {
		inv, err := parseArgs(strings.Fields(tc.line))
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		set := inv.req.GetSetHealthCheck()
		c := set.GetConfig()
		if set.GetClusterId() != "shop" || c.GetUri() != "/health" || c.GetInterval() != tc.interval || c.GetTimeout() != tc.timeout ||
			c.GetHealthyThreshold() != tc.healthy || c.GetUnhealthyThreshold() != tc.unhealthy || c.GetExpectedStatus() != tc.expected {
			t.Errorf("%s: built %v", tc.line, set)
		}
		if inv.timeoutSet != (tc.cliTimeout != 0) || inv.timeout != tc.cliTimeout {
			t.Errorf("%s: CLI timeout %v (set %v), want %v", tc.line, inv.timeout, inv.timeoutSet, tc.cliTimeout)
		}
	}
	for _, line := range []string{
		"cluster health-check set --id shop", // --uri is required
		"cluster health-check set --uri /x",  // --id is required
		"cluster health-check set --id s --uri /x --expected-status 600",
		"cluster health-check remove",
	} {
		if _, err := parseArgs(strings.Fields(line)); err == nil {
			t.Errorf("%s: accepted", line)
		}
	}
	if inv, err := parseArgs(strings.Fields("cluster health-check list")); err != nil || inv.req.GetQueryHealthChecks() == nil || inv.req.GetQueryHealthChecks().ClusterId != nil {
		t.Errorf("list without --id: %v %v", inv, err)
	}
	if inv, err := parseArgs(strings.Fields("cluster health-check remove --id shop")); err != nil || inv.req.GetRemoveHealthCheck() != "shop" {
		t.Errorf("remove: %v %v", inv, err)
	}
}
