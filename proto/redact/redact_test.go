package redact

import (
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// secretLooking matches the names of fields that may hold a secret.
var secretLooking = regexp.MustCompile(`(?i)(^|_)(key|keys|hash|hashes|password|passwd|secret|secrets|token|tokens|credential|credentials|val|pem)$|authoriz|private`)

// reviewed lists the secret-looking fields judged harmless, with why.
var reviewed = map[protoreflect.FullName]string{
	"command.Header.key": "the header name (Header.val, its value, is masked)",
}

// TestFieldsComplete walks every message of command.proto: each string or
// bytes field whose name looks secret must be in Fields or reviewed, and
// every entry of Fields and reviewed must name a real field.
func TestFieldsComplete(t *testing.T) {
	seen := map[protoreflect.FullName]bool{}
	var visit func(ms protoreflect.MessageDescriptors)
	visit = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			md := ms.Get(i)
			visit(md.Messages())
			if md.IsMapEntry() {
				continue // its key and value are the map field's
			}
			fs := md.Fields()
			for j := 0; j < fs.Len(); j++ {
				fd := fs.Get(j)
				seen[fd.FullName()] = true
				kind := fd.Kind()
				if fd.IsMap() {
					kind = fd.MapValue().Kind()
				}
				if kind != protoreflect.StringKind && kind != protoreflect.BytesKind {
					continue
				}
				if !secretLooking.MatchString(string(fd.Name())) {
					continue
				}
				if _, ok := Fields[fd.FullName()]; ok {
					continue
				}
				if _, ok := reviewed[fd.FullName()]; ok {
					continue
				}
				t.Errorf("%s looks secret: add it to redact.Fields, or to reviewed with a reason", fd.FullName())
			}
		}
	}
	visit(command.File_command_proto.Messages())
	for name := range Fields {
		if !seen[name] {
			t.Errorf("Fields names %s, which command.proto does not have", name)
		}
	}
	for name := range reviewed {
		if !seen[name] {
			t.Errorf("reviewed names %s, which command.proto does not have", name)
		}
	}
}

// pathTo returns the fields leading from Response to a message holding
// target, breadth first, or nil when no answer can carry it.
func pathTo(target protoreflect.FullName) []protoreflect.FieldDescriptor {
	type node struct {
		md   protoreflect.MessageDescriptor
		path []protoreflect.FieldDescriptor
	}
	root := (&command.Response{}).ProtoReflect().Descriptor()
	queue := []node{{root, nil}}
	done := map[protoreflect.FullName]bool{root.FullName(): true}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		fs := n.md.Fields()
		for i := 0; i < fs.Len(); i++ {
			fd := fs.Get(i)
			if fd.FullName() == target {
				return append(append([]protoreflect.FieldDescriptor(nil), n.path...), fd)
			}
			next := fd.Message()
			if fd.IsMap() {
				next = fd.MapValue().Message()
			}
			if next == nil || done[next.FullName()] {
				continue
			}
			done[next.FullName()] = true
			queue = append(queue, node{next, append(append([]protoreflect.FieldDescriptor(nil), n.path...), fd)})
		}
	}
	return nil
}

// build returns a Response in which the field at the end of path holds
// value (one element for a list, under key "k" for a map).
func build(path []protoreflect.FieldDescriptor, value string) *command.Response {
	r := &command.Response{}
	m := r.ProtoReflect()
	for _, fd := range path[:len(path)-1] {
		switch {
		case fd.IsMap():
			mv := m.Mutable(fd).Map()
			v := mv.NewValue()
			mv.Set(protoreflect.ValueOfString("k").MapKey(), v)
			m = v.Message()
		case fd.IsList():
			l := m.Mutable(fd).List()
			v := l.NewElement()
			l.Append(v)
			m = v.Message()
		default:
			m = m.Mutable(fd).Message()
		}
	}
	fd := path[len(path)-1]
	v := protoreflect.ValueOfString(value)
	if fd.Kind() == protoreflect.BytesKind {
		v = protoreflect.ValueOfBytes([]byte(value))
	}
	switch {
	case fd.IsMap():
		m.Mutable(fd).Map().Set(protoreflect.ValueOfString("k").MapKey(), v)
	case fd.IsList():
		m.Mutable(fd).List().Append(v)
	default:
		m.Set(fd, v)
	}
	return r
}

const pemKey = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"

// TestResponseRedactsEveryField puts a secret in each field of Fields, at
// a place an answer can carry it, and checks that Response removes it and
// leaves the original alone.
func TestResponseRedactsEveryField(t *testing.T) {
	const secret = "s3cr3t-sentinel"
	for name, rule := range Fields {
		t.Run(string(name), func(t *testing.T) {
			path := pathTo(name)
			if path == nil {
				t.Skipf("no answer carries %s", name)
			}
			r := build(path, secret)
			before := prototext.Format(r)
			got := prototext.Format(Response(r))
			if strings.Contains(got, secret) {
				t.Errorf("the secret survived:\n%s", got)
			}
			if rule == Mask && !strings.Contains(got, Masked) {
				t.Errorf("masked field without %q:\n%s", Masked, got)
			}
			if prototext.Format(r) != before {
				t.Error("Response modified its argument")
			}
		})
	}
}

// TestResponseScrubsEveryString puts a PEM private key in every string and
// bytes field (and string map key) an answer can carry.
func TestResponseScrubsEveryString(t *testing.T) {
	n := 0
	var visit func(ms protoreflect.MessageDescriptors)
	visit = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			md := ms.Get(i)
			visit(md.Messages())
			if md.IsMapEntry() {
				continue
			}
			fs := md.Fields()
			for j := 0; j < fs.Len(); j++ {
				fd := fs.Get(j)
				kind := fd.Kind()
				if fd.IsMap() {
					kind = fd.MapValue().Kind()
				}
				if kind != protoreflect.StringKind && kind != protoreflect.BytesKind {
					continue
				}
				path := pathTo(fd.FullName())
				if path == nil {
					continue
				}
				n++
				r := build(path, "cert\n"+pemKey+"tail")
				if got := prototext.Format(Response(r)); strings.Contains(got, "PRIVATE KEY") {
					t.Errorf("%s: the key survived:\n%s", fd.FullName(), got)
				}
			}
		}
	}
	visit(command.File_command_proto.Messages())
	if n < 20 {
		t.Fatalf("only %d string fields reached from Response: the walk is broken", n)
	}
	// A map key.
	r := &command.Response{Content: &command.ResponseContent{ContentType: &command.ResponseContent_RequestCounts{
		RequestCounts: &command.RequestCounts{Map: map[string]int32{pemKey: 1}}}}}
	if got := prototext.Format(Response(r)); strings.Contains(got, "PRIVATE KEY") {
		t.Errorf("map key: the key survived:\n%s", got)
	}
}

func TestResponseUnchangedIsShared(t *testing.T) {
	r := &command.Response{Message: proto.String("ok"), Content: &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{
		Clusters: &command.ClusterInformations{Vec: []*command.ClusterInformation{{Configuration: &command.Cluster{ClusterId: proto.String("c")}}}}}}}
	if Response(r) != r {
		t.Error("an answer without secrets was copied")
	}
	if Response(nil) != nil {
		t.Error("nil in, non-nil out")
	}
	// An empty header value (remove the header) stays empty.
	h := &command.Response{Content: &command.ResponseContent{ContentType: &command.ResponseContent_FrontendList{FrontendList: &command.ListedFrontends{
		HttpFrontends: []*command.RequestHttpFrontend{{Headers: []*command.Header{{Key: proto.String("X-Drop"), Val: proto.String("")}}}}}}}}
	if Response(h) != h {
		t.Error("an empty header value was treated as a secret")
	}
}

func TestScrubPEM(t *testing.T) {
	const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct{ name, in, want string }{
		{"none", cert, cert},
		{"pkcs8 after cert", cert + pemKey, cert + "\n"},
		{"rsa before cert", "-----BEGIN RSA PRIVATE KEY-----\nAA\n-----END RSA PRIVATE KEY-----\n" + cert, "\n" + cert},
		{"ec", "-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----", ""},
		{"encrypted", "a-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED PRIVATE KEY-----b", "ab"},
		{"openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nAA\n-----END OPENSSH PRIVATE KEY-----", ""},
		{"lower case", "x-----begin private key-----\nAA\n-----end private key-----y", "xy"},
		{"cut short", cert + "-----BEGIN PRIVATE KEY-----\nMIGHAgEA", cert},
		{"two keys", pemKey + cert + pemKey, "\n" + cert + "\n"},
		{"joined halves", "-----BEGIN PRI-----BEGIN PRIVATE KEY-----AA-----END PRIVATE KEY-----VATE KEY-----\nAA", ""},
		{"public key kept", "-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----"},
		{"words kept", "no PRIVATE KEY here", "no PRIVATE KEY here"},
		{"marker without end dashes", "-----BEGIN PRIVATE KEY", "-----BEGIN PRIVATE KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ScrubPEM(tc.in); got != tc.want {
				t.Errorf("ScrubPEM(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestKeys: every private key field of Fields is emptied, at a place a
// state record can carry it; hashes and header values stay.
func TestKeys(t *testing.T) {
	const secret = "s3cr3t-sentinel"
	for name, rule := range Fields {
		t.Run(string(name), func(t *testing.T) {
			path := pathTo(name)
			if path == nil {
				t.Skipf("no answer carries %s", name)
			}
			r := build(path, secret)
			n := Keys(r)
			got := prototext.Format(r)
			if rule == Clear && (n != 1 || strings.Contains(got, secret)) {
				t.Errorf("%d changes, key left:\n%s", n, got)
			}
			if rule != Clear && (n != 0 || !strings.Contains(got, secret)) {
				t.Errorf("%d changes, value lost:\n%s", n, got)
			}
		})
	}
	r := &command.WorkerRequest{Content: &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Certificate: &command.CertificateAndKey{Certificate: proto.String("c\n" + pemKey), Key: proto.String(pemKey)}}}}}
	if n := Keys(r); n != 2 || strings.Contains(prototext.Format(r), "PRIVATE KEY") {
		t.Errorf("%d changes: %s", n, prototext.Format(r))
	}
}
