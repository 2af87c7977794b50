package proxy

import (
	"strconv"

	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/router"
)

// Bounds of rewritten values: a template repeating captures could
// otherwise make a request head of any size.
const (
	maxRewrittenHost   = 255
	maxRewrittenTarget = http1.DefaultMaxStartLine
)

// rewrite is the outcome of a frontend's rewrites for one request: the new
// authority and request-target, slices of the session's rw buffer, nil
// when unchanged.
type rewrite struct {
	authority []byte // host[:port], as forwarded in Host
	host      []byte // authority without its port (a redirection's Location gets its own)
	target    []byte // path and the request's query
}

// serveFrontend goes on with a request that route, carrying fe, matched:
// it redirects, refuses or authenticates as fe says, then forwards with
// fe's rewrites and header edits. path is the request's path as routed.
func (s *session) serveFrontend(cfg *Listener, route *router.Route, fe *Frontend, req *http1.Request, path []byte) bool {
	s.routeKey = route.Key
	cl := cfg.Clusters[route.ClusterID] // nil without a cluster
	var rw rewrite
	if fe.Rewrites() && fe.Redirect != 401 {
		var status int
		if rw, status = s.rewrite(cfg, route, fe, req, path); status != 0 {
			return s.answer(cfg, cl, status)
		}
	}
	switch fe.Redirect {
	case 301, 302, 308:
		return s.redirectTo(cfg, cl, fe, req, &rw)
	case 401:
		var ch []byte
		if cl != nil {
			ch = cl.WWWAuthenticate
		}
		return s.answerWith(cfg, cl, 401, nil, nil, ch)
	}
	if route.Deny {
		return s.answer(cfg, nil, 404)
	}
	if cl == nil {
		return s.answer(cfg, &Cluster{ID: route.ClusterID}, 503)
	}
	if cl.HTTPSRedirect && cfg.TLS == nil {
		// Before authentication: credentials never cross plain HTTP for
		// a cluster that wants HTTPS.
		return s.redirectHTTPS(cfg, cl, req)
	}
	if fe.RequiredAuth {
		if !cl.Credentials.Check(req) {
			ch := cl.WWWAuthenticate
			if len(ch) == 0 {
				ch = defaultChallenge
			}
			return s.answerWith(cfg, cl, 401, nil, nil, ch)
		}
		stripAuthorization(req)
	}
	if cl.Backends.Len() == 0 {
		return s.answer(cfg, cl, 503)
	}
	if rw.authority != nil {
		req.Fields = dropNamed(req.Fields, "x-forwarded-host")
		s.xfHost = append(s.xfHost[:0], req.Authority...)
		if len(s.xfHost) == 0 {
			s.xfHost = append(s.xfHost, cfg.hostValue...)
		}
		req.Authority = rw.authority
	}
	if rw.target != nil && (req.Form == http1.FormOrigin || req.Form == http1.FormAbsolute) {
		req.Form, req.Target, req.Path = http1.FormOrigin, rw.target, rw.target
	}
	req.Fields = fe.Request.Drop(req.Fields)
	return s.forward(cfg, cl, req, hstsFor(cfg, route.Key), fe)
}

var defaultChallenge = []byte(DefaultChallenge)

// rewrite expands fe's templates for req into s.rw. A status is returned
// when the result cannot be forwarded: a host that is not one (400), a
// path that is too long (414) or that the router and a backend could read
// differently (400, as for a request's own path).
func (s *session) rewrite(cfg *Listener, route *router.Route, fe *Frontend, req *http1.Request, path []byte) (rewrite, int) {
	groups := fe.RewriteHost != nil && fe.RewriteHost.UsesGroups() || fe.RewritePath != nil && fe.RewritePath.UsesGroups()
	route.Capture(&s.st.caps, req.Authority, path, groups)
	rw := s.rw[:0]
	defer func() { s.rw = rw }() // keep the buffer, grown or not
	var out rewrite
	if fe.RewriteHost != nil || fe.RewritePort != 0 {
		if fe.RewriteHost != nil {
			var ok bool
			rw, ok = fe.RewriteHost.Append(rw, &s.st.caps, maxRewrittenHost)
			if !ok || len(rw) == 0 || !validHost(rw) {
				return out, http1.StatusBadRequest
			}
		} else {
			auth := req.Authority
			if len(auth) == 0 {
				auth = cfg.hostValue
			}
			rw = append(rw, auth...)
		}
		hostEnd := len(hostPart(rw))
		if fe.RewritePort != 0 {
			rw = append(rw[:hostEnd], ':')
			rw = strconv.AppendUint(rw, uint64(fe.RewritePort), 10)
		}
		out.authority, out.host = rw[:len(rw):len(rw)], rw[:hostEnd:hostEnd]
	}
	if fe.RewritePath != nil {
		start := len(rw)
		rw = append(rw, '/') // unless the expansion starts with one
		var ok bool
		rw, ok = fe.RewritePath.Append(rw, &s.st.caps, start+maxRewrittenTarget)
		if ok && len(rw) > start+1 && rw[start+1] == '/' {
			rw = append(rw[:start], rw[start+1:]...)
		}
		rw = append(rw, queryOf(req)...)
		if !ok || len(rw)-start > maxRewrittenTarget {
			return out, http1.StatusRequestURITooLong
		}
		if ambiguousPath(rw[start:]) {
			return out, http1.StatusBadRequest
		}
		out.target = rw[start:len(rw):len(rw)]
	}
	return out, 0
}

// queryOf returns the query of req's target, '?' included, or nil.
func queryOf(req *http1.Request) []byte {
	for i, c := range req.Path {
		if c == '?' {
			return req.Path[i:]
		}
	}
	return nil
}

// validHost reports whether h is a host[:port] the proxy may send in Host
// and Location: name characters, or a bracketed IPv6 literal, and an
// optional port.
func validHost(h []byte) bool {
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// hostPart returns an authority without its port: "[v6]" keeps its
// brackets, a name its trailing dot.
func hostPart(auth []byte) []byte {
	if len(auth) > 0 && auth[0] == '[' {
		for i := 1; i < len(auth); i++ {
			if auth[i] == ']' {
				return auth[:i+1]
			}
		}
		return auth
	}
	for i := len(auth) - 1; i >= 0; i-- {
		if auth[i] == ':' {
			return auth[:i]
		}
		if auth[i] < '0' || auth[i] > '9' {
			break
		}
	}
	return auth
}

// redirectTo answers fe's redirection to the request's URL, rewritten:
// scheme://host[:port]/path?query, where the port is fe's RewritePort,
// else for https the cluster's https_redirect_port, else none (the
// request's port is dropped, as upstream does), and the default port of
// the scheme is left out.
func (s *session) redirectTo(cfg *Listener, cl *Cluster, fe *Frontend, req *http1.Request, rw *rewrite) bool {
	https := fe.RedirectScheme == SchemeHTTPS || fe.RedirectScheme == SchemeSame && cfg.TLS != nil
	loc := s.scratch[:0]
	if https {
		loc = append(loc, "https://"...)
	} else {
		loc = append(loc, "http://"...)
	}
	host := rw.host
	if host == nil {
		auth := req.Authority
		if len(auth) == 0 {
			auth = cfg.hostValue
		}
		host = hostPart(auth)
	}
	loc = appendVisible(loc, host)
	port := fe.RewritePort
	if port == 0 && https && cl != nil {
		port = cl.HTTPSRedirectPort
	}
	if port != 0 && !(https && port == 443) && !(!https && port == 80) {
		loc = append(loc, ':')
		loc = strconv.AppendUint(loc, uint64(port), 10)
	}
	target := rw.target
	if target == nil {
		target = req.Path
		if len(target) == 0 || target[0] != '/' {
			loc = append(loc, '/')
		}
	}
	loc = appendVisible(loc, target)
	s.scratch = loc
	return s.answerWith(cfg, cl, fe.Redirect, fe.RedirectTemplate, loc, nil)
}

// dropNamed removes the fields named by the lower-case name, in place.
func dropNamed(fs []http1.Field, name string) []http1.Field {
	k := 0
	for i := range fs {
		if equalFold(fs[i].Name, name) {
			continue
		}
		fs[k] = fs[i]
		k++
	}
	return fs[:k]
}
