package worker

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

func udpListenerReq(addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: &command.UdpListenerConfig{
		Address: sa(addr), FrontTimeout: proto.Uint32(7), BackTimeout: proto.Uint32(8),
		MaxRxDatagramSize: proto.Uint32(512), MaxFlows: proto.Uint32(99), Active: proto.Bool(false)}}}
}

func udpFrontendReq(cluster, addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: &command.RequestUdpFrontend{
		ClusterId: proto.String(cluster), Address: sa(addr)}}}
}

// TestSnapshotUDP: a UDP listener's settings and its cluster's udp table
// reach the data plane; the cluster's udp.health (not its health_check)
// makes its health check, and HEALTH_OFF or no udp.health makes none.
func TestSnapshotUDP(t *testing.T) {
	st := state.New()
	dispatch(t, st,
		udpListenerReq("127.0.0.1:5353"),
		udpListenerReq("127.0.0.1:5354"),
		udpListenerReq("127.0.0.1:5355"),
		cluster("dns", func(c *command.Cluster) {
			c.Udp = &command.UdpClusterConfig{AffinityKey: command.UdpAffinityKey_SOURCE_IP_PORT.Enum(),
				Responses: proto.Uint32(1), Requests: proto.Uint32(3), SendProxyProtocol: proto.Bool(true),
				ProxyProtocolEveryDatagram: proto.Bool(true),
				Health: &command.UdpHealthConfig{Mode: command.UdpHealthMode_UDP_PROBE.Enum(), UdpProbePayload: []byte("hi"),
					Rise: proto.Uint32(4), Fall: proto.Uint32(5), FailOpen: proto.Bool(false)}}
			c.HealthCheck = &command.HealthCheckConfig{Uri: proto.String("/"), Interval: proto.Uint32(1), Timeout: proto.Uint32(1),
				HealthyThreshold: proto.Uint32(1), UnhealthyThreshold: proto.Uint32(1), ExpectedStatus: proto.Uint32(0)}
		}),
		cluster("plain", nil),
		cluster("off", func(c *command.Cluster) {
			c.Udp = &command.UdpClusterConfig{Health: &command.UdpHealthConfig{Mode: command.UdpHealthMode_HEALTH_OFF.Enum()}}
		}),
		udpFrontendReq("dns", "127.0.0.1:5353"),
		udpFrontendReq("plain", "127.0.0.1:5354"),
		udpFrontendReq("off", "127.0.0.1:5355"),
		backend("dns", "d1", "10.0.0.1:53", nil),
		backend("plain", "p1", "10.0.0.2:53", nil),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	l := snap.udp[key(command.ListenerType_UDP, "127.0.0.1:5353")]
	if l == nil || l.FrontTimeout != 7*time.Second || l.BackTimeout != 8*time.Second || l.MaxDatagram != 512 ||
		l.MaxFlows != 99 || l.Cluster == nil {
		t.Fatalf("listener 5353: %+v", l)
	}
	if c := l.Cluster; c.ID != "dns" || !c.BySourcePort || c.Responses != 1 || c.Requests != 3 || !c.SendProxy ||
		!c.ProxyEveryDatagram || c.FailOpen || c.Backends.Len() != 1 {
		t.Fatalf("cluster dns: %+v", c)
	}
	if c := snap.udp[key(command.ListenerType_UDP, "127.0.0.1:5354")].Cluster; c == nil || c.BySourcePort || !c.FailOpen ||
		c.SendProxy || c.Responses != 0 {
		t.Fatalf("cluster plain (defaults: SOURCE_IP, fail open): %+v", c)
	}
	hc, ok := snap.health["dns"]
	if !ok || !hc.UDP || string(hc.UDPPayload) != "hi" || hc.Healthy != 4 || hc.Unhealthy != 5 || hc.TCP {
		t.Fatalf("dns health: %+v (present %v)", hc, ok)
	}
	if _, ok := snap.health["off"]; ok {
		t.Fatal("HEALTH_OFF made a health check")
	}
	if _, ok := snap.health["plain"]; ok {
		t.Fatal("a cluster without udp.health got a health check")
	}
}
