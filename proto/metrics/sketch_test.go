package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// exact returns the sample at rank q of sorted, as DDSketch ranks them.
func exact(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(q*float64(len(sorted)-1))]
}

// The sketch's quantiles are within its relative accuracy of the exact
// ones, on a long-tailed distribution; merging two sketches gives the
// quantiles of the union (workers merged by the supervisor).
func TestSketchAccuracyAndMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := NewSketch(), NewSketch()
	var all []time.Duration
	for i := 0; i < 200_000; i++ {
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5+12)) + time.Microsecond // log-normal around 160 µs
		all = append(all, d)
		if i%3 == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	slices.Sort(all)
	merged := NewSketch()
	for _, s := range []*Sketch{a, b} {
		if err := merged.Merge(s.Histogram()); err != nil {
			t.Fatal(err)
		}
	}
	p := merged.Percentiles()
	if p.GetSamples() != uint64(len(all)) {
		t.Fatalf("samples = %d, want %d", p.GetSamples(), len(all))
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	if p.GetSum() != uint64(sum/time.Microsecond) {
		t.Errorf("sum = %d µs, want %d", p.GetSum(), sum/time.Microsecond)
	}
	got := []uint64{p.GetP_50(), p.GetP_90(), p.GetP_99(), p.GetP_99_9(), p.GetP_99_99(), p.GetP_99_999(), p.GetP_100()}
	for i, q := range Quantiles {
		want := float64(exact(all, q)) / 1000
		// 1 % of the sketch, plus the rounding to whole µs, plus the
		// re-binning of the merge (one more 1 %).
		if math.Abs(float64(got[i])-want) > 0.021*want+1 {
			t.Errorf("p%v = %d µs, exact %.1f µs", q*100, got[i], want)
		}
	}
}

// Merge refuses histograms whose buckets do not add up, or that carry too
// many buckets, and keeps what it held.
func TestSketchMergeRefusesMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *command.FilteredHistogram
		err  string
	}{
		{"count mismatch", &command.FilteredHistogram{Count: proto.Uint64(3), Sum: proto.Uint64(0),
			Buckets: []*command.Bucket{{Count: proto.Uint64(1), Le: proto.Uint64(5)}}}, "histogram buckets count 1 samples, its count says 3"},
		{"too many buckets", &command.FilteredHistogram{Count: proto.Uint64(maxBins + 1), Sum: proto.Uint64(0),
			Buckets: slices.Repeat([]*command.Bucket{{Count: proto.Uint64(1), Le: proto.Uint64(5)}}, maxBins+1)}, "histogram with 4097 buckets, more than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSketch()
			s.Add(time.Millisecond)
			err := s.Merge(tc.h)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("Merge: %v, want %q", err, tc.err)
			}
			if s.Count() != 1 {
				t.Errorf("count after refusal = %d", s.Count())
			}
		})
	}
}

// FuzzSketchMerge: any histogram a worker sends either merges (and the
// count grows by its count) or is refused; nothing panics.
func FuzzSketchMerge(f *testing.F) {
	f.Add(uint64(1), uint64(1000), uint64(1000), uint64(1))
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(1), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, count, le, sum, declared uint64) {
		s := NewSketch()
		h := &command.FilteredHistogram{Count: proto.Uint64(declared), Sum: proto.Uint64(sum),
			Buckets: []*command.Bucket{{Count: proto.Uint64(count), Le: proto.Uint64(le)}}}
		before := s.Count()
		if err := s.Merge(h); err != nil {
			return
		}
		if got := s.Count(); float64(got) != float64(before)+float64(count) && count < 1<<53 {
			t.Errorf("count %d after merging %d", got, count)
		}
		s.Percentiles()
	})
}
