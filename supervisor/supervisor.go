// Package supervisor is the Sōzu main process: it owns the configuration
// state, the listening sockets and the workers, and serves the command socket.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/peercred"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/sandbox/account"
	"github.com/sozu-go/sozu/supervisor/admission"
	"github.com/sozu-go/sozu/supervisor/config"
	"github.com/sozu-go/sozu/supervisor/identity"
)

// maxClientSessions bounds concurrent command-socket connections, so that a
// local client opening connections in a loop cannot exhaust descriptors.
// adminReservedSessions of them are kept for admins, and one uid may hold
// at most command_max_sessions_per_uid (see slots.go).
const maxClientSessions = 256

// maxRefusing bounds the connections being refused at once (answered,
// audited, closed); beyond it a refused connection is closed at once and
// only counted in its peer's refusal summary.
const maxRefusing = 16

// Supervisor is the running main process. Create it with New and run it
// with Run; it is not reusable after Run returns.
type Supervisor struct {
	cfg *config.Config
	log *logrus.Logger
	exe string

	jobs chan func(*actor) // the state actor's queue (actor.go)

	// strayAccess counts the access records dropped because a worker
	// that writes its access file sent them on its channel (worklogs.go).
	strayAccess atomic.Uint64

	sock     *net.UnixListener
	slots    *sessionSlots   // who may hold a session (session.go)
	refusing chan struct{}   // semaphore of connections being refused
	refusals *refusalLimiter // bounds refusal records (refusals.go)
	queries  *refusalLimiter // bounds the query records of peers without the admin role (refusals.go)
	ident    *identity.Resolver
	account  account.Account // what workers drop to, resolved at start
	audit    *audit.Broker   // nil when no audit sink is configured
	logs     Logs            // where the workers' logs go (worklogs.go)
	ids      *audit.IDSource

	subMu       sync.Mutex
	subscribers map[*session]chan *command.Response
	subWriters  sync.WaitGroup // the subscribers' writer goroutines
	dedup       eventDedup     // merges the workers' backend events (eventdedup.go)
	upgrades    upgradeLog     // the last upgrades, for status and events (upgrade_events.go)

	// Hot upgrade (upgrade.go): inherit is set in the new supervisor
	// before Run; handedOver once this one handed everything over (its
	// exit then closes nothing shared); gate pauses accepting meanwhile.
	inherit    *inheritance
	handedOver atomic.Bool
	gate       acceptGate

	exports   exportStats    // the statsd and Prometheus exporters' counts (exporters.go)
	retired   retiredMetrics // the counts of the workers gone, for /metrics (retired.go)
	finals    statsdFinals   // the final metrics of the workers told to stop, for statsd (departures.go)
	reloading sync.Mutex     // one reload at a time (reload.go)
	ops       opsLog         // the last reload and upgrade, for status (reload_status.go)
	// statsdLast asks the statsd sender for a last flush (departures.go).
	statsdLast chan chan struct{}

	stopOnce sync.Once
	stopped  chan struct{} // closed when Run must return
}

// New prepares a supervisor for cfg. It binds nothing and starts nothing.
func New(cfg *config.Config, log *logrus.Logger) (*Supervisor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the sozu binary for workers: %w", err)
	}
	users, err := peercred.NewUsers(peercred.UsersConfig{
		Size: cfg.Admission.UserCacheSize, TTL: cfg.Admission.UserCacheTTL, Timeout: cfg.Admission.LookupTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("peer user cache: %w", err)
	}
	policy := admission.Policy{
		AllowedUIDs:  cfg.Admission.AllowedUIDs,
		AllowedGIDs:  cfg.Admission.AllowedGIDs,
		ReadOnlyUIDs: cfg.Admission.ReadonlyUIDs,
		ReadOnlyGIDs: cfg.Admission.ReadonlyGIDs,
		SelfUID:      uint32(os.Getuid()),
	}
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", cfg.Path, err)
	}
	s := &Supervisor{
		ident:       &identity.Resolver{Socket: cfg.CommandSocket, Policy: policy, Users: users},
		ids:         audit.NewIDSource(nil, nil),
		cfg:         cfg,
		log:         log,
		exe:         exe,
		jobs:        make(chan func(*actor), 64),
		slots:       newSessionSlots(maxClientSessions, adminReservedSessions, cfg.Admission.MaxSessionsPerUID),
		refusing:    make(chan struct{}, maxRefusing),
		subscribers: map[*session]chan *command.Response{},
		stopped:     make(chan struct{}),
		statsdLast:  make(chan chan struct{}),
	}
	s.refusals = newRefusalLimiter(refusalBurst, refusalWindow, time.Now, s.writeSummary)
	s.queries = newQueryLimiter(queryBurst, queryWindow, time.Now, s.writeSummary)
	return s, nil
}

// Run starts the supervisor: it builds the state from the configuration
// (and the saved state, if any), binds the active listeners, opens the
// command socket, launches the workers, and serves until a stop verb or a
// signal (SIGTERM: soft stop, SIGINT/SIGQUIT: hard stop). It returns nil
// after a requested stop.
func (s *Supervisor) Run(ctx context.Context) error {
	// Signals are caught from the first moment: a SIGHUP from logrotate
	// while the workers start must not kill the proxy (its default action);
	// they wait in the channel until the handler below runs.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go s.loop(newActor(s))

	var sock *net.UnixListener
	if s.inherit != nil { // a hot upgrade: take over instead of starting (upgrade.go)
		var err error
		if sock, err = s.takeOver(); err != nil {
			return err
		}
	} else if err := s.openAudit(); err != nil {
		return err
	}
	defer func() {
		s.refusals.close() // the counts of suppressed refusals, before the trail closes
		s.queries.close()
		if s.audit != nil {
			if !s.handedOver.Load() { // else the trail is the successor's
				s.recordSystem(audit.VerbSupervisorStop, audit.CodeSupervisorStop, audit.ResultOK, "")
			}
			s.audit.Close()
		}
		if s.cfg.PidFilePath != "" {
			if err := removePIDFile(s.cfg.PidFilePath, os.Getpid()); err != nil {
				s.log.Warn(err.Error())
			}
		}
	}()

	if s.inherit == nil {
		if err := s.claimPIDFile(0); err != nil {
			s.recordSystem(audit.VerbSupervisorStart, audit.CodeSupervisorStart, audit.ResultErr, err.Error())
			return err
		}
		var startErr error
		s.do(func(a *actor) { startErr = a.start() })
		if startErr != nil {
			s.do(func(a *actor) { a.stopping = true; a.killWorkers() })
			s.closeListeners()
			s.recordSystem(audit.VerbSupervisorStart, audit.CodeSupervisorStart, audit.ResultErr, startErr.Error())
			return startErr
		}

		var err error
		sock, err = listenCommandSocket(s.cfg.CommandSocket, s.cfg.Admission.SocketGroup)
		if err != nil {
			s.do(func(a *actor) { a.stopping = true; a.killWorkers() })
			s.closeListeners()
			return err
		}
		s.sock = sock
		s.log.WithField("socket", s.cfg.CommandSocket).Info("command socket ready")
		s.recordSystem(audit.VerbSupervisorStart, audit.CodeSupervisorStart, audit.ResultOK,
			fmt.Sprintf("%d workers, command socket %s", s.cfg.WorkerCount, s.cfg.CommandSocket))
	} else {
		sock.SetUnlinkOnClose(true)
	}
	if s.inherit == nil {
		if err := s.startExporters(); err != nil {
			s.log.Error(err)
			go func() { s.stopAll(false, nil); s.finish() }()
			<-s.stopped
			sock.Close()
			s.closeListeners()
			return err
		}
	} else {
		// The predecessor holds the Prometheus listener until it exits.
		go s.startExportersAfterHandOver() // exporters.go
	}

	go func() {
		for {
			select {
			case sig := <-sigs:
				s.log.Infof("received %v", sig)
				if sig == syscall.SIGHUP {
					s.reopenLogs()
					if s.audit != nil {
						s.reopenAudit()
					}
					continue
				}
				go func() { s.stopAll(sig == syscall.SIGTERM, nil); s.finish() }()
			case <-ctx.Done():
				go func() { s.stopAll(false, nil); s.finish() }()
				return
			case <-s.stopped:
				return
			}
		}
	}()

	go s.acceptLoop()
	go s.watch()
	go s.notifyReady() // reload_notify.go
	<-s.stopped
	if s.handedOver.Load() {
		// The listeners, the command socket and the workers are the
		// successor's: closing our descriptors (at exit) is all.
		return nil
	}
	sock.Close()
	s.closeListeners()
	return nil
}

// start builds the initial state and launches the workers. Actor only.
func (a *actor) start() error {
	// The worker account is resolved here, where the user database is
	// readable; workers get numeric ids and never look anything up.
	acct, err := account.Lookup(a.cfg.Sandbox.User, a.cfg.Sandbox.Group)
	if err != nil {
		return fmt.Errorf("configuration %s: worker_user/worker_group: %w", a.cfg.Path, err)
	}
	a.account = acct
	if a.cfg.Sandbox.Mode == "off" {
		a.log.Warn("SANDBOX OFF: sandbox_mode = \"off\": workers run without a seccomp filter")
		a.recordSystem(audit.VerbSupervisorStart, audit.CodeSupervisorStart, audit.ResultOK, "sandbox_mode = off: workers run without seccomp")
	}
	if a.cfg.Sandbox.AllowRoot && (acct.UID == 0 || acct.GID == 0) {
		a.log.Warn("WORKERS RUN AS ROOT: worker_allow_root = true")
		a.recordSystem(audit.VerbSupervisorStart, audit.CodeSupervisorStart, audit.ResultOK, "worker_allow_root = true: workers keep root")
	}
	for _, wr := range a.cfg.Requests() {
		if err := a.state.Dispatch(wr.GetContent()); err != nil {
			return fmt.Errorf("configuration %s: request %s (%s) refused by the state: %w",
				a.cfg.Path, wr.GetId(), command.VerbName(wr.GetContent()), err)
		}
	}
	if a.cfg.SavedState != "" {
		if _, err := os.Stat(a.cfg.SavedState); err == nil {
			n, skipped, err := a.loadStateFile(a.cfg.SavedState)
			lf := a.log.WithFields(logrus.Fields{"path": a.cfg.SavedState, "applied": n, "skipped": skipped})
			if err != nil {
				lf.Errorf("saved state partly loaded: %v", err)
				a.recordSystem(audit.VerbStateAutoload, audit.CodeStateAutoload, audit.ResultErr,
					fmt.Sprintf("%s: %d records applied, %d skipped: %v", a.cfg.SavedState, n, skipped, err))
			} else {
				lf.Info("saved state loaded")
				a.recordSystem(audit.VerbStateAutoload, audit.CodeStateAutoload, audit.ResultOK,
					fmt.Sprintf("%s: %d records applied, %d skipped", a.cfg.SavedState, n, skipped))
			}
		}
	}
	if err := a.bindActiveListeners(); err != nil {
		return err
	}
	for i := range a.cfg.WorkerCount {
		if _, err := a.spawnWorker(i); err != nil {
			return err
		}
	}
	return nil
}

// bindActiveListeners binds every listener the state marks active and that
// is not bound yet. Actor only.
func (a *actor) bindActiveListeners() error {
	ll := a.state.ListListeners()
	bind := func(kind command.ListenerType, addr *command.SocketAddress, active bool) error {
		if !active {
			return nil
		}
		key := listenerKey(kind, addr.Display())
		if _, ok := a.listeners[key]; ok {
			return nil
		}
		bl, err := bindListener(kind, addr, a.cfg.WorkerCount)
		if err != nil {
			return err
		}
		a.listeners[key] = bl
		return nil
	}
	for _, l := range sortedValues(ll.GetHttpListeners()) {
		if err := bind(command.ListenerType_HTTP, l.GetAddress(), l.GetActive()); err != nil {
			return err
		}
	}
	for _, l := range sortedValues(ll.GetHttpsListeners()) {
		if err := bind(command.ListenerType_HTTPS, l.GetAddress(), l.GetActive()); err != nil {
			return err
		}
	}
	for _, l := range sortedValues(ll.GetTcpListeners()) {
		if err := bind(command.ListenerType_TCP, l.GetAddress(), l.GetActive()); err != nil {
			return err
		}
	}
	for _, l := range sortedValues(ll.GetUdpListeners()) {
		if err := bind(command.ListenerType_UDP, l.GetAddress(), l.GetActive()); err != nil {
			return err
		}
	}
	return nil
}

func sortedValues[V any](m map[string]V) []V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]V, 0, len(m))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// killWorkers kills every worker immediately. Actor only.
func (a *actor) killWorkers() {
	for _, w := range a.workers {
		if err := w.kill(); err != nil {
			a.log.Error(err)
		}
	}
}

func (s *Supervisor) closeListeners() {
	s.do((*actor).closeListenersLocked)
}

// closeListenersLocked shuts every listener (see boundListener.shut).
// Actor only.
func (a *actor) closeListenersLocked() {
	for k := range a.listeners {
		a.shutListener(k)
	}
}

// shutListener shuts the listener key, if bound, and forgets it: from now
// on the kernel refuses its new connections, whoever holds a copy. Actor
// only.
func (a *actor) shutListener(key string) {
	if l := a.listeners[key]; l != nil {
		l.shut()
		delete(a.listeners, key)
		a.log.WithField("listener", key).Info("listener shut: new connections are refused")
	}
}

// finish makes Run return. Called after the stop verb's answer is written.
func (s *Supervisor) finish() {
	s.stopOnce.Do(func() { close(s.stopped) })
}

// errStopping is returned to verbs that arrive while the supervisor stops.
var errStopping = errors.New("the supervisor is stopping")

// reopenAudit reopens the audit sinks (logrotate: SIGHUP, or the
// audit_reopen verb). The broker writes the rotation records.
func (s *Supervisor) reopenAudit() error {
	if s.audit == nil {
		return errors.New("no audit sink is configured")
	}
	if err := s.audit.Reopen(); err != nil {
		s.log.Errorf("reopening the audit sinks: %v", err)
		return err
	}
	s.log.Info("audit sinks reopened")
	return nil
}
