package supervisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/peercred"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/proto/redact"
	"github.com/sozu-go/sozu/supervisor/admission"
	"github.com/sozu-go/sozu/supervisor/identity"
)

// clientWriteTimeout bounds how long a response may wait for a client that
// does not read; the connection is closed after it.
const clientWriteTimeout = 10 * time.Second

// nonAdminMaxFrame bounds the frames a peer without the admin role may
// send (read-only or no role). Their verbs need a few hundred bytes; a
// request is decoded before admission (its decode cost is bounded as any
// role's: frame.CostLimit), and a smaller frame is less to read and decode
// only to refuse.
const nonAdminMaxFrame = 64 << 10

// readMax is the largest frame c's peer may send: max_command_buffer_size
// for an admin, at most nonAdminMaxFrame for anyone else.
func (c *session) readMax() int {
	if c.ident.Role == admission.Admin || (c.max > 0 && c.max <= nonAdminMaxFrame) {
		return c.max
	}
	return nonAdminMaxFrame
}

// frameError is the message of a bad frame read from c's peer.
func (c *session) frameError(err error) string {
	var tl *frame.TooLargeError
	if errors.As(err, &tl) && c.ident.Role != admission.Admin && tl.Max == nonAdminMaxFrame {
		return err.Error() + " for a peer without the admin role"
	}
	return err.Error()
}

// session is one client connection on the command socket. Requests are read
// and handled one after the other, in order; responses (and, for an event
// subscriber, events) are written under mu.
type session struct {
	conn  *net.UnixConn
	id    uint64
	max   int
	key   peerKey           // the peer's uid, for its session slot and refusal records
	ident identity.Identity // who is on the other end, resolved at accept
	trace *trace            // the request being handled, for its audit records

	mu     sync.Mutex
	broken bool
}

// send writes one response frame. It reports false when the connection is
// unusable; the caller then stops handling it.
func (c *session) send(r *command.Response) bool {
	if t := c.trace; t != nil && r.GetStatus() != command.ResponseStatus_PROCESSING {
		t.terminal = r // sent by audited once the completion is recorded
		return true
	}
	return c.write(r)
}

// write writes one frame now. It is the only method other goroutines (the
// event forwarder) may call: send reads trace, which the session's own
// goroutine owns. Every answer and event passes here, and leaves redacted
// (redact.Response: no private key, password hash or header value, for
// any role).
func (c *session) write(r *command.Response) bool {
	r = redact.Response(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return false
	}
	c.conn.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
	if err := frame.WriteMessage(c.conn, r, c.max); err != nil {
		var tl *frame.TooLargeError
		if errors.As(err, &tl) {
			// Nothing was written: tell the client instead of dropping it.
			msg := fmt.Sprintf("response too large for the command socket (%d bytes, max %d)", tl.Length, tl.Max)
			if frame.WriteMessage(c.conn, failure(msg), c.max) == nil {
				return true
			}
		}
		c.broken = true
		c.conn.Close()
		return false
	}
	return true
}

func (c *session) ok(msg string, content *command.ResponseContent) bool {
	return c.send(&command.Response{Status: command.ResponseStatus_OK.Enum(), Message: proto.String(msg), Content: content})
}

func (c *session) processing(msg string) bool {
	return c.send(&command.Response{Status: command.ResponseStatus_PROCESSING.Enum(), Message: proto.String(msg)})
}

func (c *session) fail(msg string) bool { return c.send(failure(msg)) }

func failure(msg string) *command.Response {
	return &command.Response{Status: command.ResponseStatus_FAILURE.Enum(), Message: proto.String(msg)}
}

// acceptLoop accepts command-socket connections. Each gets a session slot
// (sessionSlots: the per-uid cap, the slots kept for admins, the total) or
// is refused: answered one FAILURE naming the limit, audited as
// command.refused (verb session.connect) and closed. The peer's kernel
// credentials decide; they are read here (getsockopt and /proc, never the
// user database), so a slow lookup never holds up the loop.
func (s *Supervisor) acceptLoop() {
	var next uint64
	for {
		conn, err := s.sock.AcceptUnix()
		if err != nil {
			select {
			case <-s.stopped:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.acceptPaused() // a hand-over paused accepting (upgrade.go)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warnf("command socket accept: %v", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and friends: do not spin
			continue
		}
		next++
		cred, _ := s.ident.Proc.FromConn(conn) // not Known on error: serve logs it
		key := keyOf(cred)
		c := &session{conn: conn, id: next, max: int(s.cfg.MaxCommandBufferSize), key: key}
		role := s.ident.Policy.Role(cred)
		if role == admission.None {
			// Nothing is allowed to it: it gets no session slot, so that
			// no-role peers reconnecting before the idle timeout never
			// take the slots of those with a role.
			s.refuseNoRole(c, cred)
			continue
		}
		if why := s.slots.take(key, role == admission.Admin); why != "" {
			// Until Resolve, what the kernel said is all there is.
			c.ident = identity.Identity{Session: ulid.Make(), Client: next, Cred: cred, Role: role,
				Comm: peercred.Unknown, User: peercred.Unknown, Socket: s.ident.Socket, Connected: time.Now()}
			s.refuseConn(c, why)
			continue
		}
		go s.serve(c)
	}
}

// refuseConn answers c one FAILURE saying why, records the refusal and
// closes c, in a goroutine of its own (the identity lookup may take
// peer_lookup_timeout). When maxRefusing refusals are already under way,
// c is closed at once and only counted in its peer's refusal summary.
func (s *Supervisor) refuseConn(c *session, why string) {
	select {
	case s.refusing <- struct{}{}:
	default:
		c.conn.Close()
		s.refusals.suppress(c.key, s.connRefusal(c, why))
		return
	}
	go func() {
		defer func() { <-s.refusing }()
		defer c.conn.Close()
		if id, err := s.ident.Resolve(c.conn, c.id); err == nil {
			c.ident = id
		}
		c.fail(why)
		if s.recordRefusal(c, audit.CodeCommandRefused, nil, audit.VerbSessionConnect, "too_many_sessions", why) {
			s.log.WithFields(c.ident.Fields()).Warn(why)
		}
	}()
}

// noRoleRequestTimeout bounds how long a peer with no role may take to
// send the request it is refused.
const noRoleRequestTimeout = 5 * time.Second

// refuseNoRole serves a peer whose credentials give it no role, outside
// the session slots: it reads one request (within noRoleRequestTimeout),
// answers the admission refusal, records it (rate-limited per uid, as
// every refusal) and closes the connection. It shares maxRefusing with
// refuseConn: beyond it, c is closed at once and only counted.
func (s *Supervisor) refuseNoRole(c *session, cred peercred.Cred) {
	c.ident = identity.Identity{Session: ulid.Make(), Client: c.id, Cred: cred, Role: admission.None,
		Comm: peercred.Unknown, User: peercred.Unknown, Socket: s.ident.Socket, Connected: time.Now()}
	d := admission.Decide(s.ident.Policy, c.ident.Cred, "")
	select {
	case s.refusing <- struct{}{}:
	default:
		c.conn.Close()
		rec := s.connRefusal(c, d.Reason)
		rec.ErrorCode = "admission_denied"
		s.refusals.suppress(c.key, rec)
		return
	}
	go func() {
		defer func() { <-s.refusing }()
		defer c.conn.Close()
		if id, err := s.ident.Resolve(c.conn, c.id); err == nil {
			c.ident = id
		}
		c.conn.SetReadDeadline(time.Now().Add(noRoleRequestTimeout))
		req := &command.Request{}
		if err := frame.NewReader(c.conn, c.readMax()).BoundDecodeCost().ReadMessage(req); err != nil {
			// Nothing (valid) sent in time: refused all the same.
			if s.recordRefusal(c, audit.CodeCommandRefused, nil, audit.VerbSessionConnect, "admission_denied", d.Reason) {
				s.log.WithFields(c.ident.Fields()).Warn(d.Reason)
			}
			c.fail(d.Reason)
			return
		}
		d := admission.Decide(s.ident.Policy, c.ident.Cred, command.VerbKey(req))
		if s.recordRefusal(c, audit.CodeCommandRefused, req, "", "admission_denied", d.Reason) {
			s.log.WithFields(c.ident.Fields()).WithField("verb", command.VerbKey(req)).Warn(d.Reason)
		}
		c.fail(d.Reason)
	}()
}

// connRefusal is the record of c's refused connection.
func (s *Supervisor) connRefusal(c *session, why string) *audit.Record {
	rec := s.sessionRecord(c, audit.CodeCommandRefused)
	rec.Verb, rec.Result, rec.ErrorCode, rec.Reason = audit.VerbSessionConnect, audit.ResultErr, "too_many_sessions", why
	return rec
}

// serve reads requests from one client and handles each in order. A bad
// frame gets a FAILURE naming the problem, then the connection is closed:
// after a framing error nothing later on the stream can be trusted. A peer
// with no role is answered its refusal, then closed. A session that sends
// nothing for command_session_idle_timeout is told so and closed, unless it
// is an event subscriber (a stream, never idle).
func (s *Supervisor) serve(c *session) {
	defer s.slots.release(c.key)
	defer c.conn.Close()
	defer s.unsubscribe(c)
	defer func() {
		if r := recover(); r != nil {
			s.log.Errorf("internal error serving command session %d (recovered): %v", c.id, r)
			c.fail("internal error: see the supervisor log")
		}
	}()
	// Resolved here, in the session's own goroutine: a slow user lookup
	// (bounded by peer_lookup_timeout) never holds up the accept loop.
	id, err := s.ident.Resolve(c.conn, c.id)
	if err != nil {
		s.log.WithFields(id.Fields()).Warnf("command session: peer credentials: %v", err)
	}
	c.ident = id
	s.log.WithFields(id.Fields()).Debug("command session opened")

	// Every role's frames are bounded in what they cost to decode
	// (frame.CostLimit): a frame that would take more is refused before
	// decoding, as any bad frame.
	r := frame.NewReader(c.conn, c.readMax()).BoundDecodeCost()
	for {
		idle := s.cfg.Admission.SessionIdleTimeout
		if idle > 0 && !s.subscribed(c) {
			c.conn.SetReadDeadline(time.Now().Add(idle))
		} else {
			c.conn.SetReadDeadline(time.Time{})
		}
		req := &command.Request{}
		err := r.ReadMessage(req)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				msg := fmt.Sprintf("command session idle for %v (command_session_idle_timeout): closing it", idle)
				s.log.WithFields(c.ident.Fields()).Debug(msg)
				c.fail(msg)
				return
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				s.log.WithField("session", c.id).Warn("command session closed in the middle of a frame")
				return
			}
			msg := c.frameError(err)
			s.log.WithField("session", c.id).Warnf("bad frame on the command socket: %s", msg)
			s.recordRefusal(c, audit.CodeCommandInvalidFrame, nil, audit.VerbFrameInvalid, "invalid_frame", msg)
			c.fail("invalid frame: " + msg)
			return
		}
		// Admission is decided per request, as upstream does. A refused
		// read-only peer keeps its connection; a peer with no role is
		// answered once, then closed: it has nothing to do here.
		verb := command.VerbKey(req)
		if d := admission.Decide(s.ident.Policy, c.ident.Cred, verb); !d.Allowed {
			if s.recordRefusal(c, audit.CodeCommandRefused, req, "", "admission_denied", d.Reason) {
				s.log.WithFields(c.ident.Fields()).WithField("verb", verb).Warn(d.Reason)
			}
			if !c.fail(d.Reason) || d.Role == admission.None {
				return
			}
			continue
		}
		if !s.audited(c, req) {
			return
		}
	}
}
