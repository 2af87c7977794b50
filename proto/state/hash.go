package state

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/redact"
)

// ClusterHashes returns, for every cluster, a 64-bit digest of its
// configuration, its HTTP and HTTPS frontends, its TCP and UDP frontends
// and its backends: the first 8 bytes (big-endian) of a SHA-256 over a
// deterministic encoding of those parts in canonical order. Equal content
// gives equal hashes whatever the order it was inserted in, within one
// build (the encoding is deterministic protobuf, which the protobuf module
// does not promise to keep across its versions). Frontends and backends of
// a removed cluster are not hashed.
func (s *ConfigState) ClusterHashes() map[string]uint64 {
	http, https := groupFronts(s.httpFronts), groupFronts(s.httpsFronts)
	out := make(map[string]uint64, len(s.clusters))
	for id := range s.clusters {
		out[id] = s.clusterHash(id, http[id], https[id])
	}
	return out
}

func (s *ConfigState) clusterHash(id string, http, https []*command.RequestHttpFrontend) uint64 {
	h := sha256.New()
	part(h, 'C', s.clusters[id])
	for _, f := range http {
		part(h, 'H', f)
	}
	for _, f := range https {
		part(h, 'S', f)
	}
	for _, f := range s.tcpFronts[id] {
		part(h, 'T', f)
	}
	for _, f := range s.udpFronts[id] {
		part(h, 'U', f)
	}
	for _, b := range s.backends[id] {
		part(h, 'B', b)
	}
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// part writes one tagged, length-prefixed message into the digest. Its
// secret fields (redact.Fields: basic-auth hashes, header values) enter
// the digest as the command socket shows them, "<redacted>" when set:
// their values would make the digest, which read-only peers get, an
// offline oracle for the secrets they are not shown (rebuild the cluster
// from query_cluster_by_id, put in a guessed "user:sha256(password)",
// compare). A change of such a value alone leaves the hash as it was.
func part(h hash.Hash, tag byte, m proto.Message) {
	b, err := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(redact.Message(m))
	if err != nil {
		// Stored messages always marshal; keep the digest defined anyway.
		b = []byte(err.Error())
	}
	var hdr [9]byte
	hdr[0] = tag
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(b)))
	h.Write(hdr[:])
	h.Write(b)
}
