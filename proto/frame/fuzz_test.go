package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// fuzzMaxes are the frame limits a fuzz input can select with its second
// argument.
var fuzzMaxes = []int{DefaultMaxSize, 8, 9, 16, 64, 1024}

// FuzzReadFrame feeds arbitrary bytes to a Reader. Invariants: no panic; a
// payload (and the buffer holding it) never exceeds max-8 bytes;
// each frame read, re-framed by hand and read again, gives the same bytes;
// the stream ends with io.EOF, io.ErrUnexpectedEOF or a typed frame error;
// ReadMessage on the same input fails with a DecodeError exactly when
// proto.Unmarshal refuses the payload.
func FuzzReadFrame(f *testing.F) {
	f.Add(okFrame(""), uint8(0))
	f.Add(cat(okFrame("\x62\x00"), okFrame("\x08\x00\x12\x02ok")), uint8(0))
	f.Add(frameBytes(7, nil), uint8(0))
	f.Add(frameBytes(1<<40, nil), uint8(0))
	f.Add(okFrame("12345678"), uint8(3))
	f.Add(okFrame("123456789"), uint8(3))
	f.Add(okFrame("\xff\xff"), uint8(0))
	f.Add(frameBytes(20, []byte("short")), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		limit := fuzzMaxes[int(sel)%len(fuzzMaxes)]
		r := NewReader(bytes.NewReader(data), limit)
		var payloads [][]byte
		var err error
		for {
			var p []byte
			p, err = r.ReadFrame()
			if err != nil {
				break
			}
			if len(p) > limit-PrefixSize || cap(p) > limit-PrefixSize {
				t.Fatalf("payload len %d cap %d with max %d", len(p), cap(p), limit)
			}
			payloads = append(payloads, bytes.Clone(p))
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF && !IsFrameError(err) {
			t.Fatalf("untyped error %T %v", err, err)
		}

		// Re-frame every payload and read it back.
		var again []byte
		for _, p := range payloads {
			again = append(again, okFrame(string(p))...)
		}
		r2 := NewReader(bytes.NewReader(again), limit)
		for i, want := range payloads {
			p, err := r2.ReadFrame()
			if err != nil || !bytes.Equal(p, want) {
				t.Fatalf("frame %d re-read: %q, %v; want %q", i, p, err, want)
			}
		}
		if _, err := r2.ReadFrame(); err != io.EOF {
			t.Fatalf("re-read stream ends with %v, want io.EOF", err)
		}

		// ReadMessage agrees with proto.Unmarshal frame by frame.
		r3 := NewReader(bytes.NewReader(data), limit)
		for i, p := range payloads {
			var m command.Request
			err := r3.ReadMessage(&m)
			wantErr := proto.UnmarshalOptions{AllowPartial: true}.Unmarshal(p, new(command.Request))
			var de *DecodeError
			switch {
			case wantErr == nil && err != nil:
				t.Fatalf("frame %d: ReadMessage error %v, Unmarshal accepts it", i, err)
			case wantErr != nil && !errors.As(err, &de):
				t.Fatalf("frame %d: ReadMessage error %v, want DecodeError (%v)", i, err, wantErr)
			}
		}
	})
}
