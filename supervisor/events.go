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
	s.emitEventLocked("main", &command.Event{Kind: command.EventKind_EVENTS_SUBSCRIBED.Enum()})
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
		r := &command.Response{
			Status:  command.ResponseStatus_PROCESSING.Enum(),
			Message: proto.String(source),
			Content: &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: ev}},
		}
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
