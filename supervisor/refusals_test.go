package supervisor

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/audit"
)

// summaries collects what a refusalLimiter writes.
type summaries struct {
	mu   sync.Mutex
	recs []*audit.Record
	got  chan struct{}
}

func (s *summaries) write(r *audit.Record) {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
	s.got <- struct{}{}
}

func (s *summaries) all() []*audit.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*audit.Record(nil), s.recs...)
}

func refusal(uid uint32) *audit.Record {
	u := uid
	return &audit.Record{Actor: audit.Actor{UID: &u}, Verb: "cluster.add", Code: audit.CodeCommandRefused, Target: "cluster x", ErrorCode: "admission_denied"}
}

func TestRefusalLimiter(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	out := &summaries{got: make(chan struct{}, 100)}
	l := newRefusalLimiter(3, time.Hour, now, out.write)
	a, b := peerKey{true, 1000}, peerKey{true, 2000}

	full := 0
	for range 10 {
		if l.allow(a, refusal(1000)) {
			full++
		}
	}
	if full != 3 {
		t.Errorf("%d of 10 refusals in full, want 3", full)
	}
	if !l.allow(b, refusal(2000)) {
		t.Error("another uid's first refusal was suppressed")
	}
	l.suppress(b, refusal(2000)) // a refused connection, counted only
	if n := len(out.all()); n != 0 {
		t.Fatalf("%d summaries before the window ended", n)
	}

	// The window ends: the next refusal writes the summary first and is
	// itself recorded in full.
	advance(time.Hour)
	if !l.allow(a, refusal(1000)) {
		t.Error("first refusal of a new window suppressed")
	}
	recs := out.all()
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Reason, "7 refusals of uid 1000 ") ||
		recs[0].Verb != verbRefusalsSuppressed || recs[0].ErrorCode != "refusals_suppressed" || recs[0].Target != "" || *recs[0].Actor.UID != 1000 {
		t.Fatalf("summary %+v", recs)
	}

	// close writes what is pending (b's one suppressed connection); a's
	// new window has nothing suppressed.
	l.close()
	recs = out.all()
	if len(recs) != 2 || !strings.HasPrefix(recs[1].Reason, "1 refusals of uid 2000 ") {
		t.Fatalf("after close: %+v", recs[1:])
	}
	if !l.allow(a, refusal(1000)) {
		t.Error("refusal after close not recorded in full")
	}
}

// TestRefusalLimiterTimer: the summary comes when the window ends, even if
// the peer has stopped.
func TestRefusalLimiterTimer(t *testing.T) {
	out := &summaries{got: make(chan struct{}, 10)}
	l := newRefusalLimiter(1, 50*time.Millisecond, time.Now, out.write)
	k := peerKey{}
	for range 5 {
		l.allow(k, refusal(0))
	}
	select {
	case <-out.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no summary 10 s after a 50 ms window")
	}
	if recs := out.all(); len(recs) != 1 || !strings.HasPrefix(recs[0].Reason, "4 refusals of uid unknown ") {
		t.Fatalf("summary %+v", recs)
	}
	l.close()
}

func TestClampEcho(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", refusalEchoMax), strings.Repeat("a", refusalEchoMax)},
		{strings.Repeat("a", refusalEchoMax+1), strings.Repeat("a", refusalEchoMax-3) + "…"},
		{strings.Repeat("é", 100), strings.Repeat("é", 62) + "…"},
	} {
		got := clampEcho(tc.in)
		if got != tc.want || len(got) > refusalEchoMax {
			t.Errorf("clampEcho(%d bytes) = %q (%d bytes), want %q", len(tc.in), got, len(got), tc.want)
		}
	}
}

// TestQueryLimiterSummary: the query limiter counts like the refusal one
// and writes its own summary: verb session.queries_suppressed, code
// query.completed, result ok.
func TestQueryLimiterSummary(t *testing.T) {
	out := &summaries{got: make(chan struct{}, 10)}
	l := newQueryLimiter(2, time.Hour, time.Now, out.write)
	k := peerKey{true, 1000}
	u := uint32(1000)
	q := func() *audit.Record {
		return &audit.Record{Actor: audit.Actor{UID: &u}, Verb: "status.get", Code: audit.CodeQueryCompleted, Result: audit.ResultOK}
	}
	full := 0
	for range 5 {
		if l.allow(k, q()) {
			full++
		}
	}
	l.close()
	recs := out.all()
	if full != 2 || len(recs) != 1 || !strings.HasPrefix(recs[0].Reason, "3 queries of uid 1000 ") || recs[0].Verb != verbQueriesSuppressed ||
		recs[0].Code != audit.CodeQueryCompleted || recs[0].Result != audit.ResultOK || recs[0].ErrorCode != "queries_suppressed" {
		t.Fatalf("%d in full; summaries %+v", full, recs)
	}
}
