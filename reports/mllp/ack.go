package mllp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header is what an acknowledgement needs from a message's MSH segment.
// Values are raw (not unescaped); the application, facility and type
// fields keep their components.
type Header struct {
	// FieldSep is MSH-1; Encoding is MSH-2 (component, repetition, escape
	// and subcomponent characters, in that order).
	FieldSep byte
	Encoding string
	// SendingApplication (MSH-3), SendingFacility (MSH-4),
	// ReceivingApplication (MSH-5) and ReceivingFacility (MSH-6).
	SendingApplication, SendingFacility     string
	ReceivingApplication, ReceivingFacility string
	// MessageType is MSH-9.1 (e.g. "ORU"), TriggerEvent MSH-9.2 ("R01"),
	// both upper-cased.
	MessageType, TriggerEvent string
	// ControlID is MSH-10, echoed in MSA-2.
	ControlID string
	// ProcessingID is MSH-11.1 ("P", "D" or "T").
	ProcessingID string
	// Version is MSH-12.1 (e.g. "2.5.1").
	Version string
}

// ErrNoHeader is returned (wrapped) by ParseHeader when a message does not
// start with a usable MSH segment.
var ErrNoHeader = errors.New("the message does not start with an MSH segment")

// ParseHeader reads the MSH segment that starts msg (after any carriage
// returns or line feeds).
func ParseHeader(msg []byte) (Header, error) {
	msg = bytes.TrimLeft(msg, "\r\n")
	end := bytes.IndexAny(msg, "\r\n")
	if end < 0 {
		end = len(msg)
	}
	seg := string(msg[:end])
	if len(seg) < 8 || !strings.HasPrefix(seg, "MSH") {
		return Header{}, ErrNoHeader
	}
	h := Header{FieldSep: seg[3]}
	if !isDelimiter(h.FieldSep) {
		return Header{}, fmt.Errorf("%w: MSH-1 %q is not a delimiter", ErrNoHeader, h.FieldSep)
	}
	// f[n] is MSH-n: MSH-1 is the separator itself.
	parts := strings.Split(seg[4:], string(h.FieldSep))
	f := append([]string{"MSH", string(h.FieldSep)}, parts...)
	get := func(n int) string {
		if n < len(f) {
			return f[n]
		}
		return ""
	}
	h.Encoding = get(2)
	if len(h.Encoding) < 1 || len(h.Encoding) > 5 {
		return Header{}, fmt.Errorf("%w: MSH-2 encoding characters %q", ErrNoHeader, truncate(h.Encoding, 8))
	}
	for i := 0; i < len(h.Encoding); i++ {
		if !isDelimiter(h.Encoding[i]) || h.Encoding[i] == h.FieldSep {
			return Header{}, fmt.Errorf("%w: MSH-2 encoding characters %q", ErrNoHeader, truncate(h.Encoding, 8))
		}
	}
	comp := h.Encoding[0]
	h.SendingApplication, h.SendingFacility = get(3), get(4)
	h.ReceivingApplication, h.ReceivingFacility = get(5), get(6)
	h.MessageType = strings.ToUpper(strings.TrimSpace(component(get(9), comp, 0)))
	h.TriggerEvent = strings.ToUpper(strings.TrimSpace(component(get(9), comp, 1)))
	h.ControlID = get(10)
	h.ProcessingID = strings.ToUpper(strings.TrimSpace(component(get(11), comp, 0)))
	h.Version = strings.TrimSpace(component(get(12), comp, 0))
	return h, nil
}

// isDelimiter reports whether c may be an HL7 delimiter: printable ASCII
// punctuation.
func isDelimiter(c byte) bool {
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
}

// component returns component i (from 0) of a raw field's first
// repetition, or "".
func component(v string, sep byte, i int) string {
	parts := strings.Split(v, string(sep))
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// Code is an acknowledgement code (HL7 table 0008, original mode).
type Code string

// Acknowledgement codes.
const (
	// AA: the message was accepted (and, for this receiver, stored).
	AA Code = "AA"
	// AE: the message was read but its content is in error; sending it
	// again unchanged will fail again.
	AE Code = "AE"
	// AR: the message was rejected for its header (unsupported type,
	// event, processing ID or version) or because the receiver could not
	// process it at this time.
	AR Code = "AR"
)

// ErrorCode is a message error condition code (HL7 table 0357), sent in
// the ERR segment of a negative acknowledgement.
type ErrorCode int

// Error condition codes of HL7 table 0357.
const (
	// SegmentSequenceError: segments missing or out of order.
	SegmentSequenceError ErrorCode = 100
	// RequiredFieldMissing: a required field is empty.
	RequiredFieldMissing ErrorCode = 101
	// DataTypeError: a field's value is not valid for its data type.
	DataTypeError ErrorCode = 102
	// UnsupportedMessageType: MSH-9.1 is not accepted here.
	UnsupportedMessageType ErrorCode = 200
	// UnsupportedEventCode: MSH-9.2 is not accepted here.
	UnsupportedEventCode ErrorCode = 201
	// UnsupportedProcessingID: MSH-11 is not accepted here.
	UnsupportedProcessingID ErrorCode = 202
	// UnsupportedVersionID: MSH-12 is not accepted here.
	UnsupportedVersionID ErrorCode = 203
	// ApplicationInternalError: the receiver failed (e.g. could not store).
	ApplicationInternalError ErrorCode = 207
)

// text is the table's wording of c.
func (c ErrorCode) text() string {
	switch c {
	case SegmentSequenceError:
		return "Segment sequence error"
	case RequiredFieldMissing:
		return "Required field missing"
	case DataTypeError:
		return "Data type error"
	case UnsupportedMessageType:
		return "Unsupported message type"
	case UnsupportedEventCode:
		return "Unsupported event code"
	case UnsupportedProcessingID:
		return "Unsupported processing id"
	case UnsupportedVersionID:
		return "Unsupported version id"
	case ApplicationInternalError:
		return "Application internal error"
	}
	return "Error"
}

// Ack describes an acknowledgement to build.
type Ack struct {
	// Code is AA, AE or AR.
	Code Code
	// Text is the reason, sent in MSA-3 and in the ERR segment (for AE and
	// AR); it is escaped here. Keep it free of PHI: it names what was
	// wrong, not the values.
	Text string
	// Error is the table 0357 code of an AE or AR (ApplicationInternalError
	// when zero).
	Error ErrorCode
	// ControlID is the acknowledgement's own MSH-10 (at most 20
	// characters).
	ControlID string
	// Time is MSH-7.
	Time time.Time
}

// maxMSAText is the length of MSA-3 (ST 80) in v2.3 to v2.5.1.
const maxMSAText = 80

// BuildACK returns the acknowledgement of the message whose header is h,
// unframed, segments ending in carriage returns. It uses the message's own
// delimiters (the standard ones when h has none, i.e. the message had no
// usable MSH), swaps the sending and receiving application and facility,
// echoes the trigger event, processing ID and version, and puts h's
// control ID in MSA-2. For AE and AR it adds an ERR segment: ERR-3
// (code^text^HL70357) and ERR-4 severity E in v2.5 and later, ERR-1's
// fourth component before.
func BuildACK(h Header, a Ack) []byte {
	fs, enc := h.FieldSep, h.Encoding
	if fs == 0 || len(enc) < 4 {
		fs, enc = '|', `^~\&`
	}
	e := escaper{fs: fs, comp: enc[0], rep: enc[1], esc: enc[2], sub: enc[3]}
	version := h.Version
	if version == "" {
		version = "2.5.1"
	}
	trigger := h.TriggerEvent
	if trigger == "" {
		trigger = "R01"
	}
	msgType := "ACK" + string(e.comp) + trigger
	if version != "2.3" && version != "2.2" && version != "2.1" {
		// MSH-9.3, the message structure, exists from v2.3.1 on.
		msgType += string(e.comp) + "ACK"
	}
	processing := h.ProcessingID
	if processing == "" {
		processing = "P"
	}
	code := a.Code
	if code == "" {
		code = AA
	}
	ts := a.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	sep := string(fs)
	var b strings.Builder
	b.WriteString(strings.Join([]string{"MSH" + sep + enc,
		h.ReceivingApplication, h.ReceivingFacility, h.SendingApplication, h.SendingFacility,
		ts.Format("20060102150405"), "", msgType, e.escape(truncate(a.ControlID, 20)), e.escape(processing), e.escape(version)}, sep))
	b.WriteByte(CarriageReturn)
	b.WriteString(strings.Join([]string{"MSA", string(code), h.ControlID, e.escape(truncate(a.Text, maxMSAText))}, sep))
	b.WriteByte(CarriageReturn)
	if code != AA {
		ec := a.Error
		if ec == 0 {
			ec = ApplicationInternalError
		}
		codedText := e.escape(ec.text())
		if a.Text != "" {
			codedText = e.escape(truncate(a.Text, 199))
		}
		cwe := fmt.Sprintf("%d%c%s%cHL70357", ec, e.comp, codedText, e.comp)
		if atLeast25(version) {
			b.WriteString(strings.Join([]string{"ERR", "", "", cwe, "E"}, sep))
		} else {
			// ERR-1 (ELD): segment^sequence^field^code, the code's
			// components as subcomponents.
			sub := fmt.Sprintf("%d%c%s%cHL70357", ec, e.sub, codedText, e.sub)
			b.WriteString("ERR" + sep + strings.Repeat(string(e.comp), 3) + sub)
		}
		b.WriteByte(CarriageReturn)
	}
	return []byte(b.String())
}

// atLeast25 reports whether an HL7 version is 2.5 or later.
func atLeast25(v string) bool {
	var major, minor int
	if n, _ := fmt.Sscanf(v, "%d.%d", &major, &minor); n < 2 {
		return true
	}
	return major > 2 || major == 2 && minor >= 5
}

// escaper escapes text for a message with these delimiters.
type escaper struct{ fs, comp, rep, esc, sub byte }

// escape replaces delimiters with their escape sequences (\F\ \S\ \R\
// \E\ \T\) and control characters with spaces.
func (e escaper) escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		var seq byte
		switch c {
		case e.fs:
			seq = 'F'
		case e.comp:
			seq = 'S'
		case e.rep:
			seq = 'R'
		case e.esc:
			seq = 'E'
		case e.sub:
			seq = 'T'
		}
		switch {
		case seq != 0:
			b.WriteByte(e.esc)
			b.WriteByte(seq)
			b.WriteByte(e.esc)
		case c < ' ' || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// truncate cuts s to at most n bytes, on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// ParseAck reads an acknowledgement: its MSA-1 code, MSA-2 control ID and
// MSA-3 text (raw). It is for tests and tools that check what a receiver
// answered.
func ParseAck(msg []byte) (code Code, controlID, text string, err error) {
	h, err := ParseHeader(msg)
	if err != nil {
		return "", "", "", err
	}
	for _, seg := range strings.FieldsFunc(string(msg), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.HasPrefix(seg, "MSA"+string(h.FieldSep)) {
			f := strings.Split(seg, string(h.FieldSep))
			get := func(n int) string {
				if n < len(f) {
					return f[n]
				}
				return ""
			}
			return Code(get(1)), get(2), get(3), nil
		}
	}
	return "", "", "", errors.New("the acknowledgement has no MSA segment")
}
