package main

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pushpool/pushpool/internal/localstack"
)

// serverDB reads the Prefect server's PostgreSQL database directly, so
// the figures use the server's own timestamps and cost the contenders
// nothing: claims are the runs' first PENDING states, and a trigger stamps
// the moment each run's infrastructure_pid is first written.
type serverDB struct {
	pg *localstack.Postgres
}

// installPIDTrigger creates pgbench_pid and the trigger that fills it: the
// database's clock_timestamp() when a flow run's infrastructure_pid is
// first set (flow_run.updated moves with every later write, labels
// included).
func (db *serverDB) installPIDTrigger(ctx context.Context) error {
	_, err := db.pg.Query(ctx, `
CREATE TABLE pgbench_pid (flow_run_id uuid PRIMARY KEY, recorded timestamptz NOT NULL);
CREATE FUNCTION pgbench_pid_recorded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pgbench_pid VALUES (NEW.id, clock_timestamp()) ON CONFLICT (flow_run_id) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER pgbench_pid AFTER UPDATE OF infrastructure_pid ON flow_run FOR EACH ROW
  WHEN (NEW.infrastructure_pid IS NOT NULL AND NEW.infrastructure_pid IS DISTINCT FROM OLD.infrastructure_pid)
  EXECUTE FUNCTION pgbench_pid_recorded();`)
	if err != nil {
		return fmt.Errorf("install the infrastructure_pid trigger in the Prefect database (has Prefect created its tables?): %w", err)
	}
	return nil
}

var uuidText = regexp.MustCompile(`^[0-9a-f-]{36}$`)

// recorded counts the runs of a deployment whose infrastructure_pid was set.
func (db *serverDB) recorded(ctx context.Context, deploymentID string) (int, error) {
	if !uuidText.MatchString(deploymentID) {
		return 0, fmt.Errorf("deployment id %q is not a UUID", deploymentID)
	}
	out, err := db.pg.Query(ctx, `SELECT count(*) FROM pgbench_pid p JOIN flow_run fr ON fr.id = p.flow_run_id WHERE fr.deployment_id = '`+deploymentID+`'`)
	if err != nil {
		return 0, fmt.Errorf("count the recorded runs: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("count the recorded runs: %q: %w", out, err)
	}
	return n, nil
}

// runTimes is one run's server-side timeline. Zero times are missing
// (not claimed, no pid recorded).
type runTimes struct {
	id        string
	due       time.Time // expected_start_time
	claimed   time.Time // first PENDING state
	recorded  time.Time // infrastructure_pid first set
	stateType string
	stateName string
}

// timelines returns the timeline of every run of a deployment.
func (db *serverDB) timelines(ctx context.Context, deploymentID string) ([]runTimes, error) {
	if !uuidText.MatchString(deploymentID) {
		return nil, fmt.Errorf("deployment id %q is not a UUID", deploymentID)
	}
	out, err := db.pg.Query(ctx, `
SELECT fr.id,
  extract(epoch FROM fr.expected_start_time),
  (SELECT extract(epoch FROM min(s.timestamp)) FROM flow_run_state s WHERE s.flow_run_id = fr.id AND s.type = 'PENDING'),
  (SELECT extract(epoch FROM p.recorded) FROM pgbench_pid p WHERE p.flow_run_id = fr.id),
  fr.state_type, fr.state_name
FROM flow_run fr WHERE fr.deployment_id = '`+deploymentID+`' ORDER BY fr.expected_start_time`)
	if err != nil {
		return nil, fmt.Errorf("read the runs' timelines: %w", err)
	}
	return parseTimelines(out)
}

// parseTimelines parses psql's unaligned rows "id|due|claimed|recorded|
// type|name" with epoch seconds; an empty field is NULL.
func parseTimelines(out string) ([]runTimes, error) {
	var runs []runTimes
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 6 {
			return nil, fmt.Errorf("timeline row %q: %d fields, want 6", line, len(f))
		}
		r := runTimes{id: f[0], stateType: f[4], stateName: f[5]}
		for i, dst := range []*time.Time{&r.due, &r.claimed, &r.recorded} {
			t, err := parseEpoch(f[1+i])
			if err != nil {
				return nil, fmt.Errorf("timeline row %q: %w", line, err)
			}
			*dst = t
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// parseEpoch parses seconds since the epoch with a fraction; "" is the
// zero time.
func parseEpoch(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("epoch %q is not a number", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3), nil
}

// burstSpan is what a burst's timelines say: how many runs were claimed
// and recorded, the first claim and the last recording.
type burstSpan struct {
	runs, claimed, recorded int
	firstClaim, lastRecord  time.Time
	states                  map[string]int // "TYPE/Name" of the runs at the end
}

// span summarises a burst's timelines.
func span(runs []runTimes) burstSpan {
	s := burstSpan{runs: len(runs), states: map[string]int{}}
	for _, r := range runs {
		s.states[r.stateType+"/"+r.stateName]++
		if !r.claimed.IsZero() {
			s.claimed++
			if s.firstClaim.IsZero() || r.claimed.Before(s.firstClaim) {
				s.firstClaim = r.claimed
			}
		}
		if !r.recorded.IsZero() {
			s.recorded++
			if r.recorded.After(s.lastRecord) {
				s.lastRecord = r.recorded
			}
		}
	}
	return s
}

// throughput is recorded runs per second from the first claim to the last
// recording.
func (s burstSpan) throughput() float64 {
	if s.firstClaim.IsZero() || s.lastRecord.IsZero() {
		return 0
	}
	return rate(s.recorded, s.lastRecord.Sub(s.firstClaim))
}
