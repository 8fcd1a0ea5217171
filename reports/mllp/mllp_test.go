package mllp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// oneByte is a reader that returns one byte per Read, as a slow network
// would.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestReadMessages(t *testing.T) {
	m1, m2 := "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rPID|1\r", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|2|P|2.5.1\r"
	stream := "\r\n" + string(Frame([]byte(m1))) + "\n" + string(Frame([]byte(m2))) + "\x0bjunk\x0b" + m1 + "\x1c" // restart; end without CR
	for name, r := range map[string]io.Reader{"whole": strings.NewReader(stream), "byte by byte": oneByte{strings.NewReader(stream)}} {
		rd := NewReader(r, 0)
		for i, want := range []string{m1, m2, m1} {
			got, err := rd.ReadMessage()
			if err != nil || string(got) != want {
				t.Fatalf("%s: message %d = %q, %v; want %q", name, i+1, got, err, want)
			}
		}
		if _, err := rd.ReadMessage(); err != io.EOF {
			t.Fatalf("%s: after the last frame: %v, want io.EOF", name, err)
		}
	}
}

func TestReadTruncatedAndTooLarge(t *testing.T) {
	rd := NewReader(strings.NewReader("\x0bMSH|^~\\&|half a messa"), 0)
	if _, err := rd.ReadMessage(); !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("disconnect mid-frame: %v, want ErrTruncated", err)
	}
	big := "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|42|P|2.5.1\r" + strings.Repeat("OBX|1|TX|||x\r", 200)
	next := "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|43|P|2.5.1\r"
	rd = NewReader(strings.NewReader(string(Frame([]byte(big)))+string(Frame([]byte(next)))), 100)
	head, err := rd.ReadMessage()
	if !errors.Is(err, ErrTooLarge) || len(head) != 100 || !strings.HasPrefix(big, string(head)) {
		t.Fatalf("overlong frame: %d bytes, %v; want its first 100 bytes and ErrTooLarge", len(head), err)
	}
	if h, err := ParseHeader(head); err != nil || h.ControlID != "42" {
		t.Fatalf("header of the overlong frame's head: %+v, %v", h, err)
	}
	if got, err := rd.ReadMessage(); err != nil || string(got) != next {
		t.Fatalf("frame after the overlong one: %q, %v", got, err)
	}
	rd = NewReader(strings.NewReader(strings.Repeat("GET / HTTP/1.1\r\n", 20)), 100)
	if _, err := rd.ReadMessage(); !errors.Is(err, ErrNoStartBlock) {
		t.Fatalf("no framing at all: %v, want ErrNoStartBlock", err)
	}
}

func TestWriteMessage(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMessage(&b, []byte("MSH|x\r")); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "\x0bMSH|x\r\x1c\r" {
		t.Fatalf("frame %q", got)
	}
}

func TestParseHeader(t *testing.T) {
	data, err := os.ReadFile("../testdata/oru_final.hl7")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{FieldSep: '|', Encoding: `^~\&`, SendingApplication: "RIS", SendingFacility: "GENHOSP",
		ReceivingApplication: "TMCAD", ReceivingFacility: "GENHOSP", MessageType: "ORU", TriggerEvent: "R01",
		ControlID: "MSG00001", ProcessingID: "P", Version: "2.5.1"}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	for _, bad := range []string{"", "PID|1", "MSH", "MSH|", "MSHA^~\\&", "MSH|^~\\&1|x"} {
		if _, err := ParseHeader([]byte(bad)); !errors.Is(err, ErrNoHeader) {
			t.Errorf("ParseHeader(%q): %v, want ErrNoHeader", bad, err)
		}
	}
	// Other delimiters.
	h, err = ParseHeader([]byte("MSH#$%*@#SND#FAC#RCV#RF#2024##oru$r01#C9#T#2.3\r"))
	if err != nil || h.MessageType != "ORU" || h.TriggerEvent != "R01" || h.ControlID != "C9" || h.ProcessingID != "T" || h.Version != "2.3" {
		t.Fatalf("custom delimiters: %+v, %v", h, err)
	}
}

func TestBuildACK(t *testing.T) {
	at := time.Date(2024, 3, 15, 10, 15, 0, 0, time.UTC)
	h := Header{FieldSep: '|', Encoding: `^~\&`, SendingApplication: "RIS", SendingFacility: "GEN^X",
		ReceivingApplication: "TMCAD", ReceivingFacility: "GENHOSP", MessageType: "ORU", TriggerEvent: "R01",
		ControlID: "MSG00001", ProcessingID: "P", Version: "2.5.1"}
	got := string(BuildACK(h, Ack{Code: AA, ControlID: "A1", Time: at}))
	want := "MSH|^~\\&|TMCAD|GENHOSP|RIS|GEN^X|20240315101500||ACK^R01^ACK|A1|P|2.5.1\rMSA|AA|MSG00001|\r"
	if got != want {
		t.Fatalf("AA\n got %q\nwant %q", got, want)
	}
	got = string(BuildACK(h, Ack{Code: AR, Text: "message type ADT^A01 is not ORU|R01", Error: UnsupportedMessageType, ControlID: "A2", Time: at}))
	want = "MSH|^~\\&|TMCAD|GENHOSP|RIS|GEN^X|20240315101500||ACK^R01^ACK|A2|P|2.5.1\r" +
		"MSA|AR|MSG00001|message type ADT\\S\\A01 is not ORU\\F\\R01\r" +
		"ERR|||200^message type ADT\\S\\A01 is not ORU\\F\\R01^HL70357|E\r"
	if got != want {
		t.Fatalf("AR\n got %q\nwant %q", got, want)
	}
	code, id, text, err := ParseAck([]byte(got))
	if err != nil || code != AR || id != "MSG00001" || !strings.HasPrefix(text, "message type") {
		t.Fatalf("ParseAck: %v %q %q %v", code, id, text, err)
	}
	// Before v2.5 the error goes into ERR-1; v2.3 has no MSH-9.3.
	h.Version = "2.3"
	got = string(BuildACK(h, Ack{Code: AE, Error: DataTypeError, ControlID: "A3", Time: at}))
	want = "MSH|^~\\&|TMCAD|GENHOSP|RIS|GEN^X|20240315101500||ACK^R01|A3|P|2.3\rMSA|AE|MSG00001|\rERR|^^^102&Data type error&HL70357\r"
	if got != want {
		t.Fatalf("AE v2.3\n got %q\nwant %q", got, want)
	}
	// No usable header: standard delimiters, empty MSA-2; MSA-3 is cut to 80.
	got = string(BuildACK(Header{}, Ack{Code: AR, Text: strings.Repeat("x", 100), Error: SegmentSequenceError, ControlID: "A4", Time: at}))
	if !strings.HasPrefix(got, "MSH|^~\\&|||||20240315101500||ACK^R01^ACK|A4|P|2.5.1\rMSA|AR||"+strings.Repeat("x", 80)+"\rERR|||100^") {
		t.Fatalf("AR without header: %q", got)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("\x0bMSH|^~\\&|a\r\x1c\r"), 16)
	f.Add([]byte("\x0b\x0b\x1c\x1c\r\r"), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<16 {
			max = 64
		}
		rd := NewReader(bytes.NewReader(data), max)
		for i := 0; i < len(data)+1; i++ {
			msg, err := rd.ReadMessage()
			if len(msg) > max {
				t.Fatalf("message of %d bytes over the limit %d", len(msg), max)
			}
			if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
				t.Fatalf("framing byte inside a message: %q", msg)
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				return
			}
		}
		t.Fatal("ReadMessage never ended")
	})
}
