package config

import (
	"os"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

// udpListen declares the UDP listener the cases below route to.
const udpListen = `
[[listeners]]
protocol = "udp"
address = "0.0.0.0:5353"
max_flows = 100
`

// TestUDPClusterShapes: upstream's shape (a tcp cluster whose frontend is
// on a udp listener, with [clusters.<id>.udp] and its health table) and
// the udp cluster both become ADD_UDP_FRONTEND and a Cluster carrying the
// udp table; keys that would do nothing are refused, naming them.
func TestUDPClusterShapes(t *testing.T) {
	const upstream = udpListen + `
[clusters.dns]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:5353" }]
backends = [{ address = "127.0.0.1:1053" }]

[clusters.dns.udp]
affinity_key = "SOURCE_IP_PORT"
responses = 1
send_proxy_protocol = true
proxy_protocol_every_datagram = true

[clusters.dns.udp.health]
mode = "UDP_PROBE"
udp_probe_payload = "ping"
rise = 1
fall = 2
fail_open = false
`
	for _, tc := range []struct {
		name, toml string
		want       []string // error lines; nil: valid
	}{
		{"upstream shape", upstream, nil},
		{"udp cluster without udp table", udpListen + `
[clusters.dns]
protocol = "udp"
frontends = [{ address = "0.0.0.0:5353" }]
`, nil},
		{"udp table without UDP frontend", listen + `
[clusters.db]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:5432" }]
[clusters.db.udp]
responses = 1
`, []string{"clusters.db.udp: applies to UDP frontends and this cluster has none"}},
		{"health_check on a UDP cluster", udpListen + `
[clusters.dns]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:5353" }]
health_check = { uri = "/" }
`, []string{"clusters.dns.health_check: does not probe UDP backends"}},
		{"udp keys that do nothing", udpListen + `
[clusters.dns]
protocol = "udp"
frontends = [{ address = "0.0.0.0:5353" }]
[clusters.dns.udp]
affinity_key = "SOURCE_PORT"
proxy_protocol_every_datagram = true
[clusters.dns.udp.health]
rise = 0
fall = 2
`, []string{
			`clusters.dns.udp.affinity_key: invalid UDP affinity key "SOURCE_PORT"`,
		}},
		{"health keys without a mode", udpListen + `
[clusters.dns]
protocol = "udp"
frontends = [{ address = "0.0.0.0:5353" }]
[clusters.dns.udp]
proxy_protocol_every_datagram = true
[clusters.dns.udp.health]
rise = 0
tcp_port = 70000
`, []string{
			"clusters.dns.udp.proxy_protocol_every_datagram: has no effect without send_proxy_protocol = true",
			"clusters.dns.udp.health.rise: must be at least 1",
			`clusters.dns.udp.health.tcp_port: has no effect with mode = "HEALTH_OFF"`,
			`clusters.dns.udp.health.rise: has no effect with mode = "HEALTH_OFF"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), "t.toml")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				checkUDPRequests(t, c)
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// checkUDPRequests: the configuration adds the UDP listener, its frontend,
// and (for the upstream case) the cluster's udp settings as written.
func checkUDPRequests(t *testing.T, c *Config) {
	t.Helper()
	var front *command.RequestUdpFrontend
	var cl *command.Cluster
	var listener *command.UdpListenerConfig
	for _, wr := range c.Requests() {
		switch r := wr.GetContent().GetRequestType().(type) {
		case *command.Request_AddUdpFrontend:
			front = r.AddUdpFrontend
		case *command.Request_AddCluster:
			cl = r.AddCluster
		case *command.Request_AddUdpListener:
			listener = r.AddUdpListener
		case *command.Request_AddTcpListener, *command.Request_AddTcpFrontend:
			t.Fatalf("a UDP frontend made %s", command.VerbName(wr.GetContent()))
		}
	}
	if listener == nil || listener.GetMaxFlows() != 100 || listener.GetMaxRxDatagramSize() != 1500 {
		t.Fatalf("UDP listener %v", listener)
	}
	if front == nil || front.GetClusterId() != "dns" || front.GetAddress().Display() != "0.0.0.0:5353" {
		t.Fatalf("UDP frontend %v", front)
	}
	if u := cl.GetUdp(); cl.GetClusterId() == "dns" && u != nil {
		h := u.GetHealth()
		if u.GetAffinityKey() != command.UdpAffinityKey_SOURCE_IP_PORT || u.GetResponses() != 1 || !u.GetSendProxyProtocol() ||
			!u.GetProxyProtocolEveryDatagram() || h.GetMode() != command.UdpHealthMode_UDP_PROBE ||
			string(h.GetUdpProbePayload()) != "ping" || h.GetRise() != 1 || h.GetFall() != 2 || h.GetFailOpen() {
			t.Fatalf("udp settings %v", u)
		}
	}
}

// TestUDPDoc: the UDP example of docs/configuration.md loads, with no key
// reported as not in force, and means what its comments say.
func TestUDPDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## UDP\n")
	_, rest, ok2 := strings.Cut(sec, "\n```toml\n")
	body, _, ok3 := strings.Cut(rest, "\n```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no ```toml block in the UDP section of docs/configuration.md")
	}
	c, err := Parse([]byte(body), "udp.toml")
	if err != nil {
		t.Fatalf("the example does not load:\n%s\n%v", body, err)
	}
	for _, w := range c.Warnings {
		t.Errorf("the example has a key not in force: %v", w)
	}
	var u *command.UdpClusterConfig
	for _, wr := range c.Requests() {
		if ac := wr.GetContent().GetAddCluster(); ac != nil && ac.GetClusterId() == "dns" {
			u = ac.GetUdp()
		}
	}
	if u.GetResponses() != 1 || u.GetAffinityKey() != command.UdpAffinityKey_SOURCE_IP || u.GetHealth().GetMode() != command.UdpHealthMode_UDP_PROBE {
		t.Fatalf("udp settings of the example: %v", u)
	}
}
