package supervisor

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/redact"
)

// Private keys in state files. save_state writes a file the client owns,
// with the client's rights: an admin who may not read the proxy's key
// files must not get the keys that way. Only root, the supervisor's own
// uid (which reads the key files anyway) and state_key_custodian_uids
// receive them; anyone else's state file has every private key omitted.
// automatic_state_save, written by the supervisor to its own saved_state,
// keeps them.

// keyCustodian reports whether a state file saved for client c may hold
// private keys.
func (s *Supervisor) keyCustodian(c *session) bool {
	if !c.ident.Known {
		return false
	}
	uid := c.ident.UID
	return uid == 0 || uid == uint32(os.Getuid()) || slices.Contains(s.cfg.Admission.KeyCustodianUIDs, uid)
}

// omitKeys empties the private keys of reqs (redact.Keys) and returns how
// many records carried one.
func omitKeys(reqs []*command.WorkerRequest) int {
	n := 0
	for _, r := range reqs {
		if redact.Keys(r) > 0 {
			n++
		}
	}
	return n
}

// keysOmittedNote is what the answer to save_state adds when keys were
// omitted from the file written for c.
func keysOmittedNote(c *session, records int) string {
	who := "the peer's uid is unknown"
	if c.ident.Known {
		who = fmt.Sprintf("uid %d is not root nor in state_key_custodian_uids", c.ident.UID)
	}
	return fmt.Sprintf(" (private keys omitted from %d records: %s; those certificates will not load from this file)", records, who)
}

// errNoPrivateKey marks a certificate record that has no private key, as
// in a state file saved without keys.
var errNoPrivateKey = errors.New("no private key")

// checkHasKey refuses an add or replace of a certificate without a key,
// naming it, when a state file is loaded: such a record comes from a
// state file saved without keys. (Over the socket, tlsconf.Load refuses
// it with its own words.)
func checkHasKey(req *command.Request) error {
	ck := certificateOf(req)
	if ck == nil || ck.GetKey() != "" {
		return nil
	}
	var addr *command.SocketAddress
	if a := req.GetAddCertificate(); a != nil {
		addr = a.GetAddress()
	} else {
		addr = req.GetReplaceCertificate().GetAddress()
	}
	names := ck.GetNames()
	return fmt.Errorf("could not dispatch request on the main process state: certificate %v on %s: %w (a state file saved by a client that is not a key custodian, see state_key_custodian_uids): add it again with its key",
		names, addr.Display(), errNoPrivateKey)
}

// dropKeylessDefault removes the default certificate of an HTTPS listener
// record that has no key (a state file saved without keys), with a
// warning naming the listener: kept, the state would claim a default
// certificate that no worker can serve. The listener itself loads.
// Actor only.
func (a *actor) dropKeylessDefault(req *command.Request) {
	l := req.GetAddHttpsListener()
	if l == nil || l.GetCertificate() == "" || l.GetKey() != "" {
		return
	}
	a.log.Warnf("state file record: HTTPS listener %s: default certificate has %v (a state file saved by a client that is not a key custodian, see state_key_custodian_uids): loaded without a default certificate",
		l.GetAddress().Display(), errNoPrivateKey)
	l.Certificate, l.CertificateChain, l.Key = nil, nil, nil
}
