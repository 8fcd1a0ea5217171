package catalog

import (
	"testing"
)

// testStore opens an embedded database in a folder of its own, closed
// when the test ends.
func testStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(t.Context(), Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStaleLeaseDropped: a leader lease this node held when it crashed is
// dropped at start (River would wait for it to expire before leading
// again: no schedules, no retries meanwhile); another node's stays.
func TestStaleLeaseDropped(t *testing.T) {
	st := testStore(t)
	id := "tmcad-testhost-0123abcd"
	if _, err := st.exec(t.Context(), `INSERT INTO river_leader (leader_id, elected_at, expires_at) VALUES (?, datetime('now'), datetime('now', '+1 hour'))`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RescueOrphans(t.Context(), id); err != nil {
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
	if _, err := st.RescueOrphans(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := st.queryRow(t.Context(), `SELECT COUNT(*) FROM river_leader`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("another node's lease was dropped")
	}
}
