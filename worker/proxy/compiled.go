package proxy

import "github.com/sozu-go/sozu/worker/policy"

// The compiled frontend and cluster policies live in package policy, so
// that the supervisor checks settings with the code workers use without
// linking this server. These names keep this package's API.

type (
	Frontend        = policy.Frontend
	Scheme          = policy.Scheme
	HeaderPosition  = policy.HeaderPosition
	HeaderEdit      = policy.HeaderEdit
	HeaderEdits     = policy.HeaderEdits
	EditError       = policy.EditError
	Credentials     = policy.Credentials
	CredentialError = policy.CredentialError
)

// Redirection schemes and header positions (see package policy).
const (
	SchemeSame        = policy.SchemeSame
	SchemeHTTP        = policy.SchemeHTTP
	SchemeHTTPS       = policy.SchemeHTTPS
	HeaderUnspecified = policy.HeaderUnspecified
	HeaderRequest     = policy.HeaderRequest
	HeaderResponse    = policy.HeaderResponse
	HeaderBoth        = policy.HeaderBoth
	DefaultChallenge  = policy.DefaultChallenge
)
