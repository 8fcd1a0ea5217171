package catalog

import (
	"context"
	"testing"
	"time"

	"tmcad/dicomio"
)

// Two nodes' ready loops judging the same series: the state moves only
// from the state it was read in, so that the second node neither queues
// the series again nor undoes what the first did.
func TestMoveStateOnlyFromTheStateRead(t *testing.T) {
	ctx := context.Background()
	cat := New(testStore(t), time.Now)
	h := dicomio.Header{Path: "/drop/a.dcm", SOPInstanceUID: "1.2.3.1", SeriesInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Modality: "CR"}
	if _, _, err := cat.AddInstance(ctx, h, "sum-a"); err != nil {
		t.Fatal(err)
	}
	if moved, err := cat.MoveState(ctx, "1.2.3", StateCollecting, StateWaitingReport, ""); err != nil || !moved {
		t.Fatalf("first move: %v, %v", moved, err)
	}
	if moved, err := cat.MoveState(ctx, "1.2.3", StateCollecting, StateWaitingReport, ""); err != nil || moved {
		t.Fatalf("second move from collecting: %v, %v; want not moved", moved, err)
	}
	if ok, err := cat.SetQueued(ctx, "1.2.3", StateWaitingReport, 0, "v1", nil); err != nil || !ok {
		t.Fatalf("first queueing: %v, %v", ok, err)
	}
	if err := cat.SetState(ctx, "1.2.3", StateDone, ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := cat.SetQueued(ctx, "1.2.3", StateWaitingReport, 0, "v1", nil); err != nil || ok {
		t.Fatalf("second queueing from waiting_report: %v, %v; want not queued", ok, err)
	}
	if s, err := cat.Series(ctx, "1.2.3"); err != nil || s.State != StateDone {
		t.Fatalf("series state %q, %v; want done kept", s.State, err)
	}
}

// Two nodes cataloguing the same file of a shared drop folder at once:
// one adds it, the other finds a duplicate; neither fails.
func TestAddInstanceConcurrently(t *testing.T) {
	ctx := context.Background()
	cat := New(testStore(t), time.Now)
	h := dicomio.Header{Path: "/drop/a.dcm", SOPInstanceUID: "1.2.3.1", SeriesInstanceUID: "1.2.3", StudyInstanceUID: "1.2", Modality: "CR"}
	type res struct {
		out AddOutcome
		err error
	}
	ch := make(chan res, 8)
	for range 8 {
		go func() {
			out, _, err := cat.AddInstance(ctx, h, "sum-a")
			ch <- res{out, err}
		}()
	}
	added := 0
	for range 8 {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		switch r.out {
		case AddedNew:
			added++
		case AddedDuplicate:
		default:
			t.Errorf("outcome %v, want new or duplicate", r.out)
		}
	}
	if added != 1 {
		t.Errorf("%d adds, want 1", added)
	}
}
