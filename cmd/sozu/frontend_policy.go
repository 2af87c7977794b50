package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Flags of `frontend http|https add` beyond the routing rule: what the
// proxy does with a matched request (RequestHttpFrontend fields 8-16), and
// the HSTS flags, shared by `frontend https add` and `listener https
// update`. The supervisor checks them with the workers' own code
// (worker/settings) and refuses what a worker would not honour.
var (
	fRedirect = &flagSpec{long: "redirect", kind: kindEnum, metavar: "POLICY", help: "answer with a redirect instead of forwarding (unauthorized: 401)",
		choices: []string{"forward", "permanent", "found", "permanent_redirect", "unauthorized"}}
	fRedirectScheme = &flagSpec{long: "redirect-scheme", kind: kindEnum, metavar: "SCHEME", help: "scheme of the redirect Location",
		choices: []string{"use_same", "use_http", "use_https"}}
	fRedirectTemplate = &flagSpec{long: "redirect-template", kind: kindString, metavar: "TEMPLATE", help: "answer template of the redirect"}
	fRewriteHost      = &flagSpec{long: "rewrite-host", kind: kindString, metavar: "TEMPLATE", help: "Host sent to the backend or in the redirect ($HOST[n], $PATH[n] captures)"}
	fRewritePath      = &flagSpec{long: "rewrite-path", kind: kindString, metavar: "TEMPLATE", help: "path sent to the backend or in the redirect"}
	fRewritePort      = &flagSpec{long: "rewrite-port", kind: kindUint, max: 65535, metavar: "PORT", help: "port of the redirect Location"}
	fRequiredAuth     = &flagSpec{long: "required-auth", kind: kindBool, help: "require basic auth (the cluster's --authorized-hash credentials)"}
	fHeader           = &flagSpec{long: "header", kind: kindString, repeatable: true, metavar: "WHERE:NAME=VALUE",
		help: "add a header to the request, the response or both (WHERE); an empty VALUE removes NAME"}

	fHSTS               = &flagSpec{long: "hsts", kind: kindBool, help: "send Strict-Transport-Security (--hsts=false: never, whatever the listener says)"}
	fHSTSMaxAge         = &flagSpec{long: "hsts-max-age", kind: kindUint, max: math.MaxUint32, metavar: "SECONDS", help: "HSTS max-age (implies --hsts)"}
	fHSTSSubdomains     = &flagSpec{long: "hsts-include-subdomains", kind: kindBool, help: "HSTS includeSubDomains (implies --hsts)"}
	fHSTSPreload        = &flagSpec{long: "hsts-preload", kind: kindBool, help: "HSTS preload (implies --hsts)"}
	fHSTSForceReplace   = &flagSpec{long: "hsts-force-replace-backend", kind: kindBool, help: "replace a backend's own Strict-Transport-Security (implies --hsts)"}
	frontendPolicyFlags = []*flagSpec{fRedirect, fRedirectScheme, fRedirectTemplate, fRewriteHost, fRewritePath, fRewritePort, fRequiredAuth, fHeader}
	hstsFlags           = []*flagSpec{fHSTS, fHSTSMaxAge, fHSTSSubdomains, fHSTSPreload, fHSTSForceReplace}
	redirectPolicies    = map[string]command.RedirectPolicy{"forward": command.RedirectPolicy_FORWARD, "permanent": command.RedirectPolicy_PERMANENT, "found": command.RedirectPolicy_FOUND, "permanent_redirect": command.RedirectPolicy_PERMANENT_REDIRECT, "unauthorized": command.RedirectPolicy_UNAUTHORIZED}
	redirectSchemes     = map[string]command.RedirectScheme{"use_same": command.RedirectScheme_USE_SAME, "use_http": command.RedirectScheme_USE_HTTP, "use_https": command.RedirectScheme_USE_HTTPS}
	headerPositions     = map[string]command.HeaderPosition{"request": command.HeaderPosition_REQUEST, "response": command.HeaderPosition_RESPONSE, "both": command.HeaderPosition_BOTH}
)

// applyFrontendPolicy sets the policy fields of f from the flags given.
func applyFrontendPolicy(f *command.RequestHttpFrontend, v *values) error {
	if v.has("redirect") {
		f.Redirect = ptr(redirectPolicies[v.str("redirect")])
	}
	if v.has("redirect-scheme") {
		f.RedirectScheme = ptr(redirectSchemes[v.str("redirect-scheme")])
	}
	f.RedirectTemplate = v.optStr("redirect-template")
	f.RewriteHost = v.optStr("rewrite-host")
	f.RewritePath = v.optStr("rewrite-path")
	if v.has("rewrite-port") {
		f.RewritePort = ptr(v.u32("rewrite-port", 0))
	}
	if v.has("required-auth") {
		f.RequiredAuth = ptr(v.flag("required-auth"))
	}
	for _, raw := range v.list("header") {
		h, err := parseHeaderFlag(raw)
		if err != nil {
			return err
		}
		f.Headers = append(f.Headers, h)
	}
	f.Hsts = hstsFromFlags(v)
	return nil
}

// parseHeaderFlag reads "WHERE:NAME=VALUE" with WHERE request, response
// or both. NAME must be an HTTP token; VALUE may be empty.
func parseHeaderFlag(raw string) (*command.Header, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid value %q for --header: %s (want request|response|both:NAME=VALUE)", raw, why)
	}
	where, rest, ok := strings.Cut(raw, ":")
	pos, known := headerPositions[strings.ToLower(where)]
	if !ok || !known {
		return nil, bad("it does not start with request:, response: or both:")
	}
	name, val, ok := strings.Cut(rest, "=")
	if !ok {
		return nil, bad("no = after the header name")
	}
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return !isTokenChar(r) }) {
		return nil, bad(fmt.Sprintf("header name %q is not an HTTP token", name))
	}
	return &command.Header{Position: pos.Enum(), Key: ptr(name), Val: ptr(val)}, nil
}

// isTokenChar: RFC 9110 tchar.
func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// hstsFromFlags is the HstsConfig of the --hsts* flags, or nil when none
// is given. Any of them enables HSTS unless --hsts=false says otherwise.
func hstsFromFlags(v *values) *command.HstsConfig {
	given := false
	for _, f := range hstsFlags {
		given = given || v.has(f.long)
	}
	if !given {
		return nil
	}
	h := &command.HstsConfig{Enabled: ptr(true)}
	if v.has("hsts") {
		h.Enabled = ptr(v.flag("hsts"))
	}
	if v.has("hsts-max-age") {
		h.MaxAge = ptr(v.u32("hsts-max-age", 0))
	}
	if v.has("hsts-include-subdomains") {
		h.IncludeSubdomains = ptr(v.flag("hsts-include-subdomains"))
	}
	if v.has("hsts-preload") {
		h.Preload = ptr(v.flag("hsts-preload"))
	}
	if v.has("hsts-force-replace-backend") {
		h.ForceReplaceBackend = ptr(v.flag("hsts-force-replace-backend"))
	}
	return h
}
