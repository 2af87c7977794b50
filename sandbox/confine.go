package sandbox

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Options is what Confine needs: resolved, before any step runs.
type Options struct {
	Account   Account // from LookupAccount
	AllowRoot bool    // worker_allow_root
	Mode      Mode    // sandbox_mode
}

// Identity is the user and group a process runs as, as the kernel says
// (effective ids), with the real and saved ids when they differ.
type Identity struct {
	UID, GID int
	// RUID, SUID, RGID, SGID: the real and saved ids.
	RUID, SUID, RGID, SGID int
}

// Matches reports whether every id of i is a's.
func (i Identity) Matches(a Account) bool {
	return i.UID == a.UID && i.RUID == a.UID && i.SUID == a.UID &&
		i.GID == a.GID && i.RGID == a.GID && i.SGID == a.GID
}

func currentIdentity() Identity {
	r, e, s := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	return Identity{UID: e, GID: eg, RUID: r, SUID: s, RGID: rg, SGID: sg}
}

// Confine runs the confinement steps of docs/architecture.md §1, in order, and stops at
// the first that fails: Prepare, DropPrivileges, SetNoNewPrivs,
// DisableCoreDumps, Load (which verifies every thread). On error the worker
// must exit without serving. With ModeOff every step but Load runs.
//
// It returns the identity the process runs as, read from the kernel after
// the drop (and before the filter, which forbids getresuid): o.Account when
// it started as root, its own otherwise (an unprivileged supervisor's
// workers keep its uid). Log that, not o.Account.
//
// Everything the worker will use must be open or resolved before: listener
// and channel descriptors, certificates (as bytes), the account, the log
// sink. Afterwards the worker opens no file and starts no process.
func Confine(o Options) (Identity, error) {
	if err := Prepare(); err != nil {
		return Identity{}, err
	}
	if err := DropPrivileges(o.Account, o.AllowRoot); err != nil {
		return Identity{}, err
	}
	id := currentIdentity()
	if err := SetNoNewPrivs(); err != nil {
		return id, err
	}
	if err := DisableCoreDumps(); err != nil {
		return id, err
	}
	return id, Load(o.Mode)
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
