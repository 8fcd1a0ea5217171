package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOutboxSweptAtStart: a SEG file that a crash left in the outbox
// without a catalog row, and a temporary file of an interrupted write, are
// removed at start; a file that is not the outbox's own stays.
func TestOutboxSweptAtStart(t *testing.T) {
	cfg := testConfig(t)
	out := filepath.Join(cfg.StateDir, "outbox")
	if err := os.MkdirAll(out, 0o750); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{"1.2.3.4.dcm": false, ".seg-123.part": false, "README.txt": true}
	for name := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	_, stop := runDaemon(t, cfg, newFakeProcessor(), &fakeSink{puts: map[string]int{}})
	stop()
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(out, name))
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept = %v, want %v", name, kept, keep)
		}
	}
}

// TestStaleLeaseDropped: a leader lease this node held when it crashed is
// dropped at start (River would wait for it to expire before leading
// again: no schedules, no retries meanwhile); another node's stays.
func TestStaleLeaseDropped(t *testing.T) {
	cfg := testConfig(t)
	st, err := openStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := clientID(cfg.StateDir)
	if _, err := st.exec(t.Context(), `INSERT INTO river_leader (leader_id, elected_at, expires_at) VALUES (?, datetime('now'), datetime('now', '+1 hour'))`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := rescueOrphans(t.Context(), st, id); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.queryRow(t.Context(), `SELECT COUNT(*) FROM river_leader`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d leader leases after start, want this node's stale one dropped", n)
	}
	if _, err := st.exec(t.Context(), `INSERT INTO river_leader (leader_id, elected_at, expires_at) VALUES ('other-node', datetime('now'), datetime('now', '+1 hour'))`); err != nil {
		t.Fatal(err)
	}
	if _, err := rescueOrphans(t.Context(), st, id); err != nil {
		t.Fatal(err)
	}
	if err := st.queryRow(t.Context(), `SELECT COUNT(*) FROM river_leader`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("another node's lease was dropped")
	}
}
