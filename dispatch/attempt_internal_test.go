package dispatch

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// history builds a state history from "TYPE:Name" entries, a second apart,
// with ids s0, s1, ...
func history(entries ...string) []prefect.State {
	base := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	out := make([]prefect.State, len(entries))
	for i, e := range entries {
		typ, name, _ := strings.Cut(e, ":")
		ts := base.Add(time.Duration(i) * time.Second)
		out[i] = prefect.State{ID: fmt.Sprintf("s%d", i), Type: prefect.StateType(typ), Name: name, Timestamp: &ts}
	}
	return out
}

func TestCurrentAttempt(t *testing.T) {
	tests := []struct {
		name    string
		states  []prefect.State
		wantID  string
		wantOK  bool
		comment string
	}{
		{"claimed", history("SCHEDULED:Scheduled", "PENDING:Pending"), "s1", true, ""},
		{"running", history("SCHEDULED:Scheduled", "PENDING:Pending", "RUNNING:Running"), "s1", true, ""},
		{"renamed by a recovery lock", history("SCHEDULED:Scheduled", "PENDING:Pending", "PENDING:Recovering"), "s1", true, ""},
		{"retried: the new claim", history("SCHEDULED:Scheduled", "PENDING:Pending", "RUNNING:Running", "CRASHED:Crashed",
			"SCHEDULED:AwaitingRetry", "PENDING:Pending"), "s5", true, ""},
		{"rescheduled, not claimed yet", history("SCHEDULED:Scheduled", "PENDING:Pending", "SCHEDULED:Rescheduled"), "", false, ""},
		{"never claimed", history("SCHEDULED:Scheduled", "RUNNING:Running"), "", false, ""},
		{"a worker's sub-state after the claim", history("SCHEDULED:Scheduled", "PENDING:Pending", "PENDING:Submitting"), "s1", true, ""},
		{"no history", nil, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server's order is by timestamp; shuffle to check the sort.
			in := slices.Clone(tt.states)
			slices.Reverse(in)
			a, claim, ok := currentAttempt("run", in)
			if ok != tt.wantOK || claim.ID != tt.wantID || (ok && a != (Attempt{FlowRunID: "run", ClaimID: tt.wantID})) {
				t.Errorf("currentAttempt = %+v, %s, %v; want claim %q, %v", a, claim.ID, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

func TestCycle(t *testing.T) {
	tests := []struct {
		name       string
		states     []prefect.State
		requeued   int
		reclaimed  int
		cycleStart string
	}{
		{"first claim", history("SCHEDULED:Scheduled", "PENDING:Pending"), 0, 0, "s1"},
		{"rescheduled once, not claimed again", history("SCHEDULED:Late", "PENDING:Pending", "PENDING:Recovering", "SCHEDULED:Rescheduled"), 0, 0, "s1"},
		{"rescheduled and claimed again", history("SCHEDULED:Late", "PENDING:Pending", "PENDING:Recovering", "SCHEDULED:Rescheduled", "PENDING:Pending", "PENDING:Recovering"), 0, 1, "s1"},
		{"rescheduled twice and claimed again", history("SCHEDULED:Late", "PENDING:Pending", "SCHEDULED:Rescheduled", "PENDING:Pending", "PENDING:Recovering",
			"SCHEDULED:Rescheduled", "PENDING:Pending"), 0, 2, "s1"},
		{"a late lock over the reschedule", history("SCHEDULED:Scheduled", "PENDING:Pending", "PENDING:Recovering", "SCHEDULED:Rescheduled", "PENDING:Recovering again"), 0, 0, "s1"},
		{"requeued twice", history("SCHEDULED:Scheduled", "PENDING:Pending", "SCHEDULED:Requeued", "PENDING:Pending", "SCHEDULED:Requeued", "PENDING:Pending"), 2, 0, "s1"},
		{"a retry starts a new cycle", history("SCHEDULED:Scheduled", "PENDING:Pending", "SCHEDULED:Requeued", "PENDING:Pending", "RUNNING:Running", "CRASHED:Crashed",
			"SCHEDULED:AwaitingRetry", "PENDING:Pending"), 0, 0, "s7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cycleCount(tt.states, stateRequeued); got != tt.requeued {
				t.Errorf("requeues in the cycle = %d, want %d", got, tt.requeued)
			}
			if got := reschedulesReclaimed(tt.states); got != tt.reclaimed {
				t.Errorf("reschedulesReclaimed = %v, want %v", got, tt.reclaimed)
			}
			if c := cycle(tt.states); len(c) == 0 || c[0].ID != tt.cycleStart {
				t.Errorf("cycle starts at %v, want %s", c, tt.cycleStart)
			}
		})
	}
}

func TestOnlyStateAfter(t *testing.T) {
	h := history("SCHEDULED:Scheduled", "PENDING:Pending", "PENDING:Recovering")
	if !onlyStateAfter(h, "s1", "s2") {
		t.Error("a lock right after the judged state, alone, does not stand")
	}
	racing := history("SCHEDULED:Scheduled", "PENDING:Pending", "PENDING:Recovering", "PENDING:Recovering")
	if onlyStateAfter(racing, "s1", "s2") || onlyStateAfter(racing, "s1", "s3") {
		t.Error("of two locks that see each other, one stands; want neither")
	}
	if onlyStateAfter(h, "gone", "s2") {
		t.Error("a lock stands although the judged state is not in the history")
	}
}

func TestTransitionID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := transitionID("state-1", "crash"), transitionID("state-1", "crash")
	if a != b || !uuid.MatchString(a) {
		t.Errorf("transitionID = %q and %q; want one stable UUID", a, b)
	}
	if transitionID("state-1", "reschedule") == a || transitionID("state-2", "crash") == a {
		t.Error("transitionID does not depend on both the state and the purpose")
	}
}

func TestAttempt_Token(t *testing.T) {
	a := Attempt{FlowRunID: "0f6d3c57-58f4-4b8c-9c6e-0c2b8b7e4d21", ClaimID: "c1"}
	tok := a.Token()
	if len(tok) > 64 || !regexp.MustCompile(`^[a-z0-9-]+$`).MatchString(tok) {
		t.Errorf("Token %q does not fit ECS's clientToken and startedBy", tok)
	}
	if a.Key() == (Attempt{FlowRunID: a.FlowRunID, ClaimID: "c2"}).Key() {
		t.Error("two claims of one run share a key")
	}
	run, key, ok := ParseToken(tok)
	if !ok || run != a.FlowRunID || key != a.Key() {
		t.Errorf("ParseToken(%q) = %q, %q, %v", tok, run, key, ok)
	}
	for _, bad := range []string{a.FlowRunID, "", "x-1234567", "run-ABCDEF12", "run_12345678"} {
		if _, _, ok := ParseToken(bad); ok {
			t.Errorf("ParseToken(%q) accepted a token pushpool never makes", bad)
		}
	}
}

func TestSpread(t *testing.T) {
	var page []prefect.ScheduledRun
	for q, n := range []int{5, 50, 3} {
		for i := range n {
			page = append(page, prefect.ScheduledRun{WorkQueueID: fmt.Sprintf("q%d", q), FlowRun: prefect.FlowRun{ID: fmt.Sprintf("q%d-%02d", q, i)}})
		}
	}
	a, b := spread(page), spread(page)
	id := func(r prefect.ScheduledRun) string { return r.FlowRun.ID }
	for _, got := range [][]prefect.ScheduledRun{a, b} {
		// Queues keep their order (priority), each run once.
		queues := []string{}
		for _, r := range got {
			if len(queues) == 0 || queues[len(queues)-1] != r.WorkQueueID {
				queues = append(queues, r.WorkQueueID)
			}
		}
		if !slices.Equal(queues, []string{"q0", "q1", "q2"}) {
			t.Errorf("queue order after spread = %v", queues)
		}
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = id(r)
		}
		slices.Sort(ids)
		want := make([]string, len(page))
		for i, r := range page {
			want[i] = id(r)
		}
		if !slices.Equal(ids, want) {
			t.Error("spread lost or duplicated runs")
		}
	}
	if slices.EqualFunc(a, b, func(x, y prefect.ScheduledRun) bool { return id(x) == id(y) }) {
		t.Error("two spreads of a 58-run page gave the same order; dispatchers would race for the same runs")
	}
}

func TestStartTimeout(t *testing.T) {
	def := 5 * time.Minute
	tests := []struct {
		cfg  map[string]any
		want time.Duration
	}{
		{map[string]any{}, def},
		{map[string]any{"task_start_timeout_seconds": float64(240)}, 240 * time.Second},
		{map[string]any{"task_start_timeout_seconds": json.Number("300")}, 300 * time.Second},
		{map[string]any{"task_start_timeout_seconds": nil}, def},
		{map[string]any{"task_start_timeout_seconds": float64(0)}, def},
	}
	for _, tt := range tests {
		if got := startTimeout(tt.cfg, def); got != tt.want {
			t.Errorf("startTimeout(%v) = %s, want %s", tt.cfg, got, tt.want)
		}
	}
}
