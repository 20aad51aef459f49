package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// runLogName is the logger name dispatch lines carry in a run's logs.
const runLogName = "pushpool.dispatch"

// runLog collects what the dispatcher decided about one flow run and writes
// it to that run's logs in Prefect, so a user sees in the UI why their run was
// started, crashed or cancelled. Every line also goes to the process log.
type runLog struct {
	api       API
	flowRunID string
	log       *slog.Logger
	// batch, when set, takes the lines at flush to be written with other
	// runs' lines (see logBatch).
	batch *logBatch

	mu    sync.Mutex
	lines []prefect.Log
}

func newRunLog(api API, flowRunID string, log *slog.Logger) *runLog {
	return &runLog{api: api, flowRunID: flowRunID, log: log}
}

func (l *runLog) add(level int, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, prefect.Log{Name: runLogName, Level: level, Message: msg, Timestamp: time.Now().UTC(), FlowRunID: l.flowRunID})
	l.mu.Unlock()
	l.log.Log(context.Background(), slogLevel(level), msg)
}

// flush writes the collected lines to Prefect. A failure is logged locally:
// losing a log line must not change what happened to the run.
func (l *runLog) flush(ctx context.Context) {
	l.mu.Lock()
	lines := l.lines
	l.lines = nil
	l.mu.Unlock()
	if l.batch != nil {
		l.batch.add(ctx, lines)
		return
	}
	if len(lines) == 0 {
		return
	}
	if err := l.api.CreateLogs(ctx, lines); err != nil {
		l.log.WarnContext(ctx, "could not write dispatch log lines to the flow run", slog.Int("lines", len(lines)), slog.String("error", err.Error()))
	}
}

func slogLevel(prefectLevel int) slog.Level {
	switch {
	case prefectLevel >= prefect.LogError:
		return slog.LevelError
	case prefectLevel >= prefect.LogWarning:
		return slog.LevelWarn
	case prefectLevel >= prefect.LogInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
