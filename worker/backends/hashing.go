package backends

import (
	"math"
	"net/netip"
)

// The consistent algorithms (HRW, Maglev) map a client to a backend by a
// key derived from its IP address, the same in every worker and every
// process (no per-process seed), so that a client keeps its backend across
// workers, restarts and unrelated configuration changes, and removing one
// of N backends moves only the clients it had (about 1/N of them).

// KeyOf returns the balancing key of a client address.
func KeyOf(ip netip.Addr) uint64 {
	b := ip.Unmap().As16()
	h := uint64(14695981039346656037) // FNV-1a
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

// seedOf is a backend's hashing identity: its cluster and id (not its
// address, so that a backend moved to a new address keeps its clients).
func seedOf(cluster, id string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range [2]string{cluster, id} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return mix(h)
}

// mix is the splitmix64 finaliser: every input bit affects every output
// bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hrw is weighted rendezvous hashing: each eligible backend scores
// -weight / ln(u), u uniform in (0,1) from hash(key, backend); the highest
// score wins. A backend's share is proportional to its weight, and a
// client moves only when its backend goes.
func hrw(l []*Backend, tried []*Backend, upOnly bool, key uint64) *Backend {
	useW := weighted(l, tried, upOnly)
	var best *Backend
	bestScore := math.Inf(-1)
	for _, b := range l {
		w := weightOf(b, useW)
		if w <= 0 || !eligible(b, tried, upOnly) {
			continue
		}
		u := (float64(mix(key^b.seed)>>11) + 0.5) / (1 << 53)
		if score := -float64(w) / math.Log(u); score > bestScore {
			best, bestScore = b, score
		}
	}
	return best
}

// maglevTable builds the Maglev lookup table of l (Eisenbud et al., NSDI
// 2016, §3.4): each backend fills slots along its own permutation (offset,
// skip) in turns, as many per round as its weight relative to the heaviest
// allows. nil when l is empty.
//
// The table size must not change with the number of backends, or every
// client would move: it is 4099 slots up to 32 backends, 65537 up to 512,
// and past that the prime above 128 per backend (crossing one of these
// bounds remaps every client once).
func maglevTable(l []*Backend) []int32 {
	n := len(l)
	if n == 0 {
		return nil
	}
	m := 4099
	switch {
	case n > 512:
		m = nextPrime(128 * n)
	case n > 32:
		m = 65537
	}
	maxW := int64(0)
	for _, b := range l {
		maxW = max(maxW, b.weight.Load())
	}
	weights := make([]float64, n)
	for i, b := range l {
		if maxW <= 0 {
			weights[i] = 1 // no weights at all: equal shares
		} else {
			weights[i] = float64(max(b.weight.Load(), 0)) / float64(maxW)
		}
	}
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	credit := make([]float64, n)
	for i, b := range l {
		offset[i] = b.seed % uint64(m)
		skip[i] = mix(b.seed^0x9e3779b97f4a7c15)%uint64(m-1) + 1
	}
	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	for filled := 0; filled < m; {
		for i := range l {
			credit[i] += weights[i]
			for ; credit[i] >= 1 && filled < m; credit[i]-- {
				c := (offset[i] + next[i]*skip[i]) % uint64(m)
				for table[c] >= 0 {
					next[i]++
					c = (offset[i] + next[i]*skip[i]) % uint64(m)
				}
				table[c] = int32(i)
				next[i]++
				filled++
			}
		}
	}
	return table
}

// maglev looks key up in the table; when that backend cannot serve (down,
// or already tried), the next slots are looked at in turn, which spreads
// its clients over the others in proportion to their slots.
func (p *pool) maglev(tried []*Backend, upOnly bool, key uint64) *Backend {
	if len(p.table) == 0 {
		return nil
	}
	any := false
	for _, b := range p.l {
		if eligible(b, tried, upOnly) {
			any = true
			break
		}
	}
	if !any {
		return nil
	}
	m := uint64(len(p.table))
	for k, j := uint64(0), key%m; k < m; k++ {
		if b := p.l[p.table[(j+k)%m]]; eligible(b, tried, upOnly) {
			return b
		}
	}
	return nil
}

func nextPrime(n int) int {
	for ; ; n++ {
		if isPrime(n) {
			return n
		}
	}
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
