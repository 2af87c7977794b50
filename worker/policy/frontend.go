// Package policy holds what a frontend and a cluster ask of the HTTP proxy
// beyond routing, compiled from their settings: redirects, rewrites, header
// edits, basic-auth credentials. The proxy applies them; package settings
// builds and checks them, for workers and the supervisor alike.
package policy

import (
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/router"
)

// DefaultIDHeader is the request id field of a listener that names none.
const DefaultIDHeader = "Sozu-Id"

// Scheme is the scheme of a redirection's Location (upstream's
// RedirectScheme).
type Scheme uint8

// Redirection schemes.
const (
	SchemeSame  Scheme = iota // the request's: https on an HTTPS listener, else http
	SchemeHTTP                // http
	SchemeHTTPS               // https
)

// Frontend is what a frontend asks of the proxy besides routing to its
// cluster (upstream's redirect, redirect_scheme, redirect_template,
// rewrite_*, required_auth and headers). A router.Route carries it as its
// Policy; a route without one only forwards. Immutable once in a Listener.
type Frontend struct {
	// Redirect answers instead of forwarding: 301, 302 or 308 redirect to
	// the request's URL, rewritten (even without a cluster); 401 refuses,
	// with the cluster's challenge when it has one. 0 forwards.
	Redirect int
	// RedirectScheme is the scheme of a redirection's Location.
	RedirectScheme Scheme
	// RedirectTemplate renders the redirection, before the cluster's and
	// the listener's answers for its status; nil for those.
	RedirectTemplate *answers.Template
	// RewriteHost and RewritePath, when set, replace the host and the path
	// (the query stays) of the forwarded request and of a redirection's
	// Location. Their captures are those of the rule that routed the request.
	RewriteHost, RewritePath *router.Template
	// RewritePort, when not 0, is the port of the forwarded Host and of a
	// redirection's Location.
	RewritePort uint16
	// RequiredAuth demands HTTP basic credentials of an account of the
	// cluster's Credentials (else 401 with the cluster's challenge, or
	// DefaultChallenge). Checked credentials are not forwarded.
	RequiredAuth bool
	// Request and Response are the header edits of each direction, nil
	// for none. Response edits apply to the backend's responses, not to
	// the proxy's own answers (as upstream).
	Request, Response *HeaderEdits
}

// Rewrites reports whether fe rewrites the host, the path or the port.
func (fe *Frontend) Rewrites() bool {
	return fe.RewriteHost != nil || fe.RewritePath != nil || fe.RewritePort != 0
}
