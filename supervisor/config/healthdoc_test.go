package config

import (
	"os"
	"strings"
	"testing"
)

// TestHealthChecksDoc: the example of docs/health_checks.md loads, with the
// values it states, and no key of it is reported as not in force.
func TestHealthChecksDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/health_checks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n```toml\n")
	body, _, ok2 := strings.Cut(rest, "\n```")
	if !ok || !ok2 {
		t.Fatal("no ```toml block in docs/health_checks.md")
	}
	c, err := Parse([]byte(body), "health_checks.toml")
	if err != nil {
		t.Fatalf("the example does not load:\n%s\n%v", body, err)
	}
	for _, w := range c.Warnings {
		t.Errorf("the example has a key not in force: %v", w)
	}
	var hc string
	for _, wr := range c.Requests() {
		if ac := wr.GetContent().GetAddCluster(); ac != nil && ac.GetClusterId() == "shop" {
			h := ac.GetHealthCheck()
			hc = h.String()
			if h.GetUri() != "/health" || h.GetInterval() != 10 || h.GetTimeout() != 5 || h.GetHealthyThreshold() != 3 ||
				h.GetUnhealthyThreshold() != 3 || h.GetExpectedStatus() != 0 {
				t.Fatalf("health check of the example: %v", h)
			}
		}
	}
	if hc == "" {
		t.Fatal("the example's cluster has no health check")
	}
}
