package daemon

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
)

// Faults that make the daemon not ready while they last. Each is set when
// an operation fails for a reason outside tmcad (a full disk, an unmounted
// archive) and cleared when the operation succeeds again; /readyz names
// them.
const (
	// faultCatalog: files cannot be catalogued; they are retried.
	faultCatalog = "catalog"
	// faultArchive: the archive cannot be reached; SEGs wait in the outbox.
	faultArchive = "archive"
	// faultPausePrefix and a pause reason (pauseQueuedJobs, pauseOutbox):
	// ingestion is paused because the queue or the outbox reached its
	// limit (applyPressure).
	faultPausePrefix = "pause_"
)

// setFault records why the daemon is not ready (reason "" clears it). The
// reason must not carry PHI: it is served by /readyz.
func (d *Daemon) setFault(kind, reason string) {
	d.faultMu.Lock()
	defer d.faultMu.Unlock()
	if reason == "" {
		delete(d.faults, kind)
		return
	}
	if d.faults == nil {
		d.faults = map[string]string{}
	}
	d.faults[kind] = reason
}

// NotReadyReasons returns why the daemon is not ready, sorted; nil when it
// is ready.
func (d *Daemon) NotReadyReasons() []string {
	if !d.Ready() {
		return []string{"starting or draining"}
	}
	d.faultMu.Lock()
	var out []string
	for kind, reason := range d.faults {
		if kind == faultCatalog && d.watcher.Retrying() == 0 {
			// The files that failed are catalogued or gone: nothing
			// waits on the catalogue any more.
			continue
		}
		out = append(out, reason)
	}
	d.faultMu.Unlock()
	sort.Strings(out)
	return out
}

// pathlessCause returns the innermost cause of err without the file path a
// *fs.PathError carries (paths in the drop folders may be named after an
// accession number), e.g. "open: no space left on device".
func pathlessCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
