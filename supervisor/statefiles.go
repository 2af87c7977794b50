package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
	"github.com/sozu-go/sozu/supervisor/asuser"
)

// peerFS is whose filesystem rights a state file named by client c is
// read or written with (package asuser): the client's own, so that being
// admitted to the socket grants no access to files the client could not
// open itself. A peer whose credentials are unknown gets nobody's.
func peerFS(c *session) asuser.Identity {
	if !c.ident.Known {
		return asuser.Identity{UID: 65534, GID: 65534}
	}
	return asuser.Identity{UID: c.ident.UID, GID: c.ident.GID, Groups: c.ident.Groups}
}

// saveState answers save_state: the current state, in upstream's record
// format and order, written atomically to path (relative to the
// supervisor's working directory) with the client's filesystem rights.
func (s *Supervisor) saveState(c *session, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return c.fail(fmt.Sprintf("Cannot get Sōzu working directory: %v", err))
	}
	var reqs []*command.WorkerRequest
	s.do(func() { reqs = s.state.GenerateRequests() })
	note := ""
	if !s.keyCustodian(c) { // statekeys.go
		if n := omitKeys(reqs); n > 0 {
			note = keysOmittedNote(c, n)
			if c.trace != nil {
				c.trace.note = fmt.Sprintf("private keys omitted from %d records", n)
			}
		}
	}
	err = asuser.Do(peerFS(c), func() error { return writeStateFile(abs, reqs) })
	if err != nil {
		return c.fail(err.Error())
	}
	return c.ok(fmt.Sprintf("Saved %d config messages to %s", len(reqs), abs)+note, nil)
}

// writeStateFile writes reqs to path atomically: a temporary file in the
// same directory, fsync, rename, then fsync of the directory; mode 0600,
// as it holds the private keys of the certificates.
func writeStateFile(path string, reqs []*command.WorkerRequest) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("Cannot create file at path %s: %v", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("Cannot create file at path %s: %v", path, err)
	}
	bw := bufio.NewWriter(tmp)
	enc := statefile.NewEncoder(bw)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			tmp.Close()
			return fmt.Errorf("Failed writing state to file: %v", err)
		}
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("Failed writing state to file: %v", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// loadState answers load_state: every record is applied to the state and
// fanned out in file order. A record the state refuses (a duplicate, say)
// is skipped, as upstream does; a malformed record stops the load with a
// FAILURE naming it, and the records before it stay applied.
func (s *Supervisor) loadState(c *session, path string) bool {
	c.processing(fmt.Sprintf("Parsing state file from %s...", path))
	var calls []*call
	var applied, skipped int
	var f *os.File
	err := asuser.Do(peerFS(c), func() (err error) {
		f, err = openStateFile(path)
		return err
	})
	if err != nil {
		return c.fail(err.Error())
	}
	defer f.Close()
	s.do(func() {
		if s.stopping {
			err = errStopping
			return
		}
		applied, skipped, err = s.loadStateFrom(f, path, &calls)
	})
	if err != nil && applied == 0 && len(calls) == 0 {
		return c.fail(err.Error())
	}
	c.processing("Applying state file...")
	outs := s.gather(c, calls, s.cfg.WorkerTimeout)
	workerErrs := 0
	for _, o := range outs {
		if !o.ok() {
			workerErrs++
		}
	}
	if err != nil {
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors: %v (the %d records before it were applied)", applied, skipped+workerErrs+1, err, applied+skipped))
	}
	if workerErrs > 0 {
		return c.fail(fmt.Sprintf("loading state: %d ok messages, %d errors", applied, skipped+workerErrs))
	}
	return c.ok(fmt.Sprintf("Successfully loaded state from path %s, %d ok messages, %d errors", path, applied, skipped), nil)
}

// openStateFile opens a state file for reading, with upstream's messages.
func openStateFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("Cannot find file at path %s", path)
		}
		return nil, fmt.Errorf("Cannot open file at path %s: %v", path, err)
	}
	return f, nil
}

// loadStateFile applies the records of the state file at path (opened with
// the supervisor's own rights). Actor only.
func (s *Supervisor) loadStateFile(path string, calls *[]*call) (applied, skipped int, err error) {
	f, err := openStateFile(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return s.loadStateFrom(f, path, calls)
}

// loadStateFrom applies the records of the state file f, read from path.
// Calls made to workers are appended to calls when it is not nil. It
// returns how many records were applied and how many the state refused.
// Actor only.
func (s *Supervisor) loadStateFrom(f *os.File, path string, calls *[]*call) (applied, skipped int, err error) {
	// One save at the end rather than one per record.
	s.loadingState = true
	defer func() {
		s.loadingState = false
		if applied > 0 {
			s.autoSave()
		}
	}()
	dec := statefile.NewDecoder(bufio.NewReader(f))
	for {
		wr, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return applied, skipped, nil
		}
		if err != nil {
			return applied, skipped, fmt.Errorf("state file %s: %w", path, err)
		}
		cs, err := s.apply(wr.GetContent())
		if err != nil {
			skipped++
			if errors.Is(err, errNoPrivateKey) { // statekeys.go
				s.log.WithField("path", path).Warnf("state file record %s skipped: %v", wr.GetId(), err)
				continue
			}
			s.log.WithField("path", path).Debugf("state file record %s (%s) skipped: %v", wr.GetId(), command.VerbName(wr.GetContent()), err)
			continue
		}
		applied++
		if calls != nil {
			*calls = append(*calls, cs...)
		}
	}
}
