package template

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/pushpool/pushpool/internal/localstack"
)

// srv is the Prefect server the differential test renders against.
var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

// prefectAPI is a minimal client for the Prefect REST API: enough to seed
// the server and to resolve placeholders the way the dispatcher will.
type prefectAPI struct {
	base   string
	client *http.Client
}

func newPrefectAPI(base string) *prefectAPI {
	return &prefectAPI{base: base, client: &http.Client{Timeout: 30 * time.Second}}
}

// apiStatusError is a non-2xx answer.
type apiStatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiStatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// do sends body as JSON and decodes the answer with UseNumber into out. A
// 503, which the SQLite-backed server answers while its database is busy, is
// retried a few times.
func (a *prefectAPI) do(ctx context.Context, method, path string, body, out any) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
			}
		}
		err = a.doOnce(ctx, method, path, body, out)
		if !isStatus(err, http.StatusServiceUnavailable) {
			return err
		}
	}
	return err
}

func (a *prefectAPI) doOnce(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiStatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func isStatus(err error, code int) bool {
	var se *apiStatusError
	return errors.As(err, &se) && se.Status == code
}

// httpResolver is the Resolver the dispatcher will have, over plain HTTP.
type httpResolver struct{ api *prefectAPI }

var _ Resolver = httpResolver{}

func (r httpResolver) Variable(ctx context.Context, name string) (any, bool, error) {
	var v struct {
		Value any `json:"value"`
	}
	err := r.api.do(ctx, http.MethodGet, "/variables/name/"+url.PathEscape(name), nil, &v)
	if isStatus(err, http.StatusNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read variable: %w", err)
	}
	return v.Value, true, nil
}

func (r httpResolver) BlockDocumentByID(ctx context.Context, id string) (map[string]any, error) {
	return r.block(ctx, "/block_documents/"+url.PathEscape(id)+"?include_secrets=true")
}

func (r httpResolver) BlockDocumentByName(ctx context.Context, typeSlug, name string) (map[string]any, error) {
	return r.block(ctx, "/block_types/slug/"+url.PathEscape(typeSlug)+"/block_documents/name/"+url.PathEscape(name)+"?include_secrets=true")
}

func (r httpResolver) block(ctx context.Context, path string) (map[string]any, error) {
	var doc struct {
		Data map[string]any `json:"data"`
	}
	err := r.api.do(ctx, http.MethodGet, path, nil, &doc)
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("read block document: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read block document: %w", err)
	}
	return doc.Data, nil
}
