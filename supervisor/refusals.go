package supervisor

import (
	"fmt"
	"sync"
	"time"

	"github.com/sozu-go/sozu/audit"
)

// Refusal records are bounded per peer, so that a peer sending refused
// requests (or connections) as fast as it can cannot fill the disk of a
// fail-closed audit trail, after which every verb would be refused: per
// peer uid, the first refusalBurst refusals of a refusalWindow are recorded
// in full; the others are counted, and one summary record with the count
// is written when the window ends (or when the supervisor stops).
const (
	refusalBurst  = 10
	refusalWindow = time.Minute
	// refusalEchoMax bounds, in bytes, each request field a refusal record
	// repeats (target, cluster id, backend id); the request's SHA-256 in
	// the record still identifies the whole request.
	refusalEchoMax = 128
	// verbRefusalsSuppressed is the verb of a summary record.
	verbRefusalsSuppressed = "session.refusals_suppressed"
)

// Query records of peers without the admin role are bounded the same way
// (a read-only peer polling as fast as it is answered wrote ~1 KB of
// fsync'd record per query, without end), with a larger burst: queryBurst
// per uid per queryWindow in full, then one summary with the count. An
// admin's queries are always recorded one by one (PCI DSS 10.2.1.2).
const (
	queryBurst  = 120
	queryWindow = time.Minute
	// verbQueriesSuppressed is the verb of a query summary record.
	verbQueriesSuppressed = "session.queries_suppressed"
)

// limiterKind is what a limiter bounds: the wording and codes of its
// summary records.
type limiterKind struct {
	noun      string       // "refusals", "queries"
	verb      string       // the summary's verb
	code      audit.Code   // the summary's code
	result    audit.Result // the summary's result
	errorCode string       // the summary's error code
}

var (
	refusalKind = limiterKind{"refusals", verbRefusalsSuppressed, audit.CodeCommandRefused, audit.ResultErr, "refusals_suppressed"}
	queryKind   = limiterKind{"queries", verbQueriesSuppressed, audit.CodeQueryCompleted, audit.ResultOK, "queries_suppressed"}
)

// refusalLimiter decides which refusals are recorded in full and writes
// the summaries of the others. It is safe for concurrent use.
type refusalLimiter struct {
	kind   limiterKind
	burst  int
	window time.Duration
	now    func() time.Time
	// write writes a summary record; called without the lock held.
	write func(*audit.Record)

	mu     sync.Mutex
	peers  map[peerKey]*refusalSpan
	closed bool
}

// refusalSpan is one peer's current window.
type refusalSpan struct {
	start      time.Time
	written    int
	suppressed int
	last       time.Time     // time of the last suppressed refusal
	sample     *audit.Record // the last suppressed refusal, for the summary's actor
	timer      *time.Timer
}

func newRefusalLimiter(burst int, window time.Duration, now func() time.Time, write func(*audit.Record)) *refusalLimiter {
	return &refusalLimiter{kind: refusalKind, burst: burst, window: window, now: now, write: write, peers: map[peerKey]*refusalSpan{}}
}

// newQueryLimiter is a limiter of the query records of peers without the
// admin role (queryKind): same windows, its own summaries.
func newQueryLimiter(burst int, window time.Duration, now func() time.Time, write func(*audit.Record)) *refusalLimiter {
	l := newRefusalLimiter(burst, window, now, write)
	l.kind = queryKind
	return l
}

// allow reports whether rec, the refusal of a request or connection of k,
// is to be written in full. When it is not, it is counted for k's summary.
func (l *refusalLimiter) allow(k peerKey, rec *audit.Record) bool {
	now := l.now()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return true
	}
	var ended *audit.Record
	sp := l.peers[k]
	if sp != nil && now.Sub(sp.start) >= l.window {
		ended = l.endLocked(k, sp)
		sp = nil
	}
	if sp == nil {
		sp = &refusalSpan{start: now}
		l.peers[k] = sp
	}
	full := sp.written < l.burst
	if full {
		sp.written++
	} else {
		l.suppressLocked(k, sp, now, rec)
	}
	l.mu.Unlock()
	if ended != nil {
		l.write(ended)
	}
	return full
}

// suppress counts rec, a refusal of k, for k's summary without writing it
// in full, whatever the count so far (after close, it writes rec).
func (l *refusalLimiter) suppress(k peerKey, rec *audit.Record) {
	now := l.now()
	l.mu.Lock()
	if l.closed { // no summary will come: write it as it is
		l.mu.Unlock()
		l.write(rec)
		return
	}
	var ended *audit.Record
	sp := l.peers[k]
	if sp != nil && now.Sub(sp.start) >= l.window {
		ended = l.endLocked(k, sp)
		sp = nil
	}
	if sp == nil {
		sp = &refusalSpan{start: now}
		l.peers[k] = sp
	}
	l.suppressLocked(k, sp, now, rec)
	l.mu.Unlock()
	if ended != nil {
		l.write(ended)
	}
}

// suppressLocked counts rec in sp, k's window, and makes sure the summary
// is written when the window ends.
func (l *refusalLimiter) suppressLocked(k peerKey, sp *refusalSpan, now time.Time, rec *audit.Record) {
	sp.suppressed++
	sp.last, sp.sample = now, rec
	if sp.timer == nil && !l.closed {
		sp.timer = time.AfterFunc(sp.start.Add(l.window).Sub(now), func() { l.expire(k, sp) })
	}
}

// expire ends sp, k's window, if it is still the current one.
func (l *refusalLimiter) expire(k peerKey, sp *refusalSpan) {
	l.mu.Lock()
	var rec *audit.Record
	if l.peers[k] == sp {
		rec = l.endLocked(k, sp)
	}
	l.mu.Unlock()
	if rec != nil {
		l.write(rec)
	}
}

// endLocked forgets k's window and returns its summary record, or nil when
// nothing was suppressed.
func (l *refusalLimiter) endLocked(k peerKey, sp *refusalSpan) *audit.Record {
	delete(l.peers, k)
	if sp.timer != nil {
		sp.timer.Stop()
	}
	if sp.suppressed == 0 || sp.sample == nil {
		return nil
	}
	rec := *sp.sample
	rec.RequestULID, rec.Target, rec.ClusterID, rec.BackendID = "", "", "", ""
	rec.Extras = audit.Extras{}
	rec.Verb, rec.Code, rec.Result = l.kind.verb, l.kind.code, l.kind.result
	rec.ErrorCode = l.kind.errorCode
	rec.Reason = fmt.Sprintf("%d %s of uid %s not recorded one by one between %s and %s (at most %d recorded in full per %v per uid)",
		sp.suppressed, l.kind.noun, k, sp.start.UTC().Format(time.RFC3339), sp.last.UTC().Format(time.RFC3339), l.burst, l.window)
	return &rec
}

// close writes the summary of every open window; later refusals are all
// recorded in full (the trail is closing).
func (l *refusalLimiter) close() {
	l.mu.Lock()
	l.closed = true
	var recs []*audit.Record
	for k, sp := range l.peers {
		if rec := l.endLocked(k, sp); rec != nil {
			recs = append(recs, rec)
		}
	}
	l.mu.Unlock()
	for _, rec := range recs {
		l.write(rec)
	}
}

// clampEcho cuts s to at most refusalEchoMax bytes on a rune boundary,
// ending a cut string with "…".
func clampEcho(s string) string {
	if len(s) <= refusalEchoMax {
		return s
	}
	cut := refusalEchoMax - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not in the middle of a rune
		cut--
	}
	return s[:cut] + "…"
}
