package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Defaults of `cluster health-check set`, upstream's (the same as the
// configuration file's).
const (
	defaultHCInterval  = 10
	defaultHCTimeout   = 5
	defaultHCThreshold = 3
)

// buildHealthCheckSet makes set_health_check from the flags; the values
// are checked by the supervisor's state (proto/state validateHealthCheck).
func buildHealthCheckSet(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_SetHealthCheck{SetHealthCheck: &command.SetHealthCheck{
		ClusterId: ptr(v.str("id")),
		Config: &command.HealthCheckConfig{
			Uri:                ptr(v.str("uri")),
			Interval:           ptr(v.u32("interval", defaultHCInterval)),
			Timeout:            ptr(v.u32("timeout", defaultHCTimeout)),
			HealthyThreshold:   ptr(v.u32("healthy-threshold", defaultHCThreshold)),
			UnhealthyThreshold: ptr(v.u32("unhealthy-threshold", defaultHCThreshold)),
			ExpectedStatus:     ptr(v.u32("expected-status", 0)),
		},
	}}}, nil
}

func buildHealthCheckRemove(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_RemoveHealthCheck{RemoveHealthCheck: v.str("id")}}, nil
}

func buildHealthCheckList(v *values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_QueryHealthChecks{QueryHealthChecks: &command.QueryHealthChecks{ClusterId: v.optStr("id")}}}, nil
}

// renderHealthChecks prints one row per cluster with a health check,
// sorted by cluster id.
func renderHealthChecks(b *strings.Builder, l *command.HealthChecksList) {
	m := l.GetMap()
	if len(m) == 0 {
		b.WriteString("no health checks\n")
		return
	}
	tw := newTable(b)
	fmt.Fprintln(tw, "CLUSTER\tURI\tINTERVAL\tTIMEOUT\tHEALTHY THRESHOLD\tUNHEALTHY THRESHOLD\tEXPECTED STATUS")
	for _, id := range slices.Sorted(maps.Keys(m)) {
		hc := m[id]
		expected := "any 2xx"
		if hc.GetExpectedStatus() != 0 {
			expected = strconv.Itoa(int(hc.GetExpectedStatus()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%ds\t%ds\t%d\t%d\t%s\n", cleanText(id, false), cleanText(hc.GetUri(), false),
			hc.GetInterval(), hc.GetTimeout(), hc.GetHealthyThreshold(), hc.GetUnhealthyThreshold(), expected)
	}
	tw.Flush()
}
