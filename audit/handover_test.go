package audit

import (
	"errors"
	"strings"
	"testing"
)

// TestHandOver: a broker suspends its trail, a second broker (the new
// supervisor) opens the same files and writes, then closes; the first
// resumes: while suspended it refuses records (fail open or not), and the
// whole file verifies as one chain reaching its sealed head, with seqs in
// order across the three writers.
func TestHandOver(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		e := newEnv(t)
		old := e.open(t, func(o *Options) { o.FailOpen = failOpen })
		ids := testIDs()
		if err := old.Log(sample(ids, "cluster.add")); err != nil {
			t.Fatal(err)
		}
		pos, err := old.Suspend()
		if err != nil {
			t.Fatal(err)
		}
		if pos.Seq != old.Stats().LastSeq || len(pos.Chain) != 64 {
			t.Fatalf("position %+v, last seq %d", pos, old.Stats().LastSeq)
		}
		if err := old.Log(sample(ids, "cluster.add")); !errors.Is(err, ErrSuspended) {
			t.Fatalf("fail_open=%v: Log while suspended: %v, want ErrSuspended", failOpen, err)
		}
		if err := old.Reopen(); !errors.Is(err, ErrSuspended) {
			t.Fatalf("Reopen while suspended: %v", err)
		}

		successor, err := Open(e.options())
		if err != nil {
			t.Fatal(err)
		}
		if err := successor.Log(sample(ids, "supervisor.upgrade")); err != nil {
			t.Fatal(err)
		}
		successor.Close()

		if err := old.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := old.Log(sample(ids, "cluster.remove")); err != nil {
			t.Fatal(err)
		}
		old.Close()

		head, err := ReadHead(HeadPath(e.key), e.keyBytes(t), true)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := VerifyFile(e.json, e.key, VerifyOptions{Head: head.JSONEntry()})
		if err != nil {
			t.Fatalf("fail_open=%v: the trail does not verify across the hand-over: %v", failOpen, err)
		}
		recs := decodeAll(t, e.json)
		for i, r := range recs {
			if r.Seq != uint64(i+1) {
				t.Fatalf("record %d has seq %d: %s", i, r.Seq, strings.Join(events(recs), " "))
			}
		}
		if sum.LastSeq != uint64(len(recs)) || sum.HeadSeq != sum.LastSeq {
			t.Fatalf("verify summary %+v, %d records", sum, len(recs))
		}
	}
}
