package top

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/verbs"
)

// recorder answers every query with an empty OK and counts them by verb;
// it stands for the command socket in tests of the pollers' schedule (the
// socket itself is exercised by TestTopInTmux).
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func (r *recorder) Do(_ context.Context, req *command.Request) (*command.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[command.VerbKey(req)]++
	return &command.Response{Status: command.ResponseStatus_OK.Enum(), Message: ptr("")}, nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) count(verb string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[verb]
}

// stream yields its events, then blocks until closed.
type stream struct {
	evs    chan *command.Response
	closed chan struct{}
	once   sync.Once
}

func (s *stream) Recv() (*command.Response, error) {
	select {
	case r := <-s.evs:
		return r, nil
	case <-s.closed:
		return nil, errors.New("closed")
	}
}

func (s *stream) Close() error { s.once.Do(func() { close(s.closed) }); return nil }

// TestInventoryRefreshedOnEvent: an event that changes the configuration
// makes the poller read the inventory again at once, not at its next
// period (an hour here).
func TestInventoryRefreshedOnEvent(t *testing.T) {
	rec := &recorder{counts: map[string]int{}}
	st := &stream{evs: make(chan *command.Response), closed: make(chan struct{})}
	src := Source{
		Dial:      func() (Conn, error) { return rec, nil },
		Subscribe: func() (Stream, error) { return st, nil },
		Every:     time.Hour, // no periodic poll during the test
	}
	send := func(tea.Msg) {}
	ctx, cancel := context.WithCancel(t.Context())
	refresh := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { src.poll(ctx, send, refresh) })
	wg.Go(func() { src.follow(ctx, send, refresh) })
	defer func() { cancel(); wg.Wait() }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %v", what, rec.counts)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the first inventory", func() bool { return rec.count("list_listeners") == 1 })
	event := func(k command.EventKind) *command.Response {
		return &command.Response{Status: command.ResponseStatus_PROCESSING.Enum(), Message: ptr("main"),
			Content: &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: &command.Event{Kind: k.Enum()}}}}
	}
	st.evs <- event(command.EventKind_EVENTS_SUBSCRIBED)
	st.evs <- event(command.EventKind_CLUSTER_ADDED)
	waitFor("the inventory after CLUSTER_ADDED", func() bool {
		return rec.count("list_listeners") == 2 && rec.count("query_certificates_from_the_state") == 2 && rec.count("query_clusters_hashes") == 2
	})
}

func TestChangesInventory(t *testing.T) {
	for k, want := range map[command.EventKind]bool{
		command.EventKind_CLUSTER_ADDED: true, command.EventKind_REMOVED_BACKEND_HAS_NO_CONNECTIONS: true,
		command.EventKind_CERTIFICATE_REPLACED: true, command.EventKind_LISTENER_UPDATED: true,
		command.EventKind_BACKEND_DOWN: false, command.EventKind_EVENTS_SUBSCRIBED: false, command.EventKind_WORKER_KILLED: false,
	} {
		if changesInventory(k) != want {
			t.Errorf("%v: changesInventory = %v", k, !want)
		}
	}
}

// TestPollerIsReadOnly: every request the pollers send needs only the
// read-only role (the verb catalogue says so), so an operator in
// command_readonly_uids may run sozu top.
func TestPollerIsReadOnly(t *testing.T) {
	rec := &recorder{counts: map[string]int{}}
	src := Source{Dial: func() (Conn, error) { return rec, nil }, Every: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); src.poll(ctx, func(tea.Msg) {}, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for rec.count("query_clusters_hashes") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	sent := []string{"subscribe_events"} // follow's request (top.go sends it)
	rec.mu.Lock()
	for k := range rec.counts {
		sent = append(sent, k)
	}
	rec.mu.Unlock()
	if len(sent) < 5 {
		t.Fatalf("the poller sent only %v", sent)
	}
	for _, k := range sent {
		if r := verbs.RequiredRole(k); r != verbs.ReadOnly {
			t.Errorf("%s needs the %s role", k, r)
		}
	}
}
