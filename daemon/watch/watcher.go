// Package watch watches the drop folders: it sends each file once its size
// has been stable for a while, sends it again when it changes or when its
// handling failed, and opens a sent file only if it is still the file
// that was checked.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"tmcad/internal/backoff"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// FileEvent is a file whose size has been stable for the configured time:
// it is complete and may be read.
type FileEvent struct {
	// Root is the watched folder the file is under.
	Root string
	// Path is the file's path.
	Path string
	// Size and ModTime are the file's when its size was found stable.
	Size    int64
	ModTime time.Time
	// Dev and Ino identify the file then (0 where the system has none): a
	// reader opens Path and checks that it is still this file, not one
	// swapped in since (a symbolic link to somewhere else).
	Dev, Ino uint64
}

// IgnoredName reports whether a file name is temporary and must not be
// read until it is renamed: dot-files, *.part, *.tmp, *.partial, *~ and
// *.swp.
func IgnoredName(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return true
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".part", ".tmp", ".partial", ".swp", ".crdownload":
		return true
	}
	return false
}

// Options configure a Watcher.
type Options struct {
	// Roots are the folders watched recursively.
	Roots []string
	// SizeStableFor is how long a file's size and time must not change
	// before it is passed on.
	SizeStableFor time.Duration
	// RescanEvery is the period of the full rescan.
	RescanEvery time.Duration
	// Logger receives watcher errors (paths only, never content).
	Logger zerolog.Logger
}

// Watcher watches folders recursively with fsnotify, rescans them in full
// at start and every RescanEvery, and sends each file once its size is
// stable. The receiver reports each file's outcome through Done: a file
// handled is sent again only when its size or time changes; a file whose
// handling failed is sent again after a backoff (retryBase doubling up to
// retryMax) for as long as it exists.
type Watcher struct {
	opts   Options
	events chan FileEvent

	mu        sync.Mutex
	rescanAt  time.Duration
	heartbeat time.Time
	rescanReq chan struct{}
	// results are the outcomes Done reported, not yet taken by Run.
	results []fileResult
	// retrying is how many files wait to be sent again after a failure.
	retrying int
	// oldestUnhandled is when the longest-waiting file not yet handled
	// (being watched for size, or sent and not yet Done) was first seen;
	// zero when there is none. Files that failed are not counted.
	oldestUnhandled time.Time

	// paused holds back every file (SetPaused); pauseReq wakes a send
	// blocked on a full events channel when a pause begins.
	paused   atomic.Bool
	pauseReq chan struct{}

	done chan struct{}
}

// candidate is a file whose size is being watched.
type candidate struct {
	root     string
	size     int64
	modTime  time.Time
	dev, ino uint64
	since    time.Time // when size/modTime/identity last changed
	seen     time.Time // when the watcher first saw the file
}

// sig is what a sent file looked like.
type sig struct {
	size     int64
	modTime  time.Time
	dev, ino uint64
}

// eq reports whether two signatures describe the same file, unchanged.
func (s sig) eq(o sig) bool {
	return s.size == o.size && s.modTime.Equal(o.modTime) && s.dev == o.dev && s.ino == o.ino
}

// same reports whether info describes the file c was tracking, unchanged.
func (c *candidate) same(info fs.FileInfo) bool {
	dev, ino := fileID(info)
	return c.size == info.Size() && c.modTime.Equal(info.ModTime()) && c.dev == dev && c.ino == ino
}

// update records info as the file's current state, changed at now.
func (c *candidate) update(info fs.FileInfo, now time.Time) {
	c.size, c.modTime, c.since = info.Size(), info.ModTime(), now
	c.dev, c.ino = fileID(info)
}

// fileID returns the device and inode of info (0, 0 where unknown).
func fileID(info fs.FileInfo) (dev, ino uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// fileResult is the outcome of handling one sent file.
type fileResult struct {
	ev  FileEvent
	err error
}

// retryState is a file whose handling failed: unchanged (still failed),
// it is sent again at next; changed, as soon as it is stable.
type retryState struct {
	attempts int
	next     time.Time
	failed   sig
}

// Retry delays after a failed file: the first, doubling up to the last.
// A catalogue that comes back (a full disk freed) gets its files soon,
// and a file that keeps failing costs one attempt a minute.
const (
	retryBase = time.Second
	retryMax  = time.Minute
)

// New validates opts and returns a Watcher; Run starts it.
func New(opts Options) (*Watcher, error) {
	if len(opts.Roots) == 0 {
		return nil, errors.New("watcher: no folders to watch (watch.dicom_dir)")
	}
	for i, r := range opts.Roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("watcher: %s: %w", r, err)
		}
		opts.Roots[i] = abs
	}
	if opts.RescanEvery <= 0 {
		opts.RescanEvery = 5 * time.Minute
	}
	return &Watcher{
		opts:      opts,
		events:    make(chan FileEvent, 256),
		rescanReq: make(chan struct{}, 1),
		pauseReq:  make(chan struct{}, 1),
		done:      make(chan struct{}),
		heartbeat: time.Now(),
	}, nil
}

// Events returns the channel of stable files. It is closed when Run returns.
func (w *Watcher) Events() <-chan FileEvent { return w.events }

// Rescan asks for a full rescan soon.
func (w *Watcher) Rescan() {
	select {
	case w.rescanReq <- struct{}{}:
	default:
	}
}

// SetPaused holds back (true) or lets through again (false) the files
// the watcher sends. While paused, stable files stay in the drop folders
// and are watched as usual, but none is sent, and a send blocked on a
// full events channel gives up, so that Run keeps going round (its
// heartbeat) while the receiver reads nothing. The files are sent once
// the pause ends.
func (w *Watcher) SetPaused(p bool) {
	if w.paused.Swap(p) == p {
		return
	}
	if p {
		select {
		case w.pauseReq <- struct{}{}:
		default:
		}
		return
	}
	select {
	case <-w.pauseReq: // a request no send took
	default:
	}
}

// SetTimings changes the size-stable time and rescan period (SIGHUP).
func (w *Watcher) SetTimings(sizeStableFor, rescanEvery time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opts.SizeStableFor = sizeStableFor
	if rescanEvery > 0 {
		w.opts.RescanEvery = rescanEvery
	}
}

// Done reports the outcome of handling a file Events sent: nil marks it
// handled (it is not sent again until it changes); an error has it sent
// again after a backoff. It never blocks.
func (w *Watcher) Done(ev FileEvent, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.results = append(w.results, fileResult{ev: ev, err: err})
}

// Retrying returns how many files wait to be sent again after a failure.
func (w *Watcher) Retrying() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retrying
}

// OldestUnhandled returns when the longest-waiting file that is not yet
// handled was first seen: one still being watched for its size, or sent
// and not yet reported Done; zero when every file is handled. Files whose
// handling failed are left out (they may fail for good). The ready loop
// uses it so that a series is not judged complete while files that
// arrived with it are still on their way to the catalogue (a backlog).
func (w *Watcher) OldestUnhandled() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oldestUnhandled
}

// Heartbeat returns when the run loop last went round.
func (w *Watcher) Heartbeat() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.heartbeat
}

// Run watches until ctx is cancelled.
func (w *Watcher) Run(ctx context.Context) error {
	defer close(w.done)
	defer close(w.events)
	fw, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	defer fw.Close()

	pending := map[string]*candidate{}
	// sent holds the files sent and not failed: handled, or being handled.
	sent := map[string]sig{}
	retry := map[string]*retryState{}
	// inflight holds the files sent and not yet Done, with when they were
	// first seen.
	inflight := map[string]time.Time{}

	for _, r := range w.opts.Roots {
		if err := os.MkdirAll(r, 0o750); err != nil {
			return fmt.Errorf("watcher: %s: %w", r, err)
		}
	}
	w.addTrees(fw, pending)

	w.mu.Lock()
	stable, every := w.opts.SizeStableFor, w.opts.RescanEvery
	w.mu.Unlock()
	tickEvery := stable / 4
	if tickEvery < 50*time.Millisecond {
		tickEvery = 50 * time.Millisecond
	}
	if tickEvery > 500*time.Millisecond {
		tickEvery = 500 * time.Millisecond
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	rescan := time.NewTimer(every)
	defer rescan.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("watcher: fsnotify closed")
			}
			w.handle(fw, ev, pending)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("watcher: fsnotify closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.opts.Logger.Warn().Msg("file event queue overflowed; rescanning the drop folders")
			} else {
				w.opts.Logger.Warn().Err(err).Msg("file watcher error; rescanning the drop folders")
			}
			w.addTrees(fw, pending)
		case <-w.rescanReq:
			w.addTrees(fw, pending)
		case <-rescan.C:
			w.addTrees(fw, pending)
			w.mu.Lock()
			every = w.opts.RescanEvery
			w.mu.Unlock()
			rescan.Reset(every)
		case now := <-tick.C:
			w.mu.Lock()
			w.heartbeat = now
			stable = w.opts.SizeStableFor
			results := w.results
			w.results = nil
			w.mu.Unlock()
			for _, r := range results {
				delete(inflight, r.ev.Path)
			}
			w.settle(results, pending, sent, retry, now)
			if err := w.check(ctx, pending, sent, retry, inflight, stable, now); err != nil {
				return nil // ctx cancelled while sending
			}
			w.noteBacklog(pending, sent, retry, inflight)
		}
	}
}

// handle reacts to one fsnotify event.
func (w *Watcher) handle(fw *fsnotify.Watcher, ev fsnotify.Event, pending map[string]*candidate) {
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		delete(pending, ev.Name)
		return
	}
	if IgnoredName(ev.Name) {
		return
	}
	info, err := os.Lstat(ev.Name)
	if err != nil {
		return
	}
	if info.IsDir() {
		// A new sub-folder: watch it and pick up what is already in it
		// (files written before the watch was added raise no event).
		w.addTree(fw, w.rootOf(ev.Name), ev.Name, pending)
		return
	}
	if !info.Mode().IsRegular() {
		return
	}
	w.track(pending, w.rootOf(ev.Name), ev.Name, info)
}

// rootOf returns the watched root that path is under.
func (w *Watcher) rootOf(path string) string {
	for _, r := range w.opts.Roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) {
			return r
		}
	}
	return ""
}

// track starts or updates the size watch of one file.
func (w *Watcher) track(pending map[string]*candidate, root, path string, info fs.FileInfo) {
	c, ok := pending[path]
	if !ok {
		now := time.Now()
		c = &candidate{root: root, seen: now}
		c.update(info, now)
		pending[path] = c
		return
	}
	if !c.same(info) {
		c.update(info, time.Now())
	}
}

// addTrees (re)adds every root: the rescan.
func (w *Watcher) addTrees(fw *fsnotify.Watcher, pending map[string]*candidate) {
	for _, r := range w.opts.Roots {
		w.addTree(fw, r, r, pending)
	}
}

// addTree watches dir and its sub-folders and tracks the files in them.
func (w *Watcher) addTree(fw *fsnotify.Watcher, root, dir string, pending map[string]*candidate) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				w.opts.Logger.Warn().Err(err).Str("path", path).Msg("cannot scan folder")
			}
			return nil
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if err := fw.Add(path); err != nil {
				w.opts.Logger.Warn().Err(err).Str("path", path).Msg("cannot watch folder (raise fs.inotify.max_user_watches?); the periodic rescan still covers it")
			}
			return nil
		}
		if !d.Type().IsRegular() || IgnoredName(path) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		w.track(pending, root, path, info)
		return nil
	})
}

// settle applies the outcomes Done reported: a handled file leaves the
// retry set; a failed one is forgotten as sent and tracked again, to be
// sent once its backoff has passed. Files gone from the disk leave the
// retry set.
func (w *Watcher) settle(results []fileResult, pending map[string]*candidate, sent map[string]sig, retry map[string]*retryState, now time.Time) {
	for _, r := range results {
		p := r.ev.Path
		if r.err == nil {
			delete(retry, p)
			continue
		}
		if s, ok := sent[p]; ok && s.eq(sig{r.ev.Size, r.ev.ModTime, r.ev.Dev, r.ev.Ino}) {
			delete(sent, p)
		}
		st := retry[p]
		if st == nil {
			st = &retryState{}
			retry[p] = st
		}
		st.attempts++
		st.next = now.Add(backoff.Delay(retryBase, retryMax, st.attempts))
		st.failed = sig{r.ev.Size, r.ev.ModTime, r.ev.Dev, r.ev.Ino}
		if _, ok := pending[p]; !ok {
			// Already stable: sent as soon as the backoff has passed.
			pending[p] = &candidate{root: r.ev.Root, size: r.ev.Size, modTime: r.ev.ModTime, dev: r.ev.Dev, ino: r.ev.Ino}
		}
	}
	for p := range retry {
		if _, ok := pending[p]; ok {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			delete(retry, p)
		}
	}
	w.mu.Lock()
	w.retrying = len(retry)
	w.mu.Unlock()
}

// noteBacklog records when the longest-waiting unhandled file was first
// seen (see OldestUnhandled): files in flight, and files being watched
// that are neither failed nor already handled unchanged (a rescan tracks
// every file again).
func (w *Watcher) noteBacklog(pending map[string]*candidate, sent map[string]sig, retry map[string]*retryState, inflight map[string]time.Time) {
	var oldest time.Time
	older := func(t time.Time) {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	for _, t := range inflight {
		older(t)
	}
	for path, c := range pending {
		if _, failed := retry[path]; failed {
			continue
		}
		if s, ok := sent[path]; ok && s.eq(sig{c.size, c.modTime, c.dev, c.ino}) {
			continue
		}
		older(c.seen)
	}
	w.mu.Lock()
	w.oldestUnhandled = oldest
	w.mu.Unlock()
}

// check sends the files whose size has been stable long enough (and whose
// retry backoff, after a failure, has passed), in path order, so that the
// files of one series, which usually share a folder or a name prefix,
// reach the catalogue together.
func (w *Watcher) check(ctx context.Context, pending map[string]*candidate, sent map[string]sig, retry map[string]*retryState, inflight map[string]time.Time, stable time.Duration, now time.Time) error {
	paths := make([]string, 0, len(pending))
	for path := range pending {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		c := pending[path]
		// Lstat: a file replaced by a symbolic link (or anything but a
		// regular file) is not followed, it is dropped.
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() {
			delete(pending, path)
			delete(retry, path)
			continue
		}
		if !c.same(info) {
			c.update(info, now)
			continue
		}
		if now.Sub(c.since) < stable {
			continue
		}
		if r, ok := retry[path]; ok && now.Before(r.next) && r.failed.eq(sig{c.size, c.modTime, c.dev, c.ino}) {
			continue
		}
		if w.paused.Load() {
			return nil // the files stay pending until the pause ends
		}
		delete(pending, path)
		cur := sig{c.size, c.modTime, c.dev, c.ino}
		if s, ok := sent[path]; ok && s.eq(cur) {
			continue
		}
		select {
		case w.events <- FileEvent{Root: c.root, Path: path, Size: c.size, ModTime: c.modTime, Dev: c.dev, Ino: c.ino}:
			sent[path] = cur
			inflight[path] = c.seen
		case <-w.pauseReq:
			pending[path] = c // sent after the pause
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close waits for Run to return (cancel its context first).
func (w *Watcher) Close() error {
	<-w.done
	return nil
}
