package prefect

import (
	"context"
	"fmt"
)

// Health checks that the server answers; it returns an error that says how to
// fix the connection when it does not.
func (c *Client) Health(ctx context.Context) error {
	if _, err := get[bool](ctx, c, routeHealth); err != nil {
		return fmt.Errorf("check Prefect server health: %w", err)
	}
	return nil
}

// APIVersion returns the server's REST API version, e.g. "0.8.4".
func (c *Client) APIVersion(ctx context.Context) (string, error) {
	return get[string](ctx, c, routeAPIVersion)
}

// ServerVersion returns the Prefect package version the server runs, e.g. "3.9.1".
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	return get[string](ctx, c, routeServerVersion)
}
