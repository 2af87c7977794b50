package answers

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/worker/http1"
)

// FuzzCompileAppend: whatever template an operator writes, Compile refuses
// it or compiles it; a compiled one, rendered with any values (the
// redirect location is what a client chose), is one HTTP/1.1 response
// that the proxy's own parser reads: its status the template's, its
// Content-Length the length of its body, "Connection: close", one
// Content-Length, and no field line but the template's own and those the
// proxy adds (no value adds a line).
func FuzzCompileAppend(f *testing.F) {
	f.Add(uint16(503), "HTTP/1.1 503 Down\nX-Cluster: %CLUSTER_ID\nLocation: %REDIRECT_LOCATION\n\n<a href=\"%REDIRECT_LOCATION\">%REQUEST_ID</a>", []byte("https://a/\r\nX: y"), []byte(`Basic realm="x"`), []byte("5"), "c\r\nSet-Cookie: a", "b", false)
	f.Add(uint16(301), "<p>%REDIRECT_LOCATION %WWW_AUTHENTICATE %RETRY_AFTER 100%</p>", []byte("/<script>"), []byte(nil), []byte(nil), "", "", true)
	f.Add(uint16(401), "HTTP/1.1 401 Auth\r\nWWW-Authenticate: %WWW_AUTHENTICATE\r\nRetry-After: %RETRY_AFTER\r\n\r\nx", []byte(nil), []byte("Bearer\x00"), []byte("\n1"), "", "", false)
	f.Add(uint16(200), "HTTP/1.0 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\nabc", []byte(nil), []byte(nil), []byte(nil), "", "", false)
	f.Fuzz(func(t *testing.T, code uint16, src string, location, auth, retry []byte, cluster, backend string, head bool) {
		tmpl, err := Compile(int(code), src)
		if err != nil {
			return
		}
		st := tmpl.Status()
		if st < 100 || st > 599 {
			t.Fatalf("status %d compiled", st)
		}
		v := &Vars{RequestID: []byte("01ARZ3NDEKTSV4RRFFQ69G5FAV"), IDHeader: "Sozu-Id", ClusterID: cluster, BackendID: backend,
			Head: head, Location: location, WWWAuthenticate: auth, RetryAfter: retry, Date: []byte("Mon, 07 Dec 2026 13:00:00 GMT")}
		out := tmpl.Append(nil, v)
		method := []byte("GET")
		if head {
			method = []byte("HEAD")
		}
		lim := &http1.Limits{MaxHeadBytes: 1 << 20, MaxStartLine: 1 << 20, MaxFields: 1 << 12}
		var resp http1.Response
		if err := http1.ParseResponse(&resp, out, method, lim); err != nil {
			t.Fatalf("answer is not a valid response: %v\n%q", err, out)
		}
		if resp.Status != st || resp.KeepAlive {
			t.Fatalf("status %d (template %d), keep-alive %v\n%q", resp.Status, st, resp.KeepAlive, out)
		}
		if resp.Status >= 200 && resp.Status != 204 && resp.Status != 304 {
			body := int64(len(out) - resp.HeadLen)
			if !head && body != resp.ContentLength || head && (body != 0 || resp.ContentLength < 0) {
				t.Fatalf("Content-Length %d, body %d bytes (HEAD %v)\n%q", resp.ContentLength, body, head, out)
			}
		}
		// Every field line is the template's or one the proxy adds.
		headText, _, _ := strings.Cut(strings.ReplaceAll(src, "\r\n", "\n"), "\n\n")
		want := strings.Count(headText, "\n") // the template's field lines, at most
		if !strings.HasPrefix(src, "HTTP/") {
			want = 2 // Cache-Control, Content-Type
		}
		want += 5 // Location, WWW-Authenticate, Retry-After, Date, Sozu-Id at most
		var cl, conn int
		for _, fl := range resp.Fields {
			switch {
			case bytes.EqualFold(fl.Name, []byte("Content-Length")):
				cl++
			case bytes.EqualFold(fl.Name, []byte("Connection")):
				conn++
			}
		}
		if cl != 1 || conn != 1 || len(resp.Fields) > want+2 {
			t.Fatalf("%d fields (at most %d), %d Content-Length, %d Connection\n%q", len(resp.Fields), want+2, cl, conn, out)
		}
	})
}
