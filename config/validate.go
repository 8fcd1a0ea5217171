package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// CronParser is the cron syntax every schedule uses: five fields
// (minute hour day-of-month month day-of-week) or a descriptor such as
// @daily or @every 10m.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var uidRootRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks every key; the error names the file and each bad key.
func (c *Config) Validate() error {
	label := "config"
	if c.path != "" {
		label = filepath.Base(c.path)
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
		}
	}
	bad := func(key, want string, got any) {
		add(fmt.Errorf("%s: %s, got %q", key, want, fmt.Sprint(got)))
	}
	oneOf := func(key, got string, allowed ...string) {
		for _, a := range allowed {
			if got == a {
				return
			}
		}
		bad(key, "must be one of "+strings.Join(allowed, ", "), got)
	}

	if c.StateDir == "" {
		bad("state_dir", "must be set", c.StateDir)
	}
	if c.Node != "" && !nodeNameRE.MatchString(c.Node) {
		bad("node", "must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit (it names a folder)", c.Node)
	}
	c.validateRoles(bad)
	oneOf("log.level", c.Log.Level, "trace", "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "auto", "json", "console")

	if c.Model.Dir == "" {
		bad("model.dir", "must be set", c.Model.Dir)
	}
	oneOf("model.execution_provider", c.Model.ExecutionProvider, "cpu", "cuda")
	if c.Model.DeviceID < 0 {
		bad("model.device_id", "must be >= 0", c.Model.DeviceID)
	}
	if c.Model.IntraOpThreads < 0 {
		bad("model.intra_op_threads", "must be >= 0", c.Model.IntraOpThreads)
	}
	if c.Model.BatchSize < 1 || c.Model.BatchSize > 256 {
		bad("model.batch_size", "must be between 1 and 256", c.Model.BatchSize)
	}
	if c.Model.ConcurrentRuns < 0 || c.Model.ConcurrentRuns > 16 {
		bad("model.concurrent_runs", "must be between 0 (automatic) and 16", c.Model.ConcurrentRuns)
	}
	if c.Model.MinComponentArea < 0 {
		bad("model.min_component_area", "must be >= 0", c.Model.MinComponentArea)
	}

	add(c.Watch.StableAfter.check("watch.stable_after", false))
	add(c.Watch.RescanEvery.check("watch.rescan_every", false))
	add(c.Watch.SizeStableFor.check("watch.size_stable_for", true))
	add(c.Watch.IncompleteWait.check("watch.incomplete_wait", true))
	if c.Watch.DICOMDir == "" {
		bad("watch.dicom_dir", "must be set", c.Watch.DICOMDir)
	}

	if c.Select.MinSlices < 1 {
		bad("select.min_slices", "must be >= 1", c.Select.MinSlices)
	}
	if c.Limits.MaxRows < 1 {
		bad("limits.max_rows", "must be >= 1", c.Limits.MaxRows)
	}
	if c.Limits.MaxColumns < 1 {
		bad("limits.max_columns", "must be >= 1", c.Limits.MaxColumns)
	}
	if c.Limits.MaxFrames < 1 {
		bad("limits.max_frames", "must be >= 1", c.Limits.MaxFrames)
	}
	if c.Limits.MaxVoxels < 1 {
		bad("limits.max_voxels", "must be >= 1", c.Limits.MaxVoxels)
	}
	if c.Limits.MaxQueuedJobs < 0 {
		bad("limits.max_queued_jobs", "must be >= 0 (0: no limit)", c.Limits.MaxQueuedJobs)
	}
	if c.Limits.MaxOutbox < 0 {
		bad("limits.max_outbox", "must be >= 0 (0: no limit)", c.Limits.MaxOutbox)
	}

	add(c.Reports.Wait.check("reports.wait", true))
	oneOf("reports.charset", c.Reports.Charset, "auto", "latin1")
	oneOf("reports.no_target", c.Reports.NoTarget, "record", "run")

	oneOf("seg.type", c.SEG.Type, "binary", "fractional")
	if c.SEG.UIDRoot != "" && (!uidRootRE.MatchString(c.SEG.UIDRoot) || len(c.SEG.UIDRoot) > 24) {
		bad("seg.uid_root", "must be a dotted numeric UID root of at most 24 characters", c.SEG.UIDRoot)
	}
	if c.SEG.SeriesNumber < 0 {
		bad("seg.series_number", "must be >= 0", c.SEG.SeriesNumber)
	}
	if !regexp.MustCompile(`^[A-Z0-9_ ]{1,16}$`).MatchString(c.SEG.ContentLabel) {
		bad("seg.content_label", "must be 1-16 characters of A-Z, 0-9, _ or space (a DICOM CS value)", c.SEG.ContentLabel)
	}

	oneOf("archive.kind", c.Archive.Kind, "filesystem", "dicomweb", "dimse")
	switch c.Archive.Kind {
	case "dimse":
		for _, k := range []struct{ key, v string }{{"archive.called_ae", c.Archive.CalledAE}, {"archive.calling_ae", c.Archive.CallingAE}} {
			if !validAETitle(k.v) {
				bad(k.key, "must be a DICOM AE title (1-16 characters, no backslash or control characters, not only spaces) when archive.kind = \"dimse\"", k.v)
			}
		}
		if c.Archive.Host == "" || strings.ContainsAny(c.Archive.Host, " /:@") && net.ParseIP(c.Archive.Host) == nil {
			bad("archive.host", "must be the PACS's host name or IP address when archive.kind = \"dimse\"", c.Archive.Host)
		}
		if c.Archive.Port < 1 || c.Archive.Port > 65535 {
			bad("archive.port", "must be between 1 and 65535 when archive.kind = \"dimse\"", c.Archive.Port)
		}
		if c.Archive.TLS && c.Archive.CAFile == "" {
			bad("archive.ca_file", "must name the PEM bundle of the CAs that issue the PACS's certificate when archive.tls = true", "")
		}
		if (c.Archive.TLSCert == "") != (c.Archive.TLSKey == "") {
			bad("archive.tls_cert, archive.tls_key", "give both (PEM files) to send a client certificate, or neither", c.Archive.TLSCert+", "+c.Archive.TLSKey)
		}
		if c.Archive.TLSCert != "" && !c.Archive.TLS {
			bad("archive.tls_cert", "is used only with archive.tls = true", c.Archive.TLSCert)
		}
	case "filesystem":
		if c.Archive.Dir == "" {
			bad("archive.dir", "must be set when archive.kind = \"filesystem\"", c.Archive.Dir)
		}
	case "dicomweb":
		u, err := url.Parse(c.Archive.URL)
		if c.Archive.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("archive.url", "must be an http(s) URL when archive.kind = \"dicomweb\"", withoutUserInfo(c.Archive.URL))
		}
		if c.Archive.Password.Value != "" && c.Archive.Token.Value != "" {
			add(errors.New("archive.password, archive.token: give one of basic or bearer authentication, not both"))
		}
		if c.Archive.Password.Value != "" && c.Archive.Username == "" {
			add(errors.New("archive.username: must be set when archive.password is"))
		}
	}
	if c.Archive.Kind != "dimse" && (c.Archive.TLS || c.Archive.TLSCert != "" || c.Archive.TLSKey != "") {
		// DICOMweb's TLS is the https URL's, with archive.ca_file.
		add(errors.New("archive.tls, archive.tls_cert, archive.tls_key: only for archive.kind = \"dimse\" (DICOMweb uses an https url)"))
	}
	if withoutUserInfo(c.Archive.URL) != c.Archive.URL {
		// Credentials in the URL would be printed by check-config and
		// logged with the archive's name; they have keys of their own.
		bad("archive.url", "must not hold credentials (user:password@); use archive.username with archive.password, or archive.token", withoutUserInfo(c.Archive.URL))
	}
	add(c.Archive.Timeout.check("archive.timeout", false))
	add(c.Archive.RetryMaxInterval.check("archive.retry_max_interval", false))
	if c.Archive.MaxRetries < 0 {
		bad("archive.max_retries", "must be >= 0", c.Archive.MaxRetries)
	}

	if v := c.Queue.DatabaseURL.Value; v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		add(errors.New("queue.database_url: must be a postgres:// URL (leave empty for the embedded SQLite queue)"))
	}
	if c.Queue.Workers < 1 {
		bad("queue.workers", "must be >= 1", c.Queue.Workers)
	}
	add(c.Queue.DrainTimeout.check("queue.drain_timeout", false))
	if c.Queue.MaxAttempts < 1 {
		bad("queue.max_attempts", "must be >= 1", c.Queue.MaxAttempts)
	}

	if c.Schedule.Export != "immediate" {
		if _, err := CronParser.Parse(c.Schedule.Export); err != nil {
			bad("schedule.export", "must be \"immediate\" or a cron expression ("+err.Error()+")", c.Schedule.Export)
		}
	}
	add(c.Schedule.ExportWindow.check("schedule.export_window", false))
	if c.Schedule.Reprocess != "" {
		if _, err := CronParser.Parse(c.Schedule.Reprocess); err != nil {
			bad("schedule.reprocess", "must be a cron expression or empty ("+err.Error()+")", c.Schedule.Reprocess)
		}
	}
	if c.Schedule.Timezone != "" {
		if _, err := time.LoadLocation(c.Schedule.Timezone); err != nil {
			bad("schedule.timezone", "must be an IANA time zone name", c.Schedule.Timezone)
		}
	}

	oneOf("retention.inputs", c.Retention.Inputs, "keep", "move", "delete")
	if c.Retention.Inputs == "move" && c.Retention.DoneDir == "" {
		bad("retention.done_dir", "must be set when retention.inputs = \"move\"", c.Retention.DoneDir)
	}

	c.validateHL7(bad, add)
	c.validateSource(bad, add)

	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "must be host:port", c.HTTP.Listen)
		}
	}
	return errors.Join(errs...)
}

// validateRoles checks [roles] against the queue and the outbox: a node
// on the embedded SQLite queue is alone and runs every part; a node that
// processes without exporting, or exports without processing, shares its
// SEGs with other nodes through archive.outbox_dir.
func (c *Config) validateRoles(bad func(key, want string, got any)) {
	r := c.Roles
	if !r.Ingest && !r.Process && !r.Export {
		bad("roles", "must turn on at least one of ingest, process, export", "all false")
		return
	}
	if c.Queue.DatabaseURL.Value == "" {
		for _, k := range []struct {
			key string
			on  bool
		}{{"roles.ingest", r.Ingest}, {"roles.process", r.Process}, {"roles.export", r.Export}} {
			if !k.on {
				bad(k.key, "must be true with the embedded SQLite queue (a node alone runs every part; set queue.database_url to split the roles between nodes)", false)
			}
		}
	}
	if r.Process != r.Export && c.Archive.OutboxDir == "" {
		bad("archive.outbox_dir", "must name a folder on storage shared by the nodes when roles.process and roles.export differ (one node makes the SEGs another exports)", "")
	}
	if c.Archive.OutboxDir != "" && !filepath.IsAbs(c.Archive.OutboxDir) {
		bad("archive.outbox_dir", "must be an absolute path (the same on every node)", c.Archive.OutboxDir)
	}
}

// NodeName is node, or the host name when node is empty ("localhost"
// when the host has none).
func (c *Config) NodeName() string {
	if c.Node != "" {
		return c.Node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// OutboxRoot is archive.outbox_dir, or state_dir/outbox.
func (c *Config) OutboxRoot() string {
	if c.Archive.OutboxDir != "" {
		return c.Archive.OutboxDir
	}
	return filepath.Join(c.StateDir, "outbox")
}

// QuarantineDir is where unprocessable inputs go: retention.quarantine_dir,
// or state_dir/quarantine.
func (c *Config) QuarantineDir() string {
	if c.Retention.QuarantineDir != "" {
		return c.Retention.QuarantineDir
	}
	return filepath.Join(c.StateDir, "quarantine")
}

// withoutUserInfo returns a URL with any user information (user:password@
// after the scheme) replaced by "****@", so that it can be shown in
// errors; it works on strings url.Parse rejects too.
func withoutUserInfo(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	at := strings.LastIndex(host, "@")
	if at < 0 {
		return raw
	}
	return scheme + "****" + rest[at:]
}
