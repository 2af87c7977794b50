package frame

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// frameBytes builds a frame by hand: declared total length, then payload.
func frameBytes(length uint64, payload []byte) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, length), payload...)
}

// okFrame builds a well-formed frame around payload.
func okFrame(payload string) []byte {
	return frameBytes(uint64(PrefixSize+len(payload)), []byte(payload))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestWireExamples checks the two frames of docs/protocol.md §1.1 byte for byte,
// in both directions.
func TestWireExamples(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
		hex  string
		into proto.Message
	}{
		{
			name: "Request{status: Status{}}",
			msg:  &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}},
			hex:  "0a00000000000000" + "6200",
			into: &command.Request{},
		},
		{
			name: "Response{status: OK, message: ok}",
			msg:  &command.Response{Status: command.ResponseStatus_OK.Enum(), Message: proto.String("ok")},
			hex:  "0e00000000000000" + "0800" + "12026f6b",
			into: &command.Response{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendFrame(nil, tc.msg, 0)
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got); h != tc.hex {
				t.Fatalf("AppendFrame = %s, want %s", h, tc.hex)
			}
			var buf bytes.Buffer
			if err := WriteMessage(&buf, tc.msg, 0); err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(buf.Bytes()); h != tc.hex {
				t.Fatalf("WriteMessage wrote %s, want %s", h, tc.hex)
			}
			if err := NewReader(&buf, 0).ReadMessage(tc.into); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.into, tc.msg) {
				t.Fatalf("read back %v, want %v", tc.into, tc.msg)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		oneByte bool     // deliver the input one byte per Read
		want    []string // payloads read before the final error
		wantErr error    // final error; compared with errors.Is or by type and text
	}{
		{name: "empty stream", in: nil, wantErr: io.EOF},
		{name: "empty message", in: frameBytes(8, nil), want: []string{""}, wantErr: io.EOF},
		{name: "one frame", in: okFrame("abc"), want: []string{"abc"}, wantErr: io.EOF},
		{name: "two frames back to back", in: cat(okFrame("first"), okFrame("second")),
			want: []string{"first", "second"}, wantErr: io.EOF},
		{name: "split into 1-byte reads", in: cat(okFrame("first"), frameBytes(8, nil), okFrame(strings.Repeat("x", 5000))),
			oneByte: true, want: []string{"first", "", strings.Repeat("x", 5000)}, wantErr: io.EOF},
		{name: "length 7", in: cat(frameBytes(7, nil), okFrame("next")),
			wantErr: &ShortLengthError{Length: 7}},
		{name: "length 0", in: frameBytes(0, nil), wantErr: &ShortLengthError{Length: 0}},
		{name: "length 2^40", in: frameBytes(1<<40, []byte("tiny")),
			wantErr: &TooLargeError{Length: 1 << 40, Max: DefaultMaxSize}},
		{name: "length 2^64-1", in: frameBytes(^uint64(0), nil),
			wantErr: &TooLargeError{Length: ^uint64(0), Max: DefaultMaxSize}},
		{name: "exactly max", in: okFrame("12345678"), max: 16, want: []string{"12345678"}, wantErr: io.EOF},
		{name: "max+1", in: okFrame("123456789"), max: 16, wantErr: &TooLargeError{Length: 17, Max: 16}},
		{name: "exactly default max", in: okFrame(strings.Repeat("z", DefaultMaxSize-PrefixSize)),
			want: []string{strings.Repeat("z", DefaultMaxSize-PrefixSize)}, wantErr: io.EOF},
		{name: "default max+1", in: frameBytes(DefaultMaxSize+1, nil),
			wantErr: &TooLargeError{Length: DefaultMaxSize + 1, Max: DefaultMaxSize}},
		{name: "truncated prefix", in: okFrame("abc")[:5], wantErr: io.ErrUnexpectedEOF},
		{name: "truncated payload", in: cat(okFrame("ok"), frameBytes(20, []byte("only5"))),
			want: []string{"ok"}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated big payload, 1-byte reads", in: frameBytes(100_000, []byte(strings.Repeat("y", 9000))),
			oneByte: true, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tc.in)
			if tc.oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, tc.max)
			var got []string
			var err error
			for {
				var p []byte
				if p, err = r.ReadFrame(); err != nil {
					break
				}
				got = append(got, string(p))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("payloads = %q, want %q", got, tc.want)
			}
			checkErr(t, err, tc.wantErr)
		})
	}
}

// checkErr compares a typed frame error by type and text, any other by
// errors.Is.
func checkErr(t *testing.T, got, want error) {
	t.Helper()
	switch want.(type) {
	case *ShortLengthError, *TooLargeError, *DecodeError:
		if fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", want, want) {
			t.Errorf("error = %T %v, want %T %v", got, got, want, want)
		}
		if !IsFrameError(got) {
			t.Errorf("IsFrameError(%v) = false", got)
		}
	default:
		if !errors.Is(got, want) {
			t.Errorf("error = %v, want %v", got, want)
		}
		if IsFrameError(got) {
			t.Errorf("IsFrameError(%v) = true", got)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&TooLargeError{Length: 1 << 40, Max: DefaultMaxSize}, "frame length 1099511627776 exceeds maximum 2000000"},
		{&ShortLengthError{Length: 7}, "frame length 7 is shorter than the 8-byte length prefix"},
		{&DecodeError{Err: errors.New("boom")}, "frame payload is not a valid protobuf message: boom"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestShortLengthResync checks that the prefix of a too-short frame is
// consumed, so the next frame is readable (upstream's re-sync behaviour).
func TestShortLengthResync(t *testing.T) {
	r := NewReader(bytes.NewReader(cat(frameBytes(3, nil), okFrame("next"))), 0)
	if _, err := r.ReadFrame(); !errors.As(err, new(*ShortLengthError)) {
		t.Fatalf("first ReadFrame error = %v, want ShortLengthError", err)
	}
	p, err := r.ReadFrame()
	if err != nil || string(p) != "next" {
		t.Fatalf("second ReadFrame = %q, %v; want \"next\", nil", p, err)
	}
}

func TestReadMessage(t *testing.T) {
	good, err := AppendFrame(nil, &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: "shop"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A LoadBalancingParams frame without its required weight: accepted, as
	// prost accepts it; the getter yields the default.
	partial := frameBytes(8, nil)
	in := cat(good, okFrame("\xff\xff\xff\xff"), partial, good)
	r := NewReader(bytes.NewReader(in), 0)

	var req command.Request
	if err := r.ReadMessage(&req); err != nil || req.GetRemoveCluster() != "shop" {
		t.Fatalf("frame 1: %v, %v", &req, err)
	}
	err = r.ReadMessage(&req)
	var de *DecodeError
	if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "frame payload is not a valid protobuf message: ") {
		t.Fatalf("frame 2: error = %v, want DecodeError", err)
	}
	var lb command.LoadBalancingParams
	if err := r.ReadMessage(&lb); err != nil || lb.Weight != nil || lb.GetWeight() != 0 {
		t.Fatalf("frame 3: %v, %v; want empty message, nil", &lb, err)
	}
	// The undecodable frame was consumed: the stream is still in step.
	if err := r.ReadMessage(&req); err != nil || req.GetRemoveCluster() != "shop" {
		t.Fatalf("frame 4: %v, %v", &req, err)
	}
	if err := r.ReadMessage(&req); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

// allocatedBy returns the number of heap bytes allocated while f runs.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadFrameAllocation checks that a huge declared length allocates
// nothing and that an allowed but unfulfilled length allocates in proportion
// to the bytes that actually arrived, not to the declared length.
func TestReadFrameAllocation(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		wantErr error
		limit   uint64
	}{
		{"2^40 prefix", frameBytes(1<<40, nil), 0, &TooLargeError{Length: 1 << 40, Max: DefaultMaxSize}, 64 << 10},
		{"2^40 prefix, max 2^41", frameBytes(1<<40, []byte("abc")), 1 << 41, io.ErrUnexpectedEOF, 64 << 10},
		{"max-sized prefix, 100 bytes", frameBytes(DefaultMaxSize, make([]byte, 100)), 0, io.ErrUnexpectedEOF, 64 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocatedBy(func() {
				_, err = NewReader(bytes.NewReader(tc.in), tc.max).ReadFrame()
			})
			checkErr(t, err, tc.wantErr)
			if n > tc.limit {
				t.Errorf("allocated %d bytes, want at most %d", n, tc.limit)
			}
		})
	}
}

// TestReaderReusesBuffer documents the payload contract: the slice returned
// by ReadFrame is overwritten by the next call for small frames.
func TestReaderReusesBuffer(t *testing.T) {
	r := NewReader(bytes.NewReader(cat(okFrame("aaaa"), okFrame("bbbb"))), 0)
	p1, _ := r.ReadFrame()
	p2, _ := r.ReadFrame()
	if string(p2) != "bbbb" || &p1[0] != &p2[0] {
		t.Fatalf("expected the buffer to be reused: p1=%q p2=%q", p1, p2)
	}
}

func TestWriteTooLarge(t *testing.T) {
	msg := &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: strings.Repeat("c", 100)}}
	// 8 prefix + 1 tag + 1 length + 100 = 110 bytes.
	want := &TooLargeError{Length: 110, Max: 109}

	var buf bytes.Buffer
	err := WriteMessage(&buf, msg, 109)
	checkErr(t, err, want)
	if buf.Len() != 0 {
		t.Errorf("WriteMessage wrote %d bytes for a refused frame", buf.Len())
	}
	err = NewWriter(&buf, 109).WriteMessage(msg)
	checkErr(t, err, want)
	if buf.Len() != 0 {
		t.Errorf("Writer.WriteMessage wrote %d bytes for a refused frame", buf.Len())
	}
	dst := []byte("keep")
	got, err := AppendFrame(dst, msg, 109)
	checkErr(t, err, want)
	if string(got) != "keep" {
		t.Errorf("AppendFrame changed dst to %q on error", got)
	}
	if err := WriteMessage(&buf, msg, 110); err != nil || buf.Len() != 110 {
		t.Errorf("frame of exactly max: err %v, wrote %d bytes", err, buf.Len())
	}
}

func TestAppendFrameAppends(t *testing.T) {
	dst := []byte("head")
	got, err := AppendFrame(dst, &command.Status{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "head" + string(frameBytes(8, nil)); string(got) != want {
		t.Fatalf("AppendFrame = %q, want %q", got, want)
	}
}

// callRecorder keeps every Write call apart.
type callRecorder struct {
	mu    sync.Mutex
	calls [][]byte
}

func (c *callRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, bytes.Clone(p))
	return len(p), nil
}

// TestWriterConcurrent checks that concurrent WriteMessage calls each emit
// exactly one whole frame in one Write call.
func TestWriterConcurrent(t *testing.T) {
	rec := &callRecorder{}
	w := NewWriter(rec, 0)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d-%s", g, i, strings.Repeat("p", i*37))
				if err := w.WriteMessage(&command.WorkerRequest{Id: &id, Content: &command.Request{}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(rec.calls) != writers*each {
		t.Fatalf("%d Write calls, want %d", len(rec.calls), writers*each)
	}
	seen := map[string]bool{}
	for i, call := range rec.calls {
		r := NewReader(bytes.NewReader(call), 0)
		var m command.WorkerRequest
		if err := r.ReadMessage(&m); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("call %d holds more than one frame: %v", i, err)
		}
		seen[m.GetId()] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct frames, want %d", len(seen), writers*each)
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestShortWrite(t *testing.T) {
	if err := WriteMessage(shortWriter{}, &command.Status{}, 0); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("error = %v, want io.ErrShortWrite", err)
	}
}

// TestWriteParts: a frame written in parts is the frame AppendFrame makes
// of the message they encode; one over the maximum is refused, nothing
// written.
func TestWriteParts(t *testing.T) {
	req := &command.Request{RequestType: &command.Request_RemoveCluster{RemoveCluster: strings.Repeat("c", 300)}}
	payload, err := Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := AppendFrame(nil, req, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteParts(&b, 0, payload[:3], nil, payload[3:]); err != nil || !bytes.Equal(b.Bytes(), want) {
		t.Errorf("WriteParts: %v, %x; want %x", err, b.Bytes(), want)
	}
	b.Reset()
	var tl *TooLargeError
	if err := WriteParts(&b, len(want)-1, payload); !errors.As(err, &tl) || b.Len() != 0 || tl.Length != uint64(len(want)) {
		t.Errorf("over the maximum: %v, %d bytes written", err, b.Len())
	}
}
