package supervisor_test

import (
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// nextEvent reads the next event sent to a subscriber, waiting at most
// 10 s.
func nextEvent(t *testing.T, c *rawConn) command.EventKind {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		resp := &command.Response{}
		if err := c.r.ReadMessage(resp); err != nil {
			t.Fatalf("reading an event: %v", err)
		}
		if ev := resp.GetContent().GetEvent(); ev != nil {
			return ev.GetKind()
		}
	}
}

// TestEventsSubscribedOnlyToItsSubscriber: EVENTS_SUBSCRIBED answers the
// client that subscribed; the subscribers already there are not told of
// every `sozu events` or `sozu top` that starts (each saw an
// EVENTS_SUBSCRIBED it had not asked for, which `sozu top` showed in its
// event list as one more subscription of its own).
func TestEventsSubscribedOnlyToItsSubscriber(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, _ := writeConfig(t, dir, 1, "")
	startProxy(t, dir, cfg, sock)
	subscribe := func() *rawConn {
		c := dialRaw(t, sock)
		if err := frame.WriteMessage(c.conn, &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}, frame.DefaultMaxSize); err != nil {
			t.Fatal(err)
		}
		if k := nextEvent(t, c); k != command.EventKind_EVENTS_SUBSCRIBED {
			t.Fatalf("first event of a subscriber: %v, want EVENTS_SUBSCRIBED", k)
		}
		return c
	}
	first := subscribe()
	subscribe()
	control := dialRaw(t, sock)
	if resp, err := control.do(addCluster("shop"), 10*time.Second); err != nil || resp.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("add cluster: %v %v", err, resp)
	}
	if k := nextEvent(t, first); k != command.EventKind_CLUSTER_ADDED {
		t.Errorf("the first subscriber's next event: %v, want CLUSTER_ADDED (not the second's subscription)", k)
	}
}
