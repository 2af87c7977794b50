package sandbox

import (
	"fmt"
	"time"
)

// Options is what Confine needs: resolved, before any step runs.
type Options struct {
	Account   Account // from LookupAccount
	AllowRoot bool    // worker_allow_root
	Mode      Mode    // sandbox_mode
}

// Confine runs the confinement steps of design.md §1, in order, and stops at
// the first that fails: Prepare, DropPrivileges, SetNoNewPrivs,
// DisableCoreDumps, Load (which verifies every thread). On error the worker
// must exit without serving. With ModeOff every step but Load runs.
//
// Everything the worker will use must be open or resolved before: listener
// and channel descriptors, certificates (as bytes), the account, the log
// sink. Afterwards the worker opens no file and starts no process.
func Confine(o Options) error {
	if err := Prepare(); err != nil {
		return err
	}
	if err := DropPrivileges(o.Account, o.AllowRoot); err != nil {
		return err
	}
	if err := SetNoNewPrivs(); err != nil {
		return err
	}
	if err := DisableCoreDumps(); err != nil {
		return err
	}
	return Load(o.Mode)
}

// Prepare runs the lazy initialisations that need calls the policy
// forbids, so that they do not first happen in a confined worker: glibc's
// malloc arena limit (read from /sys when the ninth thread mallocs; cgo
// starts every runtime thread with pthread_create) and time.Local (opens
// /etc/localtime; every log line's timestamp needs it). Load calls it too.
// It is idempotent.
func Prepare() error {
	if err := prepareLibc(); err != nil {
		return err
	}
	if name := time.Local.String(); name == "" {
		return fmt.Errorf("sandbox: time.Local has no name")
	}
	return nil
}
