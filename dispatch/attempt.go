package dispatch

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// The names of the states pushpool writes. A run's history reads, for one
// attempt: Scheduled → Pending (the claim) → the flow's own states; or, when
// the attempt is given up, Pending → Requeued (a submission that may succeed
// later) or Pending → Recovering → Rescheduled (an abandoned claim).
const (
	// stateClaim is the claim, named as Prefect's workers name it. The first
	// PENDING state of this name after a SCHEDULED one starts an attempt.
	stateClaim = "Pending"
	// stateRecovering and stateRecoveringAgain are the PENDING states that
	// lock the recovery of an abandoned claim to one dispatcher: Prefect
	// aborts a PENDING proposal that repeats the current state's name, so of
	// the dispatchers proposing the same name over the same state, one wins.
	// The two names alternate when a recovery itself is recovered.
	stateRecovering      = "Recovering"
	stateRecoveringAgain = "Recovering again"
	// stateRescheduled is the SCHEDULED state an abandoned claim is put back
	// to, stateRequeued the one a claimed run whose infrastructure could not
	// start yet (throttling, quota, a deadline) is put back to.
	stateRescheduled = "Rescheduled"
	stateRequeued    = "Requeued"
)

// sortedStates returns a run's state history oldest first. The server's
// order is its timestamps'; a stable sort keeps ties as sent.
func sortedStates(states []prefect.State) []prefect.State {
	out := slices.Clone(states)
	slices.SortStableFunc(out, func(a, b prefect.State) int { return stateTime(a).Compare(stateTime(b)) })
	return out
}

// currentAttempt returns the attempt a run's history shows: its claim is
// the first PENDING state named "Pending" after the last SCHEDULED state.
// ok is false when the run was not claimed since it was last scheduled
// (it was started by something else, or it is Scheduled).
func currentAttempt(runID string, states []prefect.State) (a Attempt, claim prefect.State, ok bool) {
	states = sortedStates(states)
	from := 0
	for i := len(states) - 1; i >= 0; i-- {
		if states[i].Type == prefect.StateScheduled {
			from = i + 1
			break
		}
	}
	for _, st := range states[from:] {
		if st.Type == prefect.StatePending && st.Name == stateClaim {
			return Attempt{FlowRunID: runID, ClaimID: st.ID}, st, true
		}
	}
	return Attempt{}, prefect.State{}, false
}

// attemptOfClaimState returns the attempt a run's current state is the
// claim of, without reading its history: a PENDING state named "Pending" is
// always the claim that started the current attempt.
func attemptOfClaimState(run prefect.FlowRun) (Attempt, bool) {
	if run.State == nil || run.State.Type != prefect.StatePending || run.State.Name != stateClaim || run.State.ID == "" {
		return Attempt{}, false
	}
	return Attempt{FlowRunID: run.ID, ClaimID: run.State.ID}, true
}

// cycle returns the run's latest claim cycle, oldest first: walking back
// from the newest state over PENDING states and pushpool's own SCHEDULED
// states (Rescheduled, Requeued), up to the first other state — a user's
// Scheduled, Late, AwaitingRetry, Resuming, or a RUNNING or final state. A
// run that is run again therefore starts a new cycle.
func cycle(states []prefect.State) []prefect.State {
	states = sortedStates(states)
	i := len(states)
	for i > 0 {
		st := states[i-1]
		own := st.Type == prefect.StatePending ||
			(st.Type == prefect.StateScheduled && (st.Name == stateRescheduled || st.Name == stateRequeued))
		if !own {
			break
		}
		i--
	}
	return states[i:]
}

// cycleCount counts the states named name in the run's latest claim cycle.
func cycleCount(states []prefect.State, name string) int {
	n := 0
	for _, st := range cycle(states) {
		if st.Name == name {
			n++
		}
	}
	return n
}

// reschedulesReclaimed counts the Rescheduled states of the run's latest
// claim cycle that a claim followed: how often an abandoned claim was put
// back to the schedule and claimed again.
func reschedulesReclaimed(states []prefect.State) int {
	n, pending := 0, false
	for _, st := range cycle(states) {
		switch {
		case st.Type == prefect.StateScheduled && st.Name == stateRescheduled:
			pending = true
		case pending && st.Type == prefect.StatePending && st.Name == stateClaim:
			n++
			pending = false
		}
	}
	return n
}

// recoveryLockName is the name of the PENDING state that locks the recovery
// of a run whose current state is named current.
func recoveryLockName(current string) string {
	if current == stateRecovering {
		return stateRecoveringAgain
	}
	return stateRecovering
}

// transitionID derives the transition id of a write from the state it was
// judged on and its purpose, for a writer that holds the run alone (a
// claim's owner, a recovery's winner): a retry of its write after a lost
// answer is recognised as its own. Writes that several dispatchers may make
// at once (crashing a run whose job failed) use fresh ids instead, so that
// orchestration tells the losers; one exception is Cancelled, which Prefect
// would otherwise accept twice.
func transitionID(stateID, purpose string) string {
	sum := sha256.Sum256([]byte(stateID + "/" + purpose))
	h := hex.EncodeToString(sum[:16])
	// Version 5 and the RFC 4122 variant, so the server takes it as a UUID.
	b := []byte(h)
	b[12] = '5'
	b[16] = "89ab"[sum[8]&3]
	h = string(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// stateAge is how long ago, on the server's clock, st was entered.
func stateAge(now time.Time, st prefect.State) time.Duration {
	return now.Sub(stateTime(st))
}
