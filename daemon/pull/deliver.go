package pull

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"tmcad/dicomio"
)

// stagingSuffix marks files being written in the staging folder.
const stagingSuffix = ".part"

// staleAfter is the age after which a file left in the staging folder
// (by a crash mid-retrieval) is removed at start; younger ones may belong
// to another tmcad process fetching at the same time.
const staleAfter = time.Hour

// dropper writes instances into the drop folder the way the DICOM receiver
// does: each is written and fsynced in a staging folder on the same
// filesystem, then renamed in, so the watcher sees it complete or not at
// all. It never replaces a file in the drop folder.
type dropper struct {
	drop, staging string
}

// delivery is the result of putting one instance.
type delivery struct {
	// Header is the instance's header as dicomio reads it.
	Header dicomio.Header
	// New is false when the drop folder already had the instance.
	New bool
}

// newDropper checks the folders: the drop folder must exist, the staging
// folder (created when missing) must be outside it and on its filesystem.
// Staging files older than staleAfter are removed.
func newDropper(drop, staging string) (*dropper, error) {
	if drop == "" || staging == "" {
		return nil, errors.New("pull: the drop folder and the staging folder must be set")
	}
	drop, staging = filepath.Clean(drop), filepath.Clean(staging)
	st, err := os.Stat(drop)
	if err != nil {
		return nil, fmt.Errorf("pull: drop folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("pull: drop folder %s is not a folder", drop)
	}
	if staging == drop || strings.HasPrefix(staging, drop+string(filepath.Separator)) {
		return nil, fmt.Errorf("pull: staging folder %s is inside the drop folder %s, where the watcher would read files still being written; choose a folder beside it", staging, drop)
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, fmt.Errorf("pull: staging folder: %w", err)
	}
	d1, err := deviceOf(drop)
	if err != nil {
		return nil, fmt.Errorf("pull: drop folder: %w", err)
	}
	d2, err := deviceOf(staging)
	if err != nil {
		return nil, fmt.Errorf("pull: staging folder: %w", err)
	}
	if d1 != d2 {
		// A rename across filesystems is a copy, which the watcher could
		// see half done.
		return nil, fmt.Errorf("pull: staging folder %s and drop folder %s are on different filesystems; the staging folder must be on the drop folder's", staging, drop)
	}
	d := &dropper{drop: drop, staging: staging}
	d.sweep()
	return d, nil
}

func deviceOf(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Dev), nil
}

// sweep removes staging files a crash left behind: they were never
// delivered, and their series is fetched again.
func (d *dropper) sweep() {
	entries, err := os.ReadDir(d.staging)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), stagingSuffix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAfter {
			_ = os.Remove(filepath.Join(d.staging, e.Name()))
		}
	}
}

// name is the drop folder's file name of an instance.
func (d *dropper) name(sop string) string {
	return filepath.Join(d.drop, dicomio.SafePathComponent(sop)+".dcm")
}

// has reports whether the drop folder holds the instance.
func (d *dropper) has(sop string) bool {
	_, err := os.Lstat(d.name(sop))
	return err == nil
}

// put writes r (one DICOM file) into the staging folder, fsyncs it, reads
// its header, and, when check accepts the header, renames it into the drop
// folder as <SOP Instance UID>.dcm unless a file of that name is there
// already. A read error of r is wrapped in errCutShort; a file dicomio
// cannot read wraps ErrBadAnswer.
func (d *dropper) put(r io.Reader, check func(dicomio.Header) error) (delivery, error) {
	f, err := os.CreateTemp(d.staging, "pull-*"+stagingSuffix)
	if err != nil {
		return delivery{}, fmt.Errorf("staging: %w", err)
	}
	tmp := f.Name()
	defer func() {
		f.Close() // a second Close only errs
		os.Remove(tmp)
	}()
	tr := &trackReader{r: r}
	if _, err := io.Copy(f, tr); err != nil {
		if tr.err != nil {
			return delivery{}, fmt.Errorf("%w: %v", errCutShort, tr.err)
		}
		return delivery{}, fmt.Errorf("staging %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return delivery{}, fmt.Errorf("staging %s: %w", tmp, err)
	}
	h, err := dicomio.ReadHeaderFrom(tmp, f)
	if err != nil {
		return delivery{}, fmt.Errorf("%w: a retrieved part is not a readable DICOM file: %v", ErrBadAnswer, err)
	}
	if !validUID(h.SOPInstanceUID) {
		return delivery{}, fmt.Errorf("%w: a retrieved instance has no valid SOP Instance UID", ErrBadAnswer)
	}
	if err := check(h); err != nil {
		return delivery{}, err
	}
	if err := f.Close(); err != nil {
		return delivery{}, fmt.Errorf("staging %s: %w", tmp, err)
	}
	dst := d.name(h.SOPInstanceUID)
	h.Path = dst
	isNew, err := renameNoReplace(tmp, dst)
	if err != nil {
		return delivery{}, fmt.Errorf("delivering into %s: %w", d.drop, err)
	}
	return delivery{Header: h, New: isNew}, nil
}

// renameNoReplace moves src to dst unless dst exists (then src is
// removed); it reports whether src was moved. A hard link is atomic and
// fails on an existing name; where the filesystem has no hard links, an
// existence check and rename(2) stand in.
func renameNoReplace(src, dst string) (bool, error) {
	err := os.Link(src, dst)
	switch {
	case err == nil:
		return true, os.Remove(src)
	case errors.Is(err, fs.ErrExist):
		return false, os.Remove(src)
	}
	if _, serr := os.Lstat(dst); serr == nil {
		return false, os.Remove(src)
	}
	if err := os.Rename(src, dst); err != nil {
		return false, err
	}
	return true, nil
}

// syncDrop fsyncs the drop folder, so that the renames into it survive a
// crash before the high-water mark records them.
func (d *dropper) syncDrop() error { return syncDir(d.drop) }

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// trackReader keeps its source's first error other than io.EOF, so that
// io.Copy's read errors are told apart from its write errors.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
