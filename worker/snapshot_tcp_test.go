package worker

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

func tcpListenerReq(addr string, expect bool) *command.Request {
	return &command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: &command.TcpListenerConfig{
		Address: sa(addr), ExpectProxy: proto.Bool(expect), FrontTimeout: proto.Uint32(7), BackTimeout: proto.Uint32(8),
		ConnectTimeout: proto.Uint32(2), Active: proto.Bool(false)}}}
}

func tcpFrontendReq(cluster, addr string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: &command.RequestTcpFrontend{
		ClusterId: proto.String(cluster), Address: sa(addr)}}}
}

func TestSnapshotTCP(t *testing.T) {
	st := state.New()
	dispatch(t, st,
		tcpListenerReq("127.0.0.1:9001", true),
		tcpListenerReq("127.0.0.1:9002", false),
		tcpListenerReq("127.0.0.1:9003", false),
		tcpListenerReq("127.0.0.1:9004", false),
		tcpListenerReq("127.0.0.1:9005", false),
		cluster("expect", func(c *command.Cluster) { c.ProxyProtocol = command.ProxyProtocolConfig_EXPECT_HEADER.Enum() }),
		cluster("sendonly", func(c *command.Cluster) { c.ProxyProtocol = command.ProxyProtocolConfig_SEND_HEADER.Enum() }),
		tcpFrontendReq("expect", "127.0.0.1:9004"),
		tcpFrontendReq("sendonly", "127.0.0.1:9005"),
		cluster("send", func(c *command.Cluster) { c.ProxyProtocol = command.ProxyProtocolConfig_RELAY_HEADER.Enum() }),
		cluster("plain", nil),
		tcpFrontendReq("send", "127.0.0.1:9001"),
		tcpFrontendReq("plain", "127.0.0.1:9002"),
		backend("send", "s1", "10.0.0.1:80", nil),
		backend("plain", "p1", "10.0.0.2:80", nil),
		backend("plain", "p2", "10.0.0.3:80", nil),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	if len(snap.warnings) != 0 {
		t.Fatalf("warnings: %v", snap.warnings)
	}
	l1 := snap.tcp[key(command.ListenerType_TCP, "127.0.0.1:9001")]
	if l1 == nil || !l1.ExpectProxy || l1.FrontTimeout != 7*time.Second || l1.BackTimeout != 8*time.Second ||
		l1.ConnectTimeout != 2*time.Second || l1.Cluster == nil || l1.Cluster.ID != "send" || !l1.Cluster.SendProxy ||
		!l1.Cluster.ExpectProxy || !l1.Cluster.RelayProxy ||
		l1.Cluster.Backends.Len() != 1 {
		t.Fatalf("listener 9001: %+v", l1)
	}
	l2 := snap.tcp[key(command.ListenerType_TCP, "127.0.0.1:9002")]
	if l2 == nil || l2.ExpectProxy || l2.Cluster == nil || l2.Cluster.SendProxy || l2.Cluster.ExpectProxy ||
		l2.Cluster.RelayProxy || l2.Cluster.Backends.Len() != 2 {
		t.Fatalf("listener 9002: %+v", l2)
	}
	if l3 := snap.tcp[key(command.ListenerType_TCP, "127.0.0.1:9003")]; l3 == nil || l3.Cluster != nil {
		t.Fatalf("listener 9003 (no frontend): %+v", l3)
	}
	// A cluster's EXPECT_HEADER reads a header whatever its listener says
	// (as upstream); SEND_HEADER only writes one.
	if l4 := snap.tcp[key(command.ListenerType_TCP, "127.0.0.1:9004")]; l4 == nil || l4.Cluster == nil ||
		!l4.Cluster.ExpectProxy || l4.Cluster.SendProxy || l4.Cluster.RelayProxy {
		t.Fatalf("listener 9004 (EXPECT_HEADER): %+v", l4.Cluster)
	}
	if l5 := snap.tcp[key(command.ListenerType_TCP, "127.0.0.1:9005")]; l5 == nil || l5.Cluster == nil ||
		l5.Cluster.ExpectProxy || !l5.Cluster.SendProxy || l5.Cluster.RelayProxy {
		t.Fatalf("listener 9005 (SEND_HEADER): %+v", l5.Cluster)
	}
	if len(snap.http) != 0 {
		t.Fatalf("http listeners: %v", snap.http)
	}
}
