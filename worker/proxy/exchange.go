package proxy

import (
	"errors"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/ipcap"
)

// serve handles the request whose head is buf[r:r+n]: it answers it itself
// or forwards it. It returns whether the connection may carry another
// request.
func (s *session) serve(cfg *Listener, n int) bool {
	s.acquireExchangeBuffers()
	s.newID()
	req := &s.st.req
	err := http1.ParseRequest(req, s.buf[s.r:s.r+n], nil)
	s.lg.noteRequest(req, n) // refused too: its record shows what was valid
	if s.mxOn() {
		// A head the parse refuses arrived all the same: its bytes and
		// its time count, as its access record has them.
		s.mx.Parsed = true
		s.mx.BytesIn = int64(n)
	}
	if err != nil {
		s.headError(cfg, err)
		return false
	}
	if req.HeadLen != n {
		// The head's scan (or the HTTP/2 bridge) and its parse disagree on
		// where it ends: never guess which bytes are the body.
		return s.answer(cfg, nil, http1.StatusBadRequest)
	}
	s.r += n
	s.isHead = string(req.Method) == "HEAD"
	if status := refuse(req, cfg); status != 0 {
		return s.answer(cfg, nil, status)
	}
	if s.misdirectedRequest(cfg, req) {
		return s.answer(cfg, nil, 421)
	}
	switch maxForwards(req) {
	case mfForward:
	case mfFinal:
		// RFC 9110 §7.6.2: the proxy answers as the final recipient.
		// An OPTIONS it answers with what it is; a TRACE it does not
		// implement: a reflection would hand the client its cookies
		// and credentials back in the body.
		if string(req.Method) == "OPTIONS" {
			return s.answerWith(cfg, nil, 200, optionsAnswer, nil, nil)
		}
		return s.answer(cfg, nil, http1.StatusNotImplemented)
	default:
		return s.answer(cfg, nil, http1.StatusBadRequest)
	}
	if req.Upgrade && (req.Body != http1.BodyNone || hasToken(req.UpgradeProto, "h2c")) {
		// Never forward h2c (it would hand the backend connection to a
		// protocol we do not parse), nor an upgrade carrying a body.
		req.Upgrade = false
	}
	if cfg.MaxBody > 0 && req.Body == http1.BodyLength && req.ContentLength > cfg.MaxBody {
		return s.answer(cfg, nil, 413)
	}
	if cfg.Routes == nil {
		return s.answer(cfg, nil, 404)
	}
	path := req.Path
	if ambiguousPath(path) {
		return s.answer(cfg, nil, http1.StatusBadRequest)
	}
	if len(path) == 0 || path[0] == '?' {
		path = slash // absolute-form without a path: forwarded as "/"
	}
	route := cfg.Routes.Lookup(req.Authority, path, req.Method)
	if route == nil {
		return s.answer(cfg, nil, 404)
	}
	if fe, ok := route.Policy.(*Frontend); ok {
		return s.serveFrontend(cfg, route, fe, req, path)
	}
	if route.Deny {
		return s.answer(cfg, nil, 404)
	}
	s.routeKey = route.Key
	cl := cfg.Clusters[route.ClusterID]
	if cl == nil {
		return s.answer(cfg, &Cluster{ID: route.ClusterID}, 503)
	}
	if cl.HTTPSRedirect && cfg.TLS == nil {
		return s.redirectHTTPS(cfg, cl, req)
	}
	if cl.Backends.Len() == 0 {
		return s.answer(cfg, cl, 503)
	}
	return s.forward(cfg, cl, req, hstsFor(cfg, route.Key), nil)
}

// exchange is what the forwarding of one request keeps once the request
// head is gone (the copier may reuse its buffer).
type exchange struct {
	cfg       *Listener
	cl        *Cluster
	hsts      *HSTS     // the Strict-Transport-Security policy of the response; nil for none
	fe        *Frontend // the routing frontend's rewrites and edits; nil for none
	method    [32]byte
	methodLen int
	clientKA  bool // the client lets the connection persist
	http10    bool // the client speaks HTTP/1.0
	expect    bool // the client waits for 100 Continue
	upgrade   bool // the request asks for a protocol upgrade
	sticky    bool // the cluster has sticky sessions: s.stickyIn holds the client's cookie
	streaming bool // the request body is still being copied
	// noReuse: the backend connection must not carry another request
	// after this one (bodyIgnorable, an Expect request answered without
	// 100 Continue, or a request answered before its body was all sent:
	// readResponseHead).
	noReuse    bool
	hasBody    bool // the request has content
	copyJoined bool
	copyRes    bodyResult
}

func (x *exchange) methodBytes() []byte { return x.method[:x.methodLen] }

// idempotent reports the methods RFC 9110 §9.2.2 defines as idempotent,
// which a proxy may send again when it cannot tell whether the backend
// processed them.
func idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// hasContent reports whether req has a body of at least one byte, or a
// chunked one.
func hasContent(req *http1.Request) bool {
	return req.Body == http1.BodyChunked || req.Body == http1.BodyLength && req.ContentLength > 0
}

// bodyIgnorable reports a request with content whose method gives content
// no defined meaning (RFC 9110 §9.3.1 GET, §9.3.2 HEAD, §9.3.5 DELETE,
// §9.3.7 OPTIONS: "this specification does not define any use for such
// content") or forbids it (§9.3.8 TRACE). A backend may answer such a
// request without reading its body; the body then stays in the backend's
// buffer and is read as the next request on that connection (the "CL.0"
// desync), whose response would reach whichever client the pooled
// connection serves next. The proxy forwards the request, then closes the
// connection instead of pooling it.
func bodyIgnorable(req *http1.Request) bool {
	if !hasContent(req) {
		return false
	}
	switch string(req.Method) {
	case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// forward sends req to a backend of cl and the response back, with the
// header edits of fe (nil for none).
func (s *session) forward(cfg *Listener, cl *Cluster, req *http1.Request, hsts *HSTS, fe *Frontend) bool {
	if !s.admitIP(cl) {
		return s.answer(cfg, cl, 429)
	}
	s.mxCluster(cl)
	x := exchange{cfg: cfg, cl: cl, hsts: hsts, fe: fe, clientKA: req.KeepAlive, http10: req.Minor == 0,
		expect: req.Expect100, upgrade: req.Upgrade, noReuse: bodyIgnorable(req),
		hasBody: hasContent(req)}
	x.methodLen = copy(x.method[:], req.Method)
	if cl.Sticky {
		x.sticky = true
		s.takeStickyCookie(cfg, req)
	}

	// The head, then as much of the body as is already here.
	req.KeepAlive = true
	s.out = s.appendRequestHead(s.out[:0], cfg, req)
	if fe != nil {
		s.out = s.appendFrontendFields(s.out, fe)
	}
	var remaining int64
	chunked := false
	switch req.Body {
	case http1.BodyLength:
		take := min(req.ContentLength, int64(s.w-s.r))
		s.out = append(s.out, s.buf[s.r:s.r+int(take)]...)
		s.r += int(take)
		s.lg.bytesIn += take
		s.mx.BytesIn += take // a body counts as read (the copier adds the rest)
		remaining = req.ContentLength - take
		x.streaming = remaining > 0
	case http1.BodyChunked:
		chunked = true
		s.st.dec.Reset()
		s.st.dec.Hop = s.st.reqHop.keep(req.ConnectionTokens(), cfg.idHeader) // before the copier reuses buf
		if fe != nil {
			s.st.dec.Drop = fe.Request.Deleted() // deleted from the head: from the trailers too
		}
		var used int
		var err error
		s.out, used, err = s.st.dec.Reencode(s.out, s.buf[s.r:s.w])
		s.r += used
		s.lg.bytesIn += int64(used)
		s.mx.BytesIn += int64(used) // framing included
		if err != nil {
			return s.answer(cfg, nil, http1.StatusBadRequest)
		}
		if cfg.MaxBody > 0 && int64(used) > cfg.MaxBody {
			return s.answer(cfg, nil, 413)
		}
		remaining = int64(used)
		x.streaming = !s.st.dec.Done()
	}

	var bc *backends.Conn
	var res respOutcome
	var beStart time.Time
	if s.lg.on || s.mxOn() {
		// A reading of its own: the service time (the request's start
		// to here) is the proxy's reading, parsing and routing, which
		// no wait separates from the head's last read. It ends here for
		// the access record and the metrics alike, once a backend is
		// reached (noteBackendStart).
		beStart = s.tick()
		s.lg.cluster = cl.ID
	}
	for attempt := 0; ; attempt++ {
		if s.aborted.Load() {
			return s.abandoned() // the stream was reset, the worker stops or the client left: no backend is tried
		}
		var err error
		fresh := attempt > 0 // a replay: never on another pooled connection
		if x.sticky {
			bc, err = cl.Backends.ConnectStickyAt(s.srv.ctx, s.now, cfg.ConnectTimeout, fresh, s.peerKey, s.stickyIn)
		} else {
			bc, err = cl.Backends.ConnectAt(s.srv.ctx, s.now, cfg.ConnectTimeout, fresh, s.peerKey)
		}
		if err != nil {
			s.srv.opt.Log.Debugf("cluster %s: %v", cl.ID, err)
			return s.answer(cfg, cl, 503)
		}
		// Connect may have waited (dials, a failed one before a pooled
		// connection, an HTTP/2 stream slot), even for a reused connection.
		s.tick()
		// The exchange begins: since before bc, which the watch reads
		// first (watch.go).
		s.watchFrom(watchStamp(s.now))
		s.bc.Store(bc)
		if s.aborted.Load() {
			// abort ran between the check above and the store: it may
			// not have seen bc (one of the two sees the other's write).
			s.dropBackend(bc)
			return s.abandoned()
		}
		s.lg.noteBackend(bc.Backend)
		s.noteBackendStart(beStart)
		deadline.Write(bc, &bc.WriteDL, s.now, cfg.BackTimeout)
		if sc, ok := s.conn.(*streamConn); ok {
			sc.forwarded.Store(true)
		}
		var wrote int
		wrote, err = bc.Write(s.out)
		s.tick()
		if err != nil {
			s.dropBackend(bc)
			if s.left.Load() {
				return s.abandoned()
			}
			if bc.Reused && attempt == 0 && (wrote == 0 || idempotent(x.methodBytes())) {
				continue // a keep-alive connection the backend had closed
			}
			return s.answer(cfg, cl, 502)
		}
		s.mxSent(bc.Backend.ID, bc.ConnectTime)
		if x.streaming {
			s.bodyComplete.Store(false)
			s.bodyWrote.Store(s.now.UnixNano())
			s.copying = bc
			if s.copyDone == nil {
				s.copyDone = make(chan bodyResult, 1)
			}
			go s.copyBody(cfg, bc, chunked, remaining)
		}
		res = s.readResponseHead(&x, bc)
		// A reused connection that ends before any answer byte was most
		// likely closed by the backend as the request went out: an
		// idempotent request is sent again once, on a new connection, when
		// it is still wholly held here (no body, or all of it in s.out).
		// The backend may have processed it: another request is not (RFC
		// 9112 §9.3.1.1), unless the connection is an HTTP/2 stream, which
		// ends so only for a request the backend did not process (GOAWAY
		// past it, REFUSED_STREAM). Otherwise the client gets 502, counted
		// in ReplayImpossible.
		if res == respNothing && attempt == 0 && bc.Reused {
			if !x.streaming && (bc.Stream || idempotent(x.methodBytes())) {
				s.dropBackend(bc)
				continue
			}
			s.srv.ReplayImpossible.Add(1)
		}
		break
	}

	if res != respOK {
		if x.streaming {
			s.joinCopier(&x, bc)
			if x.copyRes.status != 0 {
				res = respClientFault
			} else if x.copyRes.clientGone {
				res = respClientGone
			} else if !x.copyRes.aborted && isTimeout(x.copyRes.err) {
				// The backend stopped reading the body: silent for the
				// back timeout, as one that does not answer.
				res = respTimeout
			}
		}
		if s.left.Load() {
			res = respClientGone // whatever the closed connection made of the rest
		}
		s.releaseBackend(bc, false)
		switch res {
		case respTimeout:
			return s.answer(cfg, cl, 504)
		case respClientFault:
			return s.answer(cfg, cl, x.copyRes.status)
		case respClientGone:
			s.lg.noteLeft()
			return false
		}
		return s.answer(cfg, cl, 502)
	}
	return s.respond(&x, bc)
}

// admitIP takes the connection's slot for cl under the per-IP cap (once
// per connection and cluster, kept until the connection ends), before any
// backend is contacted. When the cap refuses it, s.retry is set for the
// 429 answer.
func (s *session) admitIP(cl *Cluster) bool {
	caps := s.srv.opt.IPCaps
	if caps == nil {
		return true
	}
	if s.h2b != nil {
		return s.h2b.admitIP(s, caps, cl) // the HTTP/2 connection's slot (h2bridge.go)
	}
	for _, sl := range s.slots {
		if sl.Cluster == cl.ID {
			return true
		}
	}
	sl := ipcap.Slot{Cluster: cl.ID, IP: s.peerAddr}
	ok, held := caps.Acquire(sl, caps.Cap(cl.MaxConnsPerIP))
	if held {
		s.slots = append(s.slots, sl)
	}
	if !ok {
		s.retry = s.retry[:0]
		if r := caps.RetryAfter(cl.RetryAfter); r > 0 {
			s.retry = strconv.AppendUint(s.retry, uint64(r), 10)
		}
	}
	return ok
}

// dropBackend closes a backend connection whose exchange failed.
func (s *session) dropBackend(bc *backends.Conn) {
	s.bc.Store(nil)
	s.watchFrom(0)
	bc.ReleaseAt(false, s.now)
}

// releaseBackend gives bc back, to its pool when reusable, idle since the
// session's last clock reading (at worst before its last write to the
// client: the connection then looks older than it is, never younger).
func (s *session) releaseBackend(bc *backends.Conn, reusable bool) {
	s.bc.Store(nil)
	s.watchFrom(0)
	if s.aborted.Load() {
		reusable = false // abort may have closed it (see abort)
	}
	bc.ReleaseAt(reusable, s.now)
}

// joinCopier waits for the request body copier. When the copier has not
// consumed the whole body from the client yet, it is interrupted first (the
// response is complete, or failed, without it); when it has, only its last
// write to the backend is left, and it is waited for.
func (s *session) joinCopier(x *exchange, bc *backends.Conn) {
	if !x.streaming || x.copyJoined {
		return
	}
	select {
	case x.copyRes = <-s.copyDone:
	default:
		if s.bodyComplete.Load() {
			x.copyRes = <-s.copyDone
			break
		}
		x.copyRes.aborted = true
		bc.Conn.Close()
		s.conn.SetReadDeadline(time.Unix(1, 0))
		<-s.copyDone
		s.crd.Forget()
		// Whatever the copier saw after the interruption is ours, not a
		// fault of the client; the backend connection is closed anyway.
		x.copyRes.err = errCopyAborted
	}
	x.copyJoined = true
	s.copying = nil
}

// respOutcome is the result of waiting for a response head.
type respOutcome uint8

const (
	respOK          respOutcome = iota
	respNothing                 // the backend closed or reset before sending a byte
	respBad                     // malformed response, or the backend failed mid-head: 502
	respTimeout                 // no response within the back timeout: 504
	respClientFault             // the copier found a fault in the request body
	respClientGone              // the client went away
)

var slash = []byte("/")

var errCopyAborted = errors.New("request body copy interrupted")

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// maxInterim bounds the interim (1xx) responses before a final one, as
// the HTTP/2 backend client does (backends/h2c).
const maxInterim = 8

// readResponseHead reads the backend's final response head into s.st.resp
// (bbuf[br:br+resp.HeadLen]), forwarding interim 1xx responses to an
// HTTP/1.1 client (an HTTP/2 stream's streamConn turns them into HEADERS
// frames).
func (s *session) readResponseHead(x *exchange, bc *backends.Conn) respOutcome {
	cfg := x.cfg
	s.br, s.bw = 0, 0
	s.bscan.Reset()
	s.ackAsked = false
	got, interims, gotContinue := false, 0, false
	deadline.Read(bc, &bc.ReadDL, s.now, cfg.BackTimeout) // forward ticked after the write
	for {
		if s.br < s.bw {
			n, err := s.bscan.Scan(s.bbuf[s.br:s.bw])
			if err != nil {
				return respBad
			}
			if n > 0 {
				resp := &s.st.resp
				if err := http1.ParseResponse(resp, s.bbuf[s.br:s.br+n], x.methodBytes(), nil); err != nil {
					s.srv.opt.Log.Debugf("backend %s: %v", bc.Backend.AddrString(), err)
					return respBad
				}
				switch {
				case resp.Status == 101:
					// RFC 9110 §7.8: never a protocol the client did not
					// ask for (the request's Upgrade, still in s.buf: an
					// upgrade request has no body for the copier to read).
					if !x.upgrade || !upgradeAsked(resp.UpgradeProto, s.st.req.UpgradeProto) {
						return respBad
					}
					return respOK
				case resp.Status >= 200:
					if x.expect && x.hasBody && !gotContinue {
						// A final answer to "Expect: 100-continue" with no
						// 100 first: the backend need not have read the
						// content it did not ask for (RFC 9110 §10.1.1),
						// which the proxy sent as the client did; read as
						// the next request, it would be smuggled into the
						// next exchange on the connection. Not reused.
						x.noReuse = true
					}
					if x.streaming && !s.bodyComplete.Load() {
						// A final answer before the whole body was sent
						// (the copier marks it complete before its last
						// write): the backend did not wait for the body,
						// and may never read it as one; the rest, read
						// as the next request on the connection, would
						// be smuggled into the next exchange (CL.0 on an
						// endpoint that ignores bodies, pause-based
						// desync). Not reused.
						x.noReuse = true
					}
					return respOK
				}
				gotContinue = gotContinue || resp.Status == 100
				// Interim response: a few at most (a backend sending
				// them without end would hold the client to the back
				// timeout, one HEADERS frame each for an HTTP/2 one).
				if interims++; interims > maxInterim {
					return respBad
				}
				s.br += n
				// RFC 9110 §15.2: a proxy MUST forward 1xx responses it
				// did not ask for itself (it adds no Expect), a 100 to a
				// client that sent none included; and a server MUST NOT
				// send one to an HTTP/1.0 client.
				if !x.http10 {
					out := continue100
					if resp.Status != 100 {
						resp.KeepAlive = true
						s.out = http1.AppendResponse(s.out[:0], resp)
						out = s.out
					}
					deadline.Write(s.conn, &s.cwd, s.tick(), cfg.FrontTimeout)
					n, err := s.conn.Write(out)
					s.mx.BytesOut += int64(n)
					s.lg.bytesOut += int64(n)
					if err != nil {
						return respClientGone
					}
				}
				continue
			}
		}
		if s.bw == len(s.bbuf) {
			if s.br == 0 {
				return respBad
			}
			s.bw = copy(s.bbuf, s.bbuf[s.br:s.bw])
			s.br = 0
		}
		if !got && s.bw == 0 {
			// The request just went out: let the other sessions run
			// first, so that the answer is likely here when this read
			// comes instead of a read that finds nothing and parks.
			s.yield(yieldResponse)
		}
		m, err := s.st.bread.readVia(bc.Conn, bc.RawConn(), s.bbuf[s.bw:])
		if s.st.bread.calls != 1 {
			// The read waited for the backend (it parked, or it is no
			// socket's, whose wait is unknown): the response arrived now
			// (its Date, the backend connection's idle time). One that
			// found its bytes at once keeps the reading after the write.
			s.tick()
		}
		if m > 0 {
			s.bw += m
			got = true
			continue
		}
		if s.left.Load() {
			return respClientGone // the watch closed bc: the client left (watch.go)
		}
		switch {
		case isTimeout(err):
			if x.streaming && s.bodyFlowing(cfg, bc) {
				continue
			}
			return respTimeout
		case !got && (err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)):
			return respNothing
		}
		return respBad
	}
}

// bodyFlowing re-arms the wait for the response head when the request
// body the copier streams was written to the backend less than the back
// timeout ago: a backend reading an upload is not silent, and the back
// timeout runs from the body's last write (RFC 9110 §15.6.5 is a timeout
// of the server, not of a slow upload). It reports whether it did.
func (s *session) bodyFlowing(cfg *Listener, bc *backends.Conn) bool {
	last := time.Unix(0, s.bodyWrote.Load())
	if !time.Now().Before(last.Add(cfg.BackTimeout)) {
		return false
	}
	bc.ReadDL.Forget() // the armed deadline passed: re-arm whatever its drift
	deadline.Read(bc, &bc.ReadDL, last, cfg.BackTimeout)
	return true
}

// respond forwards the response whose head is in s.st.resp, then its body. It
// returns whether the client connection may carry another request.
func (s *session) respond(x *exchange, bc *backends.Conn) bool {
	cfg := x.cfg
	resp := &s.st.resp
	backendKA := resp.KeepAlive
	ka := x.clientKA && !s.srv.draining.Load() && (!x.streaming || s.bodyComplete.Load())
	mode := bodyPlain
	switch resp.Body {
	case http1.BodyChunked:
		mode = bodyReencode
		if x.http10 {
			mode, resp.Body, ka = bodyDechunk, http1.BodyClose, false
		}
	case http1.BodyClose:
		if x.http10 {
			mode, ka = bodyUntilClose, false
		} else {
			// Re-chunked, so that the client connection survives.
			mode, resp.Body = bodyRechunk, http1.BodyChunked
		}
	case http1.BodyTunnel:
		ka = false
	}
	resp.KeepAlive = ka
	s.lg.status = resp.Status
	dropIDField(resp, cfg)
	ex := s.st.extra[:0]
	ex = append(ex, http1.Field{Name: cfg.idHeader, Value: s.id[:]})
	if _, ok := resp.Get("date"); !ok {
		// RFC 9110 §6.6.1: a recipient with a clock MUST add the time it
		// received a response without Date to the response it forwards.
		ex = append(ex, http1.Field{Name: nameDate, Value: httpDate(s.now)})
	}
	if x.http10 && ka {
		ex = append(ex, http1.Field{Name: nameConn, Value: valueKA})
	}
	ex = applyHSTS(x.hsts, resp, ex)
	if x.sticky {
		ex = s.appendSetCookie(cfg, bc, ex)
	}
	if x.fe != nil {
		resp.Fields = x.fe.Response.Drop(resp.Fields)
	}
	s.out = s.out[:0]
	if !s.streamHead(x, resp, ex) { // an HTTP/2 stream takes the head as is (h2stream.go)
		s.out = http1.AppendResponse(s.out, resp, ex...)
		if x.fe != nil {
			s.out = appendLines(s.out, x.fe.Response.FieldLines())
		}
	}
	s.br += resp.HeadLen
	s.mx.Status = resp.Status

	if resp.Body == http1.BodyTunnel {
		s.watchFrom(0) // a tunnel's client may half-close: no watch
		s.tunnel(x, bc)
		return false
	}
	clean, clientOK := s.sendBody(x, bc, mode)
	if !clientOK && s.left.Load() {
		s.lg.noteLeft() // the watch closed bc: the client left mid-body
	}
	if x.streaming {
		s.joinCopier(x, bc)
		if x.copyRes.err != nil {
			clean = false
		}
	}
	s.releaseBackend(bc, clean && backendKA && !x.noReuse)
	// Answered before the whole body came (ka is false): what the client
	// still sends must not reset the connection before it has the
	// response (run lingers, once the request is recorded).
	s.linger = clientOK && x.streaming && x.copyRes.aborted
	return clientOK && ka
}
