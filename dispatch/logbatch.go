package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// logBatch collects the dispatch log lines of many runs and writes them to
// Prefect together: one request for the lines of a pass's runs instead of
// one per run. Lines are written once maxBatchLines wait or the oldest has
// waited maxBatchDelay (so a user watching a long pass still sees them
// soon, as Prefect's own log handler batches every two seconds), and when
// the pass ends.
type logBatch struct {
	api interface {
		CreateLogs(ctx context.Context, logs []prefect.Log) error
	}
	log *slog.Logger

	mu     sync.Mutex
	lines  []prefect.Log
	oldest time.Time
}

const (
	maxBatchLines = 200
	maxBatchDelay = 2 * time.Second
)

// add queues lines, and writes the queue when it is due.
func (b *logBatch) add(ctx context.Context, lines []prefect.Log) {
	if len(lines) == 0 {
		return
	}
	b.mu.Lock()
	if len(b.lines) == 0 {
		b.oldest = time.Now()
	}
	b.lines = append(b.lines, lines...)
	var due []prefect.Log
	if len(b.lines) >= maxBatchLines || time.Since(b.oldest) >= maxBatchDelay {
		due, b.lines = b.lines, nil
	}
	b.mu.Unlock()
	b.write(ctx, due)
}

// flush writes whatever is queued.
func (b *logBatch) flush(ctx context.Context) {
	b.mu.Lock()
	due := b.lines
	b.lines = nil
	b.mu.Unlock()
	b.write(ctx, due)
}

// write sends lines; a failure is logged locally: losing a log line must
// not change what happened to the runs.
func (b *logBatch) write(ctx context.Context, lines []prefect.Log) {
	if len(lines) == 0 {
		return
	}
	if err := b.api.CreateLogs(ctx, lines); err != nil {
		b.log.WarnContext(ctx, "could not write dispatch log lines to their flow runs", slog.Int("lines", len(lines)), slog.String("error", err.Error()))
	}
}
