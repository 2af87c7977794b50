package settings

import (
	"fmt"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/policy"
	"github.com/sozu-go/sozu/worker/router"
)

// CheckFrontend reports, in order, what a worker would not honour in
// frontend f as written (see FrontendPolicy): an empty result means the
// worker serves it as configured. c is f's cluster, nil when there is none
// yet; idHeader is the request id field of the listener at f's address, ""
// for the default. Issues with Related set depend on c.
func CheckFrontend(f *command.RequestHttpFrontend, c *command.Cluster, idHeader string) []Issue {
	var out []Issue
	note := func(is Issue) { out = append(out, is) }
	r, ok := RuleOf(f, note)
	if !ok {
		return out
	}
	if idHeader == "" || !http1.IsToken(idHeader) {
		idHeader = policy.DefaultIDHeader
	}
	FrontendPolicy(f, &r, c, idHeader, note)
	return out
}

// RuleOf returns the router rule of frontend f, or reports through note
// why there is none (ok false): the router cannot match it, so it cannot
// even be a deny rule, and it is left out.
func RuleOf(f *command.RequestHttpFrontend, note func(Issue)) (r router.Rule, ok bool) {
	r, err := frontendRule(f)
	field := "path"
	if err == nil {
		field, err = router.CheckRule(&r)
	}
	if err != nil {
		note(Issue{Field: field, Index: -1, Msg: err.Error(), Effect: effectLeftOut})
		return r, false
	}
	return r, true
}

// FrontendPolicy compiles what frontend f, whose rule is r and cluster c
// (maybe nil), asks beyond forwarding: nil when nothing. It reports through
// note every setting it does not honour as written. serve is false when
// one of them makes the frontend unsafe to serve (an unknown enum value, a
// malformed rewrite template, a malformed header edit, a port out of
// range): it must then answer 404. Other settings are ignored, the rest
// applied: those that have no effect on this kind of frontend, a redirect
// template that does not compile, and edits of fields the proxy keeps
// control of.
func FrontendPolicy(f *command.RequestHttpFrontend, r *router.Rule, c *command.Cluster, idHeader string, note func(Issue)) (fe *policy.Frontend, serve bool) {
	serve = true
	deny := func(field, format string, args ...any) {
		note(Issue{Field: field, Index: -1, Msg: fmt.Sprintf(format, args...), Effect: effectDeny})
		serve = false
	}
	ignored := func(field, why string) {
		note(Issue{Field: field, Index: -1, Msg: why, Effect: effectIgnored})
	}
	fe = &policy.Frontend{}
	switch f.GetRedirect() {
	case command.RedirectPolicy_FORWARD:
	case command.RedirectPolicy_PERMANENT:
		fe.Redirect = 301
	case command.RedirectPolicy_FOUND:
		fe.Redirect = 302
	case command.RedirectPolicy_PERMANENT_REDIRECT:
		fe.Redirect = 308
	case command.RedirectPolicy_UNAUTHORIZED:
		fe.Redirect = 401
	default:
		deny("redirect", "unknown redirect policy %d", f.GetRedirect())
		return nil, false
	}
	if f.ClusterId == nil && fe.Redirect == 0 {
		// A deny rule (404): nothing else applies.
		for _, s := range setSettings(f) {
			ignored(s, "has no effect: the frontend has no cluster_id and does not redirect (a deny rule, 404)")
		}
		return nil, true
	}
	switch f.GetRedirectScheme() {
	case command.RedirectScheme_USE_SAME:
	case command.RedirectScheme_USE_HTTP:
		fe.RedirectScheme = policy.SchemeHTTP
	case command.RedirectScheme_USE_HTTPS:
		fe.RedirectScheme = policy.SchemeHTTPS
	default:
		deny("redirect_scheme", "unknown redirect scheme %d", f.GetRedirectScheme())
		return nil, false
	}
	if fe.Redirect == 401 {
		// Upstream ignores the rest of an UNAUTHORIZED frontend too.
		for _, s := range setSettings(f) {
			ignored(s, "has no effect: the frontend answers 401 to every request")
		}
		return fe, true
	}
	redirects := fe.Redirect != 0
	if !redirects {
		if fe.RedirectScheme != policy.SchemeSame {
			ignored("redirect_scheme", "has no effect: the frontend does not redirect")
		}
		fe.RedirectScheme = policy.SchemeSame // unused: keep the route on the plain path
	}
	if tmpl := f.GetRedirectTemplate(); tmpl != "" && !redirects {
		ignored("redirect_template", "has no effect: the frontend does not redirect")
	} else if tmpl != "" {
		switch t, err := answers.Compile(fe.Redirect, tmpl); {
		case err != nil:
			note(Issue{Field: "redirect_template", Index: -1, Msg: err.Error(), Effect: effectDefault})
		case t.Status()/100 != 3:
			note(Issue{Field: "redirect_template", Index: -1, Msg: fmt.Sprintf("answers %d, not a redirection", t.Status()), Effect: effectDefault})
		default:
			fe.RedirectTemplate = t
		}
	}
	for _, rt := range []struct {
		src  string
		kind router.TemplateKind
		dst  **router.Template
		name string
	}{{f.GetRewriteHost(), router.HostTemplate, &fe.RewriteHost, "rewrite_host"}, {f.GetRewritePath(), router.PathTemplate, &fe.RewritePath, "rewrite_path"}} {
		if rt.src == "" {
			continue
		}
		t, err := router.ParseTemplate(rt.src, rt.kind)
		if err == nil {
			err = t.Check(r)
		}
		if err != nil {
			deny(rt.name, "%q: %v", rt.src, err)
			continue
		}
		*rt.dst = t
	}
	if f.RewritePort != nil {
		if p := f.GetRewritePort(); p < 1 || p > 65535 {
			deny("rewrite_port", "%d is not in 1-65535", p)
		} else {
			fe.RewritePort = uint16(p)
		}
	}
	if redirects {
		if f.GetRequiredAuth() {
			ignored("required_auth", "has no effect: the frontend redirects")
		}
		if len(f.GetHeaders()) > 0 {
			ignored("headers", "has no effect: the frontend redirects")
		}
	} else {
		fe.RequiredAuth = f.GetRequiredAuth()
		if fe.RequiredAuth && len(c.GetAuthorizedHashes()) == 0 {
			note(Issue{Field: "required_auth", Index: -1, Msg: fmt.Sprintf("cluster %s has no authorized_hashes", f.GetClusterId()),
				Effect: effect401, Related: true})
		}
		edits := make([]policy.HeaderEdit, 0, len(f.GetHeaders()))
		for _, h := range f.GetHeaders() {
			pos := policy.HeaderUnspecified
			if p := h.GetPosition(); p >= command.HeaderPosition_REQUEST && p <= command.HeaderPosition_BOTH {
				pos = policy.HeaderPosition(p)
			}
			edits = append(edits, policy.HeaderEdit{Position: pos, Name: h.GetKey(), Value: h.GetVal()})
		}
		// From the settings rather than the compiled templates, so that
		// the edits are checked the same whether those are valid or not.
		rewritesHost := f.GetRewriteHost() != "" || f.RewritePort != nil
		req, resp, errs := policy.CompileHeaderEdits(edits, idHeader, rewritesHost)
		for _, e := range errs {
			is := Issue{Field: "headers", Index: e.Index, Key: e.Part, Msg: e.Msg, Effect: effectIgnored}
			if !e.Refused {
				is.Effect, serve = effectDeny, false
			}
			note(is)
		}
		fe.Request, fe.Response = req, resp
	}
	if !serve {
		return nil, false
	}
	if *fe == (policy.Frontend{}) {
		return nil, true
	}
	return fe, true
}

// setSettings lists the settings of f, beyond routing and redirect, that
// are not at their defaults, in the order of the configuration.
func setSettings(f *command.RequestHttpFrontend) []string {
	var out []string
	if f.GetRedirectScheme() != command.RedirectScheme_USE_SAME {
		out = append(out, "redirect_scheme")
	}
	if f.GetRedirectTemplate() != "" {
		out = append(out, "redirect_template")
	}
	if f.GetRewriteHost() != "" {
		out = append(out, "rewrite_host")
	}
	if f.GetRewritePath() != "" {
		out = append(out, "rewrite_path")
	}
	if f.RewritePort != nil {
		out = append(out, "rewrite_port")
	}
	if f.GetRequiredAuth() {
		out = append(out, "required_auth")
	}
	if len(f.GetHeaders()) > 0 {
		out = append(out, "headers")
	}
	return out
}

// frontendRule converts a frontend to a router rule; a frontend without
// cluster_id is a deny rule.
func frontendRule(f *command.RequestHttpFrontend) (router.Rule, error) {
	k, _ := state.FrontendKey(f)
	r := router.Rule{
		Hostname: f.GetHostname(),
		Path:     f.GetPath().GetValue(),
		Method:   f.GetMethod(),
		Route:    router.Route{ClusterID: f.GetClusterId(), Deny: f.ClusterId == nil, Key: k},
	}
	switch f.GetPath().GetKind() {
	case command.PathRuleKind_PREFIX:
		r.Kind = router.Prefix
	case command.PathRuleKind_REGEX:
		r.Kind = router.Regex
	case command.PathRuleKind_EQUALS:
		r.Kind = router.Equals
	default:
		return r, fmt.Errorf("unknown path rule kind %v", f.GetPath().GetKind())
	}
	switch f.GetPosition() {
	case command.RulePosition_PRE:
		r.Position = router.Pre
	case command.RulePosition_POST:
		r.Position = router.Post
	default:
		r.Position = router.Tree
	}
	return r, nil
}
