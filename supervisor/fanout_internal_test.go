package supervisor

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// TestWorkerRequestHead: the head written before a shared Request
// encoding makes, with it, the bytes WriteMessage would write for the
// whole WorkerRequest, whatever the lengths (one- to three-byte varints).
func TestWorkerRequestHead(t *testing.T) {
	for _, req := range []*command.Request{
		{},
		statusReqForTest(),
		cluster("c"),
		{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String("c"),
			Answers: map[string]string{"503": strings.Repeat("x", 70_000), "404": "y"}}}},
	} {
		for _, id := range []string{"", "ADD_CLUSTER-0-1", strings.Repeat("i", 200)} {
			content, err := frame.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := frame.Marshal(&command.WorkerRequest{Id: proto.String(id), Content: req})
			if err != nil {
				t.Fatal(err)
			}
			if got := append(workerRequestHead(id, len(content)), content...); !bytes.Equal(got, whole) {
				t.Errorf("id %q, %d-byte request: head and content differ from the encoding of the WorkerRequest", id, len(content))
			}
		}
	}
}

func statusReqForTest() *command.Request {
	return &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}
}
