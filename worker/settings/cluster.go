package settings

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/policy"
)

// Cluster is what the HTTP settings of a cluster set on the proxy's
// cluster (ClusterPolicy); a worker copies it into its proxy.Cluster.
type Cluster struct {
	HTTPSRedirect     bool
	HTTPSRedirectPort uint16 // 0: none
	Answers           *answers.Set
	Credentials       *policy.Credentials
	WWWAuthenticate   []byte
}

// CheckCluster reports, in order, what a worker would not honour in the
// HTTP settings of cluster c (authorized_hashes, www_authenticate,
// answers, answer_503, https_redirect_port).
func CheckCluster(c *command.Cluster) []Issue {
	var out []Issue
	ClusterPolicy(c, &Cluster{}, func(is Issue) { out = append(out, is) })
	return out
}

// ClusterPolicy sets the HTTP settings of cluster c on pc, and reports
// through note the ones it leaves out.
func ClusterPolicy(c *command.Cluster, pc *Cluster, note func(Issue)) {
	pc.HTTPSRedirect = c.GetHttpsRedirect()
	if p := c.GetHttpsRedirectPort(); p <= 65535 {
		pc.HTTPSRedirectPort = uint16(p) // 0: none
	} else {
		note(Issue{Field: "https_redirect_port", Index: -1, Msg: fmt.Sprintf("%d is not a port (1-65535)", p), Effect: effectIgnored})
	}
	m := map[string]string{}
	if c.Answer_503 != nil {
		m["503"] = c.GetAnswer_503()
	}
	for k, v := range c.GetAnswers() {
		m[k] = v
	}
	if len(m) > 0 {
		set, errs := answers.NewSet(m)
		bad := map[string]bool{}
		for _, err := range errs {
			is := Issue{Field: "answers", Index: -1, Msg: err.Error(), Effect: effectDefault}
			var ke *answers.KeyError
			if errors.As(err, &ke) {
				is.Key = ke.Key
				bad[ke.Key] = true
				if _, inMap := c.GetAnswers()[ke.Key]; !inMap && ke.Key == "503" {
					is.Field, is.Key = "answer_503", ""
				}
			}
			note(is)
		}
		// Well-formed answers that are never sent (a bad one is reported
		// above, as such).
		for _, k := range slices.Sorted(maps.Keys(c.GetAnswers())) {
			if code, err := strconv.Atoi(k); err == nil && !bad[k] {
				if msg := answers.Unsent(code, true); msg != "" {
					note(Issue{Field: "answers", Index: -1, Key: k, Msg: msg, Effect: effectNever, Unused: true})
				}
			}
		}
		pc.Answers = set
	}
	if h := c.GetAuthorizedHashes(); len(h) > 0 {
		creds, errs := policy.NewCredentials(h)
		for _, err := range errs {
			is := Issue{Field: "authorized_hashes", Index: -1, Msg: err.Error(), Effect: effectIgnored}
			var ce *policy.CredentialError
			if errors.As(err, &ce) {
				is.Index, is.Msg = ce.Index, ce.Msg
			}
			note(is)
		}
		pc.Credentials = creds
	}
	if c.WwwAuthenticate != nil {
		if ch, err := policy.Challenge(c.GetWwwAuthenticate()); err != nil {
			note(Issue{Field: "www_authenticate", Index: -1, Msg: err.Error(), Effect: effectIgnored})
		} else {
			pc.WWWAuthenticate = []byte(ch)
		}
	}
}
