package top

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

func count(n int64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: n}}
}

func gauge(n uint64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: n}}
}

func pcts(p50, p99 uint64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Percentiles{Percentiles: &command.Percentiles{
		Samples: ptr(uint64(100)), P_50: ptr(p50), P_90: ptr(p99), P_99: ptr(p99), P_99_9: ptr(p99), P_99_99: ptr(p99),
		P_99_999: ptr(p99), P_100: ptr(p99), Sum: ptr(p50 * 100)}}}
}

// clusterSample is an AggregatedMetrics with the proxy counters and one
// cluster per entry of reqs (requests, 5xx, p99) with one backend each.
type clusterLoad struct {
	requests, errors5xx int64
	p99                 uint64 // µs
	up                  uint64 // backend.available gauge
	bytesIn, bytesOut   int64
}

func sample(proxyRequests, proxy5xx int64, clusters map[string]clusterLoad) *command.AggregatedMetrics {
	am := &command.AggregatedMetrics{
		Proxying: map[string]*command.FilteredMetrics{
			mHTTPRequests: count(proxyRequests), mStatus5xx: count(proxy5xx), mClientConns: gauge(12),
			mRequestTime: pcts(3000, 40000), mH2Streams: count(proxyRequests / 2), mH2Flood: count(proxy5xx / 10),
			mH2Active: gauge(3), pm.H2Flood("rapid_reset"): count(proxy5xx / 10), pm.H2Flood("continuation"): count(0),
		},
		Clusters: map[string]*command.ClusterMetrics{},
	}
	for id, l := range clusters {
		am.Clusters[id] = &command.ClusterMetrics{
			Cluster: map[string]*command.FilteredMetrics{mRequests: count(l.requests), mStatus5xx: count(l.errors5xx), mRequestTime: pcts(l.p99/10, l.p99)},
			Backends: []*command.BackendMetrics{{BackendId: ptr(id + "-0"), Metrics: map[string]*command.FilteredMetrics{
				mRequests: count(l.requests), mBytesIn: count(l.bytesIn), mBytesOut: count(l.bytesOut),
				mBackendConns: gauge(2), mBackendUp: gauge(l.up), mBackendResp: pcts(l.p99/10, l.p99)}}},
		}
	}
	return am
}

func key(s string) tea.KeyPressMsg {
	switch s {
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	}
	return tea.KeyPressMsg{Code: rune(s[0]), Text: s}
}

func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		_, cmd = m.Update(key(k))
	}
	return cmd
}

// twoSamples feeds a model two metrics answers 2 s apart: busy serves
// 200 req/s with 1 % of 5xx; calm 5 req/s and no error, p99 900 ms
// (percentiles are in µs).
func twoSamples(m *Model) {
	m.Update(MetricsMsg{At: t0, M: sample(1000, 10, map[string]clusterLoad{
		"busy": {requests: 1000, errors5xx: 0, p99: 30_000, up: 1, bytesIn: 0, bytesOut: 0},
		"calm": {requests: 10, p99: 900_000, up: 1},
	})})
	m.Update(MetricsMsg{At: t0.Add(2 * time.Second), M: sample(1410, 14, map[string]clusterLoad{
		"busy": {requests: 1400, errors5xx: 4, p99: 30_000, up: 1, bytesIn: 2048, bytesOut: 4096},
		"calm": {requests: 20, p99: 900_000, up: 0},
	})})
}

func TestRatesFromTwoSamples(t *testing.T) {
	m := New()
	twoSamples(m)
	if v, _ := m.rps.last(); v != 205 {
		t.Errorf("proxy requests/s %v, want 205", v)
	}
	if v, _ := m.errPct.last(); v < 0.97 || v > 0.98 {
		t.Errorf("proxy 5xx share %v %%, want 2/205", v)
	}
	rows := map[string]ClusterRow{}
	for _, r := range m.ClusterRows() {
		rows[r.ID] = r
	}
	busy, calm := rows["busy"], rows["calm"]
	if !busy.KnownRate || busy.RPS != 200 || busy.ErrPct != 1 || !busy.Critical {
		t.Errorf("busy: %+v, want 200 req/s, 1 %% errors, critical (≥ 1 %%)", busy)
	}
	if calm.RPS != 5 || calm.P99 != 900_000 || !calm.Critical || calm.Available != 0 || calm.Total != 1 {
		t.Errorf("calm: %+v, want 5 req/s, p99 900 critical, 0/1 backends up", calm)
	}
	for _, b := range m.BackendRows() {
		switch b.ID {
		case "busy-0":
			if b.RPS != 200 || b.InBps != 1024 || b.OutBps != 2048 || b.State != "up" || b.Conns != 2 || b.P99 != 30_000 {
				t.Errorf("busy-0: %+v", b)
			}
		case "calm-0":
			if b.State != "down" {
				t.Errorf("calm-0: %+v, want down (backend.available 0)", b)
			}
		}
	}
	// A cleared counter (smaller than before) is a rate of 0, not negative.
	m.Update(MetricsMsg{At: t0.Add(3 * time.Second), M: sample(5, 0, map[string]clusterLoad{"busy": {requests: 3, up: 1}})})
	if v, _ := m.rps.last(); v != 0 {
		t.Errorf("requests/s after a clear: %v, want 0", v)
	}
}

func TestClusterSorting(t *testing.T) {
	m := New()
	twoSamples(m)
	m.Update(ClustersMsg{At: t0, Clusters: []*command.ClusterInformation{
		{Configuration: &command.Cluster{ClusterId: ptr("zeta")}},
	}})
	ids := func() string {
		var s []string
		for _, r := range m.ClusterRows() {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	press(m, "2")
	for _, tc := range []struct {
		keys []string
		want string
		sort string
	}{
		{nil, "busy,calm,zeta", "sort: err% ▼"},          // default: error share, then rps, descending
		{[]string{"s"}, "busy,calm,zeta", "sort: rps ▼"}, // rps desc
		{[]string{"S"}, "zeta,calm,busy", "sort: rps ▲"}, // reversed
		{[]string{"s"}, "calm,busy,zeta", "sort: p99 ▼"}, // p99 desc (a new key is not reversed)
		{[]string{"s", "s"}, "busy,calm,zeta", "sort: cluster ▲"},
		{[]string{"s"}, "busy,calm,zeta", "sort: err% ▼"}, // wraps around
	} {
		press(m, tc.keys...)
		if got := ids(); got != tc.want {
			t.Errorf("after %v: order %s, want %s", tc.keys, got, tc.want)
		}
		if f := ansi.Strip(m.Frame()); !strings.Contains(f, tc.sort) {
			t.Errorf("after %v: footer lacks %q:\n%s", tc.keys, tc.sort, f)
		}
	}
	// s on a pane without a table changes no sort.
	press(m, "4", "s")
	if m.clusterSort != (sorting{}) {
		t.Errorf("s on the listeners pane changed the cluster sort: %+v", m.clusterSort)
	}
}

func selfSigned(t *testing.T, notAfter time.Time) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestCertificateThresholds: under 30 days left is marked (warm), under 7
// days or expired critical (hot); the soonest come first.
func TestCertificateThresholds(t *testing.T) {
	m := New()
	certs := map[string]*command.CertificateAndKey{}
	for fp, days := range map[string]int{"aaaa": 90, "bbbb": 29, "cccc": 31, "dddd": 3, "eeee": -2} {
		certs[fp] = &command.CertificateAndKey{Certificate: ptr(selfSigned(t, t0.Add(time.Duration(days)*24*time.Hour))), Key: ptr(""), Names: []string{fp + ".test"}}
	}
	m.Update(CertsMsg{At: t0, C: &command.CertificatesWithFingerprints{Certs: certs}})
	rows := certRows(m.certs, m.Now())
	var got []string
	for _, r := range rows {
		mark := "-"
		switch {
		case r.Crit:
			mark = "crit"
		case r.Warn:
			mark = "warn"
		}
		got = append(got, r.Fingerprint+":"+mark)
	}
	if want := "eeee:crit dddd:crit bbbb:warn cccc:- aaaa:-"; strings.Join(got, " ") != want {
		t.Errorf("certificates %v, want %s", got, want)
	}
	press(m, "5")
	frame := ansi.Strip(m.Frame())
	for fp, marked := range map[string]bool{"aaaa": false, "bbbb": true, "cccc": false, "dddd": true, "eeee": true} {
		for _, l := range strings.Split(frame, "\n") {
			if strings.Contains(l, fp) && strings.HasPrefix(l, "!") != marked {
				t.Errorf("certificate %s: line %q, marked = %v", fp, l, marked)
			}
		}
	}
	if !strings.Contains(frame, "expired") || !strings.Contains(frame, "29d") {
		t.Errorf("certificates pane:\n%s", frame)
	}
}

// TestFrameFitsEveryPane: at every size down to 80×24 (and below), each
// pane, with help or not, is exactly height lines of at most width cells.
func TestFrameFitsEveryPane(t *testing.T) {
	m := filled(t)
	for _, size := range [][2]int{{80, 24}, {120, 40}, {100, 30}, {60, 12}, {20, 3}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for p := range paneCount {
			for _, help := range []bool{false, true} {
				m.pane, m.help = p, help
				lines := strings.Split(m.Frame(), "\n")
				if len(lines) != size[1] {
					t.Errorf("%dx%d %s help=%v: %d lines", size[0], size[1], p, help, len(lines))
				}
				for i, l := range lines {
					if w := ansi.StringWidth(l); w != size[0] {
						t.Errorf("%dx%d %s help=%v: line %d is %d cells: %q", size[0], size[1], p, help, i, w, ansi.Strip(l))
					}
				}
			}
		}
	}
}

func TestKeys(t *testing.T) {
	m := New()
	for _, tc := range []struct {
		key  string
		pane Pane
	}{{"3", Backends}, {"tab", Listeners}, {"7", Events}, {"tab", Overview}, {"shift+tab", Events}, {"9", Events}, {"1", Overview}} {
		press(m, tc.key)
		if m.pane != tc.pane {
			t.Errorf("after %s: pane %s, want %s", tc.key, m.pane, tc.pane)
		}
	}
	press(m, "?")
	if f := ansi.Strip(m.Frame()); !m.help || !strings.Contains(f, "q, Ctrl-C  quit") {
		t.Errorf("? shows no help:\n%s", f)
	}
	press(m, "esc")
	if m.help {
		t.Error("esc left the help open")
	}
	for _, k := range []string{"q", "ctrl+c"} {
		cmd := press(New(), k)
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s does not quit", k)
		}
	}
}

// TestMetricsUnavailable: while query_metrics fails, the panes that need
// no metrics show the state, and the others say why numbers are missing.
func TestMetricsUnavailable(t *testing.T) {
	m := New()
	m.Update(MetricsMsg{At: t0, Err: "not implemented: query_metrics"})
	m.Update(ClustersMsg{At: t0, Clusters: []*command.ClusterInformation{{
		Configuration: &command.Cluster{ClusterId: ptr("shop")},
		Backends: []*command.AddBackend{{ClusterId: ptr("shop"), BackendId: ptr("shop-0"),
			Address: command.NewSocketAddress(mustAddr("10.0.0.1:80"))}},
	}}})
	for _, p := range []string{"1", "2", "3", "6"} {
		press(m, p)
		if f := ansi.Strip(m.Frame()); !strings.Contains(f, "metrics unavailable: not implemented: query_metrics") {
			t.Errorf("pane %s does not say metrics are unavailable:\n%s", p, f)
		}
	}
	press(m, "2")
	if f := ansi.Strip(m.Frame()); !strings.Contains(f, "shop") || !strings.Contains(f, "1/1") {
		t.Errorf("clusters pane without metrics:\n%s", f)
	}
}

// TestEventsFeedPanes: a BACKEND_DOWN event marks the backend down until
// BACKEND_UP; events are listed oldest first, with hostile ids cleaned.
func TestEventsFeedPanes(t *testing.T) {
	m := filled(t)
	m.Update(EventMsg{At: t0, Source: "1", Ev: &command.Event{Kind: command.EventKind_BACKEND_DOWN.Enum(), ClusterId: ptr("shop"), BackendId: ptr("shop-0")}})
	state := func() string {
		for _, r := range m.BackendRows() {
			if r.ID == "shop-0" {
				return r.State
			}
		}
		return "absent"
	}
	if s := state(); s != "down" {
		t.Errorf("after BACKEND_DOWN: shop-0 is %s", s)
	}
	press(m, "3")
	if f := ansi.Strip(m.Frame()); !strings.Contains(f, "! shop") {
		t.Errorf("the down backend is not marked:\n%s", f)
	}
	m.Update(EventMsg{At: t0, Source: "main", Ev: &command.Event{Kind: command.EventKind_CLUSTER_ADDED.Enum(), ClusterId: ptr("a\x1b]0;pwned\x07b")}})
	m.Update(EventMsg{At: t0, Source: "1", Ev: &command.Event{Kind: command.EventKind_BACKEND_UP.Enum(), ClusterId: ptr("shop"), BackendId: ptr("shop-0")}})
	if s := state(); s != "up" {
		t.Errorf("after BACKEND_UP: shop-0 is %s", s)
	}
	press(m, "7")
	f := m.Frame()
	if strings.Contains(f, "\x1b]0;") || strings.Contains(f, "\x07") {
		t.Errorf("a cluster id drove the terminal: %q", f)
	}
	plain := ansi.Strip(f)
	i, j := strings.Index(plain, "BACKEND_DOWN"), strings.Index(plain, "BACKEND_UP")
	if i < 0 || j < i || !strings.Contains(plain, "cluster=a?]0;pwned?b") {
		t.Errorf("events pane:\n%s", plain)
	}
	for range eventsDepth + 10 {
		m.Update(EventMsg{At: t0, Source: "main", Ev: &command.Event{Kind: command.EventKind_STATE_SAVED.Enum()}})
	}
	if len(m.events) != eventsDepth {
		t.Errorf("%d events kept, want %d", len(m.events), eventsDepth)
	}
}

// TestHTTP2Pane: totals, rates, the active-streams gauge (no rate), and
// the flood violations marked, in total and by class.
func TestHTTP2Pane(t *testing.T) {
	m := New()
	twoSamples(m)
	press(m, "6")
	f := ansi.Strip(m.Frame())
	for _, want := range []string{
		"  streams                                       705        102",
		"  streams active now (gauge)                      3          -",
		"! flood-budget violations (GOAWAY)                1          0",
		"!   of which rapid_reset                          1          0",
		"    of which continuation                         0          0",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("HTTP/2 pane lacks %q:\n%s", want, f)
		}
	}
}
