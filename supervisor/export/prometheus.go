package export

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// ContentType is the media type of the Prometheus text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// family is one Prometheus metric family: its samples share a name, a
// type and a help line.
type family struct {
	typ     string // counter, gauge, summary
	help    string
	samples []string // whole lines, without the newline
}

type families map[string]*family

func (fs families) add(name, typ, help string, lines ...string) {
	f := fs[name]
	if f == nil {
		f = &family{typ: typ, help: help}
		fs[name] = f
	}
	f.samples = append(f.samples, lines...)
}

// WritePrometheus writes am (query_metrics' aggregate over workers) in the
// text exposition format, version 0.0.4. Names: "sozu_" and the upstream
// name with every character outside [a-zA-Z0-9_] as '_'; cluster and
// backend metrics are "sozu_cluster_…" and "sozu_backend_…" with
// cluster_id and backend_id labels, so that no family mixes levels;
// counters end in "_total"; latencies are summaries in seconds
// ("…_seconds", quantiles 0.5 to 0.9999, _sum, _count). level limits the
// depth. Families are sorted by name; the output depends on am only.
func WritePrometheus(w io.Writer, am *command.AggregatedMetrics, level Level) error {
	fs := families{}
	addAll(fs, "sozu_", am.GetMain(), false, "")
	addAll(fs, "sozu_", am.GetProxying(), false, "")
	if level >= LevelCluster {
		for _, cid := range slices.Sorted(maps.Keys(am.GetClusters())) {
			cm := am.GetClusters()[cid]
			addAll(fs, "sozu_cluster_", cm.GetCluster(), true, `cluster_id="`+labelValue(cid)+`"`)
			if level < LevelBackend {
				continue
			}
			for _, b := range cm.GetBackends() {
				addAll(fs, "sozu_backend_", b.GetMetrics(), true,
					`cluster_id="`+labelValue(cid)+`",backend_id="`+labelValue(b.GetBackendId())+`"`)
			}
		}
	}
	bw := bufio.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(fs)) {
		f := fs[name]
		bw.WriteString("# HELP " + name + " " + helpText(f.help) + "\n")
		bw.WriteString("# TYPE " + name + " " + f.typ + "\n")
		for _, s := range f.samples {
			bw.WriteString(s)
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

func addAll(fs families, prefix string, m map[string]*command.FilteredMetrics, cluster bool, labels string) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		help := name
		if i, ok := pm.Lookup(name, cluster); ok {
			help = i.Help + " (" + name + ")"
		}
		base := prefix + metricName(name)
		switch v := m[name].GetInner().(type) {
		case *command.FilteredMetrics_Count:
			n := strings.TrimSuffix(base, "_total") + "_total" // listener.accepted.total: one suffix
			fs.add(n, "counter", help, sample(n, labels, "", strconv.FormatInt(v.Count, 10)))
		case *command.FilteredMetrics_Gauge:
			fs.add(base, "gauge", help, sample(base, labels, "", strconv.FormatUint(v.Gauge, 10)))
		case *command.FilteredMetrics_Percentiles:
			n := base + "_seconds"
			p := v.Percentiles
			qs := []struct {
				q string
				v uint64
			}{{"0.5", p.GetP_50()}, {"0.9", p.GetP_90()}, {"0.99", p.GetP_99()}, {"0.999", p.GetP_99_9()}, {"0.9999", p.GetP_99_99()}}
			var lines []string
			for _, q := range qs {
				v := seconds(q.v)
				if p.GetSamples() == 0 {
					v = "NaN" // no observation: no quantile (the convention of Prometheus' clients)
				}
				lines = append(lines, sample(n, labels, `quantile="`+q.q+`"`, v))
			}
			lines = append(lines, sample(n+"_sum", labels, "", seconds(p.GetSum())), sample(n+"_count", labels, "", strconv.FormatUint(p.GetSamples(), 10)))
			fs.add(n, "summary", help, lines...)
		}
	}
}

func sample(name, labels, extra, value string) string {
	switch {
	case labels != "" && extra != "":
		return name + "{" + labels + "," + extra + "} " + value
	case labels != "":
		return name + "{" + labels + "} " + value
	case extra != "":
		return name + "{" + extra + "} " + value
	}
	return name + " " + value
}

// seconds renders microseconds as seconds.
func seconds(us uint64) string { return strconv.FormatFloat(float64(us)/1e6, 'g', -1, 64) }

// metricName maps an upstream name to Prometheus' alphabet.
func metricName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// labelValue escapes a label value: backslash, double quote, newline.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// helpText escapes a help line: backslash and newline.
func helpText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
