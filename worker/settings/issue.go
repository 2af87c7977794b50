// Package settings checks the settings of clusters, frontends and listener
// answers the way workers compile them: what a worker would not honour as
// written is an Issue. Workers build their proxy policies with it; the
// supervisor and the configuration loader refuse what it reports, without
// linking a server.
package settings

import "strconv"

// Issue is a setting of a frontend or a cluster that workers do not
// honour as written. A worker reports it in its log and falls back to
// Effect; the supervisor and the configuration loader refuse it before the
// state takes it (CheckFrontend, CheckCluster).
type Issue struct {
	// Field is the setting, by its configuration name ("rewrite_path",
	// "headers", "authorized_hashes", "answers"…).
	Field string
	// Index is the element of a list setting (headers, authorized_hashes),
	// -1 for none.
	Index int
	// Key is the part of that element at fault ("position", "key" or
	// "value" of a header edit) or the key of a map setting (an answers
	// status code), "" for none.
	Key string
	// Msg says what is wrong. It never holds a secret: an
	// authorized_hashes entry is named by Index only.
	Msg string
	// Effect is what a worker does instead: "it answers 404" (the
	// frontend is denied), "it is left out", "it is ignored", "the default
	// answer is used", "every request answers 401".
	Effect string
	// Related is set when the issue lies in another object (the
	// frontend's cluster) that a later change may fix: the setting itself
	// is well formed.
	Related bool
	// Unused is set for a well-formed setting that is kept but never has
	// an effect (a cluster's answer for a status answered before any
	// cluster is known): reported, not refused.
	Unused bool
}

// Path names the setting: Field, then [Index], then .Key, e.g.
// "headers[2].value" or "answers.503".
func (is Issue) Path() string {
	p := is.Field
	if is.Index >= 0 {
		p += "[" + strconv.Itoa(is.Index) + "]"
	}
	if is.Key != "" {
		p += "." + is.Key
	}
	return p
}

// Error returns "<path>: <msg>".
func (is Issue) Error() string { return is.Path() + ": " + is.Msg }

// Effects of issues.
const (
	effectDeny    = "it answers 404"
	effectLeftOut = "it is left out"
	effectIgnored = "it is ignored"
	effectDefault = "the default answer is used"
	effectNever   = "it is kept and never sent"
	effect401     = "every request answers 401"
)
