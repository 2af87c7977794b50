package state

import (
	"fmt"
	"net/netip"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// GenerateRequests returns the requests that rebuild this state from an
// empty one, with ids "SAVE-0", "SAVE-1"..., in the record order of
// docs/protocol.md §4.4:
//
//  1. HTTP, 2. HTTPS, 3. TCP, 4. UDP listeners by ascending address (IPv4
//     before IPv6, then IP, then port), each followed by ACTIVATE_LISTENER
//     (from_scm false) when active;
//  5. clusters by id (health checks ride inside);
//  6. HTTP frontends by key;
//  7. certificates by address then fingerprint, expired_at unset, names filled;
//  8. HTTPS frontends by key;
//  9. TCP then 10. UDP frontends by cluster id, then address and tags;
//  11. backends by cluster id, then (backend_id, sticky_id, weight, backup, address).
//
// The order is fully deterministic, so equal states produce equal lists.
// Applying the list to New() yields a state whose GenerateRequests is equal
// (proto.Equal) and whose ClusterHashes are equal. Request counts are not
// saved. The messages are copies owned by the caller.
func (s *ConfigState) GenerateRequests() []*command.WorkerRequest {
	var reqs []*command.Request
	add := func(r *command.Request) { reqs = append(reqs, r) }

	for _, ap := range sortedAddrs(s.httpListeners) {
		l := s.httpListeners[ap]
		add(&command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: clone(l)}})
		if l.GetActive() {
			add(activate(l.GetAddress(), command.ListenerType_HTTP))
		}
	}
	for _, ap := range sortedAddrs(s.httpsListeners) {
		l := s.httpsListeners[ap]
		add(&command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: clone(l)}})
		if l.GetActive() {
			add(activate(l.GetAddress(), command.ListenerType_HTTPS))
		}
	}
	for _, ap := range sortedAddrs(s.tcpListeners) {
		l := s.tcpListeners[ap]
		add(&command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: clone(l)}})
		if l.GetActive() {
			add(activate(l.GetAddress(), command.ListenerType_TCP))
		}
	}
	for _, ap := range sortedAddrs(s.udpListeners) {
		l := s.udpListeners[ap]
		add(&command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: clone(l)}})
		if l.GetActive() {
			add(activate(l.GetAddress(), command.ListenerType_UDP))
		}
	}
	for _, id := range sortedKeys(s.clusters) {
		add(&command.Request{RequestType: &command.Request_AddCluster{AddCluster: clone(s.clusters[id])}})
	}
	for _, k := range sortedKeys(s.httpFronts) {
		add(&command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: clone(s.httpFronts[k])}})
	}
	for _, ap := range sortedAddrs(s.certs) {
		byFP := s.certs[ap]
		for _, fp := range sortedKeys(byFP) {
			add(&command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
				Address:     socketAddress(ap),
				Certificate: clone(byFP[fp]),
			}}})
		}
	}
	for _, k := range sortedKeys(s.httpsFronts) {
		add(&command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: clone(s.httpsFronts[k])}})
	}
	for _, id := range sortedKeys(s.tcpFronts) {
		for _, f := range s.tcpFronts[id] {
			add(&command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: clone(f)}})
		}
	}
	for _, id := range sortedKeys(s.udpFronts) {
		for _, f := range s.udpFronts[id] {
			add(&command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: clone(f)}})
		}
	}
	for _, id := range sortedKeys(s.backends) {
		for _, b := range s.backends[id] {
			add(&command.Request{RequestType: &command.Request_AddBackend{AddBackend: clone(b)}})
		}
	}

	out := make([]*command.WorkerRequest, len(reqs))
	for i, r := range reqs {
		out[i] = &command.WorkerRequest{Id: proto.String(fmt.Sprintf("SAVE-%d", i)), Content: r}
	}
	return out
}

func activate(addr *command.SocketAddress, t command.ListenerType) *command.Request {
	return &command.Request{RequestType: &command.Request_ActivateListener{ActivateListener: &command.ActivateListener{
		Address: clone(addr),
		Proxy:   t.Enum(),
		FromScm: proto.Bool(false),
	}}}
}

func sortedAddrs[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	keys := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.AddrPort.Compare)
	return keys
}

// socketAddress is the wire form of a map key. Unlike
// command.NewSocketAddress it keeps an IPv4-mapped IPv6 key as IPv6, so the
// record lands on the same key when replayed.
func socketAddress(ap netip.AddrPort) *command.SocketAddress {
	if ap.Addr().Is4() {
		return command.NewSocketAddress(ap)
	}
	b := ap.Addr().As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return &command.SocketAddress{
		Ip:   &command.IpAddress{Inner: &command.IpAddress_V6{V6: &command.Uint128{Low: proto.Uint64(lo), High: proto.Uint64(hi)}}},
		Port: proto.Uint32(uint32(ap.Port())),
	}
}
