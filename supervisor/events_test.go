package supervisor

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// TestMutationEventIDs: the event of an accepted mutation names what the
// request names (cluster, address), so subscribers can tell what changed.
func TestMutationEventIDs(t *testing.T) {
	addr := command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:8080"))
	for _, tc := range []struct {
		req  *command.Request
		kind command.EventKind
		want string
	}{
		{&command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String("shop")}}},
			command.EventKind_CLUSTER_ADDED, `kind:CLUSTER_ADDED cluster_id:"shop"`},
		{&command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: "shop"}},
			command.EventKind_CLUSTER_REMOVED, `kind:CLUSTER_REMOVED cluster_id:"shop"`},
		{&command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: &command.RequestHttpFrontend{ClusterId: proto.String("shop"), Address: addr, Hostname: proto.String("h")}}},
			command.EventKind_FRONTEND_ADDED, `kind:FRONTEND_ADDED cluster_id:"shop" address:{` + addrText(addr) + `}`},
		{&command.Request{RequestType: &command.Request_RemoveHttpFrontend{RemoveHttpFrontend: &command.RequestHttpFrontend{Address: addr, Hostname: proto.String("h")}}},
			command.EventKind_FRONTEND_REMOVED, `kind:FRONTEND_REMOVED address:{` + addrText(addr) + `}`}, // a deny rule: no cluster
		{&command.Request{RequestType: &command.Request_RemoveTcpFrontend{RemoveTcpFrontend: &command.RequestTcpFrontend{ClusterId: proto.String("db"), Address: addr}}},
			command.EventKind_FRONTEND_REMOVED, `kind:FRONTEND_REMOVED cluster_id:"db" address:{` + addrText(addr) + `}`},
		{&command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: &command.RequestUdpFrontend{ClusterId: proto.String("dns"), Address: addr}}},
			command.EventKind_FRONTEND_ADDED, `kind:FRONTEND_ADDED cluster_id:"dns" address:{` + addrText(addr) + `}`},
		{&command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{Address: addr, Fingerprint: proto.String("ab")}}},
			command.EventKind_CERTIFICATE_REMOVED, `kind:CERTIFICATE_REMOVED address:{` + addrText(addr) + `}`},
		{&command.Request{RequestType: &command.Request_UpdateTcpListener{UpdateTcpListener: &command.UpdateTcpListenerConfig{Address: addr}}},
			command.EventKind_LISTENER_UPDATED, `kind:LISTENER_UPDATED address:{` + addrText(addr) + `}`},
		{&command.Request{RequestType: &command.Request_Logging{Logging: "info"}},
			command.EventKind_LOGGING_LEVEL_CHANGED, `kind:LOGGING_LEVEL_CHANGED`},
	} {
		got := mutationEvent(tc.req, tc.kind)
		want := &command.Event{}
		if err := prototext.Unmarshal([]byte(tc.want), want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: event %v, want %v", command.VerbKey(tc.req), got, want)
		}
	}
}

func addrText(a *command.SocketAddress) string {
	b, _ := prototext.MarshalOptions{}.Marshal(a)
	return string(b)
}
