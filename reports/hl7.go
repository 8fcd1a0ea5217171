package reports

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// HL7Source reads HL7 v2 ORU^R01 result messages (a file may hold one
// message or a batch; MLLP framing bytes are ignored). Segments end in
// "\r" or "\n"; the field separator and the encoding characters come from
// MSH-1 and MSH-2. Each OBR with its OBX segments is one report:
//
//   - accession from OBR-3 (filler order number), else OBR-18 (placer
//     field 1), else ORC-3 of the order's ORC;
//   - text from every OBX-5 of value type TX, FT or ST, in order, one line
//     per OBX and per repetition, with escape sequences decoded (\F\ \S\
//     \T\ \R\ \E\, \.br\ as a line break, \Xhh…\ as bytes); OBX with
//     result status W or D are skipped;
//   - status from OBR-25 (P, F, C; R and A as preliminary), raised to
//     corrected when an OBX-11 is C, else from OBX-11 when OBR-25 is
//     empty; an OBR with status X, I, O or S has no result and is skipped;
//   - study UID from an OBX whose identifier (OBX-3) is DICOM's 110180 or
//     reads "Study Instance UID", or from ZDS-1;
//   - patient ID from PID-3, study date from OBR-7.
//
// MSH-18 "8859/1" decodes the message as ISO 8859-1; otherwise it must be
// UTF-8 (or ASCII), unless Options.Charset is CharsetLatin1.
type HL7Source struct {
	// Options carries the fallback charset.
	Options Options
}

// Format returns "hl7".
func (s *HL7Source) Format() string { return "hl7" }

// Detect accepts .hl7, .oru and .msg files, and any file that starts with
// an MSH (or batch header) segment.
func (s *HL7Source) Detect(name string, head []byte) bool {
	if hasExt(name, ".hl7", ".oru", ".msg") {
		return true
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), "\x0b\r\n")
	return len(head) > 4 && (bytes.HasPrefix(head, []byte("MSH")) || bytes.HasPrefix(head, []byte("FHS")) ||
		bytes.HasPrefix(head, []byte("BHS"))) && !isAlnum(head[3])
}

// hl7Delims are a message's delimiters; 0 means the message has none.
type hl7Delims struct {
	field, comp, rep, esc, sub byte
}

// hl7Group is one OBR and its OBX segments, being assembled.
type hl7Group struct {
	r        Report
	lines    []string
	obrStat  string
	obxStats []string
	skip     bool
}

// Parse splits the file into messages and each message into reports.
func (s *HL7Source) Parse(name string, data []byte) ([]Report, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if bytes.IndexByte(data, 0x0b) >= 0 || bytes.IndexByte(data, 0x1c) >= 0 {
		clean := make([]byte, 0, len(data))
		for _, c := range data {
			if c != 0x0b && c != 0x1c { // MLLP start and end of block
				clean = append(clean, c)
			}
		}
		data = clean
	}
	segs := splitSegments(data)
	var out []Report
	var msg [][]byte
	nmsg := 0
	flush := func() error {
		if msg == nil {
			return nil
		}
		nmsg++
		reps, err := s.parseMessage(name, nmsg, msg)
		if err != nil {
			return err
		}
		out = append(out, reps...)
		msg = nil
		return nil
	}
	for _, seg := range segs {
		switch {
		case bytes.HasPrefix(seg, []byte("MSH")):
			if err := flush(); err != nil {
				return nil, err
			}
			msg = [][]byte{seg}
		case isBatchSegment(seg):
			// FHS/BHS/BTS/FTS envelope a batch; nothing to read in them.
		case msg == nil:
			return nil, fmt.Errorf("hl7 report %s: the first segment is not MSH", name)
		default:
			msg = append(msg, seg)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if nmsg == 0 {
		return nil, fmt.Errorf("hl7 report %s: no MSH segment", name)
	}
	return out, nil
}

// parseMessage reads one message (its first segment is MSH).
func (s *HL7Source) parseMessage(name string, n int, raw [][]byte) ([]Report, error) {
	where := fmt.Sprintf("hl7 report %s message %d", name, n)
	msh := raw[0]
	if len(msh) < 8 {
		return nil, fmt.Errorf("%s: MSH segment too short", where)
	}
	d, err := hl7MessageDelims(where, msh)
	if err != nil {
		return nil, err
	}
	// Character set and message type: read from the raw (ASCII) header.
	mshFields := hl7Fields(string(msh), d.field, true)
	latin1, err := hl7Latin1(where, mshFields)
	if err != nil {
		return nil, err
	}
	msgType := strings.ToUpper(component(field(mshFields, 9), d, 1))
	if msgType != "ORU" {
		return nil, fmt.Errorf("%s: message type %q is not ORU^R01", where, truncateForError(strings.ToUpper(field(mshFields, 9))))
	}
	text, latin1, err := s.decodeMessage(where, raw, latin1)
	if err != nil {
		return nil, err
	}
	m := &hl7Message{where: where, format: s.Format(), d: d, latin1: latin1}
	for _, seg := range strings.Split(text, "\r")[1:] {
		if len(seg) < 3 {
			continue
		}
		if err := m.readSegment(hl7Fields(seg, d.field, false)); err != nil {
			return nil, err
		}
	}
	return m.reports()
}

// hl7MessageDelims reads the field separator (MSH-1) and the encoding
// characters (MSH-2) of a message, each of which must be ASCII
// punctuation.
func hl7MessageDelims(where string, msh []byte) (hl7Delims, error) {
	d := hl7Delims{field: msh[3]}
	enc := msh[4:]
	if i := bytes.IndexByte(enc, d.field); i >= 0 {
		enc = enc[:i]
	}
	for i, p := range []*byte{&d.comp, &d.rep, &d.esc, &d.sub} {
		if i < len(enc) {
			*p = enc[i]
		}
	}
	for _, c := range []byte{d.field, d.comp, d.rep, d.esc, d.sub} {
		if c != 0 && (c <= ' ' || c >= 0x7f || isAlnum(c)) {
			return hl7Delims{}, fmt.Errorf("%s: MSH-1/MSH-2 delimiter %q is not ASCII punctuation", where, c)
		}
	}
	return d, nil
}

// hl7Latin1 reports whether MSH-18 declares ISO 8859-1; any character set
// other than that, ASCII or UTF-8 is an error.
func hl7Latin1(where string, mshFields []string) (bool, error) {
	switch cs := strings.ToUpper(strings.TrimSpace(field(mshFields, 18))); {
	case cs == "8859/1" || cs == "ISO-8859-1" || cs == "ISO_IR 100":
		return true, nil
	case cs == "" || cs == "ASCII" || cs == "UNICODE UTF-8" || cs == "UNICODE" || cs == "UTF-8":
		return false, nil
	default:
		return false, fmt.Errorf("%s: MSH-18 character set %q is not supported (want ASCII, 8859/1 or UNICODE UTF-8)", where, truncateForError(cs))
	}
}

// decodeMessage joins a message's segments with "\r" and decodes them to
// text: as ISO 8859-1 when MSH-18 says so, else as UTF-8 with the
// Options.Charset fallback. latin1 comes back true when either decoded the
// message as ISO 8859-1.
func (s *HL7Source) decodeMessage(where string, raw [][]byte, latin1 bool) (string, bool, error) {
	joined := bytes.Join(raw, []byte{'\r'})
	if latin1 {
		return decodeLatin1(joined), true, nil
	}
	text, err := decodeText(where, joined, s.Options.Charset)
	if err != nil {
		return "", false, err
	}
	// Invalid UTF-8 was decoded as Latin-1 by the fallback.
	return text, !utf8.Valid(joined), nil
}

// hl7Message is one message's reports being assembled from its segments
// after MSH.
type hl7Message struct {
	where  string
	format string
	d      hl7Delims
	latin1 bool

	groups    []*hl7Group
	cur       *hl7Group // the group OBX segments go to
	patientID string
	orc       []string // the last ORC
	studyUID  string   // from ZDS-1
}

// readSegment takes one segment's fields into the message.
func (m *hl7Message) readSegment(f []string) error {
	switch f[0] {
	case "PID":
		m.readPID(f)
	case "ORC":
		m.orc = f
	case "OBR":
		m.readOBR(f)
	case "OBX":
		return m.readOBX(f)
	case "ZDS":
		return m.readZDS(f)
	}
	return nil
}

// value is component 1 of field n, unescaped.
func (m *hl7Message) value(f []string, n int) string {
	return unescapeHL7(component(field(f, n), m.d, 1), m.d, m.latin1)
}

// newGroup starts a report for an OBR (or for OBX segments without one).
func (m *hl7Message) newGroup() *hl7Group {
	g := &hl7Group{r: Report{Format: m.format, PatientID: m.patientID}}
	m.groups = append(m.groups, g)
	return g
}

// readPID takes the patient ID (PID-3), also for the reports started
// before it.
func (m *hl7Message) readPID(f []string) {
	m.patientID = m.value(f, 3)
	for _, g := range m.groups {
		if g.r.PatientID == "" {
			g.r.PatientID = m.patientID
		}
	}
}

// readOBR starts a report: accession number, study date and OBR-25 status.
func (m *hl7Message) readOBR(f []string) {
	m.cur = m.newGroup()
	d := m.d
	acc := component(field(f, 3), d, 1)
	if acc == "" {
		acc = component(field(f, 18), d, 1)
	}
	if acc == "" && m.orc != nil {
		acc = component(field(m.orc, 3), d, 1)
	}
	m.cur.r.AccessionNumber = strings.TrimSpace(unescapeHL7(acc, d, m.latin1))
	if dt := component(field(f, 7), d, 1); len(dt) >= 8 && isDICOMDate(dt[:8]) {
		m.cur.r.StudyDate = dt[:8]
	}
	m.cur.obrStat = strings.ToUpper(strings.TrimSpace(field(f, 25)))
}

// readOBX takes a Study Instance UID observation, or the text lines of a
// TX, FT or ST observation that was not withdrawn or deleted.
func (m *hl7Message) readOBX(f []string) error {
	if m.cur == nil {
		m.cur = m.newGroup()
	}
	if isStudyUIDObservation(field(f, 3), m.d) {
		uid := strings.TrimSpace(m.value(f, 5))
		if !IsUID(uid) {
			return fmt.Errorf("%s: the Study Instance UID OBX value is not a DICOM UID", m.where)
		}
		m.cur.r.StudyInstanceUID = uid
		return nil
	}
	st := strings.ToUpper(strings.TrimSpace(field(f, 11)))
	if st == "W" || st == "D" {
		return nil
	}
	switch strings.ToUpper(strings.TrimSpace(field(f, 2))) {
	case "TX", "FT", "ST":
	default:
		return nil
	}
	m.cur.obxStats = append(m.cur.obxStats, st)
	v := field(f, 5)
	reps := []string{v}
	if m.d.rep != 0 {
		reps = strings.Split(v, string(m.d.rep))
	}
	for _, rep := range reps {
		m.cur.lines = append(m.cur.lines, unescapeHL7(rep, m.d, m.latin1))
	}
	return nil
}

// readZDS takes the message's Study Instance UID from ZDS-1.
func (m *hl7Message) readZDS(f []string) error {
	if uid := strings.TrimSpace(m.value(f, 1)); uid != "" {
		if !IsUID(uid) {
			return fmt.Errorf("%s: ZDS-1 is not a DICOM UID", m.where)
		}
		m.studyUID = uid
	}
	return nil
}

// reports finishes the groups with a result and text into reports; a
// message without any is an error.
func (m *hl7Message) reports() ([]Report, error) {
	var out []Report
	for _, g := range m.groups {
		st, ok := hl7Status(g.obrStat, g.obxStats)
		if !ok {
			continue // no result (cancelled, ordered, scheduled, in progress)
		}
		txt := NormalizeText(strings.Join(g.lines, "\n"))
		if strings.TrimSpace(txt) == "" {
			continue
		}
		if !utf8.ValidString(txt) {
			return nil, fmt.Errorf("%s: an \\X..\\ escape decodes to invalid UTF-8", m.where)
		}
		g.r.Text = txt
		g.r.Status = st
		if g.r.StudyInstanceUID == "" {
			g.r.StudyInstanceUID = m.studyUID
		}
		out = append(out, g.r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no result text (no OBX of value type TX, FT or ST under a resulted OBR)", m.where)
	}
	return out, nil
}

// hl7Status derives a report status from OBR-25 and the OBX-11 values;
// ok is false for an order without results.
func hl7Status(obr string, obx []string) (Status, bool) {
	anyC, anyP, anyF := false, false, false
	for _, s := range obx {
		switch s {
		case "C":
			anyC = true
		case "P", "R", "A":
			anyP = true
		case "F":
			anyF = true
		}
	}
	switch obr {
	case "X", "I", "O", "S":
		return StatusUnknown, false
	case "C":
		return StatusCorrected, true
	case "F":
		if anyC {
			return StatusCorrected, true
		}
		return StatusFinal, true
	case "P", "R", "A":
		if anyC {
			return StatusCorrected, true
		}
		return StatusPreliminary, true
	}
	switch {
	case anyC:
		return StatusCorrected, true
	case anyP:
		return StatusPreliminary, true
	case anyF:
		return StatusFinal, true
	}
	return StatusUnknown, true
}

// isStudyUIDObservation reports whether an OBX-3 observation identifier
// names the Study Instance UID (DCM 110180, or the words).
func isStudyUIDObservation(obx3 string, d hl7Delims) bool {
	id := strings.TrimSpace(component(obx3, d, 1))
	txt := strings.TrimSpace(component(obx3, d, 2))
	if id == "110180" {
		return true
	}
	for _, s := range []string{id, txt} {
		k := strings.ToLower(strings.ReplaceAll(s, " ", ""))
		if k == "studyinstanceuid" {
			return true
		}
	}
	return false
}

// splitSegments splits on "\r" and "\n", dropping empty segments.
func splitSegments(data []byte) [][]byte {
	return bytes.FieldsFunc(data, func(r rune) bool { return r == '\r' || r == '\n' })
}

// isBatchSegment reports whether seg is a file or batch header or trailer.
func isBatchSegment(seg []byte) bool {
	for _, p := range []string{"FHS", "BHS", "BTS", "FTS"} {
		if bytes.HasPrefix(seg, []byte(p)) && (len(seg) == 3 || !isAlnum(seg[3])) {
			return true
		}
	}
	return false
}

// hl7Fields splits a segment into fields so that f[n] is field n; for MSH
// f[1] is the field separator itself (MSH-1) and f[2] the encoding
// characters (MSH-2).
func hl7Fields(seg string, sep byte, msh bool) []string {
	f := strings.Split(seg, string(sep))
	if msh {
		f = append([]string{f[0], string(sep)}, f[1:]...)
	}
	return f
}

// field returns f[n] or "".
func field(f []string, n int) string {
	if n < len(f) {
		return f[n]
	}
	return ""
}

// component returns component n (from 1) of the first repetition of a
// raw field, not unescaped.
func component(v string, d hl7Delims, n int) string {
	if d.rep != 0 {
		if i := strings.IndexByte(v, d.rep); i >= 0 {
			v = v[:i]
		}
	}
	if d.comp == 0 {
		if n == 1 {
			return v
		}
		return ""
	}
	parts := strings.Split(v, string(d.comp))
	if n-1 < len(parts) {
		return parts[n-1]
	}
	return ""
}

// unescapeHL7 decodes HL7 escape sequences: \F\ \S\ \T\ \R\ \E\ give the
// delimiters, \.br\ and \.sp\ a line break, \Xhh…\ the bytes hh… (as
// ISO 8859-1 characters when latin1, else raw UTF-8 bytes); highlighting,
// other formatting and character-set escapes are dropped; anything else is
// kept as written.
func unescapeHL7(s string, d hl7Delims, latin1 bool) string {
	if d.esc == 0 || strings.IndexByte(s, d.esc) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != d.esc {
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], d.esc)
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		seq := s[i+1 : i+1+j]
		next := i + j + 2
		switch {
		case seq == "F":
			b.WriteByte(d.field)
		case seq == "S":
			b.WriteByte(d.comp)
		case seq == "T":
			b.WriteByte(d.sub)
		case seq == "R":
			b.WriteByte(d.rep)
		case seq == "E":
			b.WriteByte(d.esc)
		case seq == ".br" || strings.HasPrefix(seq, ".sp"):
			b.WriteByte('\n')
		case strings.HasPrefix(seq, "."), seq == "H", seq == "N", seq == "":
			// formatting and highlighting: no text
		case len(seq) > 1 && (seq[0] == 'C' || seq[0] == 'M' || seq[0] == 'Z'):
			// character-set switches and local escapes: no text
		case len(seq) > 1 && seq[0] == 'X' && isHex(seq[1:]) && len(seq[1:])%2 == 0:
			for k := 1; k < len(seq); k += 2 {
				v := hexVal(seq[k])<<4 | hexVal(seq[k+1])
				if latin1 {
					b.WriteRune(rune(v))
				} else {
					b.WriteByte(v)
				}
			}
		default:
			b.WriteString(s[i:next])
		}
		i = next
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
