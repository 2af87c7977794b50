package proxy

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/router"
)

func TestZZProfile(t *testing.T) {
	if os.Getenv("SOZU_PROF") == "" {
		t.Skip()
	}
	reg := backends.NewRegistry(backends.Options{})
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "a", Addr: netip.MustParseAddrPort("127.0.0.1:18180"), Weight: 1}}, nil)
	tab, _ := router.Build(anyHost("c"))
	ln, _ := net.Listen("tcp", "127.0.0.1:18190")
	srv := NewServer(ln, &Listener{Routes: tab, Clusters: map[string]*Cluster{"c": {ID: "c", Backends: sets["c"]}}}, Options{})
	go srv.Serve()
	time.Sleep(14 * time.Second)
	srv.Close()
}
