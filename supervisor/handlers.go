package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/proto/verbs"
	"github.com/sozu-go/sozu/worker/logfilter"
	"github.com/sozu-go/sozu/worker/settings"
	"github.com/sozu-go/sozu/worker/tlsconf"
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

	case *command.Request_SoftStop:
		return s.stopVerb(c, true)
	case *command.Request_HardStop:
		return s.stopVerb(c, false)

	case *command.Request_AuditReopen:
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
		return s.mutate(c, req)

	default:
		return s.mutate(c, req)
	}
}

// mutate applies a state verb: state first, then fan-out to every worker,
// then one terminal answer aggregating theirs (docs/protocol.md §5.1). A
// worker that misses worker_timeout makes the verb fail, naming it.
func (s *Supervisor) mutate(c *session, req *command.Request) bool {
	var calls []*call
	var err error
	s.do(func(a *actor) {
		if a.stopping {
			err = errStopping
			return
		}
		calls, err = a.apply(req)
	})
	if err != nil {
		var se *state.Error
		if errors.As(err, &se) {
			if se.Kind == state.NotStateVerb {
				return c.fail("not implemented: " + command.VerbKey(req))
			}
			return c.fail("could not dispatch request on the main process state: " + se.Error())
		}
		return c.fail(err.Error())
	}
	if len(calls) == 0 {
		return c.ok("Successfully applied request to all workers", nil)
	}
	c.processing("Processing worker request...")
	ok, msg := aggregate(s.gather(c, calls, s.cfg.WorkerTimeout))
	if ok {
		return c.ok(msg, nil)
	}
	return c.fail(msg)
}

// apply dispatches req on the state, keeps the bound listeners in step,
// fans req out to the workers and saves the state when configured to.
// Actor only. A refused request changes nothing.
func (a *actor) apply(req *command.Request) ([]*call, error) {
	if a := req.GetActivateListener(); a != nil && a.GetProxy() == command.ListenerType_UDP {
		return nil, errors.New("not implemented: UDP listeners")
	}
	if a.loadingState { // a state file may have been saved without keys
		if err := checkHasKey(req); err != nil {
			return nil, err
		}
		a.dropKeylessDefault(req)
	}
	// A certificate is validated here, before the state takes it: workers
	// would refuse it, and a refused certificate must not linger in the
	// state that seeds new workers and state files.
	if ck := certificateOf(req); ck != nil {
		if _, err := tlsconf.Load(ck.GetCertificate(), ck.GetCertificateChain(), ck.GetKey(), ck.GetNames(), time.Now()); err != nil {
			verb := "add"
			if req.GetReplaceCertificate() != nil {
				verb = "replace"
			}
			// Upstream's state error prefix (docs/protocol.md §5.3), then ours.
			return nil, fmt.Errorf("could not dispatch request on the main process state: Could not %s certificate: invalid certificate: %v", verb, err)
		}
	}
	if err := a.checkSettings(req); err != nil {
		return nil, err
	}
	var before *state.ConfigState
	if req.GetActivateListener() != nil {
		before = a.state.Clone() // restored if the socket cannot be bound
	}
	if err := a.state.Dispatch(req); err != nil {
		return nil, err
	}
	var closeAfter *boundListener
	switch r := req.GetRequestType().(type) {
	case *command.Request_ActivateListener:
		key := listenerKey(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress().Display())
		if _, bound := a.listeners[key]; !bound {
			bl, err := bindTCP(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress())
			if err != nil {
				a.state = before // the state says what is true: not active
				return nil, err
			}
			a.listeners[key] = bl
			for _, w := range a.sortedWorkers() {
				if err := w.sendListeners([]*boundListener{bl}); err != nil {
					a.log.WithField("worker", w.id).Warnf("sending listener %s: %v", key, err)
				}
			}
		}
	case *command.Request_DeactivateListener:
		key := listenerKey(r.DeactivateListener.GetProxy(), r.DeactivateListener.GetAddress().Display())
		closeAfter = a.listeners[key]
		delete(a.listeners, key)
	case *command.Request_RemoveListener:
		key := listenerKey(r.RemoveListener.GetProxy(), r.RemoveListener.GetAddress().Display())
		closeAfter = a.listeners[key]
		delete(a.listeners, key)
	case *command.Request_SetMaxConnectionsPerIp:
		// Runtime only (never saved, as upstream), but workers launched
		// later start with it.
		a.serverConfig.MaxConnectionsPerIp = proto.Uint64(r.SetMaxConnectionsPerIp)
	}
	calls := a.fanout(req)
	if closeAfter != nil {
		closeAfter.file.Close()
	}
	if v := verbs.Of(req); v != nil && v.Emits {
		a.emitEvent("main", &command.Event{Kind: v.Event.Enum()})
	}
	if state.Mutates(req) {
		a.autoSave()
	}
	return calls, nil
}

// autoSave rewrites saved_state when automatic_state_save is on (upstream
// declares the key but never acts on it). Actor only.
func (a *actor) autoSave() {
	if !a.cfg.AutomaticStateSave || a.cfg.SavedState == "" || a.loadingState {
		return
	}
	reqs := a.state.GenerateRequests()
	n := len(reqs)
	if err := writeStateFile(a.cfg.SavedState, reqs, nil); err != nil {
		a.log.WithField("path", a.cfg.SavedState).Errorf("automatic state save failed: %v", err)
		a.recordSystem(audit.VerbStateAutosave, audit.CodeStateAutosave, audit.ResultErr, err.Error())
	} else {
		a.log.WithFields(logrus.Fields{"path": a.cfg.SavedState, "records": n}).Debug("state saved")
		a.recordSystem(audit.VerbStateAutosave, audit.CodeStateAutosave, audit.ResultOK,
			fmt.Sprintf("%d records to %s", n, a.cfg.SavedState))
	}
}

// workerInfos lists the workers in id order. Actor only.
func (a *actor) workerInfos() *command.WorkerInfos {
	infos := &command.WorkerInfos{}
	for _, w := range a.sortedWorkers() {
		infos.Vec = append(infos.Vec, &command.WorkerInfo{
			Id: proto.Uint32(w.id), Pid: proto.Int32(int32(w.pid)), RunState: w.runState.Enum(),
		})
	}
	return infos
}

// status probes every worker: RUNNING if it answered OK in time,
// NOT_ANSWERING otherwise; a stopping worker keeps its state.
func (s *Supervisor) status(c *session, req *command.Request) bool {
	var calls []*call
	var procs []*workerProc
	s.do(func(a *actor) {
		procs = a.sortedWorkers()
		calls = a.fanout(req)
	})
	c.processing("Querying status of workers...")
	outs := s.gather(nil, calls, s.cfg.WorkerTimeout)
	c.trace.noteOutcomes(outs)
	answered := map[uint32]bool{}
	for _, o := range outs {
		answered[o.worker] = o.ok()
	}
	var infos *command.WorkerInfos
	s.do(func(a *actor) {
		for _, w := range procs {
			if a.workers[w.id] != w {
				continue
			}
			switch {
			case answered[w.id] && w.runState != command.RunState_STOPPING:
				w.runState = command.RunState_RUNNING
			case !answered[w.id] && w.runState == command.RunState_RUNNING:
				w.runState = command.RunState_NOT_ANSWERING
			}
		}
		infos = a.workerInfos()
	})
	return c.ok("Successfully collected the status of workers", &command.ResponseContent{ContentType: &command.ResponseContent_Workers{Workers: infos}})
}

// query fans a query out and answers with every worker's content and the
// supervisor's own under "main".
func (s *Supervisor) query(c *session, req *command.Request) bool {
	var calls []*call
	var main *command.ResponseContent
	s.do(func(a *actor) {
		main = a.mainAnswer(req)
		calls = a.fanout(req)
	})
	c.processing("Querying cluster...")
	outs := s.gather(c, calls, s.cfg.WorkerTimeout)
	m := map[string]*command.ResponseContent{}
	if main != nil {
		m["main"] = main
	}
	var failed []string
	for _, o := range outs {
		switch {
		case o.ok():
			content := o.resp.GetContent()
			if content == nil {
				content = &command.ResponseContent{}
			}
			m[workerKey(o.worker)] = content
		case o.resp != nil:
			failed = append(failed, fmt.Sprintf("%d: %s", o.worker, o.resp.GetMessage()))
		default:
			failed = append(failed, fmt.Sprintf("%d: worker %d %s", o.worker, o.worker, o.err))
		}
	}
	if len(failed) > 0 {
		return c.fail("query failed on some workers: " + strings.Join(failed, ", "))
	}
	return c.ok("Successfully queried clusters", &command.ResponseContent{ContentType: &command.ResponseContent_WorkerResponses{WorkerResponses: &command.WorkerResponses{Map: m}}})
}

// mainAnswer is the supervisor's own answer to a query. Actor only.
func (a *actor) mainAnswer(req *command.Request) *command.ResponseContent {
	switch r := req.GetRequestType().(type) {
	case *command.Request_QueryClusterById:
		infos := &command.ClusterInformations{}
		if ci := a.state.Cluster(r.QueryClusterById); ci != nil {
			infos.Vec = append(infos.Vec, ci)
		}
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: infos}}
	case *command.Request_QueryClustersByDomain:
		q := r.QueryClustersByDomain
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{
			Vec: a.state.ClustersByDomain(q.GetHostname(), q.Path)}}}
	case *command.Request_QueryClustersHashes:
		return &command.ResponseContent{ContentType: &command.ResponseContent_ClusterHashes{ClusterHashes: &command.ClusterHashes{Map: a.state.ClusterHashes()}}}
	}
	return nil
}

// stopVerb stops every worker, answers, then stops the supervisor.
func (s *Supervisor) stopVerb(c *session, soft bool) bool {
	if soft {
		c.processing("Performing soft stop...")
	} else {
		c.processing("Performing hard stop...")
	}
	s.emitEvent("main", &command.Event{Kind: command.EventKind_SOZU_STOP_REQUESTED.Enum()})
	ok, failed := s.stopAll(soft, func(msg string) { c.processing(msg) })
	c.ok(fmt.Sprintf("Successfully closed %d workers, %d errors, stopping the main process...", ok, failed), nil)
	if c.trace != nil {
		c.trace.finish = true // once the answer and its record are out
		return true
	}
	s.finish()
	return false
}

// checkSettings refuses a frontend or a cluster that workers would not
// honour as written (settings.CheckFrontend, settings.CheckCluster, the
// workers' own checks): they would deny the frontend (404) or ignore the
// setting, and the operator would learn it only from a worker's log. The
// error names each setting and what is wrong with it, never a secret (an
// authorized_hashes entry by its index). Not refused, only logged: an
// issue that lies in another object (required_auth while the cluster has
// no authorized_hashes), which a later verb may fix; and the records of a
// state file, which may predate these checks: refused, a frontend would be
// absent and its requests would fall through to a less specific one,
// whereas a worker denies it (fails closed). Actor only.
func (a *actor) checkSettings(req *command.Request) error {
	var what string
	var issues []settings.Issue
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddHttpFrontend:
		what, issues = a.frontendIssues(r.AddHttpFrontend)
	case *command.Request_AddHttpsFrontend:
		what, issues = a.frontendIssues(r.AddHttpsFrontend)
	case *command.Request_AddCluster:
		what, issues = "cluster "+r.AddCluster.GetClusterId(), settings.CheckCluster(r.AddCluster)
	case *command.Request_AddHttpListener:
		l := r.AddHttpListener
		what, issues = "listener "+l.GetAddress().Display(), settings.CheckListenerAnswers(l.GetHttpAnswers(), l.GetAnswers())
	case *command.Request_AddHttpsListener:
		l := r.AddHttpsListener
		what, issues = "listener "+l.GetAddress().Display(), settings.CheckListenerAnswers(l.GetHttpAnswers(), l.GetAnswers())
	case *command.Request_UpdateHttpListener:
		l := r.UpdateHttpListener
		what, issues = "listener "+l.GetAddress().Display(), settings.CheckListenerAnswers(l.GetHttpAnswers(), l.GetAnswers())
	case *command.Request_UpdateHttpsListener:
		l := r.UpdateHttpsListener
		what, issues = "listener "+l.GetAddress().Display(), settings.CheckListenerAnswers(l.GetHttpAnswers(), l.GetAnswers())
	}
	if f := req.GetAddHttpFrontend(); f != nil && f.Hsts != nil {
		issues = append(issues, settings.Issue{Field: "hsts", Index: -1,
			Msg: "HSTS is only sent over HTTPS: set it on an HTTPS frontend or listener", Effect: "it is ignored"})
	}
	if a.loadingState {
		what += " (state file record)"
	}
	var refused []string
	for _, is := range issues {
		if is.Related || a.loadingState {
			a.log.WithField("verb", command.VerbName(req)).Warnf("%s: %v: %s", what, is, is.Effect)
			continue
		}
		refused = append(refused, is.Error())
	}
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("could not dispatch request on the main process state: invalid %s: %s", what, strings.Join(refused, "; "))
}

// frontendIssues checks frontend f against the state: its cluster and the
// request id field of the listener at its address. Actor only.
func (a *actor) frontendIssues(f *command.RequestHttpFrontend) (what string, issues []settings.Issue) {
	if f.GetAddress() == nil {
		return "", nil // the state refuses it, naming the field
	}
	key, ok := state.FrontendKey(f)
	if !ok {
		key = f.GetAddress().Display() + ";" + f.GetHostname()
	}
	var idHeader string
	if l := a.state.HTTPListener(f.GetAddress()); l != nil {
		idHeader = l.GetSozuIdHeader()
	} else if l := a.state.HTTPSListener(f.GetAddress()); l != nil {
		idHeader = l.GetSozuIdHeader()
	}
	var c *command.Cluster
	if f.ClusterId != nil {
		c = a.state.Cluster(f.GetClusterId()).GetConfiguration()
	}
	return "frontend " + key, settings.CheckFrontend(f, c, idHeader)
}

// certificateOf returns the certificate an add or replace carries.
func certificateOf(req *command.Request) *command.CertificateAndKey {
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCertificate:
		return r.AddCertificate.GetCertificate()
	case *command.Request_ReplaceCertificate:
		return r.ReplaceCertificate.GetNewCertificate()
	}
	return nil
}
