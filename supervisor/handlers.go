package supervisor

import (
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/verbs"
	"github.com/sozu-go/sozu/worker/logfilter"
)

// handle answers one request on c. It reports false when the connection
// must be closed.
func (s *Supervisor) handle(c *session, req *command.Request) bool {
	if req.GetRequestType() == nil {
		return c.fail("empty request: no verb set")
	}
	if v := verbs.Of(req); v == nil || !v.Implemented {
		return c.fail("not implemented: " + command.VerbKey(req))
	}
	switch r := req.GetRequestType().(type) {
	case *command.Request_SaveState:
		return s.saveState(c, r.SaveState)
	case *command.Request_LoadState:
		return s.loadState(c, r.LoadState)

	case *command.Request_ListWorkers:
		var infos *command.WorkerInfos
		s.do(func(a *actor) { infos = a.workerInfos() })
		return c.ok("Successfully listed workers", &command.ResponseContent{ContentType: &command.ResponseContent_Workers{Workers: infos}})
	case *command.Request_ListFrontends:
		var l *command.ListedFrontends
		s.do(func(a *actor) { l = a.state.ListFrontends(r.ListFrontends) })
		return c.ok("Successfully listed frontends", &command.ResponseContent{ContentType: &command.ResponseContent_FrontendList{FrontendList: l}})
	case *command.Request_ListListeners:
		var l *command.ListenersList
		s.do(func(a *actor) { l = a.state.ListListeners() }) // keys are blanked by session.write
		return c.ok("Successfully listed listeners", &command.ResponseContent{ContentType: &command.ResponseContent_ListenersList{ListenersList: l}})
	case *command.Request_CountRequests:
		var m map[string]int32
		s.do(func(a *actor) { m = a.state.RequestCounts() })
		return c.ok("Successfully counted requests received by the state", &command.ResponseContent{ContentType: &command.ResponseContent_RequestCounts{RequestCounts: &command.RequestCounts{Map: m}}})
	case *command.Request_QueryCertificatesFromTheState:
		var certs *command.CertificatesWithFingerprints
		s.do(func(a *actor) { certs = a.state.Certificates(r.QueryCertificatesFromTheState) }) // keys: session.write
		return c.ok("Successfully queried certificates from the state of main process", &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesWithFingerprints{CertificatesWithFingerprints: certs}})
	case *command.Request_QueryMaxConnectionsPerIp:
		var limit uint64
		s.do(func(a *actor) { limit = a.serverConfig.GetMaxConnectionsPerIp() })
		return c.ok("Successfully queried the maximum connections per IP", &command.ResponseContent{ContentType: &command.ResponseContent_MaxConnectionsPerIpLimit{
			MaxConnectionsPerIpLimit: &command.MaxConnectionsPerIpLimit{Limit: proto.Uint64(limit)}}})
	case *command.Request_QueryHealthChecks:
		var hc *command.HealthChecksList
		var id *string
		if r.QueryHealthChecks != nil {
			id = r.QueryHealthChecks.ClusterId
		}
		s.do(func(a *actor) { hc = a.state.HealthChecks(id) })
		return c.ok("Successfully listed health check configurations", &command.ResponseContent{ContentType: &command.ResponseContent_HealthChecksList{HealthChecksList: hc}})

	case *command.Request_Status:
		return s.status(c, req)
	case *command.Request_QueryClusterById, *command.Request_QueryClustersByDomain,
		*command.Request_QueryClustersHashes, *command.Request_QueryCertificatesFromWorkers:
		return s.query(c, req)

	case *command.Request_QueryMetrics:
		return s.queryMetrics(c, req)

	case *command.Request_ReloadConfiguration:
		return s.reloadConfiguration(c, r.ReloadConfiguration) // reload.go
	case *command.Request_SoftStop:
		return s.stopVerb(c, true)
	case *command.Request_HardStop:
		return s.stopVerb(c, false)

	case *command.Request_UpgradeMain:
		return s.upgradeMainVerb(c)
	case *command.Request_UpgradeWorker:
		return s.upgradeWorkerVerb(c, r.UpgradeWorker)

	case *command.Request_AuditReopen:
		// The log targets' files rotate with the audit sinks.
		if err := s.reopenLogs(); err != nil {
			return c.fail("could not reopen the log targets: " + err.Error())
		}
		if err := s.reopenAudit(); err != nil {
			return c.fail("could not reopen the audit sinks: " + err.Error())
		}
		return c.ok("Audit sinks reopened", nil)

	case *command.Request_SubscribeEvents:
		s.subscribe(c)
		return true

	case *command.Request_Logging:
		lvl, err := logfilter.Parse(r.Logging)
		if err != nil {
			return c.fail("Error parsing logging filter:\n" + err.Error())
		}
		s.log.SetLevel(lvl)
		// Module directives are upstream's Rust modules: the answer says
		// which have no effect, as the configuration check does for
		// log_level.
		return s.mutateNote(c, req, logfilter.Note(r.Logging))

	default:
		return s.mutate(c, req)
	}
}
