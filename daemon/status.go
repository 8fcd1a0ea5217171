package daemon

import (
	"context"
	"fmt"
	"time"

	"tmcad/config"
	"tmcad/daemon/catalog"
)

// SeriesBrief is one series in `tmcad status`: UIDs, state and reason only.
type SeriesBrief struct {
	StudyUID, SeriesUID string
	State, Reason       string
	Error               string
	ModelVersion        string
	Updated             time.Time
}

// SEGBrief is one stored SEG in `tmcad status`.
type SEGBrief struct {
	StudyUID, SourceSeriesUID, SOPUID string
	ModelVersion, Sink                string
	Stored                            time.Time
}

// ExportErrorBrief is one SEG in `tmcad status` whose last export attempt
// failed: its UIDs, how many attempts failed in a row, whether it is tried
// again (transient) or the archive refused it (permanent), and the error,
// which names UIDs and the archive, never PHI.
type ExportErrorBrief struct {
	SOPUID, StudyUID, SourceSeriesUID string
	Attempts                          int
	Class, Error                      string
	Since, Last                       time.Time
}

// StatusReport is what `tmcad status` prints, read from the queue database.
type StatusReport struct {
	// Queue is "sqlite" or "postgres".
	Queue string
	// Jobs counts process jobs by River state; Exports export jobs.
	Jobs, Exports map[string]int
	// Series counts catalogued series by state.
	Series map[string]int
	// Outbox is the number of SEGs not yet stored.
	Outbox int
	// AwaitingReport are parked series, Skipped the latest series not
	// selected (Reason says why), LastErrors the latest failures, LastSEGs
	// the latest SEGs stored.
	AwaitingReport []SeriesBrief
	Skipped        []SeriesBrief
	LastErrors     []SeriesBrief
	LastSEGs       []SEGBrief
	// LastDone are the latest series done or exporting; Reason says how
	// their report guided the model (the rule, never the text) or that it
	// described no target.
	LastDone []SeriesBrief
	// ExportErrors are the SEGs in the outbox whose last export attempt
	// failed, latest first.
	ExportErrors []ExportErrorBrief
}

// ReadStatus reads the queue and catalog named by cfg; n bounds each list.
func ReadStatus(ctx context.Context, cfg *config.Config, n int) (*StatusReport, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	cat := catalog.New(st, time.Now)
	r := &StatusReport{Queue: st.Kind()}
	if r.Jobs, err = st.JobCounts(ctx, kindProcess); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if r.Exports, err = st.JobCounts(ctx, kindExport); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if r.Series, err = cat.SeriesCounts(ctx); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if r.Outbox, err = cat.OutboxCount(ctx); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	brief := func(rs []catalog.Series) []SeriesBrief {
		out := make([]SeriesBrief, 0, len(rs))
		for _, s := range rs {
			out = append(out, SeriesBrief{StudyUID: s.StudyUID, SeriesUID: s.SeriesUID, State: s.State, Reason: s.Reason, Error: s.Error, ModelVersion: s.ModelVersion, Updated: s.UpdatedAt})
		}
		return out
	}
	parked, err := cat.List(ctx, catalog.Filter{States: []string{catalog.StateAwaitingReport}, Latest: n})
	if err != nil {
		return nil, err
	}
	r.AwaitingReport = brief(parked)
	skipped, err := cat.List(ctx, catalog.Filter{States: []string{catalog.StateSkipped}, Latest: n})
	if err != nil {
		return nil, err
	}
	r.Skipped = brief(skipped)
	failed, err := cat.List(ctx, catalog.Filter{States: []string{catalog.StateFailed}, Latest: n})
	if err != nil {
		return nil, err
	}
	r.LastErrors = brief(failed)
	done, err := cat.List(ctx, catalog.Filter{States: []string{catalog.StateDone, catalog.StateExporting}, Latest: n})
	if err != nil {
		return nil, err
	}
	r.LastDone = brief(done)
	expErrs, err := cat.ExportErrors(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, e := range expErrs {
		r.ExportErrors = append(r.ExportErrors, ExportErrorBrief{SOPUID: e.SOPUID, StudyUID: e.StudyUID, SourceSeriesUID: e.SourceSeriesUID,
			Attempts: e.Attempts, Class: e.Class, Error: e.Error, Since: e.First, Last: e.Last})
	}
	segs, err := cat.LastSEGs(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		r.LastSEGs = append(r.LastSEGs, SEGBrief{StudyUID: s.StudyUID, SourceSeriesUID: s.SourceSeriesUID, SOPUID: s.SOPUID, ModelVersion: s.ModelVersion, Sink: s.Sink, Stored: s.StoredAt})
	}
	return r, nil
}
