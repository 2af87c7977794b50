package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/config"
)

func buildAuditReopen(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_AuditReopen{AuditReopen: &command.AuditReopen{}}}, nil
}

// runAuditVerify checks a JSON audit file locally: every record's HMAC and
// the seq chain. The key is --key, else audit_hmac_key_file of the
// configuration when -c is given and loads, else FILE.key. Exit 0 when the
// chain holds, 1 naming the first broken record, 78 for an unusable key.
func runAuditVerify(a *app, inv *invocation) int {
	file := inv.args[0]
	key := inv.values.str("key")
	if key == "" && inv.configPath != "" {
		if cfg, err := config.LoadClient(inv.configPath); err == nil && cfg.AuditHMACKeyFile != "" {
			key = cfg.AuditHMACKeyFile
		}
	}
	if key == "" {
		key = file + ".key"
	}
	sum, err := audit.VerifyFile(file, key)
	if err != nil {
		code := exitFailure
		var ke *audit.KeyError
		if errors.As(err, &ke) || errors.Is(err, os.ErrNotExist) {
			code = exitConfig
		}
		msg := fmt.Sprintf("audit verify %s: %v", file, err)
		if inv.json {
			return a.printJSON(jsonEnvelope{Status: "FAILURE", Message: msg}, code)
		}
		fmt.Fprintln(a.stderr, "sozu "+msg)
		return code
	}
	msg := fmt.Sprintf("%s: chain intact: %d records, seq %d to %d", file, sum.Records, sum.FirstSeq, sum.LastSeq)
	if inv.json {
		return a.printJSON(jsonEnvelope{Status: "OK", Message: msg}, exitOK)
	}
	fmt.Fprintln(a.stdout, msg)
	return exitOK
}
