package worker

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

// TestSnapshotSticky: sticky_session, sticky_name and sticky_id reach the
// data plane; a backend without sticky_id is stuck to by its backend id;
// an id that is no cookie value is encoded (proxy.StickyCookieValue); one
// that another backend of the cluster has takes no sticky clients and is
// reported; an invalid sticky_name is reported and the default used.
func TestSnapshotSticky(t *testing.T) {
	st := state.New()
	const l1, l2 = "127.0.0.1:8080", "127.0.0.1:8081"
	withSticky := func(cl, id, addr, sticky string) *command.Request {
		r := backend(cl, id, addr, nil)
		r.GetAddBackend().StickyId = proto.String(sticky)
		return r
	}
	dispatch(t, st,
		httpListener(l1, func(l *command.HttpListenerConfig) { l.StickyName = proto.String("route") }),
		httpListener(l2, func(l *command.HttpListenerConfig) { l.StickyName = proto.String("bad name") }),
		cluster("app", func(c *command.Cluster) { c.StickySession = proto.Bool(true) }),
		cluster("plain", nil),
		backend("app", "a1", "127.0.0.1:9001", nil),
		withSticky("app", "a2", "127.0.0.1:9002", "blue"),
		withSticky("app", "a3", "127.0.0.1:9003", "semi;colon"),
		withSticky("app", "a4", "127.0.0.1:9004", "blue"),
		withSticky("plain", "p1", "127.0.0.1:9005", "dup"),
		withSticky("plain", "p2", "127.0.0.1:9006", "dup"),
	)
	snap := buildSnapshot(st, backends.NewRegistry(backends.Options{}), false)
	warnings := strings.Join(snap.warnings, "\n")
	for _, want := range []string{
		`HTTP listener 127.0.0.1:8081: sticky_name "bad name" is not a cookie name: using SOZUBALANCEID`,
		`backend a4 of cluster app: sticky id "blue" is backend a2's already`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	if strings.Contains(warnings, "p1") || strings.Contains(warnings, "a3") {
		t.Errorf("a cluster without sticky sessions has its sticky ids reported:\n%s", warnings)
	}
	a, b := snap.http["HTTP "+l1], snap.http["HTTP "+l2]
	if a.StickyName != "route" || b.StickyName != "" {
		t.Errorf("sticky names %q, %q; want route and the default", a.StickyName, b.StickyName)
	}
	app, plain := a.Clusters["app"], a.Clusters["plain"]
	if !app.Sticky || plain.Sticky {
		t.Errorf("Sticky: app %v, plain %v", app.Sticky, plain.Sticky)
	}
	got := map[string]string{}
	for _, be := range app.Backends.Backends() {
		got[be.ID] = be.StickyID()
	}
	want := map[string]string{"a1": "a1", "a2": "blue", "a3": "semi%3Bcolon", "a4": ""}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("backend %s: sticky id %q, want %q", id, got[id], w)
		}
	}
	if be := app.Backends.Sticky([]byte("blue")); be == nil || be.ID != "a2" {
		t.Errorf("sticky id blue selects %v, want a2", be)
	}
}
