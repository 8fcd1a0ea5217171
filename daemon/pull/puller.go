// Package pull is tmcad's DICOMweb door: it polls a PACS with QIDO-RS for
// new series (by modality and StudyDate, page by page), retrieves them with
// WADO-RS as explicit VR little endian (the PACS transcodes), and writes
// each instance into the watched DICOM drop folder the way the DICOM
// receiver does: staged on the same filesystem, fsynced, renamed in. The
// catalogue, selection and report matching then see these files like any
// other. A high-water mark (the series fetched, with their instance counts,
// and the day of the last complete poll) is kept in a JSON state file, so
// a restart of tmcad or of the PACS loses and repeats nothing.
//
// It knows nothing of queues, jobs or the configuration file (the caller
// fills in Options); it imports dicomio and logging only.
package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"tmcad/internal/webclient"

	"github.com/rs/zerolog"

	"tmcad/dicomio"
	"tmcad/logging"
)

// Accept headers of WADO-RS retrievals: explicit VR little endian, which
// every server can transcode to and tmcad always decodes; and, for a
// server that refuses the transfer-syntax parameter, its default (by the
// standard, explicit VR little endian for uncompressed data).
const (
	acceptExplicitLE = `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1`
	acceptDefault    = `multipart/related; type="application/dicom"`
)

// Options configure a Puller. Credentials are plain strings (the config
// layer resolves environment and file secrets); they are never logged nor
// put into errors.
type Options struct {
	// BaseURL is the DICOMweb root, e.g. "https://pacs.example/dicom-web".
	BaseURL string
	// Username and Password select HTTP basic authentication.
	Username string
	Password string
	// BearerToken selects bearer authentication (not with Username).
	BearerToken string
	// CAFile is a PEM bundle of extra trusted CAs for HTTPS.
	CAFile string
	// InsecureSkipVerify accepts any server certificate (testing only).
	InsecureSkipVerify bool
	// Timeout bounds the wait for an answer and for each next piece of an
	// answer in progress (default 60 s).
	Timeout time.Duration
	// MaxAttempts is the number of tries of one request on connection
	// errors, answers cut short, 5xx, 408 and 429 (default 6).
	MaxAttempts int
	// InitialBackoff is the wait before the first retry (default 1 s); it
	// doubles each retry up to MaxBackoff (default 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// OnRetry, when set, is told about each retry (err names the request's
	// path, without credentials). Retries are logged at warn level anyway.
	OnRetry func(attempt int, wait time.Duration, err error)
	// Transport replaces the HTTP transport (tests); CAFile and
	// InsecureSkipVerify are then ignored.
	Transport http.RoundTripper

	// Modalities are searched one QIDO-RS query each; empty searches
	// every modality.
	Modalities []string
	// Since is the earliest StudyDate fetched; zero means LookBackDays
	// before the first poll.
	Since time.Time
	// LookBackDays is how many days before the last complete poll each
	// poll searches again, for series that reach the PACS late.
	LookBackDays int
	// PageSize is the QIDO-RS limit of one page (default 100).
	PageSize int
	// PollEvery is the time between polls in Run (default 5 min).
	PollEvery time.Duration

	// DropDir is the watched DICOM drop folder.
	DropDir string
	// StagingDir is where instances are written before the rename into
	// DropDir: on its filesystem, outside it; created when missing.
	StagingDir string
	// StateDir holds the state file (the high-water mark); created when
	// missing.
	StateDir string

	// Logger receives progress and errors: UIDs, counts and paths, never
	// patient attributes.
	Logger zerolog.Logger
	// Metrics receives the counters; nil makes new ones (see
	// Puller.Metrics).
	Metrics *Metrics
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Puller polls one PACS and fetches studies from it. Poll (and Run) and
// FetchStudy may run at the same time; two polls do not.
type Puller struct {
	opts      Options
	c         *client
	drop      *dropper
	log       zerolog.Logger
	metrics   *Metrics
	statePath string

	pollMu sync.Mutex // one poll at a time; guards state
	state  *state

	// afterSeries, when set (tests), runs after each series a poll
	// recorded.
	afterSeries func(seriesRef)
}

// Result counts what a poll or a study fetch did.
type Result struct {
	// From is the earliest StudyDate searched (YYYYMMDD; polls only).
	From string
	// Series is the number of series retrieved completely.
	Series int
	// Instances is the number of instances written into the drop folder.
	Instances int
	// Skipped is the number of instances the drop folder already had
	// (not written again).
	Skipped int
	// Failed is the number of series that could not be fetched; they are
	// tried again by the next poll.
	Failed int
}

// New validates opts, checks the folders (the staging folder must be on
// the drop folder's filesystem, outside it) and loads the state file.
func New(opts Options) (*Puller, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 5 * time.Minute
	}
	if opts.LookBackDays < 0 {
		return nil, fmt.Errorf("pull: look-back days must be >= 0, got %d", opts.LookBackDays)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	for _, m := range opts.Modalities {
		if m == "" || strings.ContainsAny(m, `\&=?#/ `) {
			return nil, fmt.Errorf("pull: modality %q is not a DICOM modality code", m)
		}
	}
	log := opts.Logger.With().Str("component", "pull").Str("pacs", webclient.RedactURL(opts.BaseURL)).Logger()
	userRetry := opts.OnRetry
	opts.OnRetry = func(attempt int, wait time.Duration, err error) {
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("DICOMweb request failed; trying again")
		if userRetry != nil {
			userRetry(attempt, wait, err)
		}
	}
	c, err := newClient(&opts)
	if err != nil {
		return nil, err
	}
	d, err := newDropper(opts.DropDir, opts.StagingDir)
	if err != nil {
		return nil, err
	}
	if opts.StateDir == "" {
		return nil, errors.New("pull: the state folder must be set")
	}
	if err := os.MkdirAll(opts.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("pull: state folder: %w", err)
	}
	p := &Puller{opts: opts, c: c, drop: d, log: log, metrics: opts.Metrics,
		statePath: statePath(opts.StateDir, opts.BaseURL)}
	if p.state, err = loadState(p.statePath, webclient.RedactURL(opts.BaseURL)); err != nil {
		return nil, err
	}
	return p, nil
}

// Metrics returns the puller's counters, a prometheus.Collector.
func (p *Puller) Metrics() *Metrics { return p.metrics }

// Run polls at once and then every PollEvery until ctx ends; a failed
// poll is logged and counted, and the next one tries again. It returns
// nil when ctx ends.
func (p *Puller) Run(ctx context.Context) error {
	p.log.Info().Strs("modalities", p.opts.Modalities).Dur("poll_every", p.opts.PollEvery).Msg("polling the PACS over DICOMweb")
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.log.Error().Err(err).Dur("next_poll_in", p.opts.PollEvery).Msg("DICOMweb poll failed; the next poll resumes where it stopped")
		}
		t.Reset(p.opts.PollEvery)
	}
}

// dateLayout is the DICOM DA form.
const dateLayout = "20060102"

// from is the earliest StudyDate a poll starting now searches: the
// look-back window before the last complete poll (or before now, when
// there was none), but never before Since; Since alone on the first poll.
func (p *Puller) from(now time.Time) string {
	base := now
	wm := p.state.Watermark
	if wm != "" {
		if t, err := time.ParseInLocation(dateLayout, wm, now.Location()); err == nil {
			base = t
		}
	}
	f := base.AddDate(0, 0, -p.opts.LookBackDays)
	if since := p.opts.Since; !since.IsZero() && (wm == "" || since.After(f)) {
		f = since
	}
	return f.Format(dateLayout)
}

// Poll searches the PACS once for series of the modalities from the
// high-water mark on, and fetches every series not fetched before or
// grown since. The state file is written after each series, so a poll cut
// short (tmcad or the PACS stopping) resumes with the next series; the
// watermark moves on only when every search finished. Errors of one
// series (gone from the PACS, an unusable answer) are logged and counted,
// and the series is tried again by the next poll; others (connection,
// credentials, the staging folder) end the poll.
func (p *Puller) Poll(ctx context.Context) (res Result, err error) {
	p.pollMu.Lock()
	defer p.pollMu.Unlock()
	defer func() {
		if err != nil {
			p.metrics.PollErrors.Inc()
		}
	}()
	start := p.opts.Now()
	res.From = p.from(start)
	mods := p.opts.Modalities
	if len(mods) == 0 {
		mods = []string{""}
	}
	seen := map[string]bool{}
	for _, mod := range mods {
		refs, err := p.c.findSeries(ctx, mod, res.From, p.opts.PageSize)
		if err != nil {
			return res, err
		}
		for _, s := range refs {
			if seen[s.Series] {
				continue
			}
			seen[s.Series] = true
			if !validUID(s.Study) || !validUID(s.Series) {
				p.log.Warn().Int("series_uid_len", len(s.Series)).Int("study_uid_len", len(s.Study)).Msg("QIDO-RS listed a series without valid Study and Series Instance UIDs; skipped")
				continue
			}
			prev, known := p.state.Series[s.Series]
			if known && (s.Instances < 0 || s.Instances <= prev.Instances) {
				continue
			}
			n, err := p.fetchSeries(ctx, s, known)
			res.Instances += n.delivered
			res.Skipped += n.skipped
			if err != nil {
				if ctx.Err() == nil && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadAnswer)) {
					p.metrics.PollErrors.Inc()
					res.Failed++
					sl := logging.Series{StudyUID: s.Study, SeriesUID: s.Series}.Logger(p.log)
					sl.Warn().Err(err).Msg("series not fetched; the next poll tries again")
					continue
				}
				return res, err
			}
			if err := p.drop.syncDrop(); err != nil {
				return res, fmt.Errorf("pull: %w", err)
			}
			p.state.Series[s.Series] = seriesState{Study: s.Study, Date: s.Date, Instances: max(s.Instances, n.received), Fetched: p.opts.Now().UTC()}
			if err := p.state.save(p.statePath); err != nil {
				return res, err
			}
			res.Series++
			p.metrics.SeriesFetched.Inc()
			if p.afterSeries != nil {
				p.afterSeries(s)
			}
		}
	}
	p.state.Watermark = start.Format(dateLayout)
	p.state.prune(p.from(start))
	if err := p.state.save(p.statePath); err != nil {
		return res, err
	}
	p.metrics.LastCompletePoll.Set(float64(p.opts.Now().Unix()))
	ev := p.log.Debug()
	if res.Series > 0 || res.Failed > 0 {
		ev = p.log.Info()
	}
	ev.Str("from", res.From).Int("series", res.Series).Int("instances", res.Instances).Int("already_there", res.Skipped).Int("failed", res.Failed).Msg("DICOMweb poll done")
	return res, nil
}

// FetchStudy retrieves every series of one study (all modalities) into
// the drop folder, for `tmcad reprocess --study` of a study that was never
// dropped; instances the drop folder has are not written again. It does
// not touch the high-water mark. A study the PACS does not have is an
// error wrapping ErrNotFound.
func (p *Puller) FetchStudy(ctx context.Context, studyUID string) (Result, error) {
	var res Result
	if !validUID(studyUID) {
		return res, fmt.Errorf("pull: %q is not a Study Instance UID (digits and dots, at most 64)", studyUID)
	}
	refs, err := p.c.studySeries(ctx, studyUID, p.opts.PageSize)
	if err != nil {
		return res, fmt.Errorf("pull: study %s: %w", studyUID, err)
	}
	if len(refs) == 0 {
		return res, fmt.Errorf("pull: study %s: %w (QIDO-RS lists no series of it)", studyUID, ErrNotFound)
	}
	var errs []error
	for _, s := range refs {
		if !validUID(s.Series) {
			continue
		}
		s.Study = studyUID
		n, err := p.fetchSeries(ctx, s, false)
		res.Instances += n.delivered
		res.Skipped += n.skipped
		if err != nil {
			res.Failed++
			p.metrics.PollErrors.Inc()
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		res.Series++
		p.metrics.SeriesFetched.Inc()
	}
	if err := p.drop.syncDrop(); err != nil {
		errs = append(errs, fmt.Errorf("pull: %w", err))
	}
	p.log.Info().Str("study_uid", studyUID).Int("series", res.Series).Int("instances", res.Instances).Int("already_there", res.Skipped).Int("failed", res.Failed).Msg("study fetched over DICOMweb")
	return res, errors.Join(errs...)
}

// counts is what one series fetch did.
type counts struct {
	received  int // instances the series has, as retrieved or listed
	delivered int // written into the drop folder
	skipped   int // already there
}

// fetchSeries retrieves one series. A series that grew since it was
// fetched (grown) has its instances listed first, and only those missing
// from the drop folder are retrieved, one by one; when all are missing
// (inputs moved or deleted by retention), the series is retrieved whole.
func (p *Puller) fetchSeries(ctx context.Context, s seriesRef, grown bool) (counts, error) {
	log := logging.Series{StudyUID: s.Study, SeriesUID: s.Series}.Logger(p.log)
	ref := "/studies/" + s.Study + "/series/" + s.Series
	var n counts
	if grown {
		sops, err := p.c.seriesInstances(ctx, s.Study, s.Series, p.opts.PageSize)
		if err != nil {
			return n, err
		}
		var missing []string
		for _, sop := range sops {
			if validUID(sop) && !p.drop.has(sop) {
				missing = append(missing, sop)
			}
		}
		if len(missing) < len(sops) {
			for _, sop := range missing {
				if _, err := p.retrieve(ctx, ref+"/instances/"+sop, s.Series, &n, log); err != nil {
					return n, err
				}
			}
			n.received = len(sops)
			n.skipped += len(sops) - len(missing)
			log.Info().Int("instances", len(sops)).Int("new", n.delivered).Msg("grown series fetched")
			p.metrics.InstancesSkipped.Add(float64(len(sops) - len(missing)))
			return n, nil
		}
	}
	got, err := p.retrieve(ctx, ref, s.Series, &n, log)
	if err != nil {
		return n, err
	}
	n.received = got
	if s.Instances > 0 && got < s.Instances {
		return n, fmt.Errorf("pull: WADO-RS GET %s%s: %w: %d instances retrieved of the %d QIDO-RS announced", p.c.basePath, ref, ErrBadAnswer, got, s.Instances)
	}
	log.Info().Int("instances", got).Int("new", n.delivered).Int("already_there", n.skipped).Msg("series fetched")
	return n, nil
}

// retrieve GETs ref (a study, series or instance) with WADO-RS and writes
// each part into the drop folder, adding to n. It returns the number of
// parts of the answer that succeeded. A PACS that refuses the
// transfer-syntax parameter (400, 406) is asked again for its default.
// series, when set, is the series every part must belong to.
func (p *Puller) retrieve(ctx context.Context, ref, series string, n *counts, log zerolog.Logger) (int, error) {
	accept := acceptExplicitLE
	for {
		parts := 0
		warnedTS := false
		err := p.c.get(ctx, "WADO-RS", ref, accept, func(h http.Header, body io.Reader) error {
			parts = 0
			ct := h.Get("Content-Type")
			if ct == "" {
				b, _ := io.ReadAll(io.LimitReader(body, 1))
				if len(b) == 0 {
					return nil // nothing (204)
				}
			}
			mt, params, err := mime.ParseMediaType(ct)
			if err != nil || mt != "multipart/related" || params["boundary"] == "" {
				return fmt.Errorf("%w: the answer is %q, not multipart/related with a boundary", ErrBadAnswer, ct)
			}
			mr := multipart.NewReader(body, params["boundary"])
			for {
				part, err := mr.NextRawPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%w: %v", errCutShort, err)
				}
				if pct := part.Header.Get("Content-Type"); pct != "" {
					if pmt, _, err := mime.ParseMediaType(pct); err != nil || pmt != "application/dicom" {
						return fmt.Errorf("%w: a part is %q, not application/dicom", ErrBadAnswer, pct)
					}
				}
				d, err := p.drop.put(part, func(h dicomio.Header) error {
					if series != "" && h.SeriesInstanceUID != series {
						return fmt.Errorf("%w: asked for series %s, got an instance of series %s", ErrBadAnswer, series, h.SeriesInstanceUID)
					}
					if h.HasPixelData && !dicomio.PixelsSupported(h.TransferSyntaxUID) && !warnedTS {
						warnedTS = true
						log.Warn().Str("transfer_syntax", h.TransferSyntaxUID).Msg("the PACS sent a transfer syntax tmcad cannot decode (it did not transcode); the series will be quarantined")
					}
					return nil
				})
				if err != nil {
					return err
				}
				parts++
				if d.New {
					n.delivered++
					p.metrics.InstancesFetched.Inc()
				} else {
					n.skipped++
					p.metrics.InstancesSkipped.Inc()
				}
			}
		})
		var re *requestError
		if err != nil && accept == acceptExplicitLE && errors.As(err, &re) && (re.status == http.StatusNotAcceptable || re.status == http.StatusBadRequest) {
			log.Warn().Int("status", re.status).Msg("the PACS refused to transcode to explicit VR little endian; asking for its default transfer syntax")
			accept = acceptDefault
			continue
		}
		return parts, err
	}
}
