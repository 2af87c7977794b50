package admission

import "github.com/sozu-go/sozu/proto/verbs"

// Required returns the role verb (a Request oneof field name, what
// command.VerbKey returns) needs, as the verb catalogue (proto/verbs) says;
// Admin for a verb the catalogue does not know (including "", no verb), so
// a verb added to command.proto is admin-only until classified.
// docs/roles.md is generated from the catalogue.
func Required(verb string) Role {
	if verbs.RequiredRole(verb) == verbs.ReadOnly {
		return ReadOnly
	}
	return Admin
}

// isVerb reports whether verb is a catalogue verb (a trusted name).
func isVerb(verb string) bool { return verbs.Lookup(verb) != nil }
