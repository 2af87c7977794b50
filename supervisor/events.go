package supervisor

import (
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// subscriberQueueLen bounds the events queued for one subscriber. A
// subscriber that falls this far behind is disconnected (as upstream does
// once ~2 MB are pending) rather than slowing anyone else down.
const subscriberQueueLen = 1024

// subscribe turns c into an event subscriber. Upstream sends no reply to
// subscribe_events; neither do we. Events then arrive as PROCESSING
// responses whose message is "main" or the emitting worker's id.
func (s *Supervisor) subscribe(c *session) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subscribers[c] != nil {
		return
	}
	q := make(chan *command.Response, subscriberQueueLen)
	s.subscribers[c] = q
	s.subWriters.Add(1)
	go func() {
		defer s.subWriters.Done()
		for r := range q {
			if !c.write(r) {
				s.unsubscribe(c)
				return
			}
		}
	}()
	// Its first event tells c alone that it is subscribed: the other
	// subscribers did not ask.
	q <- eventResponse("main", &command.Event{Kind: command.EventKind_EVENTS_SUBSCRIBED.Enum()})
}

// eventResponse is the response that carries ev from source ("main" or a
// worker's id) to a subscriber.
func eventResponse(source string, ev *command.Event) *command.Response {
	return &command.Response{
		Status:  command.ResponseStatus_PROCESSING.Enum(),
		Message: proto.String(source),
		Content: &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: ev}},
	}
}

// subscribed reports whether c is an event subscriber.
func (s *Supervisor) subscribed(c *session) bool {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	return s.subscribers[c] != nil
}

func (s *Supervisor) unsubscribe(c *session) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if q := s.subscribers[c]; q != nil {
		close(q)
		delete(s.subscribers, c)
	}
}

// emitEvent queues ev for every subscriber. It never blocks.
func (s *Supervisor) emitEvent(source string, ev *command.Event) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.emitEventLocked(source, ev)
}

func (s *Supervisor) emitEventLocked(source string, ev *command.Event) {
	for c, q := range s.subscribers {
		r := eventResponse(source, ev)
		select {
		case q <- r:
		default:
			s.log.Warnf("event subscriber %d is %d events behind: disconnecting it", c.id, subscriberQueueLen)
			close(q)
			delete(s.subscribers, c)
			c.conn.Close()
		}
	}
}

// mutationEvent is the event of an accepted mutation (kind from the verb
// catalogue), carrying the ids its request names: the cluster of cluster
// and frontend verbs (none for a frontend that denies), the address of
// frontend, certificate and listener verbs. Subscribers (`sozu events`,
// `sozu top`) can then tell what changed.
func mutationEvent(req *command.Request, kind command.EventKind) *command.Event {
	ev := &command.Event{Kind: kind.Enum()}
	copyAddr := func(a *command.SocketAddress) {
		if a != nil {
			ev.Address = proto.Clone(a).(*command.SocketAddress)
		}
	}
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCluster:
		ev.ClusterId = proto.String(r.AddCluster.GetClusterId())
	case *command.Request_RemoveCluster:
		ev.ClusterId = proto.String(r.RemoveCluster)
	case *command.Request_AddHttpFrontend, *command.Request_RemoveHttpFrontend,
		*command.Request_AddHttpsFrontend, *command.Request_RemoveHttpsFrontend:
		f := httpFrontendOf(req)
		ev.ClusterId = f.ClusterId
		copyAddr(f.GetAddress())
	case *command.Request_AddTcpFrontend:
		ev.ClusterId = proto.String(r.AddTcpFrontend.GetClusterId())
		copyAddr(r.AddTcpFrontend.GetAddress())
	case *command.Request_RemoveTcpFrontend:
		ev.ClusterId = proto.String(r.RemoveTcpFrontend.GetClusterId())
		copyAddr(r.RemoveTcpFrontend.GetAddress())
	case *command.Request_AddUdpFrontend:
		ev.ClusterId = proto.String(r.AddUdpFrontend.GetClusterId())
		copyAddr(r.AddUdpFrontend.GetAddress())
	case *command.Request_RemoveUdpFrontend:
		ev.ClusterId = proto.String(r.RemoveUdpFrontend.GetClusterId())
		copyAddr(r.RemoveUdpFrontend.GetAddress())
	case *command.Request_AddUdpListener:
		copyAddr(r.AddUdpListener.GetAddress())
	case *command.Request_UpdateUdpListener:
		copyAddr(r.UpdateUdpListener.GetAddress())
	case *command.Request_AddCertificate:
		copyAddr(r.AddCertificate.GetAddress())
	case *command.Request_ReplaceCertificate:
		copyAddr(r.ReplaceCertificate.GetAddress())
	case *command.Request_RemoveCertificate:
		copyAddr(r.RemoveCertificate.GetAddress())
	case *command.Request_AddHttpListener:
		copyAddr(r.AddHttpListener.GetAddress())
	case *command.Request_AddHttpsListener:
		copyAddr(r.AddHttpsListener.GetAddress())
	case *command.Request_AddTcpListener:
		copyAddr(r.AddTcpListener.GetAddress())
	case *command.Request_UpdateHttpListener:
		copyAddr(r.UpdateHttpListener.GetAddress())
	case *command.Request_UpdateHttpsListener:
		copyAddr(r.UpdateHttpsListener.GetAddress())
	case *command.Request_UpdateTcpListener:
		copyAddr(r.UpdateTcpListener.GetAddress())
	case *command.Request_RemoveListener:
		copyAddr(r.RemoveListener.GetAddress())
	case *command.Request_ActivateListener:
		copyAddr(r.ActivateListener.GetAddress())
	case *command.Request_DeactivateListener:
		copyAddr(r.DeactivateListener.GetAddress())
	}
	return ev
}

func httpFrontendOf(req *command.Request) *command.RequestHttpFrontend {
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddHttpFrontend:
		return r.AddHttpFrontend
	case *command.Request_RemoveHttpFrontend:
		return r.RemoveHttpFrontend
	case *command.Request_AddHttpsFrontend:
		return r.AddHttpsFrontend
	case *command.Request_RemoveHttpsFrontend:
		return r.RemoveHttpsFrontend
	}
	return nil
}
