package tcp

import (
	"net/netip"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
)

// sessionLog is what the access log keeps of a TCP session.
type sessionLog struct {
	start   time.Time
	client  netip.AddrPort
	cluster string
	backend *backends.Backend
	in, out int64 // bytes from the client, and to it
}

// logSession writes the access record of a session that ends.
func (ss *session) logSession(cfg *Listener, sl *sessionLog) {
	l := ss.srv.opt.Access
	if l == nil {
		return
	}
	newID := ss.srv.opt.NewID
	if newID == nil {
		newID = ulid.Make
	}
	rec := accesslog.Record{Protocol: accesslog.TCP, SessionID: newID(), Start: sl.start, End: time.Now(),
		Client: sl.client, Listener: cfg.Addr.String(), ClusterID: sl.cluster, BytesIn: sl.in, BytesOut: sl.out, Tags: cfg.Tags}
	if b := sl.backend; b != nil {
		rec.Backend, rec.BackendID = b.Addr, b.ID
		rec.BackendTime = rec.End.Sub(sl.start)
	}
	l.Log(&rec)
}
