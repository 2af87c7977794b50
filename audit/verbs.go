package audit

import (
	"regexp"
	"sort"

	"github.com/sozu-go/sozu/proto/command"
)

// Class says what a verb does, so that callers can pick the right codes
// (query.completed for queries) and honour audit_queries = false.
type Class int

const (
	ClassUnknown  Class = iota // not in the table
	ClassMutation              // changes the configuration state or a worker setting
	ClassQuery                 // reads only
	ClassControl               // process lifecycle: stop, upgrade, launch, state files
	ClassInternal              // an event the supervisor records on its own
)

func (c Class) String() string {
	switch c {
	case ClassMutation:
		return "mutation"
	case ClassQuery:
		return "query"
	case ClassControl:
		return "control"
	case ClassInternal:
		return "internal"
	}
	return "unknown"
}

type verbInfo struct {
	verb  string
	class Class
}

// requestVerbs maps every field of command.Request's request_type oneof
// (command.VerbKey) to its stable dotted verb. A test fails when a oneof
// field has no entry, or an entry names no field.
var requestVerbs = map[string]verbInfo{
	"save_state":                        {"state.save", ClassControl},
	"load_state":                        {"state.load", ClassMutation},
	"list_workers":                      {"worker.list", ClassQuery},
	"list_frontends":                    {"frontend.list", ClassQuery},
	"list_listeners":                    {"listener.list", ClassQuery},
	"launch_worker":                     {"worker.launch", ClassControl},
	"upgrade_main":                      {"supervisor.upgrade", ClassControl},
	"audit_reopen":                      {"audit.reopen", ClassControl},
	"upgrade_worker":                    {"worker.upgrade", ClassControl},
	"subscribe_events":                  {"events.subscribe", ClassQuery},
	"reload_configuration":              {"config.reload", ClassMutation},
	"status":                            {"status.get", ClassQuery},
	"add_cluster":                       {"cluster.add", ClassMutation},
	"remove_cluster":                    {"cluster.remove", ClassMutation},
	"add_http_frontend":                 {"frontend.http.add", ClassMutation},
	"remove_http_frontend":              {"frontend.http.remove", ClassMutation},
	"add_https_frontend":                {"frontend.https.add", ClassMutation},
	"remove_https_frontend":             {"frontend.https.remove", ClassMutation},
	"add_certificate":                   {"certificate.add", ClassMutation},
	"replace_certificate":               {"certificate.replace", ClassMutation},
	"remove_certificate":                {"certificate.remove", ClassMutation},
	"add_tcp_frontend":                  {"frontend.tcp.add", ClassMutation},
	"remove_tcp_frontend":               {"frontend.tcp.remove", ClassMutation},
	"add_backend":                       {"backend.add", ClassMutation},
	"remove_backend":                    {"backend.remove", ClassMutation},
	"add_http_listener":                 {"listener.http.add", ClassMutation},
	"add_https_listener":                {"listener.https.add", ClassMutation},
	"add_tcp_listener":                  {"listener.tcp.add", ClassMutation},
	"remove_listener":                   {"listener.remove", ClassMutation},
	"activate_listener":                 {"listener.activate", ClassMutation},
	"deactivate_listener":               {"listener.deactivate", ClassMutation},
	"query_cluster_by_id":               {"cluster.query_by_id", ClassQuery},
	"query_clusters_by_domain":          {"cluster.query_by_domain", ClassQuery},
	"query_clusters_hashes":             {"cluster.query_hashes", ClassQuery},
	"query_metrics":                     {"metrics.query", ClassQuery},
	"soft_stop":                         {"supervisor.soft_stop", ClassControl},
	"hard_stop":                         {"supervisor.hard_stop", ClassControl},
	"configure_metrics":                 {"metrics.configure", ClassMutation},
	"Logging":                           {"logging.set", ClassMutation},
	"return_listen_sockets":             {"listener.return_sockets", ClassControl},
	"query_certificates_from_the_state": {"certificate.query_state", ClassQuery},
	"query_certificates_from_workers":   {"certificate.query_workers", ClassQuery},
	"count_requests":                    {"requests.count", ClassQuery},
	"update_http_listener":              {"listener.http.update", ClassMutation},
	"update_https_listener":             {"listener.https.update", ClassMutation},
	"update_tcp_listener":               {"listener.tcp.update", ClassMutation},
	"set_max_connections_per_ip":        {"connections.set_max_per_ip", ClassMutation},
	"query_max_connections_per_ip":      {"connections.query_max_per_ip", ClassQuery},
	"set_health_check":                  {"health_check.set", ClassMutation},
	"remove_health_check":               {"health_check.remove", ClassMutation},
	"query_health_checks":               {"health_check.query", ClassQuery},
	"set_metric_detail":                 {"metrics.set_detail", ClassMutation},
	"add_udp_listener":                  {"listener.udp.add", ClassMutation},
	"update_udp_listener":               {"listener.udp.update", ClassMutation},
	"add_udp_frontend":                  {"frontend.udp.add", ClassMutation},
	"remove_udp_frontend":               {"frontend.udp.remove", ClassMutation},
}

// Verbs of events that are not requests. Records of these use the event
// code of the same name (VerbWorkerExit with CodeWorkerExit, …), except
// VerbSessionConnect, VerbRequestEmpty and VerbFrameInvalid, which go with
// the command.* refusal codes, and VerbAuditReopen, which is also the verb
// of the `sozu audit reopen` command.
const (
	VerbSupervisorStart    = "supervisor.start"
	VerbSupervisorStop     = "supervisor.stop"
	VerbSupervisorUpgrade  = "supervisor.upgrade"
	VerbWorkerLaunch       = "worker.launch"
	VerbWorkerExit         = "worker.exit"
	VerbWorkerRelaunch     = "worker.relaunch"
	VerbStateAutosave      = "state.autosave"
	VerbStateAutoload      = "state.autoload"
	VerbSessionConnect     = "session.connect" // a client connected (admission refusals before any request)
	VerbRequestEmpty       = "request.empty"   // a decoded request with no verb set
	VerbFrameInvalid       = "frame.invalid"   // a frame that could not be read or decoded
	VerbAuditOpen          = "audit.open"
	VerbAuditReopen        = "audit.reopen"
	VerbAuditSinkFailed    = "audit.sink_failed"
	VerbAuditSinkRecovered = "audit.sink_recovered"
	VerbAuditRecovered     = "audit.recovered"
	VerbAuditFailOpen      = "audit.fail_open"
	VerbAuditTamper        = "audit.tamper"
	VerbAuditVerify        = "audit.verify"
)

var internalVerbs = map[string]Class{
	VerbSupervisorStart:    ClassInternal,
	VerbSupervisorStop:     ClassInternal,
	VerbWorkerExit:         ClassInternal,
	VerbWorkerRelaunch:     ClassInternal,
	VerbStateAutosave:      ClassInternal,
	VerbStateAutoload:      ClassInternal,
	VerbSessionConnect:     ClassInternal,
	VerbRequestEmpty:       ClassInternal,
	VerbFrameInvalid:       ClassInternal,
	VerbAuditOpen:          ClassInternal,
	VerbAuditReopen:        ClassControl,
	VerbAuditSinkFailed:    ClassInternal,
	VerbAuditSinkRecovered: ClassInternal,
	VerbAuditRecovered:     ClassInternal,
	VerbAuditFailOpen:      ClassInternal,
	VerbAuditTamper:        ClassInternal,
	VerbAuditVerify:        ClassQuery,
	// VerbSupervisorUpgrade and VerbWorkerLaunch are also request verbs.
}

var verbClasses = func() map[string]Class {
	m := map[string]Class{}
	for _, v := range requestVerbs {
		m[v.verb] = v.class
	}
	for v, c := range internalVerbs {
		if _, dup := m[v]; !dup {
			m[v] = c
		}
	}
	return m
}()

// verbPattern is what every verb looks like (and what the schema says).
var verbPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// VerbOf returns the dotted verb of req ("cluster.add"), or VerbRequestEmpty
// when no verb is set. A nil req reads as empty.
func VerbOf(req *command.Request) string {
	v, ok := requestVerbs[command.VerbKey(req)]
	if !ok {
		return VerbRequestEmpty
	}
	return v.verb
}

// ClassOf returns the class of a dotted verb; ClassUnknown for none.
func ClassOf(verb string) Class { return verbClasses[verb] }

// Verbs returns every known verb (request and internal), sorted.
func Verbs() []string {
	out := make([]string, 0, len(verbClasses))
	for v := range verbClasses {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
