package state

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

func TestClusterHashesIgnoreInsertionOrder(t *testing.T) {
	reqs := sampleRequests(t)
	a := New()
	mustDispatch(t, a, reqs...)
	want := a.ClusterHashes()
	if len(want) != 4 {
		t.Fatalf("hashes for %d clusters, want 4: %v", len(want), want)
	}

	// Shuffle what commutes: everything but the final remove_cluster and
	// the activations, which need their listener first.
	body := reqs[:len(reqs)-1]
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		shuffled := append([]*command.Request(nil), body...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := New()
		var activations []*command.Request
		for _, req := range shuffled {
			if req.GetActivateListener() != nil {
				activations = append(activations, req)
				continue
			}
			mustDispatch(t, b, req)
		}
		mustDispatch(t, b, activations...)
		mustDispatch(t, b, reqs[len(reqs)-1])
		got := b.ClusterHashes()
		for id, h := range want {
			if got[id] != h {
				t.Fatalf("seed %d: hash of %q = %x, want %x", seed, id, got[id], h)
			}
		}
	}
}

func TestClusterHashesChangeLocally(t *testing.T) {
	s := buildSample(t)
	before := s.ClusterHashes()
	mustDispatch(t, s, addBackend(weighted(backend("shop", "shop-0", "10.0.0.10:8000"), 5)))
	after := s.ClusterHashes()
	for id := range before {
		changed := before[id] != after[id]
		if changed != (id == "shop") {
			t.Errorf("cluster %q: changed=%v after a shop backend change", id, changed)
		}
	}

	for _, tc := range []struct {
		name    string
		req     *command.Request
		cluster string
	}{
		{"http frontend", addHTTP(front("api", "0.0.0.0:80", "x.example.com", command.PathRuleKind_PREFIX, "/")), "api"},
		{"https frontend", removeHTTPS(front("shop", "0.0.0.0:443", "shop.example.com", command.PathRuleKind_PREFIX, "/")), "shop"},
		{"tcp frontend", addTCP(tcpFront("db", "0.0.0.0:5433", nil)), "db"},
		{"udp frontend", removeUDP(udpFront("dns", "0.0.0.0:53", nil)), "dns"},
		{"health check", removeHealthCheck("shop"), "shop"},
	} {
		before := s.ClusterHashes()
		mustDispatch(t, s, tc.req)
		after := s.ClusterHashes()
		for id := range before {
			if changed := before[id] != after[id]; changed != (id == tc.cluster) {
				t.Errorf("%s: cluster %q changed=%v", tc.name, id, changed)
			}
		}
	}
}

// TestClusterHashesNoSecretOracle: a read-only peer gets a cluster's hash
// and its configuration with the basic-auth hashes and header values
// masked. Were the hash over their values, the peer could rebuild the
// cluster with a guessed "user:sha256(password)" until the hash matches:
// an offline dictionary attack on the password. Two clusters that differ
// only in those values hash alike; whether one is set still counts.
func TestClusterHashesNoSecretOracle(t *testing.T) {
	entry := func(user, password string) string {
		d := sha256.Sum256([]byte(password))
		return user + ":" + hex.EncodeToString(d[:])
	}
	hashOf := func(hashes []string, headerVal string) uint64 {
		s := New()
		mustDispatch(t, s, &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
			ClusterId: proto.String("app"), AuthorizedHashes: hashes}}})
		f := front("app", "0.0.0.0:80", "app.example.com", command.PathRuleKind_PREFIX, "/")
		f.Headers = []*command.Header{{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("X-Api-Key"), Val: proto.String(headerVal)}}
		mustDispatch(t, s, addHTTP(f))
		return s.ClusterHashes()["app"]
	}
	victim := hashOf([]string{entry("bob", "hunter2")}, "k3y")
	if guess := hashOf([]string{entry("alice", "123456")}, "guess"); guess != victim {
		t.Errorf("the hash tells a guessed password and header value (%x) from the real ones (%x)", guess, victim)
	}
	if more := hashOf([]string{entry("bob", "hunter2"), entry("carol", "x")}, "k3y"); more == victim {
		t.Error("a second account left the hash as it was")
	}
	if none := hashOf([]string{entry("bob", "hunter2")}, ""); none == victim {
		t.Error("a header removal (empty value) hashes as a header set to a value")
	}
}
