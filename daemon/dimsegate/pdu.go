package dimsegate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PDU types of the DICOM Upper Layer (PS3.8 §9.3.1) that the gate reads
// or writes.
const (
	// PDUAssociateRQ is the A-ASSOCIATE-RQ PDU type: the first PDU a
	// requestor sends.
	PDUAssociateRQ = 0x01
	// PDUAssociateRJ is the A-ASSOCIATE-RJ PDU type.
	PDUAssociateRJ = 0x03
	// PDUAbort is the A-ABORT PDU type.
	PDUAbort = 0x07
)

// Sizes of the A-ASSOCIATE-RQ (PS3.8 §9.3.2).
const (
	// pduHeaderLen is the PDU type, a reserved byte and the 4-byte
	// big-endian length of what follows.
	pduHeaderLen = 6
	// rqFixedLen is the RQ's fixed fields after the header: protocol
	// version (2), reserved (2), called AE title (16), calling AE title
	// (16), reserved (32); the variable items follow.
	rqFixedLen = 68
	// MaxRQLength is the largest A-ASSOCIATE-RQ body (the PDU length
	// field) the gate reads. A real request (application context, a few
	// dozen presentation contexts, user information) is a few KiB; a
	// larger length is garbage or an attack and is refused unread.
	MaxRQLength = 64 << 10
)

// A-ASSOCIATE-RJ fields (PS3.8 §9.3.4, Table 9-21).
const (
	// RJRejectedPermanent is the result "rejected-permanent".
	RJRejectedPermanent = 1
	// RJRejectedTransient is the result "rejected-transient".
	RJRejectedTransient = 2

	// RJSourceServiceUser is the source "DICOM UL service-user".
	RJSourceServiceUser = 1
	// RJSourceProviderPresentation is the source "DICOM UL
	// service-provider (Presentation related function)".
	RJSourceProviderPresentation = 3

	// RJReasonNoReason is service-user reason 1, "no-reason-given".
	RJReasonNoReason = 1
	// RJReasonCallingAENotRecognized is service-user reason 3,
	// "calling-AE-title-not-recognized".
	RJReasonCallingAENotRecognized = 3
	// RJReasonCalledAENotRecognized is service-user reason 7,
	// "called-AE-title-not-recognized".
	RJReasonCalledAENotRecognized = 7
	// RJReasonTemporaryCongestion is presentation-related reason 1,
	// "temporary-congestion".
	RJReasonTemporaryCongestion = 1
)

// A-ABORT fields (PS3.8 §9.3.8, Table 9-26) for a gate that cannot make
// sense of the first PDU: source 2 is the DICOM UL service-provider.
const (
	abortSourceProvider    = 2
	abortUnrecognizedPDU   = 1
	abortUnexpectedPDU     = 2
	abortInvalidParamValue = 6
)

// AssociateRQ is what the gate reads from an A-ASSOCIATE-RQ: the AE
// titles (trailing and leading spaces removed, as they are not
// significant, PS3.5 §6.2) and the PDU's bytes as received, which are
// passed on unchanged.
type AssociateRQ struct {
	// ProtocolVersion is the RQ's protocol-version bit field.
	ProtocolVersion uint16
	// CalledAE is the AE title the requestor called (the receiver's).
	CalledAE string
	// CallingAE is the requestor's own AE title.
	CallingAE string
	// Raw is the whole PDU, header included, as it arrived.
	Raw []byte
}

// pduError is a first PDU the gate refuses to read further: it answers
// the peer with an A-ABORT of the given reason.
type pduError struct {
	abortReason byte
	msg         string
}

func (e *pduError) Error() string { return e.msg }

// errNoRequest is a connection that ended before a complete PDU header
// arrived (a port probe, a health check that only connects).
var errNoRequest = errors.New("the connection ended before an A-ASSOCIATE-RQ")

// ReadAssociateRQ reads the first PDU from r and returns it when it is an
// A-ASSOCIATE-RQ of plausible size. The PDU type and length are checked
// from the 6-byte header before any more is read: anything other than an
// RQ, or a length outside 68..MaxRQLength, is refused without reading
// its body.
func ReadAssociateRQ(r io.Reader) (*AssociateRQ, error) {
	var hdr [pduHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errNoRequest
		}
		return nil, fmt.Errorf("reading the first PDU's header: %w", err)
	}
	typ := hdr[0]
	if typ != PDUAssociateRQ {
		reason := byte(abortUnrecognizedPDU)
		if typ >= 0x01 && typ <= 0x07 {
			reason = abortUnexpectedPDU
		}
		return nil, &pduError{abortReason: reason, msg: fmt.Sprintf("first PDU is of type 0x%02x, not an A-ASSOCIATE-RQ (0x01)", typ)}
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < rqFixedLen || n > MaxRQLength {
		return nil, &pduError{abortReason: abortInvalidParamValue, msg: fmt.Sprintf("A-ASSOCIATE-RQ length %d is outside %d..%d", n, rqFixedLen, MaxRQLength)}
	}
	raw := make([]byte, pduHeaderLen+int(n))
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[pduHeaderLen:]); err != nil {
		return nil, fmt.Errorf("reading the A-ASSOCIATE-RQ (%d bytes): %w", n, err)
	}
	body := raw[pduHeaderLen:]
	return &AssociateRQ{
		ProtocolVersion: binary.BigEndian.Uint16(body[0:2]),
		CalledAE:        trimAE(body[4:20]),
		CallingAE:       trimAE(body[20:36]),
		Raw:             raw,
	}, nil
}

// trimAE returns an AE title field without its padding: spaces (the
// standard's padding) and NULs (which some implementations send).
func trimAE(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

// AssociateRJ returns an A-ASSOCIATE-RJ PDU with the given result,
// source and reason.
func AssociateRJ(result, source, reason byte) []byte {
	return []byte{PDUAssociateRJ, 0, 0, 0, 0, 4, 0, result, source, reason}
}

// abortPDU returns an A-ABORT PDU from the service-provider with reason.
func abortPDU(reason byte) []byte {
	return []byte{PDUAbort, 0, 0, 0, 0, 4, 0, 0, abortSourceProvider, reason}
}

// ValidAETitle reports why ae cannot be an AE title, or nil: 1 to 16
// characters of printable ASCII without a backslash, not only spaces
// (PS3.5 §6.2, VR AE).
func ValidAETitle(ae string) error {
	t := strings.TrimSpace(ae)
	if t == "" || len(ae) > 16 {
		return fmt.Errorf("AE title %q: must be 1 to 16 characters", ae)
	}
	for _, c := range []byte(ae) {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return fmt.Errorf("AE title %q: only printable ASCII characters other than a backslash are allowed", ae)
		}
	}
	return nil
}
