package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

func eventResp(source string, ev *command.Event) *command.Response {
	return &command.Response{Status: command.ResponseStatus_PROCESSING.Enum(), Message: ptr(source),
		Content: &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: ev}}}
}

// streamPeer answers the first request read on a real unix socket with
// resps, then closes the connection when hangUp is set, else holds it
// open until the test ends. got receives the request.
func streamPeer(t *testing.T, resps []*command.Response, hangUp bool) (path string, got chan *command.Request) {
	t.Helper()
	path = socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan *command.Request, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req := &command.Request{}
		if frame.NewReader(conn, 0).ReadMessage(req) != nil {
			return
		}
		got <- req
		for _, r := range resps {
			if frame.WriteMessage(conn, r, 0) != nil {
				return
			}
		}
		if !hangUp {
			<-done
		}
	})
	return path, got
}

// onWrite calls f after each write to w.
type onWrite struct {
	w io.Writer
	f func()
}

func (o *onWrite) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.f()
	return n, err
}

func TestEventLineAndJSON(t *testing.T) {
	at := time.Date(2026, 12, 6, 7, 49, 2, 123_456_789, time.FixedZone("CET", 3600))
	addr := command.NewSocketAddress(netip.MustParseAddrPort("10.0.0.10:8000"))
	for _, tc := range []struct {
		source string
		ev     *command.Event
		line   string
		json   string
	}{
		{"main", &command.Event{Kind: command.EventKind_CLUSTER_ADDED.Enum(), ClusterId: ptr("shop")},
			"2026-12-06T06:49:02.123Z  main      CLUSTER_ADDED cluster=shop\n",
			`{"time":"2026-12-06T06:49:02.123Z","source":"main","kind":"CLUSTER_ADDED","cluster_id":"shop"}`},
		{"0", &command.Event{Kind: command.EventKind_BACKEND_DOWN.Enum(), ClusterId: ptr("shop"), BackendId: ptr("shop-0"), Address: addr},
			"2026-12-06T06:49:02.123Z  worker 0  BACKEND_DOWN cluster=shop backend=shop-0 address=10.0.0.10:8000\n",
			`{"time":"2026-12-06T06:49:02.123Z","source":"worker 0","kind":"BACKEND_DOWN","cluster_id":"shop","backend_id":"shop-0","address":"10.0.0.10:8000"}`},
		// A hostile id cannot drive the terminal, nor break the JSON line.
		{"main", &command.Event{Kind: command.EventKind_CLUSTER_REMOVED.Enum(), ClusterId: ptr("a\x1b[2Jb\nc\u0085")},
			`2026-12-06T06:49:02.123Z  main      CLUSTER_REMOVED cluster=a\u{1b}[2Jb\u{a}c\u{85}` + "\n",
			`{"time":"2026-12-06T06:49:02.123Z","source":"main","kind":"CLUSTER_REMOVED","cluster_id":"a\u001b[2Jb\nc\u0085"}`},
		// An id with a space or '=' forges no field: it is quoted.
		{"0", &command.Event{Kind: command.EventKind_BACKEND_UP.Enum(), ClusterId: ptr(`shop backend=db "x"`), BackendId: ptr("b=1")},
			`2026-12-06T06:49:02.123Z  worker 0  BACKEND_UP cluster="shop backend=db \"x\"" backend="b=1"` + "\n",
			`{"time":"2026-12-06T06:49:02.123Z","source":"worker 0","kind":"BACKEND_UP","cluster_id":"shop backend=db \"x\"","backend_id":"b=1"}`},
	} {
		if got := eventLine(at, tc.source, tc.ev); got != tc.line {
			t.Errorf("line:\n got %q\nwant %q", got, tc.line)
		}
		j, err := eventJSON(at, tc.source, tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(string(j), "\n"); got != tc.json || strings.Count(string(j), "\n") != 1 {
			t.Errorf("json:\n got %q\nwant %q", j, tc.json)
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil || m["kind"] != tc.ev.GetKind().String() {
			t.Errorf("json line does not parse back: %v %v", err, m)
		}
	}
}

// TestFollowEvents: how `sozu events` ends, and what it prints.
func TestFollowEvents(t *testing.T) {
	added := eventResp("main", &command.Event{Kind: command.EventKind_CLUSTER_ADDED.Enum(), ClusterId: ptr("shop")})
	stopping := eventResp("main", &command.Event{Kind: command.EventKind_SOZU_STOP_REQUESTED.Enum()})
	for _, tc := range []struct {
		name      string
		args      []string
		resps     []*command.Response
		hangUp    bool
		interrupt bool
		code      int
		out, err  string // substrings
	}{
		{name: "stopped as asked", args: []string{"events"}, resps: []*command.Response{added, stopping}, hangUp: true,
			code: exitOK, out: "CLUSTER_ADDED cluster=shop", err: "the proxy stopped"},
		{name: "stream lost", args: []string{"events"}, resps: []*command.Response{added}, hangUp: true,
			code: exitUnavailable, out: "CLUSTER_ADDED", err: "events may have been missed"},
		{name: "interrupted", args: []string{"events", "--json"}, resps: []*command.Response{added}, interrupt: true,
			code: exitOK, out: `"kind":"CLUSTER_ADDED"`},
		{name: "-t elapsed", args: []string{"events", "-t", "50"}, resps: []*command.Response{added},
			code: exitOK, out: "CLUSTER_ADDED"},
		{name: "refused", args: []string{"events"}, resps: []*command.Response{resp(failure, "unauthorized: actor UID 1000 is not allowed", nil)}, hangUp: true,
			code: exitNoPerm, err: "unauthorized:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, got := streamPeer(t, tc.resps, tc.hangUp)
			a, out, errOut := testApp(t)
			withSocket(a, path)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			a.signals = ctx
			if tc.interrupt {
				// The interrupt comes once the event is printed.
				a.stdout = &onWrite{w: out, f: cancel}
			}
			code := a.run(tc.args)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if r := <-got; r.GetSubscribeEvents() == nil {
				t.Fatalf("sent %v, want subscribe_events", r)
			}
		})
	}
}
