package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DIMSEConfig configures a DIMSESink.
type DIMSEConfig struct {
	// CalledAE is the PACS's AE title; CallingAE is ours (the PACS must
	// know it and allow it to store).
	CalledAE, CallingAE string
	// Host and Port are the PACS's DICOM address.
	Host string
	Port int
	// Timeout bounds one C-STORE: connecting, the association, sending the
	// object and waiting for its response (default 60 s).
	Timeout time.Duration
	// MaxAttempts is the number of tries for failures that may pass
	// (connection refused, timeouts, association rejected, aborted, the
	// PACS out of resources); default 5. A refusal of the object is never
	// retried.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry (default 1 s); it
	// doubles each retry up to MaxBackoff (default 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// OnRetry, when set, is told about each retry (attempt is 1-based).
	OnRetry func(attempt int, wait time.Duration, err error)
	// Dcmsend is the path of dcmtk's dcmsend; empty looks it up on PATH.
	Dcmsend string
	// TLS, when set, sends over DICOM TLS (PS3.15 Annex B) with dcmtk's
	// storescu, as dcmsend has no TLS.
	TLS *DIMSETLS
	// Storescu is the path of dcmtk's storescu (used with TLS); empty
	// looks it up on PATH.
	Storescu string
	// TempDir is where each object is written for dcmsend to read; empty
	// means the system's temporary folder.
	TempDir string
}

// DIMSETLS configures DICOM TLS for a DIMSESink: TLS 1.2 or later (dcmtk's
// BCP 195 non-downgrading profile), the PACS's certificate verified
// against CAFile.
type DIMSETLS struct {
	// CAFile is a PEM bundle of the CAs trusted to issue the PACS's
	// certificate; required.
	CAFile string
	// CertFile and KeyFile are tmcad's own PEM certificate and unencrypted
	// private key, for a PACS that requires client certificates (mutual
	// TLS); both empty sends none.
	CertFile, KeyFile string
}

// DIMSESink stores objects in a PACS with C-STORE (PS3.4 Annex B, PS3.7),
// running dcmtk's dcmsend once per object: the object is written to a
// temporary file, dcmsend associates with the PACS, proposes the object's
// SOP class and transfer syntax, sends it and records the C-STORE
// response status in a transfer report, which Put reads. Put returns nil
// only for a success or warning status (the PACS holds the object).
//
// dcmsend rather than a Go implementation of the DICOM upper layer: it is
// the reference SCU that PACS vendors test against, it negotiates
// presentation contexts and decompresses when a PACS accepts only
// uncompressed data, and it is maintained with dcmtk; the Go DIMSE
// libraries found were unmaintained or untested against real PACSs.
//
// With TLS, dcmtk's storescu sends instead (dcmsend has no TLS): it
// proposes the same presentation contexts (the object's SOP class, its
// transfer syntax and the uncompressed ones), and Put reads the C-STORE
// response status from its debug output; the status is classified the
// same way.
type DIMSESink struct {
	cfg     DIMSEConfig
	dcmsend string
	// storescu is set instead of dcmsend when the sink uses TLS.
	storescu string
}

// NewDIMSESink validates cfg, finds dcmsend and returns a sink.
func NewDIMSESink(cfg DIMSEConfig) (*DIMSESink, error) {
	for _, ae := range []struct{ key, v string }{{"called AE title", cfg.CalledAE}, {"calling AE title", cfg.CallingAE}} {
		if len(ae.v) == 0 || len(ae.v) > 16 || strings.TrimSpace(ae.v) == "" || strings.ContainsAny(ae.v, "\\\r\n\t") {
			return nil, fmt.Errorf("writer: dimse sink: %s %q: want 1-16 characters, no backslash or control characters", ae.key, ae.v)
		}
		if strings.HasPrefix(ae.v, "-") || strings.HasPrefix(ae.v, "+") {
			return nil, fmt.Errorf("writer: dimse sink: %s %q must not start with - or +", ae.key, ae.v)
		}
	}
	if cfg.Host == "" || strings.HasPrefix(cfg.Host, "-") || strings.HasPrefix(cfg.Host, "+") {
		return nil, fmt.Errorf("writer: dimse sink: host %q: want the PACS's host name or address", cfg.Host)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("writer: dimse sink: port %d: want 1-65535", cfg.Port)
	}
	retryDefaults(&cfg.Timeout, &cfg.MaxAttempts, &cfg.InitialBackoff, &cfg.MaxBackoff)
	if cfg.TLS != nil {
		return newTLSSink(cfg)
	}
	bin := cfg.Dcmsend
	if bin == "" {
		bin = "dcmsend"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("writer: dimse sink: dcmtk's dcmsend is needed to send C-STORE and was not found (%v); install dcmtk", err)
	}
	return &DIMSESink{cfg: cfg, dcmsend: p}, nil
}

// newTLSSink validates cfg.TLS and finds storescu.
func newTLSSink(cfg DIMSEConfig) (*DIMSESink, error) {
	t := cfg.TLS
	if t.CAFile == "" {
		return nil, errors.New("writer: dimse sink: TLS needs the PEM bundle of the CAs that issue the PACS's certificate")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("writer: dimse sink: TLS client certificate and key go together: give both, or neither")
	}
	for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
		if f == "" {
			continue
		}
		if strings.HasPrefix(f, "-") || strings.HasPrefix(f, "+") {
			return nil, fmt.Errorf("writer: dimse sink: TLS file %q must not start with - or +", f)
		}
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("writer: dimse sink: TLS file: %w", err)
		}
		fh.Close()
	}
	bin := cfg.Storescu
	if bin == "" {
		bin = "storescu"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("writer: dimse sink: dcmtk's storescu is needed to send C-STORE over TLS and was not found (%v); install dcmtk", err)
	}
	return &DIMSESink{cfg: cfg, storescu: p}, nil
}

// Name returns "dimse:CALLED@host:port".
func (s *DIMSESink) Name() string {
	return fmt.Sprintf("dimse:%s@%s:%d", s.cfg.CalledAE, s.cfg.Host, s.cfg.Port)
}

// DIMSEError is a C-STORE that did not store the object. It wraps
// ErrRejected when the PACS refused the object itself (a failure status
// other than out of resources, or no presentation context for its SOP
// class); every other cause (connection refused, timeout, association
// rejected or aborted, out of resources) may pass, and a later attempt can
// succeed.
type DIMSEError struct {
	// Peer is the sink's name.
	Peer string
	// Status is the C-STORE response status when the PACS sent one
	// (HasStatus); StatusText is dcmtk's wording of it.
	Status     uint16
	HasStatus  bool
	StatusText string
	// Reason says what went wrong, in one line, without PHI.
	Reason string
	// Rejected is true when the PACS refused the object itself.
	Rejected bool
}

// Error names the peer, the status and the reason.
func (e *DIMSEError) Error() string {
	msg := "C-STORE to " + e.Peer + ": "
	if e.HasStatus {
		msg += fmt.Sprintf("status 0x%04X", e.Status)
		if e.StatusText != "" {
			msg += " (" + e.StatusText + ")"
		}
		if e.Reason != "" {
			msg += ": "
		}
	}
	return msg + e.Reason
}

// Unwrap returns ErrRejected for a refusal of the object, else nil.
func (e *DIMSEError) Unwrap() error {
	if e.Rejected {
		return ErrRejected
	}
	return nil
}

// Put sends one DICOM file with C-STORE, retrying failures that may pass
// with exponential backoff. An error wrapping ErrRejected is the PACS
// refusing the object.
func (s *DIMSESink) Put(ctx context.Context, study, series, sop string, data []byte) error {
	dir, err := os.MkdirTemp(s.cfg.TempDir, "tmcad-cstore-")
	if err != nil {
		return fmt.Errorf("writer: dimse sink: temporary folder for SOP %s: %w", sop, err)
	}
	defer os.RemoveAll(dir)
	obj := filepath.Join(dir, "object.dcm")
	if err := os.WriteFile(obj, data, 0o600); err != nil {
		return fmt.Errorf("writer: dimse sink: writing SOP %s for dcmsend: %w", sop, err)
	}
	wait := s.cfg.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := s.send(ctx, dir, obj)
		if err == nil {
			return nil
		}
		var de *DIMSEError
		retry := errors.As(err, &de) && !de.Rejected
		if !retry || attempt >= s.cfg.MaxAttempts || ctx.Err() != nil {
			if retry && attempt > 1 {
				return fmt.Errorf("writer: dimse sink: SOP %s, after %d attempts: %w", sop, attempt, err)
			}
			return fmt.Errorf("writer: dimse sink: SOP %s: %w", sop, err)
		}
		if s.cfg.OnRetry != nil {
			s.cfg.OnRetry(attempt, wait, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("writer: dimse sink: SOP %s: %w (last error: %v)", sop, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.MaxBackoff)
	}
}

// maxToolOutput bounds how much of dcmsend's output is kept.
const maxToolOutput = 256 << 10

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	b   bytes.Buffer
	max int
}

// Write keeps what fits and reports everything written.
func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - h.b.Len(); room > 0 {
		h.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// send runs dcmsend (storescu with TLS) once for the object at obj, its
// transfer report in dir.
func (s *DIMSESink) send(ctx context.Context, dir, obj string) error {
	secs := strconv.Itoa(int(math.Ceil(s.cfg.Timeout.Seconds())))
	report := filepath.Join(dir, "report.txt")
	runCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+5*time.Second)
	defer cancel()
	// Debug output is what names an association rejection's result and
	// reason (and, from storescu, the C-STORE response status); it holds
	// AE titles, UIDs and protocol details, never attribute values, and
	// only the lines parsed below leave this function.
	tool, args := s.dcmsend, []string{"-d",
		"-aet", s.cfg.CallingAE, "-aec", s.cfg.CalledAE,
		"-to", secs, "-ta", secs, "-td", secs,
		"+crf", report,
		s.cfg.Host, strconv.Itoa(s.cfg.Port), obj}
	if s.storescu != "" {
		tool, args = s.storescu, s.storescuArgs(secs, obj)
	}
	cmd := exec.CommandContext(runCtx, tool, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 2 * time.Second
	out := &headBuffer{max: maxToolOutput}
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	rep, _ := os.ReadFile(report)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	name := filepath.Base(tool)
	if runCtx.Err() != nil {
		return &DIMSEError{Peer: s.Name(), Reason: fmt.Sprintf("no answer within archive.timeout (%v); %s was stopped", s.cfg.Timeout, name)}
	}
	exit := 0
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) {
			return &DIMSEError{Peer: s.Name(), Reason: "running " + name + ": " + runErr.Error()}
		}
		exit = ee.ExitCode()
	}
	if s.storescu != "" {
		return classifyStorescu(s.Name(), exit, out.b.String())
	}
	return classifyDcmsend(s.Name(), exit, out.b.String(), string(rep))
}

// storescuArgs are storescu's arguments for one object over TLS: only
// the presentation contexts the object needs (-R), TLS with or without a
// client certificate, the PACS's certificate verified against the CA
// bundle (storescu's default, -rc).
func (s *DIMSESink) storescuArgs(secs, obj string) []string {
	args := []string{"-d", "-R",
		"-aet", s.cfg.CallingAE, "-aec", s.cfg.CalledAE,
		"-to", secs, "-ta", secs, "-td", secs}
	t := s.cfg.TLS
	if t.CertFile != "" {
		// -pw: the key is not encrypted; storescu would otherwise prompt.
		args = append(args, "+tls", t.KeyFile, t.CertFile, "-pw")
	} else {
		args = append(args, "+tla")
	}
	return append(args, "+cf", t.CAFile, "-rc", s.cfg.Host, strconv.Itoa(s.cfg.Port), obj)
}

var (
	// dimseStatusRE finds the response status in dcmsend's transfer report.
	dimseStatusRE = regexp.MustCompile(`(?m)^DIMSE Status\s*:\s*0x([0-9A-Fa-f]{4})\s*(?:\(([^)\r\n]*)\))?`)
	// storescuStatusRE finds the C-STORE response status in storescu's
	// debug dump of the response ("D: DIMSE Status : 0xa700: Refused: ...").
	storescuStatusRE = regexp.MustCompile(`(?m)^D: DIMSE Status\s*:\s*0x([0-9A-Fa-f]{4})(?::\s*([^\r\n]*))?`)
	// rejectResultRE and rejectReasonRE read an A-ASSOCIATE-RJ from the
	// output: debug lines from dcmsend, fatal lines from storescu.
	rejectResultRE = regexp.MustCompile(`(?m)^[DF]: Result: ([^,\r\n]+)(?:, Source: ([^\r\n]+))?`)
	rejectReasonRE = regexp.MustCompile(`(?m)^[DF]: Reason: ([^\r\n]+)`)
)

// statusError turns a C-STORE response status into nil (stored) or a
// *DIMSEError: out of resources may pass, any other failure is the PACS
// refusing the object.
func statusError(peer string, status uint16, text string) error {
	if storedStatus(status) {
		return nil
	}
	e := &DIMSEError{Peer: peer, Status: status, HasStatus: true, StatusText: strings.TrimSpace(text)}
	switch {
	case status&0xff00 == 0xa700, status == 0x0213:
		e.Reason = "the PACS is out of resources (full or busy); the object is sent again later"
	default:
		e.Rejected = true
		e.Reason = "the PACS refused the object; sending it again will not help (see the PACS's log for why)"
	}
	return e
}

// classifyStorescu turns storescu's exit status and output (one object,
// over TLS) into nil (stored) or a *DIMSEError.
func classifyStorescu(peer string, exit int, out string) error {
	if m := storescuStatusRE.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseUint(m[1], 16, 16)
		return statusError(peer, uint16(v), m[2])
	}
	fatal := lastLine(out, "F: ")
	if fatal == "" {
		fatal = lastLine(out, "E: ")
	}
	lower := strings.ToLower(errorLines(out))
	switch {
	case strings.Contains(lower, "no presentation context") || strings.Contains(lower, "no acceptable presentation context"):
		return &DIMSEError{Peer: peer, Rejected: true, Reason: "the PACS accepts no presentation context for the object's SOP class and transfer syntax; configure it to store them"}
	case strings.Contains(out, "Association Rejected"):
		return associationRejected(peer, out)
	case strings.Contains(lower, "tls error") || strings.Contains(lower, "openssl") || strings.Contains(lower, "tls key") || strings.Contains(lower, "certificate"):
		// A TLS failure refuses the connection, not the object: it is
		// retried, and stored once the certificates are right.
		return &DIMSEError{Peer: peer, Reason: "DICOM TLS with the PACS failed" + suffix(fatal) +
			"; check that archive.ca_file holds the CA that issued the PACS's certificate, that the PACS speaks TLS on archive.port, and archive.tls_cert/tls_key if it requires a client certificate"}
	case strings.Contains(lower, "connection refused"):
		return &DIMSEError{Peer: peer, Reason: "connection refused: nothing listens on the PACS's port (archive.host, archive.port)"}
	case strings.Contains(lower, "association request failed") && (strings.Contains(lower, "reset by peer") || strings.Contains(lower, "peer aborted")):
		// With TLS 1.3 the client's handshake ends before the server has
		// checked the client certificate; a server that refuses it closes
		// the connection as the association request arrives.
		return &DIMSEError{Peer: peer, Reason: "DICOM TLS: the PACS closed the connection before answering the association request" + suffix(fatal) +
			"; check that the PACS accepts tmcad's client certificate (archive.tls_cert, issued by a CA it trusts), and archive.ca_file"}
	case strings.Contains(lower, "abort"):
		return &DIMSEError{Peer: peer, Reason: "the PACS aborted the association before answering" + suffix(fatal)}
	case strings.Contains(lower, "timeout") || strings.Contains(lower, "timed out"):
		return &DIMSEError{Peer: peer, Reason: "timed out" + suffix(fatal)}
	case exit == 0:
		return &DIMSEError{Peer: peer, Reason: "storescu ended without a C-STORE response" + suffix(fatal)}
	}
	return &DIMSEError{Peer: peer, Reason: fmt.Sprintf("storescu failed (exit status %d)%s", exit, suffix(fatal))}
}

// classifyDcmsend turns dcmsend's exit status, output and transfer report
// into nil (stored) or a *DIMSEError.
func classifyDcmsend(peer string, exit int, out, report string) error {
	if m := dimseStatusRE.FindStringSubmatch(report); m != nil {
		v, _ := strconv.ParseUint(m[1], 16, 16)
		return statusError(peer, uint16(v), m[2])
	}
	fatal := lastLine(out, "F: ")
	if fatal == "" {
		fatal = lastLine(out, "E: ")
	}
	// Only the error lines are matched: the debug lines mention timeouts
	// and contexts on every run.
	lower := strings.ToLower(errorLines(out) + "\n" + report)
	switch {
	case strings.Contains(lower, "no acceptable presentation context") || exit == 65:
		return &DIMSEError{Peer: peer, Rejected: true, Reason: "the PACS accepts no presentation context for the object's SOP class and transfer syntax; configure it to store them"}
	case exit == 0:
		return &DIMSEError{Peer: peer, Reason: "dcmsend ended without a C-STORE response in its report" + suffix(fatal)}
	case strings.Contains(out, "Association Rejected"):
		return associationRejected(peer, out)
	case strings.Contains(lower, "connection refused"):
		return &DIMSEError{Peer: peer, Reason: "connection refused: nothing listens on the PACS's port (archive.host, archive.port)"}
	case strings.Contains(lower, "abort"):
		return &DIMSEError{Peer: peer, Reason: "the PACS aborted the association before answering" + suffix(fatal)}
	case strings.Contains(lower, "timeout") || strings.Contains(lower, "timed out"):
		return &DIMSEError{Peer: peer, Reason: "timed out" + suffix(fatal)}
	case exit >= 20 && exit < 30:
		return &DIMSEError{Peer: peer, Rejected: true, Reason: fmt.Sprintf("dcmsend could not read the object (exit status %d)%s", exit, suffix(fatal))}
	}
	return &DIMSEError{Peer: peer, Reason: fmt.Sprintf("dcmsend failed (exit status %d)%s", exit, suffix(fatal))}
}

// associationRejected describes an A-ASSOCIATE-RJ from the tool's output.
// A rejection refuses the association, not the object: the same object is
// stored once the PACS's configuration (or ours) is right, so it is
// retried.
func associationRejected(peer, out string) error {
	result, reason := "", ""
	if m := rejectResultRE.FindStringSubmatch(out); m != nil {
		result = strings.TrimSpace(m[1])
		if m[2] != "" {
			result += " by the " + strings.ToLower(strings.TrimSpace(m[2]))
		}
	}
	if m := rejectReasonRE.FindStringSubmatch(out); m != nil {
		reason = strings.TrimSpace(m[1])
	}
	msg := "association rejected"
	if result != "" {
		msg += " (" + result
		if reason != "" {
			msg += ": " + reason
		}
		msg += ")"
	}
	return &DIMSEError{Peer: peer, Reason: msg + "; check archive.called_ae, and that the PACS knows archive.calling_ae with tmcad's address"}
}

// errorLines returns the tool's fatal and error lines ("F: ", "E: ").
func errorLines(out string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "F: ") || strings.HasPrefix(l, "E: ") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// storedStatus reports whether a C-STORE response status means the PACS
// holds the object: success, a warning (PS3.4 B.2.3: coercion 0xB000,
// elements discarded 0xB007, data set does not match 0xB006, and 0x0001),
// or "duplicate SOP instance" (0x0111), which some PACSs answer for an
// object they already hold: tmcad makes a new SOP Instance UID for every
// object, so the instance held is this one.
func storedStatus(s uint16) bool {
	return s == 0x0000 || s == 0x0001 || s&0xf000 == 0xb000 || s == 0x0111
}

// lastLine returns the text of the last output line starting with prefix.
func lastLine(out, prefix string) string {
	found := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			found = strings.TrimSpace(strings.TrimPrefix(l, prefix))
		}
	}
	return found
}

// suffix returns ": s" or "".
func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
