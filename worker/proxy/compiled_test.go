package proxy

import "github.com/sozu-go/sozu/worker/policy"

// maxCredential is the longest credential Credentials.Check decodes.
const maxCredential = policy.MaxCredential
