package compliance

import (
	"slices"
	"strings"
)

// networkChecks: 1.2.6. Plain HTTP is an insecure protocol; the security
// feature a reverse proxy offers for it is the redirect to HTTPS, set per
// cluster (https_redirect). A listener whose routes all redirect (or deny)
// carries no cardholder data in the clear.
func networkChecks(s *Snapshot) []Check {
	if s.ListenersErr != "" {
		return []Check{check("net.plain_http", "HTTP listeners", NA, "listeners unknown: "+s.ListenersErr)}
	}
	if len(s.HTTP) == 0 {
		return []Check{check("net.plain_http", "HTTP listeners", Pass, "no plain HTTP listener",
			ev(srcListeners, "http_listeners: none"))}
	}
	var out []Check
	for _, l := range s.HTTP {
		subject := "listener " + l.Address
		if l.RoutesErr != "" {
			out = append(out, check("net.plain_http", subject, NA, "routes unknown: "+l.RoutesErr))
			continue
		}
		var plain, redirect []string
		for _, r := range l.Routes {
			if r.ClusterID == "" {
				continue
			}
			if r.HTTPSRedirect {
				redirect = appendOnce(redirect, r.ClusterID)
			} else {
				plain = appendOnce(plain, r.ClusterID)
			}
		}
		e := []Evidence{ev(srcListeners, "http listener %s, active = %t", l.Address, l.Active)}
		switch {
		case len(plain) > 0:
			e = append(e, ev("list_frontends, query_cluster_by_id", "clusters served in plain HTTP (https_redirect = false): %s", strings.Join(plain, ", ")))
			out = append(out, check("net.plain_http", subject, Warn,
				"routes forward plain HTTP to backends without redirecting to HTTPS", e...))
		case len(redirect) > 0:
			e = append(e, ev("list_frontends, query_cluster_by_id", "clusters with https_redirect = true: %s", strings.Join(redirect, ", ")))
			out = append(out, check("net.plain_http", subject, Pass, "every route redirects to HTTPS", e...))
		default:
			e = append(e, ev("list_frontends", "no route to a cluster"))
			out = append(out, check("net.plain_http", subject, Pass, "no route forwards plain HTTP to a backend", e...))
		}
	}
	return out
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}
