package metrics

// Flow is the metrics of one UDP flow: where its datagrams count. The UDP
// server gets it when the flow opens (FlowStart), records every datagram
// into it without allocating, and calls End once when the flow ends. The
// zero Flow (metrics off in tests) records nothing.
type Flow struct {
	r *Registry
	c *Cluster
	b *Backend
}

// FlowStart records a UDP flow opened to backend backendID of cluster
// clusterID: a flow created, a request of the cluster and of the backend,
// and one more live flow at the three levels. It allocates only for a
// cluster or backend not seen before. The live-flow gauges count whether
// cluster metrics are on or not (they must stay balanced with End).
func (r *Registry) FlowStart(clusterID, backendID string) Flow {
	if r == nil {
		return Flow{}
	}
	c := r.Cluster(clusterID)
	b := c.Backend(backendID)
	r.flows.Add(1)
	c.flows.Add(1)
	b.flows.Add(1)
	r.proxy[udpFlowsCreated].Add(1)
	if r.clusterOn.Load() {
		c.c[cRequests].Add(1)
		b.c[cRequests].Add(1)
	}
	return Flow{r: r, c: c, b: b}
}

// In records a client datagram of n payload bytes relayed to the flow's
// backend. It allocates nothing.
func (f Flow) In(n int) {
	f.datagram(udpDatagramsIn, udpBytesIn, cUDPDatagramsIn, cBytesIn, n)
}

// Out records a backend reply of n bytes relayed to the flow's client. It
// allocates nothing.
func (f Flow) Out(n int) {
	f.datagram(udpDatagramsOut, udpBytesOut, cUDPDatagramsOut, cBytesOut, n)
}

// datagram counts one datagram of n bytes in one direction: the proxy's
// counters dgrams and bytes, the cluster's and the backend's cDgrams and
// cBytes.
func (f Flow) datagram(dgrams, bytes, cDgrams, cBytes, n int) {
	if f.r == nil {
		return
	}
	f.r.proxy[dgrams].Add(1)
	f.r.proxy[bytes].Add(int64(n))
	if !f.r.clusterOn.Load() {
		return
	}
	f.c.c[cDgrams].Add(1)
	f.c.c[cBytes].Add(int64(n))
	f.b.c[cDgrams].Add(1)
	f.b.c[cBytes].Add(int64(n))
}

// End records the end of the flow: one live flow less at each level. Call
// it once per FlowStart.
func (f Flow) End() {
	if f.r == nil {
		return
	}
	f.r.flows.Add(-1)
	f.c.flows.Add(-1)
	f.b.flows.Add(-1)
}
