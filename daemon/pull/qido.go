package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DICOM JSON tags read from QIDO-RS answers.
const (
	tagStudyDate       = "00080020"
	tagModality        = "00080060"
	tagSOPInstanceUID  = "00080018"
	tagStudyUID        = "0020000D"
	tagSeriesUID       = "0020000E"
	tagSeriesInstances = "00201209" // NumberOfSeriesRelatedInstances
)

// maxPages bounds one search, against a server that pages without end.
const maxPages = 10000

// uidRE is a DICOM UID: only such values are put into request paths.
var uidRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// validUID reports whether s is a DICOM UID (digits and dots, at most 64).
func validUID(s string) bool { return len(s) <= 64 && uidRE.MatchString(s) }

// seriesRef is one series found by QIDO-RS.
type seriesRef struct {
	Study, Series, Modality, Date string
	// Instances is NumberOfSeriesRelatedInstances; -1 when the server did
	// not say.
	Instances int
}

// dicomJSON is one DICOM JSON dataset (PS3.18 Annex F), as far as QIDO-RS
// answers are read.
type dicomJSON map[string]struct {
	VR    string            `json:"vr"`
	Value []json.RawMessage `json:"Value"`
}

// str returns the first value of tag as a string ("" when absent).
func (d dicomJSON) str(tag string) string {
	e, ok := d[strings.ToUpper(tag)]
	if !ok {
		e, ok = d[strings.ToLower(tag)]
	}
	if !ok || len(e.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(e.Value[0], &s) == nil {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(string(e.Value[0]))
}

// num returns the first value of tag as an integer (IS values arrive as
// JSON numbers, or as strings from some servers); -1 when absent.
func (d dicomJSON) num(tag string) int {
	v := strings.Trim(d.str(tag), `"`)
	if v == "" {
		return -1
	}
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return int(f)
	}
	return -1
}

// search runs a QIDO-RS query on path (e.g. "/series") with params,
// paging with limit and offset. It does not stop at a short page (a server
// may cap a page below the limit asked for), only at an empty page or one
// bringing nothing new (a server that ignores offset); results are
// de-duplicated by key.
func (c *client) search(ctx context.Context, path string, params url.Values, pageSize int, key func(dicomJSON) string) ([]dicomJSON, error) {
	var out []dicomJSON
	seen := map[string]bool{}
	offset := 0
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("pull: QIDO-RS GET %s%s: more than %d pages; narrow the search (source.dicomweb.modalities, since)", c.basePath, path, maxPages)
		}
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		q.Set("limit", strconv.Itoa(pageSize))
		q.Set("offset", strconv.Itoa(offset))
		var items []dicomJSON
		err := c.get(ctx, "QIDO-RS", path+"?"+q.Encode(), "application/dicom+json", func(_ http.Header, body io.Reader) error {
			items = nil
			b, err := io.ReadAll(io.LimitReader(body, 256<<20))
			if err != nil {
				return fmt.Errorf("%w: %v", errCutShort, err)
			}
			b = bytes.TrimSpace(b)
			if len(b) == 0 {
				return nil // 204 No Content: no match
			}
			if err := json.Unmarshal(b, &items); err != nil {
				return fmt.Errorf("%w: the answer is not a DICOM JSON array: %v", ErrBadAnswer, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, it := range items {
			k := key(it)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, it)
			fresh++
		}
		if len(items) == 0 || fresh == 0 {
			return out, nil
		}
		offset += len(items)
	}
}

// seriesFields are asked for in every series search.
var seriesFields = []string{tagStudyUID, tagStudyDate, tagModality, tagSeriesInstances}

// findSeries lists the series of one modality ("" for any) whose StudyDate
// is from (YYYYMMDD) or later.
func (c *client) findSeries(ctx context.Context, modality, from string, pageSize int) ([]seriesRef, error) {
	q := url.Values{"includefield": seriesFields}
	if modality != "" {
		q.Set("Modality", modality)
	}
	if from != "" {
		q.Set("StudyDate", from+"-")
	}
	return c.seriesAt(ctx, "/series", q, pageSize, "")
}

// studySeries lists the series of one study.
func (c *client) studySeries(ctx context.Context, study string, pageSize int) ([]seriesRef, error) {
	return c.seriesAt(ctx, "/studies/"+study+"/series", url.Values{"includefield": seriesFields}, pageSize, study)
}

// seriesAt runs a series search and keeps the results with usable UIDs;
// study fills in the study UID for servers that leave it out of a
// study's series.
func (c *client) seriesAt(ctx context.Context, path string, q url.Values, pageSize int, study string) ([]seriesRef, error) {
	items, err := c.search(ctx, path, q, pageSize, func(d dicomJSON) string { return d.str(tagSeriesUID) })
	if err != nil {
		return nil, err
	}
	out := make([]seriesRef, 0, len(items))
	for _, it := range items {
		s := seriesRef{
			Study:     it.str(tagStudyUID),
			Series:    it.str(tagSeriesUID),
			Modality:  it.str(tagModality),
			Date:      it.str(tagStudyDate),
			Instances: it.num(tagSeriesInstances),
		}
		if s.Study == "" {
			s.Study = study
		}
		out = append(out, s)
	}
	return out, nil
}

// seriesInstances lists the SOP Instance UIDs of one series.
func (c *client) seriesInstances(ctx context.Context, study, series string, pageSize int) ([]string, error) {
	q := url.Values{"includefield": {tagSOPInstanceUID}}
	items, err := c.search(ctx, "/studies/"+study+"/series/"+series+"/instances", q, pageSize, func(d dicomJSON) string { return d.str(tagSOPInstanceUID) })
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.str(tagSOPInstanceUID))
	}
	return out, nil
}
