package prefect

import (
	"context"
	"time"
)

// Log levels, as Python's logging module numbers them.
const (
	LogDebug   = 10
	LogInfo    = 20
	LogWarning = 30
	LogError   = 40
)

// Log is one log line attached to a flow run.
type Log struct {
	Name      string    `json:"name"`
	Level     int       `json:"level"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	FlowRunID string    `json:"flow_run_id,omitempty"`
}

// CreateLogs writes log lines; they show in the flow run's logs in the UI.
func (c *Client) CreateLogs(ctx context.Context, logs []Log) error {
	if len(logs) == 0 {
		return nil
	}
	return c.do(ctx, call{route: routeLogsCreate, body: logs})
}

// ReadFlowRunLogs returns a flow run's logs, oldest first.
func (c *Client) ReadFlowRunLogs(ctx context.Context, flowRunID string) ([]Log, error) {
	return pageAll(func(offset, limit int) ([]Log, error) {
		body := map[string]any{"offset": offset, "limit": limit, "sort": "TIMESTAMP_ASC",
			"logs": map[string]any{"flow_run_id": map[string]any{"any_": []string{flowRunID}}}}
		return post[[]Log](ctx, c, routeLogsFilter, body)
	})
}
