package main

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// metrics get's flags become upstream's QueryMetricsOptions; lists split
// at commas and merge over repetitions; bad values are usage errors.
func TestMetricsGetFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want *command.QueryMetricsOptions
		err  string
	}{
		{args: []string{"metrics", "get"},
			want: &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}},
		{args: []string{"metrics", "get", "-l"},
			want: &command.QueryMetricsOptions{List: proto.Bool(true), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}},
		{args: []string{"metrics", "get", "--names", "requests,bytes_in", "-n", "bytes_out", "-k", "a,b", "-b", "a-0", "--no-clusters", "-w"},
			want: &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(true), Workers: proto.Bool(true),
				MetricNames: []string{"requests", "bytes_in", "bytes_out"}, ClusterIds: []string{"a", "b"}, BackendIds: []string{"a-0"}}},
		{args: []string{"metrics", "get", "--names", "a,,b"}, err: `invalid value "a,,b" for --names: an empty name in the list`},
		{args: []string{"metrics", "get", "--refresh", "0"}, err: `invalid value "0" for --refresh: want an integer from 1 to 86400`},
		{args: []string{"metrics", "get", "--refresh", "x"}, err: `invalid value "x" for --refresh: want an integer from 1 to 86400`},
		{args: []string{"metrics", "get", "--refresh", "86401"}, err: `invalid value "86401" for --refresh: want an integer from 1 to 86400`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			inv, err := parseArgs(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := inv.req.GetQueryMetrics(); !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for verb, want := range map[string]command.MetricsConfiguration{"enable": command.MetricsConfiguration_ENABLED,
		"disable": command.MetricsConfiguration_DISABLED, "clear": command.MetricsConfiguration_CLEAR} {
		inv, err := parseArgs([]string{"metrics", verb})
		if err != nil {
			t.Fatal(err)
		}
		if rt, ok := inv.req.GetRequestType().(*command.Request_ConfigureMetrics); !ok || rt.ConfigureMetrics != want {
			t.Errorf("metrics %s: %v", verb, inv.req)
		}
	}
}

// --refresh asks again after each wait, on the same connection, until
// the connection fails (exit 69); every answer is rendered.
func TestMetricsGetRefresh(t *testing.T) {
	var asked atomic.Int32
	path := serve(t, func(req *command.Request) []*command.Response {
		if asked.Add(1) > 3 {
			return nil // the supervisor goes away
		}
		return []*command.Response{resp(processing, "Querying metrics...", nil), resp(ok, "Successfully queried metrics", metricsContent(false))}
	})
	a, out, errOut := testApp(t)
	withSocket(a, path)
	var waits []time.Duration
	a.sleep = func(d time.Duration) { waits = append(waits, d) }
	code := a.run([]string{"metrics", "get", "--refresh", "2"})
	if code != exitUnavailable {
		t.Errorf("exit %d, want %d; stderr %s", code, exitUnavailable, errOut)
	}
	if n := strings.Count(out.String(), "proxy (all workers)"); n != 3 {
		t.Errorf("%d renderings, want 3:\n%s", n, out)
	}
	if !slices.Equal(waits, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}) {
		t.Errorf("waits %v", waits)
	}
	if strings.Contains(errOut.String(), "Querying metrics") {
		t.Errorf("progress shown while refreshing: %s", errOut)
	}
}
