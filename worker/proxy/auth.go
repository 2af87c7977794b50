package proxy

import "github.com/sozu-go/sozu/worker/http1"

// stripAuthorization removes the Authorization fields of req: credentials
// the proxy checked are for the proxy, not for the backend.
func stripAuthorization(req *http1.Request) {
	fs := req.Fields
	k := 0
	for i := range fs {
		if equalFold(fs[i].Name, "authorization") {
			continue
		}
		fs[k] = fs[i]
		k++
	}
	req.Fields = fs[:k]
}
