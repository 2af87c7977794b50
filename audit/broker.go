package audit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Options configure a Broker. Open applies the defaults (withDefaults);
// the zero value of each field is documented.
type Options struct {
	TextTarget  string // audit_logs_target: a path, "stdout" or "stderr"; "" = none
	JSONTarget  string // audit_logs_json_target: same; "" = none
	HMACKeyFile string // audit_hmac_key_file: required with JSONTarget (see LoadOrCreateKey)
	// HeadFile is the sealed head of the file sinks (head.go), rewritten
	// after each batch of records and checked at Open. Default with a
	// JSON target: HeadPath(HMACKeyFile). Without a JSON target there is
	// no key to seal it with, and no head.
	HeadFile string

	// Fsync makes every record durable before Log returns (fdatasync per
	// record per file sink; audit_fsync, default true in the config).
	Fsync bool
	// FailOpen makes Log return nil even when no sink took the record
	// (audit_fail_open). The failure is still counted and reported through
	// Warnf, and the broker writes an audit.fail_open record at Open.
	FailOpen bool

	// BootGeneration numbers this supervisor boot; 0 = one more than the
	// last record of the sink files (1 for new files).
	BootGeneration uint64
	Version        string // sozu version stamped on every record
	GitSHA         string // build commit stamped on every record

	Actor Actor                            // actor of the broker's own records; default SystemActor()
	Now   func() time.Time                 // clock; default time.Now
	Infof func(format string, args ...any) // default: discard
	Warnf func(format string, args ...any) // default: discard
}

// withDefaults is the one place defaults are applied.
func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Infof == nil {
		o.Infof = func(string, ...any) {}
	}
	if o.Warnf == nil {
		o.Warnf = func(string, ...any) {}
	}
	if o.Actor.UID == nil && o.Actor.Role == "" {
		o.Actor = SystemActor()
	}
	if o.JSONTarget == "" {
		o.HeadFile = ""
	} else if o.HeadFile == "" && o.HMACKeyFile != "" {
		o.HeadFile = HeadPath(o.HMACKeyFile)
	}
	return o
}

// Broker writes each record to every sink, in one order, and never loses
// one quietly: Log succeeds only if at least one sink took the record
// (fail closed), counts every sink failure, and records outages and
// recoveries. A Broker is safe for concurrent use; sequence numbers are
// assigned under the lock that orders writes, so seq order is file order.
type Broker struct {
	opts     Options
	key      []byte
	headPath string // "" = no sealed head

	mu            sync.Mutex
	sinks         []*sink
	seq           uint64 // last seq a sink took
	boot          uint64
	closed        bool
	outageStart   time.Time // zero: not in an outage
	outageRefused uint64
	stats         Stats
	headFailing   bool // the last head write failed
	suspended     bool // handed over to another process (handover.go)
}

// Stats are the broker's counters.
type Stats struct {
	LastSeq     uint64    // seq of the last record a sink took
	Records     uint64    // records at least one sink took
	Refused     uint64    // records no sink took (fail closed: the action was refused; fail open: unrecorded)
	Outages     uint64    // periods during which no sink took records
	OutageSince time.Time // start of the current outage; zero when none
	FsyncErrors uint64    // records written but not made durable
	HeadErrors  uint64    // failed rewrites of the sealed head
	Sinks       []SinkStats
}

// SinkStats are one sink's counters.
type SinkStats struct {
	Format    Format
	Target    string
	Failures  uint64 // failed writes
	Failing   bool   // the last write failed
	LastError string
}

// LogError says that no sink took a record. The caller must refuse the
// action (fail closed) and answer FAILURE; Errs has one *SinkError per sink.
type LogError struct {
	Seq  uint64 // the seq the record would have had; the next record reuses it
	Verb string
	Errs []error
}

func (e *LogError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("audit: no sink took record seq %d (%s): %s", e.Seq, e.Verb, strings.Join(msgs, "; "))
}

func (e *LogError) Unwrap() []error { return e.Errs }

// ErrClosed is returned by Log and Reopen after Close.
var ErrClosed = errors.New("audit: the broker is closed")

// Open opens the sinks, loads (or creates) the HMAC key, carries on the
// seq (and the JSON file's chain) from the files' last records, and writes an audit.open record
// (and an audit.fail_open one in fail-open mode). Its errors are operator
// errors naming the file and the fix (*SinkError, *KeyError), or a
// *LogError when no sink took the audit.open record (not in fail-open mode).
func Open(opts Options) (*Broker, error) {
	o := opts.withDefaults()
	if o.TextTarget == "" && o.JSONTarget == "" {
		return nil, errors.New("audit: no sink: set audit_logs_target or audit_logs_json_target")
	}
	b := &Broker{opts: o, headPath: o.HeadFile}
	var notes, warns []string
	if o.JSONTarget != "" {
		key, created, err := LoadOrCreateKey(o.HMACKeyFile)
		if err != nil {
			return nil, err
		}
		b.key = key
		if created {
			notes = append(notes, "created HMAC key file "+o.HMACKeyFile)
		}
	}
	var lastBoot uint64
	for _, t := range []struct {
		format Format
		target string
	}{{FormatText, o.TextTarget}, {FormatJSON, o.JSONTarget}} {
		if t.target == "" {
			continue
		}
		s, n, err := openSink(t.format, t.target, o.Fsync)
		if err != nil {
			b.closeSinks()
			return nil, err
		}
		b.sinks = append(b.sinks, s)
		notes = append(notes, n...)
		last, n, w, err := s.resume(b.key)
		if err != nil {
			b.closeSinks()
			return nil, err
		}
		notes, warns = append(notes, n...), append(warns, w...)
		if last != nil { // carry on from the furthest sink
			b.seq, lastBoot = max(b.seq, last.Seq), max(lastBoot, last.BootGeneration)
		}
	}
	var finds []finding
	if b.headPath != "" {
		head, headErr := ReadHead(b.headPath, b.key, true)
		var n []string
		finds, n = checkHead(b.sinks, b.headPath, head, headErr)
		notes = append(notes, n...)
		if head != nil {
			b.seq, lastBoot = max(b.seq, head.Seq), max(lastBoot, head.Boot)
		}
		for _, s := range b.sinks {
			b.seq = max(b.seq, s.lastSeq)
		}
	}
	b.boot = o.BootGeneration
	if b.boot == 0 {
		b.boot = lastBoot + 1
	}
	for _, n := range notes {
		o.Infof("audit: %s", n)
	}
	for _, w := range warns {
		o.Warnf("audit: %s", w)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(finds) > 0 {
		// Before audit.open: its anchor carries the gap in the JSON file.
		rec := b.own(VerbAuditTamper, CodeAuditTamper, ResultErr)
		rec.Target = b.targets()
		rec.ErrorCode = finds[0].code
		texts := make([]string, len(finds))
		for i, f := range finds {
			texts[i] = f.text
			o.Warnf("audit: the trail may have been tampered with (%s): %s", rec.Target, f.text)
		}
		rec.Reason = strings.Join(texts, "; ")
		if err := b.logLocked(&rec); err != nil {
			b.closeSinks()
			return nil, err
		}
	}
	rec := b.own(VerbAuditOpen, CodeAuditOpen, ResultOK)
	rec.Target = b.targets()
	// Anomalies first: the reason is cut at MaxReason runes.
	rec.Reason = strings.Join(append(append(warns, fmt.Sprintf("boot %d", b.boot)), notes...), "; ")
	if len(warns) > 0 {
		rec.ErrorCode = "chain_anomaly"
	}
	if err := b.logLocked(&rec); err != nil {
		b.closeSinks()
		return nil, err
	}
	if o.FailOpen {
		rec := b.own(VerbAuditFailOpen, CodeAuditFailOpen, ResultOK)
		rec.Reason = "audit_fail_open = true: actions proceed even when no audit sink takes their record"
		o.Warnf("audit: %s", rec.Reason)
		b.logLocked(&rec)
	}
	return b, nil
}

// own returns a record of the broker itself.
func (b *Broker) own(verb string, code Code, result Result) Record {
	return Record{Verb: verb, Code: code, Result: result, Actor: b.opts.Actor}
}

// targets describes the sinks for a record's target field.
func (b *Broker) targets() string {
	parts := make([]string, len(b.sinks))
	for i, s := range b.sinks {
		parts[i] = strings.ToLower(s.format.String()) + "=" + s.target
	}
	return strings.Join(parts, " ")
}

// FailOpen reports whether the broker runs with audit_fail_open.
func (b *Broker) FailOpen() bool { return b.opts.FailOpen }

// Log stamps rec (Time, BootGeneration, Seq, Version, GitSHA) and writes it
// to every sink. It returns nil when at least one sink took the record (a
// write(2) of the whole line returned), a *LogError when none did (nil in
// fail-open mode), a *RecordError when rec is malformed (nothing written),
// or ErrClosed. On a *LogError the caller must refuse the action.
func (b *Broker) Log(rec *Record) error {
	if err := rec.check(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.suspended {
		return ErrSuspended
	}
	return b.logLocked(rec)
}

// writeResult is what one record's writes did.
type writeResult struct {
	took        int
	errs        []error
	newlyFailed []*sink
	recovered   []*sink
	downFor     []time.Duration // per recovered sink
}

func (b *Broker) logLocked(rec *Record) error {
	now := b.opts.Now()
	rec.Time = now.UTC().Truncate(time.Microsecond)
	rec.BootGeneration, rec.Seq = b.boot, b.seq+1
	rec.Version, rec.GitSHA = b.opts.Version, b.opts.GitSHA
	res, err := b.writeAll(rec, now, nil)
	if err != nil {
		return err
	}
	if res.took == 0 {
		b.stats.Refused++
		if b.outageStart.IsZero() {
			b.outageStart = now
			b.stats.Outages++
		}
		b.outageRefused++
		lerr := &LogError{Seq: rec.Seq, Verb: rec.Verb, Errs: res.errs}
		if b.opts.FailOpen {
			b.opts.Warnf("%v (audit_fail_open: the action proceeds unrecorded)", lerr)
			return nil
		}
		return lerr
	}
	b.seq = rec.Seq
	b.stats.Records++
	defer b.saveHead() // once the batch (this record and those below) is written

	// Records about the trail itself, after the record that revealed them.
	wasOut := !b.outageStart.IsZero()
	if wasOut {
		b.recovered(now, rec.Seq)
	}
	for _, s := range res.newlyFailed {
		b.sinkFailed(s)
	}
	if !wasOut {
		for i, s := range res.recovered {
			b.sinkRecovered(s, res.downFor[i])
		}
	}
	return nil
}

// writeAll writes rec to every sink that skip does not exclude, updating
// each sink's failure state and the chain.
func (b *Broker) writeAll(rec *Record, now time.Time, skip func(*sink) bool) (writeResult, error) {
	var res writeResult
	w := rec.wire()
	var text []byte
	for _, s := range b.sinks {
		if skip != nil && skip(s) {
			continue
		}
		var line []byte
		var chain [32]byte
		if s.format == FormatJSON {
			var err error
			if line, chain, err = s.encodeJSON(b.key, w); err != nil {
				return res, err
			}
		} else {
			if text == nil {
				text = w.text()
			}
			line = text
		}
		err := s.write(line)
		var fe errFsync
		if errors.As(err, &fe) {
			b.stats.FsyncErrors++
			b.opts.Warnf("audit %s sink %s: record seq %d written but not made durable: %v", s.format, s.target, rec.Seq, fe.err)
			err = nil
		}
		if err != nil {
			s.failures++
			s.lastErr = err
			s.anchor = true
			if !s.failing {
				s.failing, s.failSince = true, now
				res.newlyFailed = append(res.newlyFailed, s)
			}
			res.errs = append(res.errs, &SinkError{s.format, s.target, "write", err})
			continue
		}
		res.took++
		s.lastSeq = rec.Seq
		if s.format == FormatJSON {
			s.lastChain, s.anchor = chain, false
		}
		if s.failing {
			s.failing = false
			res.recovered = append(res.recovered, s)
			res.downFor = append(res.downFor, now.Sub(s.failSince))
		}
	}
	return res, nil
}

// writeOwn writes one of the broker's own records to the sinks skip does
// not exclude, consuming a seq when one took it.
func (b *Broker) writeOwn(rec *Record, skip func(*sink) bool) {
	now := b.opts.Now()
	rec.Time = now.UTC().Truncate(time.Microsecond)
	rec.BootGeneration, rec.Seq = b.boot, b.seq+1
	rec.Version, rec.GitSHA = b.opts.Version, b.opts.GitSHA
	res, err := b.writeAll(rec, now, skip)
	if err != nil || res.took == 0 {
		b.opts.Warnf("audit: could not record %s: %v", rec.Verb, errors.Join(append(res.errs, err)...))
		return
	}
	b.seq = rec.Seq
	b.stats.Records++
}

// recovered ends an outage with a record of its duration.
func (b *Broker) recovered(now time.Time, firstSeq uint64) {
	d := now.Sub(b.outageStart)
	what := "the actions were refused (fail closed)"
	if b.opts.FailOpen {
		what = "the actions proceeded unrecorded (audit_fail_open)"
	}
	rec := b.own(VerbAuditRecovered, CodeAuditRecovered, ResultOK)
	rec.Extras.Elapsed = &d
	rec.Target = b.targets()
	rec.Reason = fmt.Sprintf("no audit sink took records for %s from %s; %d records refused: %s; first record taken after it: seq %d",
		d.Round(time.Millisecond), formatTime(b.outageStart), b.outageRefused, what, firstSeq)
	b.opts.Warnf("audit: %s", rec.Reason)
	b.outageStart, b.outageRefused = time.Time{}, 0
	b.writeOwn(&rec, nil)
}

// sinkFailed records, in the sinks that still work, that s failed.
func (b *Broker) sinkFailed(s *sink) {
	rec := b.own(VerbAuditSinkFailed, CodeAuditSinkFailed, ResultErr)
	rec.Target = s.format.String() + " " + s.target
	rec.ErrorCode = errnoName(s.lastErr)
	if rec.ErrorCode == "" {
		rec.ErrorCode = "write_failed"
	}
	rec.Reason = (&SinkError{s.format, s.target, "write", s.lastErr}).Error()
	b.opts.Warnf("%s", rec.Reason)
	b.writeOwn(&rec, func(o *sink) bool { return o.failing })
}

// sinkRecovered records that s takes records again.
func (b *Broker) sinkRecovered(s *sink, down time.Duration) {
	rec := b.own(VerbAuditSinkRecovered, CodeAuditSinkRecovered, ResultOK)
	rec.Target = s.format.String() + " " + s.target
	rec.Extras.Elapsed = &down
	rec.Reason = fmt.Sprintf("audit %s sink %s takes records again after failing for %s (%d failed writes in all)",
		s.format, s.target, down.Round(time.Millisecond), s.failures)
	b.opts.Infof("%s", rec.Reason)
	b.writeOwn(&rec, nil)
}

// Reopen reopens every file sink (for logrotate: on SIGHUP and the `sozu
// audit reopen` verb) and writes an audit.reopen record to each. A JSON
// file's new first record carries prev_seq and prev_chain, linking the
// old file's last record into the new one. A sink that cannot be reopened
// keeps its old file, so nothing is lost; the error names it.
func (b *Broker) Reopen() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.suspended {
		return ErrSuspended
	}
	var errs, notes []string
	var joined []error
	for _, s := range b.sinks {
		switch changed, err := s.reopen(); {
		case err != nil:
			errs = append(errs, err.Error())
			joined = append(joined, err)
		case s.std:
		case changed:
			notes = append(notes, fmt.Sprintf("%s: new file", s.target))
		default:
			notes = append(notes, fmt.Sprintf("%s: same file", s.target))
		}
	}
	rec := b.own(VerbAuditReopen, CodeAuditReopen, ResultOK)
	rec.Target = b.targets()
	rec.Reason = strings.Join(append(notes, errs...), "; ")
	if len(errs) > 0 {
		rec.Result, rec.ErrorCode = ResultErr, "reopen_failed"
	}
	if err := b.logLocked(&rec); err != nil {
		joined = append(joined, err)
	}
	return errors.Join(joined...)
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.LastSeq, st.OutageSince = b.seq, b.outageStart
	st.Sinks = make([]SinkStats, len(b.sinks))
	for i, s := range b.sinks {
		st.Sinks[i] = SinkStats{Format: s.format, Target: s.target, Failures: s.failures, Failing: s.failing}
		if s.lastErr != nil {
			st.Sinks[i].LastError = s.lastErr.Error()
		}
	}
	return st
}

// Close flushes and closes the sinks. Log and Reopen fail with ErrClosed
// afterwards. Close is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.suspended { // the sinks are closed already
		return nil
	}
	return b.closeSinks()
}

func (b *Broker) closeSinks() error {
	var errs []error
	for _, s := range b.sinks {
		if err := s.close(); err != nil {
			errs = append(errs, &SinkError{s.format, s.target, "close", err})
		}
	}
	return errors.Join(errs...)
}
