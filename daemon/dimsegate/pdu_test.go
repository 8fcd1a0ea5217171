package dimsegate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// buildRQ returns an A-ASSOCIATE-RQ with the given AE titles (padded to
// 16 bytes with spaces) and items appended after the fixed fields.
func buildRQ(called, calling string, items []byte) []byte {
	body := make([]byte, rqFixedLen, rqFixedLen+len(items))
	binary.BigEndian.PutUint16(body[0:2], 1)
	copy(body[4:20], []byte(pad16(called)))
	copy(body[20:36], []byte(pad16(calling)))
	body = append(body, items...)
	pdu := []byte{PDUAssociateRQ, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(pdu[2:6], uint32(len(body)))
	return append(pdu, body...)
}

func pad16(s string) string { return s + strings.Repeat(" ", 16-len(s)) }

// appContextItem is the Application Context item of every real RQ
// (PS3.8 §9.3.2.1), so that test requests carry variable items.
var appContextItem = func() []byte {
	uid := "1.2.840.10008.3.1.1.1"
	return append([]byte{0x10, 0, 0, byte(len(uid))}, uid...)
}()

// headerOnly is a reader that fails the test if more than the 6-byte
// PDU header is read from it.
type headerOnly struct {
	t   *testing.T
	hdr []byte
}

func (h *headerOnly) Read(p []byte) (int, error) {
	if len(h.hdr) == 0 {
		h.t.Error("read past the PDU header of a PDU that should have been refused from its header")
		return 0, io.EOF
	}
	n := copy(p, h.hdr)
	h.hdr = h.hdr[n:]
	return n, nil
}

func TestReadAssociateRQ(t *testing.T) {
	raw := buildRQ("TMCAD", "PACS", appContextItem)
	rq, err := ReadAssociateRQ(bytes.NewReader(append(append([]byte{}, raw...), 0x04, 0, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if rq.CalledAE != "TMCAD" || rq.CallingAE != "PACS" || rq.ProtocolVersion != 1 {
		t.Errorf("got called %q calling %q version %d, want TMCAD, PACS, 1", rq.CalledAE, rq.CallingAE, rq.ProtocolVersion)
	}
	if !bytes.Equal(rq.Raw, raw) {
		t.Errorf("Raw is %d bytes, not the request as sent (%d bytes); it must stop at the PDU's end", len(rq.Raw), len(raw))
	}

	// Leading spaces and NUL padding are not part of the title.
	nul := buildRQ("TMCAD", "", appContextItem)
	copy(nul[6+20:6+36], "  PACS\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	if rq, err := ReadAssociateRQ(bytes.NewReader(nul)); err != nil || rq.CallingAE != "PACS" {
		t.Errorf("padded calling AE: got %+v, %v; want PACS", rq, err)
	}
}

func TestReadAssociateRQRefusesFromHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hdr    []byte
		reason byte
	}{
		{"P-DATA first", []byte{0x04, 0, 0, 0, 0, 100}, abortUnexpectedPDU},
		{"not a DICOM PDU", []byte("GET / "), abortUnrecognizedPDU},
		{"TLS client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, abortUnrecognizedPDU},
		{"RQ longer than 64 KiB", []byte{0x01, 0, 0, 1, 0, 1}, abortInvalidParamValue},
		{"RQ of 4 GiB", []byte{0x01, 0, 0xff, 0xff, 0xff, 0xff}, abortInvalidParamValue},
		{"RQ shorter than its fixed fields", []byte{0x01, 0, 0, 0, 0, 67}, abortInvalidParamValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAssociateRQ(&headerOnly{t: t, hdr: tc.hdr})
			var pe *pduError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a refusal from the header", err)
			}
			if pe.abortReason != tc.reason {
				t.Errorf("abort reason %d, want %d (%v)", pe.abortReason, tc.reason, err)
			}
		})
	}
}

func TestReadAssociateRQShortInput(t *testing.T) {
	if _, err := ReadAssociateRQ(bytes.NewReader(nil)); !errors.Is(err, errNoRequest) {
		t.Errorf("empty connection: got %v, want errNoRequest", err)
	}
	if _, err := ReadAssociateRQ(bytes.NewReader([]byte{0x01, 0, 0})); err == nil || errors.Is(err, errNoRequest) {
		t.Errorf("header cut short: got %v, want a read error", err)
	}
	raw := buildRQ("TMCAD", "PACS", appContextItem)
	if _, err := ReadAssociateRQ(bytes.NewReader(raw[:len(raw)-3])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body cut short: got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestAssociateRJ(t *testing.T) {
	got := AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonCallingAENotRecognized)
	want := []byte{0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x01, 0x03}
	if !bytes.Equal(got, want) {
		t.Errorf("A-ASSOCIATE-RJ % x, want % x", got, want)
	}
	if got, want := abortPDU(abortUnexpectedPDU), []byte{0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2}; !bytes.Equal(got, want) {
		t.Errorf("A-ABORT % x, want % x", got, want)
	}
}

func TestValidAETitle(t *testing.T) {
	for _, ok := range []string{"PACS", "A", "SIXTEEN_CHARS_AE", "MY AE"} {
		if err := ValidAETitle(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "   ", "SEVENTEEN_CHARS_A", `BACK\SLASH`, "TAB\tAE", "ÄE"} {
		if err := ValidAETitle(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
