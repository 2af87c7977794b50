// Package verbs is the one catalogue of the command socket's verbs: for
// each field of the Request oneof of command.proto, its stable dotted
// name, the role it needs, its class, the event it emits, whether it goes
// to the workers, how the audit trail records it, and whether this
// implementation handles it. Admission, the audit trail, the supervisor's
// and the workers' dispatch and the CLI read it; nothing else says these
// things. TestCatalogueComplete fails when a oneof field has no entry.
package verbs

import (
	"github.com/sozu-go/sozu/proto/command"
)

// Role is the least role a verb needs. Admin may do everything ReadOnly
// may.
type Role uint8

const (
	ReadOnly Role = iota + 1 // status, queries, lists, events
	Admin                    // everything that changes the proxy, its files or its processes
)

func (r Role) String() string {
	switch r {
	case ReadOnly:
		return "read-only"
	case Admin:
		return "admin"
	}
	return "none"
}

// Class says what a verb does.
type Class uint8

const (
	Query     Class = iota + 1 // reads only
	Mutation                   // changes the configuration state or a worker setting
	Lifecycle                  // processes and files: stop, upgrade, launch, state files, audit sinks
	Stream                     // answers with a stream (subscribe_events)
)

func (c Class) String() string {
	switch c {
	case Query:
		return "query"
	case Mutation:
		return "mutation"
	case Lifecycle:
		return "lifecycle"
	case Stream:
		return "stream"
	}
	return "unknown"
}

// Audit is how the audit trail records a verb.
type Audit uint8

const (
	// AuditChange: an attempt record before the verb acts (fail closed:
	// no sink took it, the verb is refused) and a completion record,
	// sharing the request id, before the terminal answer.
	AuditChange Audit = iota + 1
	// AuditQuery: one completion record, left out with audit_queries =
	// false.
	AuditQuery
)

func (a Audit) String() string {
	switch a {
	case AuditChange:
		return "attempt+completion"
	case AuditQuery:
		return "completion (audit_queries)"
	}
	return "none"
}

// Verb is one entry of the catalogue.
type Verb struct {
	Field string // the Request oneof field, as command.VerbKey returns it ("add_cluster", "Logging")
	Name  string // stable dotted name, used in audit records and logs ("cluster.add")
	Role  Role
	Class Class
	Audit Audit
	// Event is the event the supervisor emits once the verb is accepted,
	// when Emits is set (EventKind's zero value is BACKEND_DOWN).
	Event command.EventKind
	Emits bool
	// FanOut: the supervisor sends the verb to every worker and gathers
	// their answers within worker_timeout.
	FanOut bool
	// Secret: the request carries private keys; logs and audit records
	// hold fingerprints of them only.
	Secret bool
	// Implemented: false answers FAILURE "not implemented: <field>".
	Implemented bool
}

// catalogue in the order of the oneof's field numbers.
var catalogue = []Verb{
	{Field: "save_state", Name: "state.save", Role: Admin, Class: Lifecycle, Audit: AuditChange, Implemented: true},
	{Field: "load_state", Name: "state.load", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Secret: true, Implemented: true},
	{Field: "list_workers", Name: "worker.list", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "list_frontends", Name: "frontend.list", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "list_listeners", Name: "listener.list", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "launch_worker", Name: "worker.launch", Role: Admin, Class: Lifecycle, Audit: AuditChange},
	{Field: "upgrade_main", Name: "supervisor.upgrade", Role: Admin, Class: Lifecycle, Audit: AuditChange, Implemented: true},
	{Field: "upgrade_worker", Name: "worker.upgrade", Role: Admin, Class: Lifecycle, Audit: AuditChange, Implemented: true},
	{Field: "subscribe_events", Name: "events.subscribe", Role: ReadOnly, Class: Stream, Audit: AuditQuery, Emits: true, Event: command.EventKind_EVENTS_SUBSCRIBED, Implemented: true},
	{Field: "reload_configuration", Name: "config.reload", Role: Admin, Class: Mutation, Audit: AuditChange, Emits: true, Event: command.EventKind_CONFIGURATION_RELOADED, Implemented: true},
	{Field: "status", Name: "status.get", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "add_cluster", Name: "cluster.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_CLUSTER_ADDED, Implemented: true},
	{Field: "remove_cluster", Name: "cluster.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_CLUSTER_REMOVED, Implemented: true},
	{Field: "add_http_frontend", Name: "frontend.http.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_ADDED, Implemented: true},
	{Field: "remove_http_frontend", Name: "frontend.http.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_REMOVED, Implemented: true},
	{Field: "add_https_frontend", Name: "frontend.https.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_ADDED, Implemented: true},
	{Field: "remove_https_frontend", Name: "frontend.https.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_REMOVED, Implemented: true},
	{Field: "add_certificate", Name: "certificate.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Secret: true, Emits: true, Event: command.EventKind_CERTIFICATE_ADDED, Implemented: true},
	{Field: "replace_certificate", Name: "certificate.replace", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Secret: true, Emits: true, Event: command.EventKind_CERTIFICATE_REPLACED, Implemented: true},
	{Field: "remove_certificate", Name: "certificate.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_CERTIFICATE_REMOVED, Implemented: true},
	{Field: "add_tcp_frontend", Name: "frontend.tcp.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_ADDED, Implemented: true},
	{Field: "remove_tcp_frontend", Name: "frontend.tcp.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_REMOVED, Implemented: true},
	{Field: "add_backend", Name: "backend.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Implemented: true},
	{Field: "remove_backend", Name: "backend.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Implemented: true},
	{Field: "add_http_listener", Name: "listener.http.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_ADDED, Implemented: true},
	{Field: "add_https_listener", Name: "listener.https.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Secret: true, Emits: true, Event: command.EventKind_LISTENER_ADDED, Implemented: true},
	{Field: "add_tcp_listener", Name: "listener.tcp.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_ADDED, Implemented: true},
	{Field: "remove_listener", Name: "listener.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_REMOVED, Implemented: true},
	{Field: "activate_listener", Name: "listener.activate", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_ACTIVATED, Implemented: true},
	{Field: "deactivate_listener", Name: "listener.deactivate", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_DEACTIVATED, Implemented: true},
	{Field: "query_cluster_by_id", Name: "cluster.query_by_id", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "query_clusters_by_domain", Name: "cluster.query_by_domain", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "query_clusters_hashes", Name: "cluster.query_hashes", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "query_metrics", Name: "metrics.query", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "soft_stop", Name: "supervisor.soft_stop", Role: Admin, Class: Lifecycle, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_SOZU_STOP_REQUESTED, Implemented: true},
	{Field: "hard_stop", Name: "supervisor.hard_stop", Role: Admin, Class: Lifecycle, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_SOZU_STOP_REQUESTED, Implemented: true},
	{Field: "configure_metrics", Name: "metrics.configure", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_METRICS_CONFIGURED, Implemented: true},
	{Field: "Logging", Name: "logging.set", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LOGGING_LEVEL_CHANGED, Implemented: true},
	{Field: "return_listen_sockets", Name: "listener.return_sockets", Role: Admin, Class: Lifecycle, Audit: AuditChange},
	{Field: "query_certificates_from_the_state", Name: "certificate.query_state", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "query_certificates_from_workers", Name: "certificate.query_workers", Role: ReadOnly, Class: Query, Audit: AuditQuery, FanOut: true, Implemented: true},
	{Field: "count_requests", Name: "requests.count", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "update_http_listener", Name: "listener.http.update", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_UPDATED, Implemented: true},
	{Field: "update_https_listener", Name: "listener.https.update", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_UPDATED, Implemented: true},
	{Field: "update_tcp_listener", Name: "listener.tcp.update", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_UPDATED, Implemented: true},
	{Field: "set_max_connections_per_ip", Name: "connections.set_max_per_ip", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Implemented: true},
	{Field: "query_max_connections_per_ip", Name: "connections.query_max_per_ip", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "set_health_check", Name: "health_check.set", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Implemented: true},
	{Field: "remove_health_check", Name: "health_check.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Implemented: true},
	{Field: "query_health_checks", Name: "health_check.query", Role: ReadOnly, Class: Query, Audit: AuditQuery, Implemented: true},
	{Field: "set_metric_detail", Name: "metrics.set_detail", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true},
	{Field: "add_udp_listener", Name: "listener.udp.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_ADDED, Implemented: true},
	{Field: "update_udp_listener", Name: "listener.udp.update", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_LISTENER_UPDATED, Implemented: true},
	{Field: "add_udp_frontend", Name: "frontend.udp.add", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_ADDED, Implemented: true},
	{Field: "remove_udp_frontend", Name: "frontend.udp.remove", Role: Admin, Class: Mutation, Audit: AuditChange, FanOut: true, Emits: true, Event: command.EventKind_FRONTEND_REMOVED, Implemented: true},
	{Field: "audit_reopen", Name: "audit.reopen", Role: Admin, Class: Lifecycle, Audit: AuditChange, Implemented: true},
}

var byField = func() map[string]*Verb {
	m := make(map[string]*Verb, len(catalogue))
	for i := range catalogue {
		m[catalogue[i].Field] = &catalogue[i]
	}
	return m
}()

// All returns the catalogue, in the order of the oneof's field numbers. The
// caller must not modify the entries.
func All() []Verb { return catalogue }

// Lookup returns the entry of a Request oneof field name (command.VerbKey),
// or nil for a name the catalogue does not know (and "", no verb).
func Lookup(field string) *Verb { return byField[field] }

// Of returns the entry of req's verb, or nil when req has no verb (or one
// this catalogue does not know, which TestCatalogueComplete rules out for
// every field of the compiled command.proto).
func Of(req *command.Request) *Verb { return byField[command.VerbKey(req)] }

// RequiredRole is the role a verb field needs: its entry's, or Admin for a
// name the catalogue does not know (including "", no verb): a verb added
// to command.proto is admin-only until it has an entry.
func RequiredRole(field string) Role {
	if v := byField[field]; v != nil {
		return v.Role
	}
	return Admin
}

// Fields lists the Request oneof's field names in field-number order, as
// the compiled command.proto has them.
func Fields() []string {
	od := (&command.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("request_type")
	fs := od.Fields()
	out := make([]string, 0, fs.Len())
	for i := range fs.Len() {
		out = append(out, string(fs.Get(i).Name()))
	}
	return out
}
