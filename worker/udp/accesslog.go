package udp

import (
	"github.com/oklog/ulid/v2"

	"github.com/sozu-go/sozu/worker/accesslog"
)

// logFlow writes the access record of an ended flow: one record per flow
// (not per datagram), with its datagrams and bytes each way and why it
// ended.
func (s *Server) logFlow(fe *FlowEnd) {
	l := s.opt.Access
	if l == nil {
		return
	}
	newID := s.opt.NewID
	if newID == nil {
		newID = ulid.Make
	}
	rec := accesslog.Record{Protocol: accesslog.UDP, SessionID: newID(), Start: fe.Start, End: fe.Start.Add(fe.Duration),
		Client: fe.Client, Backend: fe.Backend, Listener: fe.Listener.String(), ClusterID: fe.ClusterID, BackendID: fe.BackendID,
		BytesIn: int64(fe.BytesIn), BytesOut: int64(fe.BytesOut), DatagramsIn: int64(fe.Requests), DatagramsOut: int64(fe.Responses),
		EndReason: fe.Reason, BackendTime: fe.Duration, Tags: fe.Tags}
	l.Log(&rec)
}
