package frame

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// fieldPath is a chain of fields from Request down to a field.
type fieldPath []protoreflect.FieldDescriptor

func (p fieldPath) String() string {
	var names []string
	for _, fd := range p {
		names = append(names, string(fd.Name()))
	}
	return strings.Join(names, ".")
}

// reachable lists every field reachable from md, each by one path, not
// entering a message already on the path.
func reachable(md protoreflect.MessageDescriptor, prefix fieldPath, on map[protoreflect.FullName]bool, out *[]fieldPath) {
	on[md.FullName()] = true
	defer delete(on, md.FullName())
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		p := append(append(fieldPath{}, prefix...), fd)
		*out = append(*out, p)
		if m := fd.Message(); m != nil && !on[m.FullName()] {
			reachable(m, p, on, out)
		}
	}
}

// cheapest is the shortest encoding of one occurrence of fd.
func cheapest(fd protoreflect.FieldDescriptor) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.StringKind, protoreflect.BytesKind:
		return protowire.AppendBytes(protowire.AppendTag(nil, fd.Number(), protowire.BytesType), nil)
	case protoreflect.GroupKind:
		return protowire.AppendTag(protowire.AppendTag(nil, fd.Number(), protowire.StartGroupType), fd.Number(), protowire.EndGroupType)
	}
	switch scalarWire(fd.Kind()) {
	case protowire.Fixed32Type:
		return protowire.AppendFixed32(protowire.AppendTag(nil, fd.Number(), protowire.Fixed32Type), 0)
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(protowire.AppendTag(nil, fd.Number(), protowire.Fixed64Type), 0)
	}
	return protowire.AppendVarint(protowire.AppendTag(nil, fd.Number(), protowire.VarintType), 0)
}

// crafted is a payload of about size bytes: the field at p as many times
// as fits, inside one occurrence of each field above it.
func crafted(p fieldPath, size int) []byte {
	last := p[len(p)-1]
	unit := cheapest(last)
	var inner []byte
	if last.IsList() && last.Message() == nil && last.Kind() != protoreflect.StringKind && last.Kind() != protoreflect.BytesKind {
		// packed: one byte per element
		var elems []byte
		one := cheapest(last)
		_, _, n := protowire.ConsumeTag(one)
		for len(elems) < size {
			elems = append(elems, one[n:]...)
		}
		inner = protowire.AppendBytes(protowire.AppendTag(nil, last.Number(), protowire.BytesType), elems)
	} else {
		inner = bytes.Repeat(unit, size/len(unit))
	}
	for i := len(p) - 2; i >= 0; i-- {
		inner = protowire.AppendBytes(protowire.AppendTag(nil, p[i].Number(), protowire.BytesType), inner)
	}
	return inner
}

// decodeAlloc is what decoding b as a Request allocates: the least of 3
// runs, as another goroutine of the test binary may allocate meanwhile.
func decodeAlloc(t *testing.T, b []byte) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats // no GC: TotalAlloc only grows
		runtime.ReadMemStats(&before)
		err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, &command.Request{})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// TestDecodeCostCoversDecoder: for every field reachable from Request,
// a payload packed with its cheapest occurrences (the shape that costs
// most to decode), DecodeCost charges at least what the decoder allocates,
// but for fixed costs (a map's header, a few hundred bytes) that
// CostSlack covers; and so for oneof members alternating, and for unknown
// fields.
func TestDecodeCostCoversDecoder(t *testing.T) {
	const size = 32 << 10
	const fixedCost = 1 << 10
	md := (&command.Request{}).ProtoReflect().Descriptor()
	var paths []fieldPath
	reachable(md, nil, map[protoreflect.FullName]bool{}, &paths)
	if len(paths) < 200 {
		t.Fatalf("only %d fields reachable from Request", len(paths))
	}
	check := func(name string, b []byte) {
		est, err := DecodeCost(md, b, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := decodeAlloc(t, b)
		if got > est+fixedCost {
			t.Errorf("%s: %d-byte payload: decoder allocates %d, DecodeCost says %d", name, len(b), got, est)
		}
	}
	for _, p := range paths {
		check(p.String(), crafted(p, size))
	}
	var alt []byte // status, add_cluster, status, ...
	for len(alt) < size {
		alt = append(alt, 0x62, 0x00, 0x6a, 0x00)
	}
	check("oneof members alternating", alt)
	var unknown []byte
	for len(unknown) < size {
		unknown = protowire.AppendVarint(protowire.AppendTag(unknown, 999, protowire.VarintType), 0)
	}
	check("unknown fields", protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), unknown))
	for _, n := range []int{100, 1000, 10000} { // a map's entries with distinct keys
		tags := map[string]string{}
		for i := range n {
			tags[fmt.Sprint(i)] = "v"
		}
		b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(&command.Request{RequestType: &command.Request_AddHttpFrontend{
			AddHttpFrontend: &command.RequestHttpFrontend{Tags: tags}}})
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("%d distinct tags", n), b)
	}
}

// TestDecodeCostBoundsReadMessage: a bounded Reader refuses, before
// decoding, the payloads that amplify (empty headers: 2 bytes on the wire,
// a struct in memory), naming the field and the count; reading the refused
// 2 MB frame allocates less than 8 times its size (without the bound: some
// 110 MB). Legitimate large frames still pass: a certificate with a long
// chain, a frontend with many headers, answers with large templates.
func TestDecodeCostBoundsReadMessage(t *testing.T) {
	headers := crafted(fieldPath{
		(&command.Request{}).ProtoReflect().Descriptor().Fields().ByName("add_http_frontend"),
		(&command.RequestHttpFrontend{}).ProtoReflect().Descriptor().Fields().ByName("headers"),
	}, DefaultMaxSize-16)
	read := func(bounded bool, payload []byte) (error, uint64) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go a.Write(append(appendPrefix(payload), payload...))
		r := NewReader(b, DefaultMaxSize)
		if bounded {
			r.BoundDecodeCost()
		}
		var err error
		n := allocatedBy(func() { err = r.ReadMessage(&command.Request{}) })
		return err, n
	}

	err, n := read(true, headers)
	var ce *CostError
	if !errors.As(err, &ce) || !IsFrameError(err) {
		t.Fatalf("bounded read of %d bytes of empty headers: %v, want a *CostError", len(headers), err)
	}
	want := fmt.Sprintf("field add_http_frontend.headers occurs %d times", len(headers)/2-2)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("(%d × the payload + %d)", CostFactor, CostSlack)) {
		t.Errorf("error %q lacks %q or the limit", err, want)
	}
	if n > 8*uint64(len(headers)) {
		t.Errorf("refusing a %d-byte frame allocated %d bytes (%.1f×), want at most 8×", len(headers), n, float64(n)/float64(len(headers)))
	}
	t.Logf("refused: %v; %d bytes allocated (%.1f× the frame)", err, n, float64(n)/float64(len(headers)))
	if err, n := read(false, headers); err != nil || n < 40*uint64(len(headers)) {
		t.Errorf("unbounded read: %v, %d bytes allocated; the test expects the amplification it guards against", err, n)
	}

	legit := map[string]*command.Request{
		"certificate with a long chain": {RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
			Certificate: &command.CertificateAndKey{Certificate: proto.String(pemBlock(1500)), Key: proto.String(pemBlock(1700)),
				CertificateChain: repeat(pemBlock(1500), 1200), Names: repeat("www.example.com", 100)}}}},
		"frontend with many headers": {RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: &command.RequestHttpFrontend{
			ClusterId: proto.String("c"), Hostname: proto.String("example.com"), Headers: manyHeaders(300)}}},
		"cluster with large answers": {RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
			ClusterId: proto.String("c"), Answers: map[string]string{"503": strings.Repeat("<p>down</p>", 100_000), "404": "x"}}}},
		"https listener with every knob": {RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
			CipherList: repeat("ECDHE-ECDSA-AES128-GCM-SHA256", 64), Versions: []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3},
			CertificateChain: repeat(pemBlock(1500), 20), Answers: map[string]string{"503": "down"}}}},
	}
	// Lists of short strings, some 7 times their wire size once decoded
	// (a slice header and an allocation each): what `sozu metrics get
	// --clusters …` sends for many clusters, a certificate's names.
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}
	legit["query_metrics for 10 000 clusters"] = &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
		ClusterIds: ids("cluster", 10_000), MetricNames: ids("m", 50)}}}
	legit["query_metrics for 4 000 backends, in a read-only peer's 64 KiB"] = &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
		BackendIds: ids("b", 4_000)}}}
	legit["certificate with 2 000 names"] = &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Certificate: &command.CertificateAndKey{Certificate: proto.String(pemBlock(1500)), Key: proto.String(pemBlock(1700)),
			Names: ids("www.example", 2_000)}}}}
	for name, req := range legit {
		payload, err := proto.MarshalOptions{AllowPartial: true}.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if err, _ := read(true, payload); err != nil {
			t.Errorf("%s (%d bytes): %v", name, len(payload), err)
		}
	}
}

func appendPrefix(payload []byte) []byte {
	return protowire.AppendFixed64(nil, uint64(PrefixSize+len(payload)))
}

func pemBlock(n int) string {
	return "-----BEGIN CERTIFICATE-----\n" + strings.Repeat("A", n) + "\n-----END CERTIFICATE-----\n"
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func manyHeaders(n int) []*command.Header {
	out := make([]*command.Header, n)
	for i := range out {
		out[i] = &command.Header{Position: command.HeaderPosition_BOTH.Enum(), Key: proto.String(fmt.Sprintf("X-H%d", i)), Val: proto.String("v")}
	}
	return out
}
