package prefect

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// routeEventsCountBy counts events by day, time, event name or resource.
const routeEventsCountBy route = "POST /events/count-by/{countable}"

// Event is a Prefect event.
type Event struct {
	ID       string              `json:"id"`
	Occurred time.Time           `json:"occurred"`
	Event    string              `json:"event"`
	Resource map[string]string   `json:"resource"`
	Related  []map[string]string `json:"related,omitempty"`
	Payload  map[string]any      `json:"payload,omitempty"`
	Follows  *string             `json:"follows,omitempty"`
}

// EventFilter selects events; empty fields select everything.
type EventFilter struct {
	// Since and Until bound the occurred time. The server looks back one day
	// when Since is nil.
	Since, Until *time.Time
	// Names are exact event names, e.g. prefect.flow-run.heartbeat.
	Names []string
	// ResourceIDs are exact resource ids, e.g. prefect.flow-run.<id>.
	ResourceIDs []string
	// Newest first when true; oldest first otherwise.
	Descending bool
}

func (f EventFilter) body(limit int) map[string]any {
	return map[string]any{"filter": f.filter(), "limit": limit}
}

func (f EventFilter) filter() map[string]any {
	filter := map[string]any{}
	occurred := map[string]any{}
	if f.Since != nil {
		occurred["since"] = f.Since.UTC()
	}
	if f.Until != nil {
		occurred["until"] = f.Until.UTC()
	}
	if len(occurred) > 0 {
		filter["occurred"] = occurred
	}
	if len(f.Names) > 0 {
		filter["event"] = map[string]any{"name": f.Names}
	}
	if len(f.ResourceIDs) > 0 {
		filter["resource"] = map[string]any{"id": f.ResourceIDs}
	}
	if f.Descending {
		filter["order"] = "DESC"
	} else {
		filter["order"] = "ASC"
	}
	return filter
}

type eventPage struct {
	Events   []Event `json:"events"`
	Total    int     `json:"total"`
	NextPage *string `json:"next_page"`
}

// ReadEvents returns up to max events the filter selects (all of them when
// max is 0), following the server's page tokens.
func (c *Client) ReadEvents(ctx context.Context, f EventFilter, max int) ([]Event, error) {
	limit := 50
	if max > 0 && max < limit {
		limit = max
	}
	page, err := post[eventPage](ctx, c, routeEventsFilter, f.body(limit))
	if err != nil {
		return nil, err
	}
	events := page.Events
	for page.NextPage != nil && (max == 0 || len(events) < max) {
		next, err := url.Parse(*page.NextPage)
		if err != nil {
			break
		}
		token := next.Query().Get("page-token")
		if token == "" {
			break
		}
		page = eventPage{}
		if err := c.do(ctx, call{route: routeEventsNext, query: url.Values{"page-token": {token}}, out: &page}); err != nil {
			return nil, err
		}
		events = append(events, page.Events...)
	}
	if max > 0 && len(events) > max {
		events = events[:max]
	}
	return events, nil
}

// EmitEvents sends events to the server. An event without an id gets one.
func (c *Client) EmitEvents(ctx context.Context, events []Event) error {
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = newUUID()
		}
		if events[i].Occurred.IsZero() {
			events[i].Occurred = time.Now().UTC()
		}
	}
	return c.do(ctx, call{route: routeEventsEmit, body: events})
}

// EventCount is one group of events counted by CountEventsByResource.
type EventCount struct {
	// Value is what the events were grouped by: the resource id.
	Value string `json:"value"`
	// Label is the resource's name, else its id.
	Label string `json:"label"`
	// Count is how many events the group holds.
	Count int `json:"count"`
	// StartTime and EndTime are when the group's oldest and newest events
	// occurred.
	StartTime time.Time `json:"start_time"`
	EndTime   time.Time `json:"end_time"`
}

// CountEventsByResource counts the events the filter selects per resource,
// in one request however many resources match: each group's EndTime is the
// newest event of its resource. Since and Until should be set (the server
// looks back 180 days when Since is nil); the range may span up to 1,000
// days. Descending is ignored.
func (c *Client) CountEventsByResource(ctx context.Context, f EventFilter) ([]EventCount, error) {
	body := map[string]any{"filter": f.filter(), "time_unit": "day", "time_interval": 1}
	counts, err := post[[]EventCount](ctx, c, routeEventsCountBy, body, "resource")
	if err != nil {
		return nil, fmt.Errorf("count events by resource: %w", err)
	}
	return counts, nil
}
