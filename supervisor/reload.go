package supervisor

import (
	"fmt"
	"strings"
	"time"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/supervisor/asuser"
	"github.com/sozu-go/sozu/supervisor/config"
	"github.com/sozu-go/sozu/supervisor/sdnotify"
)

// reload_configuration (docs/reload.md): the file is
// read and validated in full, diffed against the running state
// (planReload), the whole plan is checked on a copy of the state and its
// new listeners are bound; only then is it applied, in one state-actor job,
// as ordinary requests that fan out to the workers and are audited each
// (their records name the reload). A file that does not parse, or a plan
// the state would refuse, changes nothing.

// reloadConfiguration answers reload_configuration. path "" reloads the
// file the supervisor was started with, read with the supervisor's own
// rights; any other path is read with the client's filesystem identity
// (peerFS), as load_state does, so that no path a client names makes the
// supervisor read what the client could not.
func (s *Supervisor) reloadConfiguration(c *session, path string) bool {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	s.notify(sdnotify.Reloading, sdnotify.MonotonicUsec(), sdnotify.Status("reloading the configuration"))
	ok, detail := s.reload(c, path)
	s.ops.note("reload", ok, detail)
	// Every local user reads STATUS= (systemctl status): a failure's
	// reason, which may quote the file reloaded, is for `sozu status` as
	// an admin (reload_status.go).
	status := "last reload: " + oneLine(detail)
	if !ok {
		status = "last reload failed: sozu status (admin) says why"
	}
	s.notify(sdnotify.Ready, sdnotify.Status(status))
	if ok {
		if c.trace != nil {
			c.trace.note = oneLine(detail) // the reload's own completion record carries its counts
		}
		return c.ok(detail, nil)
	}
	return c.fail(detail)
}

// reload does the work of reloadConfiguration and returns its answer.
func (s *Supervisor) reload(c *session, path string) (ok bool, answer string) {
	var cfg *config.Config
	var err error
	if path == "" {
		path = s.cfg.Path
		c.processing("Reloading the configuration at path " + path)
		cfg, err = config.Load(path)
	} else {
		c.processing("Reloading the configuration at path " + path)
		err = asuser.Do(peerFS(c), func() (err error) {
			cfg, err = config.Load(path)
			return err
		})
	}
	if err != nil {
		return false, fmt.Sprintf("reloading %s: nothing changed: %v", path, err)
	}
	next := state.New()
	for _, wr := range cfg.Requests() {
		if err := next.Dispatch(wr.GetContent()); err != nil {
			return false, fmt.Sprintf("reloading %s: nothing changed: request %s (%s) refused by the state: %v",
				path, wr.GetId(), command.VerbName(wr.GetContent()), err)
		}
	}
	id := s.ids.New() // the reload id, in every record of its requests
	if c.trace != nil {
		id = c.trace.id // the reload verb's own records share it
	}
	var run *reloadRun
	s.do(func(a *actor) { run = a.startReload(c, id, next) })
	if run.err != nil {
		return false, fmt.Sprintf("reloading %s (reload %s): nothing changed: %v", path, id, run.err)
	}
	outs := s.finishReload(c, run)
	s.emitEvent("main", &command.Event{Kind: command.EventKind_CONFIGURATION_RELOADED.Enum()})
	return s.reloadAnswer(path, cfg, run, outs)
}

// reloadRun is a plan being applied: its steps, the request id of each
// step's audit records, the calls each step made to the workers, and how
// many steps were applied to the state (all of them unless applyErr).
type reloadRun struct {
	id       string
	plan     *reloadPlan
	ulids    []string
	calls    [][]*call
	applied  int
	err      error // the plan was refused: nothing changed
	applyErr error // step applied stopped at it
}

// startReload plans the reload of next, checks the plan, writes the
// attempt record of every step and applies the steps. Actor only: no
// other verb runs between the check and the last step.
func (a *actor) startReload(c *session, id string, next *state.ConfigState) *reloadRun {
	run := &reloadRun{id: id}
	if a.stopping {
		run.err = errStopping
		return run
	}
	run.plan = planReload(a.state, next)
	if err := a.checkPlan(run.plan); err != nil {
		run.err = err
		return run
	}
	if err := a.prebind(run.plan); err != nil {
		run.err = err
		return run
	}
	n := len(run.plan.steps)
	for i, st := range run.plan.steps {
		rec := a.stepRecord(c, audit.CodeCommandAttempt, st.req, a.ids.New(), stepReason(id, i, n, st.what))
		if err := a.record(rec); err != nil {
			a.releasePrebound()
			run.err = fmt.Errorf("audit trail unavailable, nothing applied: %s", auditReason(err))
			return run
		}
		run.ulids = append(run.ulids, rec.RequestULID)
	}
	for _, st := range run.plan.steps {
		calls, err := a.apply(st.req)
		if err != nil {
			run.applyErr = err
			break
		}
		run.calls = append(run.calls, calls)
		run.applied++
	}
	a.releasePrebound()
	return run
}

// checkPlan applies every step of p to a copy of the state, with the
// checks apply makes (certificates, settings), and returns the first
// refusal, naming its step. The state is left as it was. Actor only.
func (a *actor) checkPlan(p *reloadPlan) error {
	saved := a.state
	a.state = saved.Clone()
	defer func() { a.state = saved }()
	for i, st := range p.steps {
		if err := a.validate(st.req); err != nil {
			return fmt.Errorf("step %d/%d (%s, %s): %w", i+1, len(p.steps), command.VerbName(st.req), st.what, err)
		}
		if err := a.state.Dispatch(st.req); err != nil {
			return fmt.Errorf("step %d/%d (%s, %s): %w", i+1, len(p.steps), command.VerbName(st.req), st.what, err)
		}
	}
	return nil
}

// finishReload gathers the workers' answers of every applied step, within
// one worker_timeout for the whole reload, and writes each step's
// completion record (and one for each step not applied). It returns the
// outcomes per applied step.
func (s *Supervisor) finishReload(c *session, run *reloadRun) [][]outcome {
	deadline := time.Now().Add(s.cfg.WorkerTimeout)
	n := len(run.plan.steps)
	var all []outcome
	outs := make([][]outcome, run.applied)
	for i := range run.plan.steps {
		st := run.plan.steps[i]
		rec := s.stepRecord(c, audit.CodeCommandCompleted, st.req, run.ulids[i], stepReason(run.id, i, n, st.what))
		switch {
		case i < run.applied:
			outs[i] = s.gather(nil, run.calls[i], max(time.Until(deadline), time.Millisecond))
			all = append(all, outs[i]...)
			w := &audit.Workers{Expected: len(outs[i])}
			for _, o := range outs[i] {
				if o.ok() {
					w.OK++
				} else {
					w.Err++
				}
			}
			fan := len(outs[i])
			rec.Extras.Fanout, rec.Extras.Workers = &fan, w
			if okAll, msg := aggregate(outs[i]); !okAll {
				rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, "verb_failed", rec.Reason+": "+msg
			}
		case i == run.applied && run.applyErr != nil:
			rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, "verb_failed", rec.Reason+": "+run.applyErr.Error()
		default:
			rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, "not_applied", rec.Reason+": not applied (an earlier step failed)"
		}
		if err := s.record(rec); err != nil {
			s.log.WithFields(c.ident.Fields()).Errorf("completion record of reload %s step %d lost: %v", run.id, i+1, err)
		}
	}
	c.trace.noteOutcomes(all)
	return outs
}

// stepReason is the reason of a reload step's audit records: which reload,
// which step of how many, and what it does.
func stepReason(id string, i, n int, what string) string {
	return fmt.Sprintf("reload %s step %d/%d: %s", id, i+1, n, what)
}

// reloadAnswer words the answer: upstream's first sentence ("Successfully
// loaded the config: N ok, M errors"), then what was added, changed and
// removed, what needs a restart, and on failure exactly which steps were
// applied and which worker failed which step.
func (s *Supervisor) reloadAnswer(path string, cfg *config.Config, run *reloadRun, outs [][]outcome) (bool, string) {
	p := run.plan
	var failed []string
	okSteps, errSteps := 0, 0
	for i, o := range outs {
		if ok, msg := aggregate(o); !ok {
			errSteps++
			failed = append(failed, fmt.Sprintf("  step %d/%d (%s, %s): %s", i+1, len(p.steps), command.VerbName(p.steps[i].req), p.steps[i].what, msg))
		} else {
			okSteps++
		}
	}
	var b strings.Builder
	ok := run.applyErr == nil && errSteps == 0
	if ok {
		fmt.Fprintf(&b, "Successfully loaded the config: %d ok, 0 errors", okSteps)
	} else {
		fmt.Fprintf(&b, "loading the config failed: %d ok, %d errors", okSteps, errSteps)
	}
	fmt.Fprintf(&b, " (reload %s of %s: %d added, %d changed, %d removed",
		run.id, path, len(p.added), len(p.changed), len(p.removed))
	if restart := len(p.restart) + len(cfg.RestartChanges(s.cfg)); restart > 0 {
		fmt.Fprintf(&b, ", %d need a restart", restart)
	}
	b.WriteString(")")
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		b.WriteString("\n" + title + ":")
		for _, l := range lines {
			b.WriteString("\n  " + l)
		}
	}
	section("added", p.added)
	section("changed", p.changed)
	section("removed", p.removed)
	var restart []string
	for _, ch := range cfg.RestartChanges(s.cfg) {
		restart = append(restart, ch.String())
	}
	restart = append(restart, p.restart...)
	section("not applied, needs a restart or an upgrade", restart)
	var warnings []string
	for _, w := range cfg.Warnings {
		warnings = append(warnings, fmt.Sprint(w))
	}
	section("warnings", warnings)
	if run.applyErr != nil {
		fmt.Fprintf(&b, "\nstopped at step %d/%d (%s, %s): %v\n  steps 1-%d were applied; steps %d-%d were not",
			run.applied+1, len(p.steps), command.VerbName(p.steps[run.applied].req), p.steps[run.applied].what, run.applyErr,
			run.applied, run.applied+1, len(p.steps))
	}
	if len(failed) > 0 {
		b.WriteString("\napplied to the state, but some workers failed:\n" + strings.Join(failed, "\n"))
	}
	if len(p.steps) == 0 && len(restart) == 0 {
		b.WriteString("\nnothing to change")
	}
	return ok, b.String()
}
