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
	"github.com/sozu-go/sozu/worker/settings"
	"github.com/sozu-go/sozu/worker/tlsconf"
)

// Mutations: the verbs that change the configuration state, then every
// worker (verbs.Mutation in the verb catalogue).

// mutate applies a state verb: state first, then fan-out to every worker,
// then one terminal answer aggregating theirs (docs/protocol.md §5.1). A
// worker that misses worker_timeout makes the verb fail, naming it.
func (s *Supervisor) mutate(c *session, req *command.Request) bool {
	return s.mutateNote(c, req, "")
}

// mutateNote is mutate with a note ("" for none) that its OK answer's
// message carries after the usual text, on a new line: what of the
// request has no effect. The settings checks add theirs (actor.notes).
func (s *Supervisor) mutateNote(c *session, req *command.Request, note string) bool {
	var calls []*call
	var err error
	s.do(func(a *actor) {
		if a.stopping {
			err = errStopping
			return
		}
		a.notes = nil
		calls, err = a.apply(req)
		if err == nil && len(a.notes) > 0 {
			note = strings.TrimPrefix(note+"\n"+strings.Join(a.notes, "\n"), "\n")
		}
	})
	if note != "" {
		note = "\n" + note
	}
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
		return c.ok("Successfully applied request to all workers"+note, nil)
	}
	c.processing("Processing worker request...")
	ok, msg := aggregate(s.gather(c, calls, s.cfg.WorkerTimeout))
	if ok {
		return c.ok(msg+note, nil)
	}
	return c.fail(msg)
}

// apply dispatches req on the state, keeps the bound listeners in step,
// fans req out to the workers and saves the state when configured to.
// Actor only. A refused request changes nothing.
func (a *actor) apply(req *command.Request) ([]*call, error) {
	if a.loadingState { // a state file may have been saved without keys
		if err := checkHasKey(req); err != nil {
			return nil, err
		}
		a.dropKeylessDefault(req)
	}
	if err := a.validate(req); err != nil {
		return nil, err
	}
	var before *state.ConfigState
	if req.GetActivateListener() != nil {
		before = a.state.Clone() // restored if the socket cannot be bound
	}
	if err := a.state.Dispatch(req); err != nil {
		return nil, err
	}
	switch r := req.GetRequestType().(type) {
	case *command.Request_ActivateListener:
		key := listenerKey(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress().Display())
		if _, bound := a.listeners[key]; !bound {
			bl, err := a.bindActivation(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress()) // reload_listeners.go
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
		a.shutListener(key)
	case *command.Request_RemoveListener:
		a.shutListener(listenerKey(r.RemoveListener.GetProxy(), r.RemoveListener.GetAddress().Display()))
	case *command.Request_SetMaxConnectionsPerIp:
		// Runtime only (never saved, as upstream), but workers launched
		// later start with it.
		a.serverConfig.MaxConnectionsPerIp = proto.Uint64(r.SetMaxConnectionsPerIp)
	case *command.Request_ConfigureMetrics:
		a.noteMetrics(r.ConfigureMetrics) // likewise
	}
	calls := a.fanout(req)
	if v := verbs.Of(req); v != nil && v.Emits {
		a.emitEvent("main", mutationEvent(req, v.Event))
	}
	if state.Mutates(req) {
		a.autoSave()
	}
	return calls, nil
}

// validate runs the checks apply makes before the state takes req
// (certificates, settings), without changing anything: a reload
// runs them on a copy of the state for its whole plan first. Actor only.
func (a *actor) validate(req *command.Request) error {
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
			return fmt.Errorf("could not dispatch request on the main process state: Could not %s certificate: invalid certificate: %v", verb, err)
		}
	}
	return a.checkSettings(req)
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
		issues = append(issues, settings.CheckListenerH2(l, false)...)
	case *command.Request_AddHttpsListener:
		l := r.AddHttpsListener
		what, issues = "listener "+l.GetAddress().Display(), settings.CheckListenerAnswers(l.GetHttpAnswers(), l.GetAnswers())
		issues = append(issues, settings.CheckListenerH2(l, true)...)
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
		if is.Unused && !a.loadingState {
			// Kept, as upstream keeps it, but never in force: the OK
			// answer says so (mutate), and the log.
			a.log.WithField("verb", command.VerbName(req)).Warnf("%s: %v: %s", what, is, is.Effect)
			a.notes = append(a.notes, fmt.Sprintf("%s: %v: %s", what, is, is.Effect))
			continue
		}
		if is.Related || is.Unused || a.loadingState {
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
		c = a.state.ClusterConfig(f.GetClusterId())
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
