package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// chainedFile writes a JSON audit file across two boots and a reopen, so
// that it holds anchoring records at its head and in its middle. It
// returns the file's bytes and the key.
func chainedFile(t testing.TB) ([]byte, []byte) {
	t.Helper()
	e := newEnv(t)
	e.text = ""
	ids := testIDs()
	for boot := range 2 {
		b, err := Open(e.options())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			if err := b.Log(sample(ids, "cluster.add")); err != nil {
				t.Fatal(err)
			}
			if boot == 1 && i == 5 {
				if err := b.Reopen(); err != nil {
					t.Fatal(err)
				}
			}
		}
		b.Close()
	}
	data, err := os.ReadFile(e.json)
	if err != nil {
		t.Fatal(err)
	}
	key := e.keyBytes(t)
	sum, err := VerifySummary(bytes.NewReader(data), key)
	if err != nil {
		t.Fatalf("the intact file does not verify: %v", err)
	}
	if sum.Records != 27 || sum.Anchors != 3 {
		t.Fatalf("summary %+v", sum)
	}
	return data, key
}

func splitLines(data []byte) [][]byte {
	ls := bytes.SplitAfter(data, []byte("\n"))
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	return ls
}

func wantBroken(t testing.TB, what string, data, key []byte, line int) {
	t.Helper()
	err := Verify(bytes.NewReader(data), key)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: Verify = %v, want a *VerifyError at line %d", what, err, line)
	}
	if ve.Line != line {
		t.Fatalf("%s: Verify names line %d, want %d: %v", what, ve.Line, line, err)
	}
}

// TestVerifyDetectsEverySingleByteEdit: 1 000 random single-byte edits,
// each detected at the line holding the edited byte.
func TestVerifyDetectsEverySingleByteEdit(t *testing.T) {
	data, key := chainedFile(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		pos := rng.IntN(len(data))
		b := byte(rng.IntN(255))
		if b >= data[pos] {
			b++ // any byte but the original
		}
		edited := bytes.Clone(data)
		edited[pos] = b
		line := bytes.Count(data[:pos], []byte("\n")) + 1
		wantBroken(t, "edit", edited, key, line)
	}
}

// TestVerifyDetectsDeletionsSwapsDuplicates: deleting any record but the
// last, swapping any two adjacent records, duplicating any record.
func TestVerifyDetectsDeletionsSwapsDuplicates(t *testing.T) {
	data, key := chainedFile(t)
	ls := splitLines(data)
	n := len(ls)
	join := func(parts [][]byte) []byte { return bytes.Join(parts, nil) }
	for k := range n - 1 {
		del := join(append(append([][]byte{}, ls[:k]...), ls[k+1:]...))
		wantBroken(t, "delete line "+strconv.Itoa(k+1), del, key, k+1)
	}
	for k := range n - 1 {
		sw := append([][]byte{}, ls...)
		sw[k], sw[k+1] = sw[k+1], sw[k]
		wantBroken(t, "swap lines "+strconv.Itoa(k+1), join(sw), key, k+1)
	}
	for k := range n {
		dup := append(append(append([][]byte{}, ls[:k+1]...), ls[k]), ls[k+1:]...)
		wantBroken(t, "duplicate line "+strconv.Itoa(k+1), join(dup), key, k+2)
	}
}

// TestVerifyTailCut: a file cut inside a record is detected at that
// record; one cut at a line boundary cannot be, until the next record.
func TestVerifyTailCut(t *testing.T) {
	data, key := chainedFile(t)
	ls := splitLines(data)
	lastStart := len(data) - len(ls[len(ls)-1])
	for cut := lastStart + 1; cut < len(data); cut++ {
		wantBroken(t, "cut at "+strconv.Itoa(cut), data[:cut], key, len(ls))
	}
	if err := Verify(bytes.NewReader(data[:lastStart]), key); err != nil {
		t.Fatalf("a cut at a line boundary is not detectable from the file alone, got %v", err)
	}
	wantBroken(t, "empty file", nil, key, 1)

	// The supervisor's next record exposes the cut.
	e := newEnv(t)
	e.text = ""
	b := e.open(t)
	ids := testIDs()
	b.Log(sample(ids, "cluster.add"))
	b.Log(sample(ids, "cluster.add"))
	full, _ := os.ReadFile(e.json)
	fl := splitLines(full)
	os.WriteFile(e.json, bytes.Join(fl[:len(fl)-1], nil), 0o640)
	b.Log(sample(ids, "cluster.add"))
	cut, _ := os.ReadFile(e.json)
	wantBroken(t, "append after a cut", cut, e.keyBytes(t), len(fl))
}

func TestVerifyWrongKeyAndReasons(t *testing.T) {
	data, key := chainedFile(t)
	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	err := Verify(bytes.NewReader(data), wrong)
	if ve := (*VerifyError)(nil); !errors.As(err, &ve) || ve.Line != 1 || ve.Seq != 1 || !strings.Contains(ve.Reason, "chain mismatch") {
		t.Errorf("wrong key: %v", err)
	}
	ls := splitLines(data)
	del := bytes.Join(append(append([][]byte{}, ls[:3]...), ls[4:]...), nil)
	if err := Verify(bytes.NewReader(del), key); err == nil || !strings.Contains(err.Error(), "seq 5 follows seq 3: seq 4 missing") {
		t.Errorf("deletion reason: %v", err)
	}
	dup := bytes.Join(append(append([][]byte{}, ls[:4]...), ls[3:]...), nil)
	if err := Verify(bytes.NewReader(dup), key); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("duplicate reason: %v", err)
	}
	head := bytes.Join(ls[1:], nil)
	if err := Verify(bytes.NewReader(head), key); err == nil || !strings.Contains(err.Error(), "records deleted at the head") {
		t.Errorf("head deletion reason: %v", err)
	}
}

func TestVerifyFile(t *testing.T) {
	data, key := chainedFile(t)
	dir := t.TempDir()
	p, kp := filepath.Join(dir, "a.json"), filepath.Join(dir, "k")
	os.WriteFile(p, data, 0o640)
	os.WriteFile(kp, []byte(hex.EncodeToString(key)+"\n"), 0o644)
	sum, err := VerifyFile(p, kp, VerifyOptions{})
	if err != nil || sum.Records != 27 {
		t.Fatalf("VerifyFile: %+v %v", sum, err)
	}
	os.Symlink(p, p+".link")
	if _, err := VerifyFile(p+".link", kp, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("VerifyFile over a symlink: %v", err)
	}
}

// FuzzVerify: any single-byte edit of a valid file is detected at the
// edited line, and arbitrary bytes never verify (nor panic).
func FuzzVerify(f *testing.F) {
	data, key := chainedFile(f)
	f.Add(uint(0), byte('x'), []byte("{}\n"))
	f.Add(uint(len(data)-1), byte(' '), []byte(nil))
	f.Add(uint(100), byte('"'), []byte(`{"chain":"`+strings.Repeat("0", 64)+`"}`+"\n"))
	f.Fuzz(func(t *testing.T, pos uint, b byte, junk []byte) {
		p := int(pos % uint(len(data)))
		if data[p] != b {
			edited := bytes.Clone(data)
			edited[p] = b
			wantBroken(t, "edit", edited, key, bytes.Count(data[:p], []byte("\n"))+1)
		}
		if len(junk) > 0 && Verify(bytes.NewReader(junk), key) == nil {
			t.Fatalf("junk verified: %q", junk)
		}
	})
}
