package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func addr(s string) *command.SocketAddress {
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func hashes(m map[string]uint64) *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_ClusterHashes{ClusterHashes: &command.ClusterHashes{Map: m}}}
}

func perWorker(m map[string]*command.ResponseContent) *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_WorkerResponses{WorkerResponses: &command.WorkerResponses{Map: m}}}
}

func shopCluster() *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{Vec: []*command.ClusterInformation{{
		Configuration: &command.Cluster{
			ClusterId: ptr("shop"), StickySession: ptr(true), HttpsRedirect: ptr(true),
			LoadBalancing: command.LoadBalancingAlgorithms_LEAST_LOADED.Enum(), LoadMetric: command.LoadMetric_CONNECTIONS.Enum(),
			ProxyProtocol: command.ProxyProtocolConfig_SEND_HEADER.Enum(), HttpsRedirectPort: ptr(uint32(8443)),
			HealthCheck: &command.HealthCheckConfig{Uri: ptr("/health"), Interval: ptr(uint32(10)), Timeout: ptr(uint32(5)),
				HealthyThreshold: ptr(uint32(3)), UnhealthyThreshold: ptr(uint32(3)), ExpectedStatus: ptr(uint32(0))},
		},
		HttpFrontends: []*command.RequestHttpFrontend{{
			ClusterId: ptr("shop"), Address: addr("0.0.0.0:8080"), Hostname: ptr("shop.example.com"),
			Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: ptr("/api")}, Position: command.RulePosition_TREE.Enum(),
			Tags: map[string]string{"owner": "team-a", "env": "prod"},
		}},
		HttpsFrontends: []*command.RequestHttpFrontend{{
			ClusterId: ptr("shop"), Address: addr("[::]:8443"), Hostname: ptr("*.shop.example.com"), Method: ptr("GET"),
			Path: &command.PathRule{Kind: command.PathRuleKind_EQUALS.Enum(), Value: ptr("/")}, Position: command.RulePosition_TREE.Enum(),
		}},
		Backends: []*command.AddBackend{
			{ClusterId: ptr("shop"), BackendId: ptr("shop-0"), Address: addr("10.0.0.10:8000"),
				LoadBalancingParameters: &command.LoadBalancingParams{Weight: ptr(int32(100))}},
			{ClusterId: ptr("shop"), BackendId: ptr("shop-1"), Address: addr("[2001:db8::1]:8000"), StickyId: ptr("s1"), Backup: ptr(true)},
		},
	}}}}}
}

func emptyCluster() *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{Vec: []*command.ClusterInformation{{
		Configuration: &command.Cluster{ClusterId: ptr("db"), StickySession: ptr(false), HttpsRedirect: ptr(false),
			LoadBalancing: command.LoadBalancingAlgorithms_ROUND_ROBIN.Enum()},
		TcpFrontends: []*command.RequestTcpFrontend{{ClusterId: ptr("db"), Address: addr("0.0.0.0:5432")}},
	}}}}}
}

// metricsContent is a query_metrics answer for two clusters (one with a
// hostile id), with the workers' own metrics when workers is set.
func metricsContent(workers bool) *command.ResponseContent {
	cnt := func(v int64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
	}
	g := func(v uint64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: v}}
	}
	pct := func(n, p50, p99, max uint64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Percentiles{Percentiles: &command.Percentiles{
			Samples: ptr(n), P_50: ptr(p50), P_90: ptr(p50 * 2), P_99: ptr(p99), P_99_9: ptr(p99 * 2), P_99_99: ptr(max), P_99_999: ptr(max), P_100: ptr(max), Sum: ptr(n * p50)}}}
	}
	proxy := map[string]*command.FilteredMetrics{pm.HTTPRequests: cnt(67), pm.Status2xx: cnt(60), pm.Status4xx: cnt(7),
		pm.ClientConnections: g(3), pm.RequestTime: pct(67, 850, 4200, 2_300_000), "custom.metric": cnt(1)}
	backend := func(id string, up uint64) *command.BackendMetrics {
		return &command.BackendMetrics{BackendId: ptr(id), Metrics: map[string]*command.FilteredMetrics{
			pm.Requests: cnt(30), pm.ConnectionsPerBackend: g(2), pm.BackendAvailable: g(up), pm.BackendUp: cnt(int64(1 - up)), pm.BackendDown: cnt(int64(1 - up)),
			pm.BackendResponseTime: pct(30, 2100, 9000, 15000)}}
	}
	clusters := map[string]*command.ClusterMetrics{
		"shop": {Cluster: map[string]*command.FilteredMetrics{pm.Requests: cnt(60), pm.Status2xx: cnt(60), pm.BackendResponseTime: pct(60, 2100, 9000, 15000)},
			Backends: []*command.BackendMetrics{backend("shop-0", 1), backend("shop-1", 0)}},
		"evil\x1b[2J": {Cluster: map[string]*command.FilteredMetrics{pm.Requests: cnt(7)}},
		"idle":        {},
	}
	am := &command.AggregatedMetrics{Main: map[string]*command.FilteredMetrics{pm.ConfigurationClusters: g(3)}, Proxying: proxy, Clusters: clusters}
	if workers {
		am.Workers = map[string]*command.WorkerMetrics{
			"1": {Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: cnt(30)}},
			"0": {Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: cnt(37)}, Clusters: map[string]*command.ClusterMetrics{
				"shop": {Cluster: map[string]*command.FilteredMetrics{pm.Requests: cnt(37)}}}},
		}
	}
	return &command.ResponseContent{ContentType: &command.ResponseContent_Metrics{Metrics: am}}
}

// renderCases are representative terminal responses, one golden pair each.
func renderCases() []struct {
	name string
	resp *command.Response
} {
	return []struct {
		name string
		resp *command.Response
	}{
		{"ok_message", resp(ok, "Successfully applied request to all workers", nil)},
		{"metrics", resp(ok, "Successfully queried metrics", metricsContent(false))},
		{"metrics_workers", resp(ok, "Successfully queried metrics", metricsContent(true))},
		{"metrics_empty", resp(ok, "Successfully queried metrics", &command.ResponseContent{ContentType: &command.ResponseContent_Metrics{Metrics: &command.AggregatedMetrics{}}})},
		{"metrics_list", resp(ok, "Successfully listed available metrics", &command.ResponseContent{ContentType: &command.ResponseContent_AvailableMetrics{AvailableMetrics: pm.Available()}})},
		{"failure", resp(failure, "could not dispatch request on the main process state: Did not find Cluster with address or id 'shop'", nil)},
		{"failure_multiline", resp(failure, "Error parsing logging filter:\n- unknown level \"loud\"", nil)},
		{"status", resp(ok, "Successfully collected the status of workers", workersContent(
			command.RunState_RUNNING, command.RunState_RUNNING, command.RunState_NOT_ANSWERING, command.RunState_STOPPING))},
		{"status_empty", resp(ok, "Successfully collected the status of workers", workersContent())},
		{"status_last_reload", resp(ok, "Successfully collected the status of workers\nlast reload: 2026-12-06T08:00:00Z ok: Successfully loaded the config: 7 ok, 0 errors (reload 01M955 of /etc/sozu/config.toml: 4 added, 1 changed, 1 removed)", workersContent(command.RunState_RUNNING))},
		{"hashes_agree", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"main": hashes(map[string]uint64{"shop": 0x1234abcd, "api": 42}),
			"0":    hashes(map[string]uint64{"shop": 0x1234abcd, "api": 42}),
			"1":    hashes(map[string]uint64{"shop": 0x1234abcd, "api": 42}),
		}))},
		{"hashes_disagree", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"main": hashes(map[string]uint64{"shop": 0x1234abcd, "api": 42}),
			"10":   hashes(map[string]uint64{"shop": 0x1234abcd, "api": 42}),
			"2":    hashes(map[string]uint64{"shop": 0xdeadbeef}),
		}))},
		{"hashes_none", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"main": hashes(nil), "0": hashes(nil),
		}))},
		{"cluster_by_id", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"main": shopCluster(), "0": shopCluster(), "1": shopCluster(),
		}))},
		{"cluster_by_id_differ", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"main": emptyCluster(), "0": emptyCluster(), "1": {},
		}))},
		{"frontend_list", resp(ok, "Successfully listed frontends", &command.ResponseContent{ContentType: &command.ResponseContent_FrontendList{FrontendList: &command.ListedFrontends{
			HttpFrontends: []*command.RequestHttpFrontend{
				{ClusterId: ptr("shop"), Address: addr("0.0.0.0:80"), Hostname: ptr("shop.example.com"),
					Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: ptr("")}, Position: command.RulePosition_TREE.Enum()},
				{Address: addr("0.0.0.0:80"), Hostname: ptr("admin.example.com"), Method: ptr("POST"),
					Path: &command.PathRule{Kind: command.PathRuleKind_REGEX.Enum(), Value: ptr("^/admin/.*$")}, Position: command.RulePosition_TREE.Enum()},
			},
			HttpsFrontends: []*command.RequestHttpFrontend{
				{ClusterId: ptr("shop"), Address: addr("0.0.0.0:443"), Hostname: ptr("shop.example.com"),
					Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: ptr("/api")}, Position: command.RulePosition_TREE.Enum(),
					Tags: map[string]string{"env": "prod"}},
			},
			TcpFrontends: []*command.RequestTcpFrontend{{ClusterId: ptr("db"), Address: addr("0.0.0.0:5432"), Tags: map[string]string{"tier": "data"}}},
			UdpFrontends: []*command.RequestUdpFrontend{{ClusterId: ptr("dns"), Address: addr("0.0.0.0:53")}},
		}}})},
		{"frontend_list_empty", resp(ok, "Successfully listed frontends", &command.ResponseContent{ContentType: &command.ResponseContent_FrontendList{FrontendList: &command.ListedFrontends{}}})},
		{"listeners", resp(ok, "Successfully listed listeners", &command.ResponseContent{ContentType: &command.ResponseContent_ListenersList{ListenersList: &command.ListenersList{
			HttpListeners: map[string]*command.HttpListenerConfig{
				"0.0.0.0:80": {Address: addr("0.0.0.0:80"), ExpectProxy: ptr(false), StickyName: ptr("SOZUBALANCEID"),
					FrontTimeout: ptr(uint32(60)), BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3)), RequestTimeout: ptr(uint32(10)), Active: ptr(true)},
				"[::]:8080": {Address: addr("[::]:8080"), PublicAddress: addr("192.0.2.1:80"), ExpectProxy: ptr(true), StickyName: ptr("S"),
					FrontTimeout: ptr(uint32(5)), BackTimeout: ptr(uint32(6)), ConnectTimeout: ptr(uint32(7)), RequestTimeout: ptr(uint32(8)), Active: ptr(false)},
			},
			HttpsListeners: map[string]*command.HttpsListenerConfig{
				"0.0.0.0:443": {Address: addr("0.0.0.0:443"), ExpectProxy: ptr(false), StickyName: ptr("SOZUBALANCEID"),
					FrontTimeout: ptr(uint32(60)), BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3)), RequestTimeout: ptr(uint32(10)), Active: ptr(true),
					Versions: []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3}, SendTls13Tickets: ptr(uint64(4))},
			},
			TcpListeners: map[string]*command.TcpListenerConfig{
				"0.0.0.0:5432": {Address: addr("0.0.0.0:5432"), ExpectProxy: ptr(false), FrontTimeout: ptr(uint32(60)),
					BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3)), Active: ptr(true)},
			},
		}}})},
		{"listeners_empty", resp(ok, "Successfully listed listeners", &command.ResponseContent{ContentType: &command.ResponseContent_ListenersList{ListenersList: &command.ListenersList{}}})},
		{"request_counts", resp(ok, "Successfully counted requests received by the state", &command.ResponseContent{ContentType: &command.ResponseContent_RequestCounts{RequestCounts: &command.RequestCounts{
			Map: map[string]int32{"AddCluster": 2, "AddBackend": 5, "RemoveBackend": 2},
		}}})},
		{"request_counts_empty", resp(ok, "Successfully counted requests received by the state", &command.ResponseContent{ContentType: &command.ResponseContent_RequestCounts{RequestCounts: &command.RequestCounts{}}})},
		{"event_fallback", resp(ok, "an event as a terminal answer", &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: &command.Event{
			Kind: command.EventKind_CLUSTER_ADDED.Enum(), ClusterId: ptr("shop"),
		}}})},
		{"health_checks", resp(ok, "Successfully listed health check configurations", &command.ResponseContent{ContentType: &command.ResponseContent_HealthChecksList{HealthChecksList: &command.HealthChecksList{
			Map: map[string]*command.HealthCheckConfig{
				"shop": {Uri: ptr("/health"), Interval: ptr(uint32(10)), Timeout: ptr(uint32(5)), HealthyThreshold: ptr(uint32(3)), UnhealthyThreshold: ptr(uint32(3)), ExpectedStatus: ptr(uint32(0))},
				"api":  {Uri: ptr("/ready"), Interval: ptr(uint32(5)), Timeout: ptr(uint32(3)), HealthyThreshold: ptr(uint32(2)), UnhealthyThreshold: ptr(uint32(5)), ExpectedStatus: ptr(uint32(200))},
			},
		}}})},
		{"health_checks_empty", resp(ok, "Successfully listed health check configurations", &command.ResponseContent{ContentType: &command.ResponseContent_HealthChecksList{HealthChecksList: &command.HealthChecksList{}}})},
		{"certificates_state", resp(ok, "Successfully queried certificates from the state of main process", stateCerts())},
		{"certificates_state_empty", resp(ok, "Successfully queried certificates from the state of main process", &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesWithFingerprints{CertificatesWithFingerprints: &command.CertificatesWithFingerprints{}}})},
		{"certificates_workers", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"0": workerCerts(shopFP), "1": workerCerts(shopFP),
		}))},
		{"certificates_workers_differ", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"0": workerCerts(shopFP), "1": workerCerts(apiFP), "2": workerCerts(shopFP),
		}))},
		{"certificates_workers_none", resp(ok, "Successfully queried clusters", perWorker(map[string]*command.ResponseContent{
			"0": {ContentType: &command.ResponseContent_CertificatesByAddress{CertificatesByAddress: &command.ListOfCertificatesByAddress{}}},
		}))},
		{"failure_with_key", resp(failure, "could not dispatch request on the main process state: invalid certificate: "+mustRead("shop.key"), nil)},
		{"hostile_certificates", resp(ok, "Successfully queried certificates from the state of main process", &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesWithFingerprints{CertificatesWithFingerprints: &command.CertificatesWithFingerprints{
			Certs: map[string]*command.CertificateAndKey{"evil\x1b[2J": {Certificate: ptr("not a PEM"), Key: ptr("k"), Names: []string{"a\x1b]0;owned\x07.test", "b\n.test"}}},
		}}})},
		{"bidi_strings", resp(ok, "Successfully queried clusters", &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{
			Vec: []*command.ClusterInformation{{
				Configuration: &command.Cluster{ClusterId: ptr("evil\u202egnp.exe"), StickySession: ptr(false), HttpsRedirect: ptr(false),
					LoadBalancing: command.LoadBalancingAlgorithms_ROUND_ROBIN.Enum()},
				HttpFrontends: []*command.RequestHttpFrontend{{ClusterId: ptr("evil\u202egnp.exe"), Address: addr("0.0.0.0:80"),
					Hostname: ptr("a\u2066b\u2069.example.com"), Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: ptr("/\u200b")},
					Position: command.RulePosition_TREE.Enum(), Tags: map[string]string{"k\u202d": "v\u2028"}}},
				Backends: []*command.AddBackend{{ClusterId: ptr("evil\u202egnp.exe"), BackendId: ptr("b\u202e1"), Address: addr("10.0.0.1:80"),
					StickyId: ptr("s\ufeff1")}},
			}},
		}}})},
		{"bidi_failure", resp(failure, "Did not find Cluster with address or id 'evil\u202egnp.exe'\x1b[2J", nil)},
		{"hostile_strings", resp(ok, "Successfully listed frontends", &command.ResponseContent{ContentType: &command.ResponseContent_FrontendList{FrontendList: &command.ListedFrontends{
			HttpFrontends: []*command.RequestHttpFrontend{{ClusterId: ptr("evil\x1b[2J\tcluster"), Address: addr("0.0.0.0:80"),
				Hostname: ptr("a\x1b]0;owned\x07.example.com\n"), Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: ptr("/\u009b31m")},
				Position: command.RulePosition_TREE.Enum(), Tags: map[string]string{"k\r": "v\x00"}}},
		}}})},
	}
}

// workerCerts is a worker's answer to query_certificates_from_workers:
// two listeners, the first serving the certificate fp under two names,
// the second without any certificate.
func workerCerts(fp string) *command.ResponseContent {
	return &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesByAddress{CertificatesByAddress: &command.ListOfCertificatesByAddress{
		Certificates: []*command.CertificatesByAddress{
			{Address: addr("[::]:8443")},
			{Address: addr("127.0.0.1:8443"), CertificateSummaries: []*command.CertificateSummary{
				{Domain: ptr("shop.example.com"), Fingerprint: ptr(fp)},
				{Domain: ptr("*.shop.example.com"), Fingerprint: ptr(fp)},
			}},
		},
	}}}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr := renderText(tc.resp, false)
			text := stdout
			if stderr != "" {
				text += "--- stderr ---\n" + stderr
			}
			golden(t, "render/"+tc.name+".txt.golden", []byte(text))

			doc, err := renderJSON(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(doc) {
				t.Fatalf("invalid JSON:\n%s", doc)
			}
			golden(t, "render/"+tc.name+".json.golden", doc)

			// Pure and stable: rendering again gives the same bytes.
			if again, _ := renderJSON(tc.resp); !bytes.Equal(again, doc) {
				t.Error("renderJSON is not stable")
			}
			if o2, e2 := renderText(tc.resp, false); o2 != stdout || e2 != stderr {
				t.Error("renderText is not stable")
			}
			// No private key is ever printed.
			if strings.Contains(stdout+stderr+string(doc), "PRIVATE KEY") {
				t.Fatal("a private key is in the output")
			}
			// No control character but newline reaches the terminal
			// without colour.
			for _, c := range []byte(stdout + stderr) {
				if c < 0x20 && c != '\n' {
					t.Fatalf("control byte %#x in text output", c)
				}
			}
		})
	}
}

func TestRenderColor(t *testing.T) {
	r := resp(ok, "", workersContent(command.RunState_RUNNING, command.RunState_NOT_ANSWERING, command.RunState_STOPPED))
	out, _ := renderText(r, true)
	golden(t, "render/status_color.txt.golden", []byte(out))
	_, errOut := renderText(resp(failure, "boom", nil), true)
	if errOut != "\x1b[31merror:\x1b[0m boom\n" {
		t.Errorf("colour failure %q", errOut)
	}
}

func TestHelpGolden(t *testing.T) {
	golden(t, "help/root.golden", []byte(helpText(root)))
	golden(t, "help/cluster_add.golden", []byte(helpText(lookup("cluster add"))))
	golden(t, "help/frontend_http_add.golden", []byte(helpText(lookup("frontend http add"))))
	golden(t, "help/listener.golden", []byte(helpText(lookup("listener"))))
	golden(t, "help/listener_https_update.golden", []byte(helpText(lookup("listener https update"))))
	golden(t, "help/certificate.golden", []byte(helpText(lookup("certificate"))))
	golden(t, "help/certificate_replace.golden", []byte(helpText(lookup("certificate replace"))))
}
