package main

import (
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// buildMetricsGet is `metrics get`: query_metrics with upstream's options.
// The list flags take comma-separated values and may be repeated.
func buildMetricsGet(v *values) (*command.Request, error) {
	opt := &command.QueryMetricsOptions{
		List: ptr(v.flag("list")), NoClusters: ptr(v.flag("no-clusters")), Workers: ptr(v.flag("workers")),
	}
	var err error
	if opt.MetricNames, err = commaList(v, "names"); err != nil {
		return nil, err
	}
	if opt.ClusterIds, err = commaList(v, "clusters"); err != nil {
		return nil, err
	}
	if opt.BackendIds, err = commaList(v, "backends"); err != nil {
		return nil, err
	}
	return &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: opt}}, nil
}

// commaList splits the values of a repeatable list flag at commas; an
// empty item is refused, naming the flag.
func commaList(v *values, name string) ([]string, error) {
	var out []string
	for _, raw := range v.list(name) {
		for item := range strings.SplitSeq(raw, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, fmt.Errorf("invalid value %q for --%s: an empty name in the list", raw, name)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

// metricsConfigure builds configure_metrics with c.
func metricsConfigure(c command.MetricsConfiguration) func(*values) (*command.Request, error) {
	return func(*values) (*command.Request, error) {
		return &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: c}}, nil
	}
}
