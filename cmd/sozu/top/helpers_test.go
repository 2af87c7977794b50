package top

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// filled is a model with every pane populated: two metrics samples, the
// state's clusters, listeners and certificates, and a few events.
func filled(t *testing.T) *Model {
	t.Helper()
	m := New()
	twoSamples(m)
	m.Update(ClustersMsg{At: t0, Clusters: []*command.ClusterInformation{
		{Configuration: &command.Cluster{ClusterId: ptr("busy")},
			HttpFrontends: []*command.RequestHttpFrontend{{}},
			Backends:      []*command.AddBackend{{ClusterId: ptr("busy"), BackendId: ptr("busy-0"), Address: command.NewSocketAddress(mustAddr("127.0.0.1:8001"))}}},
		{Configuration: &command.Cluster{ClusterId: ptr("calm")},
			Backends: []*command.AddBackend{{ClusterId: ptr("calm"), BackendId: ptr("calm-0"), Address: command.NewSocketAddress(mustAddr("127.0.0.1:8002"))}}},
		{Configuration: &command.Cluster{ClusterId: ptr("shop")},
			Backends: []*command.AddBackend{{ClusterId: ptr("shop"), BackendId: ptr("shop-0"), Address: command.NewSocketAddress(mustAddr("10.0.0.1:80"))}}},
	}})
	m.Update(ListenersMsg{At: t0, L: &command.ListenersList{
		HttpListeners: map[string]*command.HttpListenerConfig{"127.0.0.1:8080": {
			Address: command.NewSocketAddress(mustAddr("127.0.0.1:8080")), Active: ptr(true), StickyName: ptr("SOZUBALANCEID"),
			FrontTimeout: ptr(uint32(60)), BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3))}},
		HttpsListeners: map[string]*command.HttpsListenerConfig{"127.0.0.1:8443": {
			Address: command.NewSocketAddress(mustAddr("127.0.0.1:8443")), Active: ptr(false),
			Versions:     []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3},
			FrontTimeout: ptr(uint32(60)), BackTimeout: ptr(uint32(30)), ConnectTimeout: ptr(uint32(3))}},
		UdpListeners: map[string]*command.UdpListenerConfig{"127.0.0.1:5353": {
			Address: command.NewSocketAddress(mustAddr("127.0.0.1:5353")), Active: ptr(true),
			FrontTimeout: ptr(uint32(30)), BackTimeout: ptr(uint32(30)), MaxRxDatagramSize: ptr(uint32(1500)), MaxFlows: ptr(uint32(0))}},
	}})
	m.Update(CertsMsg{At: t0, C: &command.CertificatesWithFingerprints{Certs: map[string]*command.CertificateAndKey{
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": {Certificate: ptr(selfSigned(t, t0.Add(20*24*time.Hour))), Key: ptr(""), Names: []string{"shop.test"}},
		"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae": {Certificate: ptr(selfSigned(t, t0.Add(200*24*time.Hour))), Key: ptr(""), Names: []string{"www.test", "test"}},
	}}})
	m.Update(StreamMsg{At: t0})
	m.Update(EventMsg{At: t0, Source: "main", Ev: &command.Event{Kind: command.EventKind_EVENTS_SUBSCRIBED.Enum()}})
	m.Update(EventMsg{At: t0.Add(time.Second), Source: "0", Ev: &command.Event{Kind: command.EventKind_REMOVED_BACKEND_HAS_NO_CONNECTIONS.Enum(),
		ClusterId: ptr("calm"), BackendId: ptr("calm-1"), Address: command.NewSocketAddress(mustAddr("127.0.0.1:8003"))}})
	return m
}
