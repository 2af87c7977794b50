package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/config"
)

func buildAuditReopen(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_AuditReopen{AuditReopen: &command.AuditReopen{}}}, nil
}

// runAuditVerify checks a JSON audit file locally: every record's HMAC and
// the seq chain, that the file starts a chain (unless --rotated), and, with
// a sealed head, that it reaches the head. The key is --key, else
// audit_hmac_key_file of the configuration when -c is given and loads,
// else FILE.key; the head is --head, else the configuration's head when
// FILE is its audit_logs_json_target. Exit 0 when the chain holds, 1
// naming the first broken record (or an audit.tamper record in the file),
// 78 for an unusable key or an absent --head.
func runAuditVerify(a *app, inv *invocation) int {
	file := inv.args[0]
	key := inv.values.str("key")
	headPath := inv.values.str("head")
	var cfg *config.Config
	if inv.configPath != "" {
		if c, err := config.Load(inv.configPath); err == nil {
			cfg = c
		}
	}
	if key == "" && cfg != nil && cfg.Audit.HMACKeyFile != "" {
		key = cfg.Audit.HMACKeyFile
	}
	if key == "" {
		key = file + ".key"
	}
	headFromConfig := false
	if headPath == "" && cfg != nil && cfg.Audit.HMACKeyFile != "" && sameFile(file, cfg.AuditLogsJSONTarget) {
		headPath, headFromConfig = audit.HeadPath(cfg.Audit.HMACKeyFile), true
	}
	fail := func(code int, msg string) int {
		msg = "audit verify " + file + ": " + msg
		if inv.json {
			return a.printJSON(jsonEnvelope{Status: "FAILURE", Message: msg}, code)
		}
		fmt.Fprintln(a.stderr, "sozu "+msg)
		return code
	}
	opts := audit.VerifyOptions{Rotated: inv.values.flag("rotated")}
	var notes []string
	if headPath != "" {
		// The head is read before the file: records written meanwhile
		// follow the head's record, and are accepted.
		keyBytes, err := audit.ReadKeyFile(key)
		if err != nil {
			return fail(exitConfig, err.Error())
		}
		h, err := audit.ReadHead(headPath, keyBytes, false)
		switch {
		case err == nil && h.JSONEntry() == nil:
			notes = append(notes, fmt.Sprintf("the sealed head %s names no JSON file: the end of the file is not checked", headPath))
		case err == nil:
			opts.Head = h.JSONEntry()
		case headFromConfig && errors.Is(err, os.ErrNotExist):
			notes = append(notes, fmt.Sprintf("no sealed head at %s: the end of the file is not checked", headPath))
		case errors.Is(err, os.ErrNotExist):
			return fail(exitConfig, err.Error())
		default: // a broken seal is evidence, not a usage error
			return fail(exitFailure, err.Error())
		}
	}
	for _, n := range notes {
		fmt.Fprintln(a.stderr, "sozu audit verify: note: "+n)
	}
	sum, err := audit.VerifyFile(file, key, opts)
	if err != nil {
		code := exitFailure
		var ke *audit.KeyError
		if errors.As(err, &ke) || errors.Is(err, os.ErrNotExist) {
			code = exitConfig
		}
		return fail(code, err.Error()+tamperText(sum.Tampers))
	}
	msg := fmt.Sprintf("%s: chain intact: %d records, seq %d to %d", file, sum.Records, sum.FirstSeq, sum.LastSeq)
	if sum.FirstPrevSeq != 0 {
		msg += fmt.Sprintf("; a rotated piece starting at seq %d (after seq %d)", sum.FirstSeq, sum.FirstPrevSeq)
	}
	if sum.HeadSeq != 0 {
		msg += fmt.Sprintf("; reaches its sealed head (seq %d)", sum.HeadSeq)
	}
	if len(sum.Tampers) > 0 {
		return fail(exitFailure, msg+tamperText(sum.Tampers))
	}
	if inv.json {
		return a.printJSON(jsonEnvelope{Status: "OK", Message: msg}, exitOK)
	}
	fmt.Fprintln(a.stdout, msg)
	return exitOK
}

// tamperText lists a file's audit.tamper records, one per line.
func tamperText(ts []audit.Tamper) string {
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d audit.tamper record(s): at a start, the supervisor found the trail's end not where its sealed head was:", len(ts))
	for _, t := range ts {
		fmt.Fprintf(&b, "\n  line %d (seq %d): ", t.Line, t.Seq)
		if t.Missing != "" && !strings.Contains(t.Reason, t.Missing+" missing") {
			b.WriteString(t.Missing + " missing; ")
		}
		b.WriteString(t.Reason)
	}
	return b.String()
}

// sameFile reports whether path names target: the same file when both
// exist, else the same absolute path.
func sameFile(path, target string) bool {
	if target == "" {
		return false
	}
	a, errA := os.Stat(path)
	b, errB := os.Stat(target)
	if errA == nil && errB == nil {
		return os.SameFile(a, b)
	}
	abs, err := filepath.Abs(path)
	return err == nil && abs == filepath.Clean(target)
}
