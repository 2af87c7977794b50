package proxy

import (
	"time"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/router"
)

// reqLog is what the access log keeps of the request in flight. It is all
// zero, and costs nothing, when the access log is off (on false). The
// session goroutine owns it, except bytesIn, which the body copier adds to
// while it runs (it is joined before the record is made).
type reqLog struct {
	on      bool
	started bool      // a request began: its first byte arrived, or an answer went out
	start   time.Time // its first byte
	status  int       // the answer's status; 0 before one was sent
	cluster string
	backend *backends.Backend
	beStart time.Time // the first connect attempt to the backend reached (noteBackendStart)

	bytesIn, bytesOut int64

	head                     []byte // method, authority, target and user agent, copied (s.buf moves on)
	method, host, target, ua span
	http10                   bool   // the request line said HTTP/1.0
	cut                      cutWhy // why the response stopped short (noteCut); 0 when it did not
}

// cutWhy says why a response stopped short of its body (reqLog.noteCut):
// one byte, where a string would push the idle session past its size
// class (TestSessionSize).
type cutWhy uint8

const (
	notCut cutWhy = iota
	cutByBackend
	cutByTimeout
	cutByClient
	cutByClientReset
)

// cutReasons are the records' event.reason for each cutWhy.
var cutReasons = [...]string{
	notCut:           "",
	cutByBackend:     "backend ended the response before its end",
	cutByTimeout:     "backend timed out in the response body",
	cutByClient:      "client closed its connection before the end of the response",
	cutByClientReset: "client reset its stream before the end of the response",
}

// span is a part of reqLog.head.
type span struct{ off, len int32 }

func (r *reqLog) get(sp span) []byte { return r.head[sp.off : sp.off+sp.len] }

func (r *reqLog) put(b []byte) span {
	sp := span{int32(len(r.head)), int32(len(b))}
	r.head = append(r.head, b...)
	return sp
}

// begin marks the first byte of a request, which came at now.
func (r *reqLog) begin(now time.Time) {
	if r.on && !r.started {
		r.started, r.start = true, now
	}
}

// noteRequest copies what the record shows of the request head of n bytes,
// whose record began (readHead, runStream): parsed, or refused by
// http1.ParseRequest, whose contract leaves only what was valid of it (a
// refused request line shows nothing, a Host is shown only once validated).
// An absolute-form target is shown by its path and query, as upstream's
// records show it (the authority is the host column).
func (r *reqLog) noteRequest(req *http1.Request, n int) {
	if !r.on {
		return
	}
	r.bytesIn += int64(n)
	r.head = r.head[:0]
	r.method = r.put(req.Method)
	r.http10 = req.Method != nil && req.Minor == 0
	r.host = r.put(req.Authority)
	if req.Form == http1.FormAbsolute {
		// path-abempty: "" or "?q" are the root's.
		r.target = r.put(slash)
		if len(req.Path) > 0 && req.Path[0] == '/' {
			r.target = r.put(req.Path)
		} else {
			r.target.len += r.put(req.Path).len
		}
	} else {
		r.target = r.put(req.Target)
	}
	ua, _ := req.Get("User-Agent")
	r.ua = r.put(ua)
}

// noteScanRefused notes, for the record of a head refused before its
// parse (head, what came of it: too large, 431; a bare LF in a field,
// 400), what was valid of it, as for a head the parse refuses: the parse
// of those bytes keeps a valid request line (and the authority it
// carried) and refuses the rest (http1.ParseRequest's contract). Its
// bytes are counted apart (noteUnparsed).
func (s *session) noteScanRefused(head []byte) {
	if !s.lg.on {
		return
	}
	s.acquireExchangeBuffers()
	req := &s.st.req
	http1.ParseRequest(req, head, nil) // refused: what it kept is what was valid
	s.lg.noteRequest(req, 0)
}

// noteUnparsed counts the n bytes read of a head that ended before it
// could be parsed (a slow head's 408, a head the scanner refused, a client
// that left mid-head): bytes in counts every request byte read, parsed or
// not (noteRequest counts a parsed head).
func (r *reqLog) noteUnparsed(n int) {
	if r.on {
		r.bytesIn += int64(n)
	}
}

// noteCut records that the backend's response ended short of its body
// (the backend closed, reset or timed out after the head): the record is
// a failure whatever its status, and says why (event.reason).
func (r *reqLog) noteCut(err error) {
	if !r.on {
		return
	}
	r.cut = cutByBackend
	if isTimeout(err) {
		r.cut = cutByTimeout
	}
}

// noteLeft records that the client closed or reset its connection before
// the end of the response (none, or part of it, was sent): the exchange
// was abandoned (event.reason).
func (r *reqLog) noteLeft() {
	if r.on {
		r.cut = cutByClient
	}
}

// noteAnswer records the proxy's own answer of n bytes with status code,
// for cluster cl (nil for none), sent at now; the record begins then when
// no request byte began it.
func (r *reqLog) noteAnswer(code int, cl *Cluster, n int, now time.Time) {
	if !r.on {
		return
	}
	r.begin(now)
	r.status = code
	r.bytesOut += int64(n)
	if cl != nil {
		r.cluster = cl.ID
	}
}

// noteBackend records the backend the request went to.
func (r *reqLog) noteBackend(b *backends.Backend) {
	if r.on {
		r.backend = b
	}
}

// logRequest writes the access record of the request that just ended, if
// one began, and resets reqLog for the next. Called once per request, by
// the serve loop (run, runStream).
func (s *session) logRequest(cfg *Listener) {
	r := &s.lg
	if !r.on || !r.started {
		return
	}
	defer r.reset()
	if (r.cut == notCut || r.cut == cutByClient) && s.peerReset() {
		// A stream's client that reset it did not close its connection,
		// whatever the exchange made of the end of its request (noteLeft).
		r.cut = cutByClientReset
	}
	if !s.srv.opt.Access.Wants(accesslog.HTTPFailure(r.status) || r.cut != notCut) {
		return // filtered out by log_level: not even built
	}
	rec := accesslog.Record{
		Protocol:  accesslog.HTTP,
		SessionID: s.sessID,
		Start:     r.start,
		End:       s.now, // run and runStream tick at the request's end
		Client:    s.client,
		Listener:  cfg.addrText,
		ClusterID: r.cluster,
		Status:    r.status,
		BytesIn:   r.bytesIn,
		BytesOut:  r.bytesOut,
		Tags:      s.recordTags(cfg),
		TLS:       s.tlsInfo,
		HTTP10:    r.http10,
		EndReason: cutReasons[r.cut],
	}
	switch {
	case s.h2b != nil:
		rec.Protocol = accesslog.H2
	case cfg.TLS != nil:
		rec.Protocol = accesslog.HTTPS
	}
	if !s.hasID {
		// A head that ended unparsed and unanswered (the client left
		// mid-head) is a request all the same: its record is filed under
		// an id of its own, never the session's (Record.RequestID).
		s.newID()
	}
	rec.RequestID = s.idBin
	if len(r.head) > 0 {
		rec.Method, rec.Host, rec.Target, rec.UserAgent = r.get(r.method), r.get(r.host), r.get(r.target), r.get(r.ua)
	}
	if b := r.backend; b != nil {
		rec.Backend, rec.BackendID = b.Addr, b.ID
		if rec.ClusterID == "" {
			rec.ClusterID = b.ClusterID
		}
	}
	if b := r.backend; b != nil && !r.beStart.IsZero() {
		// Only a backend reached has a time: connect attempts that all
		// failed (503) are the proxy's own time, as upstream's records
		// show no response time without a backend connection.
		rec.BackendTime = rec.End.Sub(r.beStart)
	}
	s.srv.opt.Access.Log(&rec)
}

// reset forgets the request that ended, keeping head's room.
func (r *reqLog) reset() { *r = reqLog{on: true, head: r.head[:0]} }

// recordTags returns the tags the record of the request shows: those of
// the frontend that routed it, else, for a request no frontend routed,
// those of the frontend whose hostname is exactly its host as the routes
// see it (router.NormalizeHost: any case, any port), as upstream's
// exact-authority lookup (nil for none).
func (s *session) recordTags(cfg *Listener) *accesslog.Tags {
	if s.routeKey != "" || len(cfg.HostTags) == 0 || s.lg.host.len == 0 {
		return cfg.Tags[s.routeKey]
	}
	return hostTags(cfg, s.lg.get(s.lg.host))
}

// hostTags returns the tags of cfg's frontend whose hostname is exactly
// host as the routes see it (router.NormalizeHost: any case, any port),
// for the record of a request no frontend routed; nil for none (an empty
// or invalid host included).
func hostTags(cfg *Listener, host []byte) *accesslog.Tags {
	if len(cfg.HostTags) == 0 || len(host) == 0 {
		return nil
	}
	var buf [router.MaxHost]byte
	h, ok := router.NormalizeHost(&buf, host)
	if !ok || len(h) == 0 {
		return nil
	}
	return cfg.HostTags[string(h)]
}
