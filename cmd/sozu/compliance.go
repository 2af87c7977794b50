package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/compliance"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/config"
	"github.com/sozu-go/sozu/worker/logfilter"
)

// runCompliance gathers the proxy's security posture (configuration file,
// supervisor answers, /proc of the workers, audit files), evaluates it
// against the PCI DSS v4.0 catalogue of package compliance and prints the
// report. Exit 0 when no check fails, 1 when one does; 78 for a
// configuration that does not load, 69 when the supervisor is unreachable,
// 77 when it refuses the caller.
func runCompliance(a *app, inv *invocation) int {
	path := a.configPath(inv)
	// The settings alone: an operator who may not read the keys can run it.
	cfg, err := config.LoadSettings(path)
	if err != nil {
		return a.fail(inv, &configError{path: path, err: err})
	}
	c, err := a.dial(cfg.CommandSocket, int(min(cfg.MaxCommandBufferSize, math.MaxInt32)))
	if err != nil {
		return a.fail(inv, err)
	}
	defer c.Close()
	ctx, cancel := deadline(inv, 0)
	defer cancel()
	g := &gatherer{ctx: ctx, c: c}
	snap, resp, err := g.snapshot(cfg, time.Now())
	if err != nil {
		return a.fail(inv, err)
	}
	if resp != nil { // the supervisor refused the caller
		return a.answer(inv, resp)
	}
	report := compliance.Evaluate(snap)
	code := exitOK
	if report.Failed() {
		code = exitFailure
	}
	if inv.json {
		doc, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return a.fail(inv, err)
		}
		a.stdout.Write(append(doc, '\n'))
		return code
	}
	fmt.Fprint(a.stdout, renderCompliance(&report, a.colorOut))
	return code
}

// gatherer asks the supervisor, over one connection, in order.
type gatherer struct {
	ctx context.Context
	c   *Client
}

// ask sends req; a FAILURE answer is returned as its message in failed,
// a broken connection as err.
func (g *gatherer) ask(req *command.Request) (resp *command.Response, failed string, err error) {
	resp, err = g.c.Do(g.ctx, req, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.GetStatus() != command.ResponseStatus_OK {
		return resp, command.VerbKey(req) + ": " + cleanText(resp.GetMessage(), false), nil
	}
	return resp, "", nil
}

// snapshot fills a compliance.Snapshot. When the supervisor answers the
// first request "unauthorized:", that answer is returned instead.
func (g *gatherer) snapshot(cfg *config.Config, now time.Time) (*compliance.Snapshot, *command.Response, error) {
	s := &compliance.Snapshot{Now: now, ConfigPath: cfg.Path, Settings: settingsOf(cfg)}
	s.Socket = lstatFile(cfg.CommandSocket)

	// status: the workers, then their confinement read from /proc.
	resp, failed, err := g.ask(&command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(resp.GetMessage(), "unauthorized:") {
		return nil, resp, nil
	}
	if failed != "" {
		s.WorkersErr = failed
	}
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		wc := confinementOf(w)
		s.Workers = append(s.Workers, compliance.Worker{
			ID: wc.ID, PID: wc.PID, RunState: w.GetRunState().String(), Threads: wc.Threads,
			UID: wc.UID, GID: wc.GID, NoNewPrivs: wc.NoNewPrivs, Seccomp: wc.Seccomp, Err: wc.Error,
		})
	}

	// list_listeners: TLS policy of the HTTPS listeners, and their default
	// certificates.
	resp, failed, err = g.ask(&command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
	if err != nil {
		return nil, nil, err
	}
	var httpAddrs []string
	if failed != "" {
		s.ListenersErr = failed
	} else {
		ll := resp.GetContent().GetListenersList()
		for _, k := range slices.Sorted(maps.Keys(ll.GetHttpsListeners())) {
			l := ll.GetHttpsListeners()[k]
			hl := compliance.HTTPSListener{
				Address: l.GetAddress().Display(), Active: l.GetActive(), Versions: l.GetVersions(),
				CipherList: l.GetCipherList(), CipherSuites: l.GetCipherSuites(), Groups: l.GetGroupsList(),
				SendTLS13Tickets: l.GetSendTls13Tickets(), StrictSNIBinding: l.StrictSniBinding,
			}
			if h := l.GetHsts(); h != nil {
				hl.HSTS = &compliance.HSTS{Enabled: h.GetEnabled(), MaxAge: h.GetMaxAge(), IncludeSubdomains: h.GetIncludeSubdomains()}
			}
			s.HTTPS = append(s.HTTPS, hl)
			if l.GetCertificate() != "" {
				s.Certificates = append(s.Certificates, compliance.Certificate{
					Source: "list_listeners (default certificate of " + hl.Address + ")", PEM: l.GetCertificate()})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(ll.GetHttpListeners())) {
			l := ll.GetHttpListeners()[k]
			httpAddrs = append(httpAddrs, l.GetAddress().Display())
			s.HTTP = append(s.HTTP, compliance.HTTPListener{Address: l.GetAddress().Display(), Active: l.GetActive()})
		}
	}

	// The state's certificates (private keys blanked by the supervisor).
	resp, failed, err = g.ask(&command.Request{RequestType: &command.Request_QueryCertificatesFromTheState{
		QueryCertificatesFromTheState: &command.QueryCertificatesFilters{}}})
	if err != nil {
		return nil, nil, err
	}
	if failed != "" {
		s.CertificatesErr = failed
	}
	certs := resp.GetContent().GetCertificatesWithFingerprints().GetCerts()
	for _, fp := range slices.Sorted(maps.Keys(certs)) {
		ck := certs[fp]
		s.Certificates = append(s.Certificates, compliance.Certificate{
			Source: "query_certificates_from_the_state", Fingerprint: fp, Names: ck.GetNames(), PEM: ck.GetCertificate()})
	}

	// Plain HTTP routes and whether their clusters redirect to HTTPS.
	if len(s.HTTP) > 0 {
		if err := g.httpRoutes(s); err != nil {
			return nil, nil, err
		}
	}

	// Audit files last: the records of the queries above are written
	// before their answers, so the chain verified includes them.
	s.Audit = auditFacts(cfg)
	return s, nil, nil
}

// httpRoutes fills the routes of s.HTTP: list_frontends, then
// query_cluster_by_id for every cluster an HTTP frontend names.
func (g *gatherer) httpRoutes(s *compliance.Snapshot) error {
	setErr := func(msg string) {
		for i := range s.HTTP {
			s.HTTP[i].RoutesErr = msg
		}
	}
	resp, failed, err := g.ask(&command.Request{RequestType: &command.Request_ListFrontends{ListFrontends: &command.FrontendFilters{
		Http: ptr(true), Https: ptr(false), Tcp: ptr(false)}}})
	if err != nil || failed != "" {
		setErr(failed)
		return err
	}
	redirect := map[string]bool{}
	for _, f := range resp.GetContent().GetFrontendList().GetHttpFrontends() {
		id := f.GetClusterId()
		if id == "" {
			continue
		}
		if _, done := redirect[id]; done {
			continue
		}
		cr, failed, err := g.ask(&command.Request{RequestType: &command.Request_QueryClusterById{QueryClusterById: id}})
		if err != nil || failed != "" {
			setErr(failed)
			return err
		}
		main := cr.GetContent().GetWorkerResponses().GetMap()["main"]
		for _, ci := range main.GetClusters().GetVec() {
			redirect[id] = ci.GetConfiguration().GetHttpsRedirect()
		}
	}
	for _, f := range resp.GetContent().GetFrontendList().GetHttpFrontends() {
		r := compliance.Route{Hostname: f.GetHostname(), Path: pathText(f.GetPath()), ClusterID: f.GetClusterId(),
			HTTPSRedirect: redirect[f.GetClusterId()]}
		switch {
		case f.GetRedirect() == command.RedirectPolicy_UNAUTHORIZED:
			r.ClusterID = "" // answers 401: forwards nothing
		case f.GetRedirect() != command.RedirectPolicy_FORWARD && f.GetRedirectScheme() == command.RedirectScheme_USE_HTTPS:
			r.HTTPSRedirect = true
		}
		addr := f.GetAddress().Display()
		for i := range s.HTTP {
			if s.HTTP[i].Address == addr {
				s.HTTP[i].Routes = append(s.HTTP[i].Routes, r)
			}
		}
	}
	return nil
}

func settingsOf(cfg *config.Config) compliance.Settings {
	a := cfg.Admission
	return compliance.Settings{
		CommandSocket: cfg.CommandSocket, SocketGroup: a.SocketGroup,
		AllowedUIDs: a.AllowedUIDs, AllowedGIDs: a.AllowedGIDs, ReadonlyUIDs: a.ReadonlyUIDs, ReadonlyGIDs: a.ReadonlyGIDs,
		AuditTextTarget: cfg.AuditLogsTarget, AuditJSONTarget: cfg.AuditLogsJSONTarget,
		AuditHMACKeyFile: cfg.Audit.HMACKeyFile, AuditFailOpen: cfg.Audit.FailOpen,
		AuditQueries: cfg.Audit.Queries, AuditFsync: cfg.Audit.Fsync,
		SandboxMode: cfg.Sandbox.Mode, WorkerUser: cfg.Sandbox.User, WorkerAllowRoot: cfg.Sandbox.AllowRoot,
		TLSSessionTickets: cfg.Sandbox.TLSSessionTickets,
		AccessLogsTarget:  cfg.AccessLogsTarget, LogLevel: cfg.LogLevel, LogLevelInfo: infoLevel(cfg.LogLevel),
		NotInForce: notInForce(cfg.Warnings),
	}
}

// infoLevel reports whether the log filter writes info lines.
func infoLevel(filter string) bool {
	lvl, err := logfilter.Parse(filter)
	return err == nil && lvl >= logrus.InfoLevel
}

func notInForce(ws []config.Warning) []compliance.NotInForce {
	var out []compliance.NotInForce
	for _, w := range ws {
		key := w.Key
		if w.Line > 0 {
			key = fmt.Sprintf("%s:%d:%d: %s", w.File, w.Line, w.Col, w.Key)
		}
		out = append(out, compliance.NotInForce{Key: key, Why: w.Why, Protection: w.Protection})
	}
	return out
}

// auditFacts stats the audit files and verifies the JSON file's chain,
// with the caller's permissions.
func auditFacts(cfg *config.Config) compliance.Audit {
	var a compliance.Audit
	fileAndDir := func(target string) (compliance.File, compliance.File) {
		if !filepath.IsAbs(target) {
			e := compliance.File{Path: target, Err: "not a file (" + target + ")"}
			return e, e
		}
		return lstatFile(target), lstatFile(filepath.Dir(target))
	}
	if t := cfg.AuditLogsTarget; t != "" {
		a.TextFile, a.TextDir = fileAndDir(t)
	}
	t := cfg.AuditLogsJSONTarget
	if t == "" {
		return a
	}
	a.JSONFile, a.JSONDir = fileAndDir(t)
	key := cfg.Audit.HMACKeyFile
	if key == "" {
		a.KeyFile = compliance.File{Err: "no audit_hmac_key_file"}
		a.Chain.Skipped = "no HMAC key file configured"
		return a
	}
	a.KeyFile = lstatFile(key)
	if !filepath.IsAbs(t) {
		a.Chain.Skipped = "the JSON target " + t + " is not a file"
		return a
	}
	// The live file may start at a rotation's anchor; it must reach the
	// sealed head, read before it.
	opts := audit.VerifyOptions{Rotated: true}
	headNote := ""
	if keyBytes, err := audit.ReadKeyFile(key); err == nil {
		headPath := audit.HeadPath(key)
		switch h, err := audit.ReadHead(headPath, keyBytes, false); {
		case err != nil:
			headNote = err.Error()
		case h.JSONEntry() == nil:
			headNote = "the sealed head " + headPath + " names no JSON file"
		default:
			opts.Head = h.JSONEntry()
		}
	}
	sum, err := audit.VerifyFile(t, key, opts)
	var ve *audit.VerifyError
	switch {
	case err == nil:
		a.Chain = compliance.Chain{Verified: true, Records: sum.Records, FirstSeq: sum.FirstSeq, LastSeq: sum.LastSeq,
			HeadSeq: sum.HeadSeq, HeadNote: headNote}
	case errors.As(err, &ve):
		a.Chain.Broken = err.Error()
	default: // the key or the file cannot be read by the caller
		a.Chain.Skipped = err.Error()
	}
	for _, tr := range sum.Tampers {
		a.Chain.Tampers = append(a.Chain.Tampers, compliance.Tamper{Line: tr.Line, Seq: tr.Seq, Missing: tr.Missing, Reason: tr.Reason})
	}
	return a
}

// lstatFile examines path without following a symlink.
func lstatFile(path string) compliance.File {
	fi, err := os.Lstat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return compliance.File{Path: path, Err: err.Error()}
	}
	return compliance.File{Path: path, Mode: fi.Mode()}
}

// renderCompliance is the text report: one block per requirement, one
// line per check (status, id, subject: summary) with its evidence below,
// each value followed by where it was read; then the totals.
func renderCompliance(r *compliance.Report, color bool) string {
	p := painter(color)
	idWidth := 0
	for _, d := range compliance.Catalogue() {
		idWidth = max(idWidth, len(d.ID))
	}
	indent := strings.Repeat(" ", 2+4+2+idWidth+2)
	var b strings.Builder
	fmt.Fprintf(&b, "%s compliance report for %s\n", r.Standard, cleanText(r.Config, false))
	fmt.Fprintf(&b, "generated %s\n", r.GeneratedAt.Format(time.RFC3339))
	for _, g := range r.Requirements {
		fmt.Fprintf(&b, "\n%s %s: %s\n", statusText(p, g.Status), g.ID, g.Title)
		for _, c := range g.Checks {
			fmt.Fprintf(&b, "  %s  %-*s  %s: %s\n", statusText(p, c.Status), idWidth, c.ID,
				cleanText(c.Subject, false), cleanText(c.Summary, false))
			for _, e := range c.Evidence {
				fmt.Fprintf(&b, "%s%s  [%s]\n", indent, cleanText(e.Observed, false), cleanText(e.Source, false))
			}
		}
	}
	fmt.Fprintf(&b, "\nresult: %s (%d pass, %d warn, %d fail, %d n/a)\n", strings.TrimSpace(statusText(p, r.Status)),
		r.Counts.Pass, r.Counts.Warn, r.Counts.Fail, r.Counts.NA)
	return b.String()
}

func statusText(p painter, s compliance.Status) string {
	word := fmt.Sprintf("%-4s", s)
	switch s {
	case compliance.Fail:
		return p.red(word)
	case compliance.Warn:
		return p.wrap("33", word)
	case compliance.Pass:
		return p.wrap("32", word)
	}
	return word
}
