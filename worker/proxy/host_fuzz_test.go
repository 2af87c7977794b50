package proxy

import (
	"bytes"
	"testing"

	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/router"
)

// FuzzHostAgreement: the host a request is routed by (router.NormalizeHost),
// the host strict SNI binding checks (hostOf) and the host a redirection
// keeps (hostPart) are one host, for every authority the HTTP/1.1 parser
// accepts, in a Host field or an absolute-form target: were they to
// differ, a request could be routed to one name while its TLS binding is
// checked against another.
func FuzzHostAgreement(f *testing.F) {
	for _, s := range []string{"shop.example.com", "Shop.Example.COM.:8443", "[2001:db8::1]:443", "[::1]", "a:", "127.0.0.1:80", "x.", "a:b", "[v1.x]:1", "a..:1", ":80"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, auth string, absolute bool) {
		head := "GET / HTTP/1.1\r\nHost: " + auth + "\r\n\r\n"
		if absolute {
			head = "GET http://" + auth + "/ HTTP/1.1\r\nHost: " + auth + "\r\n\r\n"
		}
		var req http1.Request
		if http1.ParseRequest(&req, []byte(head), nil) != nil {
			return
		}
		a := req.Authority
		var buf [router.MaxHost]byte
		routed, ok := router.NormalizeHost(&buf, a)
		if !ok {
			return
		}
		routed = bytes.TrimSuffix(bytes.TrimPrefix(routed, []byte("[")), []byte("]"))
		if bound := bytes.ToLower(hostOf(a)); !bytes.Equal(bound, routed) {
			t.Fatalf("authority %q: routed as %q, SNI binding checks %q", a, routed, bound)
		}
		kept := bytes.ToLower(hostPart(a))
		kept = bytes.TrimSuffix(bytes.TrimPrefix(kept, []byte("[")), []byte("]"))
		if n := len(kept); n > 1 && kept[n-1] == '.' {
			kept = kept[:n-1]
		}
		if !bytes.Equal(kept, routed) {
			t.Fatalf("authority %q: routed as %q, a redirection keeps %q", a, routed, kept)
		}
	})
}
