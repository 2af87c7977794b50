package proxy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/http1"
)

// Answers this package renders itself, when neither the cluster nor the
// listener has a template for them (package answers has no reason phrase
// for 421).
var misdirected = mustCompile(421, "HTTP/1.1 421 Misdirected Request\r\nCache-Control: no-cache\r\n"+
	"Content-Type: text/plain; charset=utf-8\r\n\r\n421 Misdirected Request\n")

func mustCompile(code int, src string) *answers.Template {
	t, err := answers.Compile(code, src)
	if err != nil {
		panic(err)
	}
	return t
}

// defaultAnswer is the built-in answer for code.
func defaultAnswer(code int) *answers.Template {
	if code == 421 {
		return misdirected
	}
	return answers.Default(code)
}

var nameHSTS = []byte("Strict-Transport-Security")

// hostOf returns the host of an authority (host, host:port, [v6]:port),
// without its port and any trailing dot.
func hostOf(auth []byte) []byte {
	if len(auth) > 0 && auth[0] == '[' {
		for i := 1; i < len(auth); i++ {
			if auth[i] == ']' {
				return auth[1:i]
			}
		}
		return auth
	}
	for i := len(auth) - 1; i >= 0; i-- {
		if auth[i] == ':' {
			auth = auth[:i]
			break
		}
		if auth[i] < '0' || auth[i] > '9' {
			break
		}
	}
	if n := len(auth); n > 1 && auth[n-1] == '.' {
		auth = auth[:n-1]
	}
	return auth
}

// misdirectedRequest reports whether req must get 421 under strict SNI
// binding on an HTTPS listener: a client that sent SNI is bound to that
// name; one that sent none got the default certificate and is bound to the
// hosts that certificate covers (Listener.DefaultNames).
func (s *session) misdirectedRequest(cfg *Listener, req *http1.Request) bool {
	if cfg.TLS == nil || !cfg.StrictSNI {
		return false
	}
	host := hostOf(req.Authority)
	if len(s.sni) > 0 {
		return !equalFoldBytes(host, s.sni)
	}
	return !cfg.defaultCovers(host)
}

// defaultCovers reports whether the default certificate covers host (no
// port, no trailing dot): one of its IP addresses, its exact name, or a
// wildcard name covering host's first label.
func (l *Listener) defaultCovers(host []byte) bool {
	if len(host) == 0 {
		return false
	}
	if ip, err := netip.ParseAddr(string(host)); err == nil {
		return slices.Contains(l.defIPs, ip.Unmap())
	}
	h := strings.ToLower(string(host))
	if l.defNames[h] {
		return true
	}
	label, rest, ok := strings.Cut(h, ".")
	return ok && label != "" && rest != "" && l.defNames["*."+rest]
}

// redirectHTTPS answers 301 to the https URL of req (the cluster's or
// listener's 301 template, else the default) and closes the connection.
// It returns false, for the serve loop.
func (s *session) redirectHTTPS(cfg *Listener, cl *Cluster, req *http1.Request) bool {
	auth := req.Authority
	if len(auth) == 0 {
		auth = cfg.hostValue
	}
	host := hostOf(auth)
	out := append(s.scratch[:0], "https://"...)
	v6 := len(auth) > 0 && auth[0] == '['
	if v6 {
		out = append(out, '[')
	}
	out = appendVisible(out, host)
	if v6 {
		out = append(out, ']')
	}
	if p := cl.HTTPSRedirectPort; p != 0 && p != 443 {
		out = append(out, ':')
		out = strconv.AppendUint(out, uint64(p), 10)
	}
	path := req.Path
	if len(path) == 0 || path[0] != '/' {
		out = append(out, '/')
	}
	out = appendVisible(out, path)
	s.scratch = out
	return s.answerTo(cfg, cl, 301, out)
}

// appendVisible appends b without control bytes and spaces (the parser
// refuses them already; this keeps the Location line whole regardless).
func appendVisible(dst, b []byte) []byte {
	for _, c := range b {
		if c > 0x20 && c != 0x7f {
			dst = append(dst, c)
		}
	}
	return dst
}

// hstsFor returns the policy of a request routed by the frontend key on
// cfg, or nil.
func hstsFor(cfg *Listener, key string) *HSTS {
	if cfg.TLS == nil {
		return nil
	}
	h := cfg.HSTS
	if fh, ok := cfg.FrontendHSTS[key]; ok {
		h = fh
	}
	if h == nil || h.Value == "" {
		return nil
	}
	return h
}

// applyHSTS adds h's field to resp's extra fields ex: unless the backend
// sent its own and h does not force the replacement (its fields are then
// dropped from resp).
func applyHSTS(h *HSTS, resp *http1.Response, ex []http1.Field) []http1.Field {
	if h == nil {
		return ex
	}
	fs := resp.Fields
	k := 0
	for i := range fs {
		if equalFold(fs[i].Name, "strict-transport-security") {
			if !h.ForceReplace {
				return ex
			}
			continue
		}
		fs[k] = fs[i]
		k++
	}
	resp.Fields = fs[:k]
	v := h.value
	if v == nil {
		v = []byte(h.Value)
	}
	return append(ex, http1.Field{Name: nameHSTS, Value: v})
}
