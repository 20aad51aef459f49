package chaos

import (
	"testing"
	"time"
)

// TestChaos is the CI form of make chaos: 250 runs, six
// dispatchers killed and restarted at random, over 10% of the requests to
// Prefect (on PostgreSQL) and to AWS (moto) faulted. Every run must start
// exactly once and none may be lost.
func TestChaos(t *testing.T) {
	bin, err := BuildPushpool(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(t.Context(), Config{
		Pushpool: bin, Runs: 250, Dispatchers: 6, Spread: 30 * time.Second,
		FaultRate: 0.12, KillEvery: 3 * time.Second, Deadline: 6 * time.Minute,
		Log: testWriter{t},
	})
	t.Log("\n" + rep.String())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("chaos found runs started twice or lost")
	}
	if rep.Kills == 0 || rep.PrefectFaults.Faults() == 0 || rep.AWSFaults.Faults() == 0 {
		t.Errorf("the run had %d kills, %d Prefect faults and %d AWS faults; want some of each", rep.Kills, rep.PrefectFaults.Faults(), rep.AWSFaults.Faults())
	}
	if rep.Submitted+rep.Crashed != rep.Runs {
		t.Errorf("%d runs submitted and %d crashed of %d", rep.Submitted, rep.Crashed, rep.Runs)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
