package backends

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
)

// specs returns n backends of cluster c with the given weights (1 each
// when weights is nil) at made-up addresses: policy tests never dial.
func specs(n int, weights []int) []Spec {
	out := make([]Spec, n)
	for i := range out {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		out[i] = Spec{ClusterID: "c", ID: fmt.Sprintf("b%d", i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), Weight: w}
	}
	return out
}

func clientKey(i int) uint64 {
	return KeyOf(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}))
}

// TestWeightsHonoured: every algorithm gives backends shares in proportion
// to their weights (1:2:5), within 3 points.
func TestWeightsHonoured(t *testing.T) {
	weights := []int{10, 20, 50}
	for _, alg := range []Algorithm{RoundRobin, Random, PowerOfTwo, HRW, Maglev} {
		r := NewRegistry(Options{})
		set := r.Update(specs(3, weights), map[string]Policy{"c": {Algorithm: alg}})["c"]
		n := map[string]int{}
		const picks = 16000
		for i := range picks {
			b := set.pick(nil, clientKey(i))
			n[b.ID]++
			if alg == PowerOfTwo {
				// Load stays at zero: the pick is the first draw,
				// weighted random.
				continue
			}
		}
		for i, w := range weights {
			want := float64(w) / 80
			got := float64(n[fmt.Sprintf("b%d", i)]) / picks
			if math.Abs(got-want) > 0.03 {
				t.Errorf("%v: backend b%d (weight %d) got %.3f of picks, want %.3f", alg, i, w, got, want)
			}
		}
	}
}

// TestSmoothRoundRobinSpreads: weights 5:1:1 give the heavy backend five
// turns in seven, never more than four in a row (smooth round robin gives a a b a c a a, repeated).
func TestSmoothRoundRobinSpreads(t *testing.T) {
	set := NewRegistry(Options{}).Update(specs(3, []int{5, 1, 1}), nil)["c"]
	run, longest := 0, 0
	counts := map[string]int{}
	for range 70 {
		b := set.pick(nil, 0)
		counts[b.ID]++
		if b.ID == "b0" {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if counts["b0"] != 50 || counts["b1"] != 10 || counts["b2"] != 10 || longest > 4 {
		t.Fatalf("turns %v, longest run of b0 %d", counts, longest)
	}
}

// TestConsistentRemap: removing one of N backends moves at most 1/N + 5%
// of the clients under HRW and Maglev, and a client keeps its backend while
// nothing changes, whatever the worker (no per-process seed).
func TestConsistentRemap(t *testing.T) {
	const n, clients = 10, 20000
	for _, alg := range []Algorithm{HRW, Maglev} {
		before := NewRegistry(Options{}).Update(specs(n, nil), map[string]Policy{"c": {Algorithm: alg}})["c"]
		again := NewRegistry(Options{}).Update(specs(n, nil), map[string]Policy{"c": {Algorithm: alg}})["c"]
		all := specs(n, nil)
		after := NewRegistry(Options{}).Update(append(all[:3:3], all[4:]...), map[string]Policy{"c": {Algorithm: alg}})["c"]
		moved, share := 0, map[string]int{}
		for i := range clients {
			k := clientKey(i)
			a, b := before.pick(nil, k), after.pick(nil, k)
			if again.pick(nil, k).ID != a.ID {
				t.Fatalf("%v: client %d maps to %s in one registry, %s in another", alg, i, a.ID, again.pick(nil, k).ID)
			}
			share[a.ID]++
			if a.ID != b.ID {
				moved++
				if a.ID != "b3" {
					// Only the removed backend's clients should move;
					// Maglev may move a few more.
					if alg == HRW {
						t.Fatalf("HRW moved client %d from %s, which stayed", i, a.ID)
					}
				}
			}
		}
		if frac := float64(moved) / clients; frac > 1.0/n+0.05 {
			t.Errorf("%v: %.3f of clients moved when one of %d backends went, want <= %.3f", alg, frac, n, 1.0/n+0.05)
		}
		for id, c := range share {
			if f := float64(c) / clients; math.Abs(f-1.0/n) > 0.03 {
				t.Errorf("%v: %s serves %.3f of clients, want about %.3f", alg, id, f, 1.0/n)
			}
		}
	}
}

// TestConsistentSkipsDown: a client whose backend is down goes elsewhere
// and comes back when it recovers.
func TestConsistentSkipsDown(t *testing.T) {
	for _, alg := range []Algorithm{HRW, Maglev} {
		set := NewRegistry(Options{MaxFailures: 1}).Update(specs(4, nil), map[string]Policy{"c": {Algorithm: alg}})["c"]
		k := clientKey(7)
		home := set.pick(nil, k)
		home.down.Store(true)
		home.lastFail.Store(math.MaxInt64 / 2) // no retry due
		if other := set.pick(nil, k); other == nil || other == home {
			t.Fatalf("%v: client still sent to its down backend (%v)", alg, other)
		}
		home.down.Store(false)
		if set.pick(nil, k) != home {
			t.Fatalf("%v: client did not come back to its backend", alg)
		}
	}
}

// TestLeastLoadedMetrics: LEAST_LOADED compares connections in use per
// unit of weight, or connect times under CONNECTION_TIME.
func TestLeastLoadedMetrics(t *testing.T) {
	set := NewRegistry(Options{}).Update(specs(2, []int{1, 3}), map[string]Policy{"c": {Algorithm: LeastLoaded}})["c"]
	b0, b1 := set.Backends()[0], set.Backends()[1]
	b0.inflight.Store(1)
	b1.inflight.Store(2) // 2/3 per weight < 1/1
	if got := set.pick(nil, 0); got != b1 {
		t.Fatalf("connections per weight: picked %s", got.ID)
	}
	set = NewRegistry(Options{}).Update(specs(2, nil), map[string]Policy{"c": {Algorithm: LeastLoaded, Metric: ConnectionTime}})["c"]
	b0, b1 = set.Backends()[0], set.Backends()[1]
	b0.observeConnect(1e6) // 1 ms
	b1.observeConnect(9e6) // 9 ms
	b0.inflight.Store(3)   // 4 × 1 ms < 1 × 9 ms
	if got := set.pick(nil, 0); got != b0 {
		t.Fatalf("connection time: picked %s", got.ID)
	}
	b0.inflight.Store(9) // 10 × 1 ms > 9 ms
	if got := set.pick(nil, 0); got != b1 {
		t.Fatalf("connection time under load: picked %s", got.ID)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, alg := range []Algorithm{RoundRobin, HRW, Maglev} {
		set := NewRegistry(Options{}).Update(specs(8, []int{1, 2, 3, 4, 5, 6, 7, 8}), map[string]Policy{"c": {Algorithm: alg}})["c"]
		b.Run(fmt.Sprint(alg), func(b *testing.B) {
			for i := range b.N {
				set.pick(nil, uint64(i)*0x9e3779b97f4a7c15)
			}
		})
	}
}
