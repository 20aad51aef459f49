package localstack

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// RunTestsWithPrefect is the body of a TestMain for packages whose tests talk
// to a real Prefect server: it starts one server for the package, hands it to
// use, runs the tests and stops the server. When the server cannot start the
// package fails with the reason; integration tests are never skipped.
//
//	var srv *localstack.Prefect
//	func TestMain(m *testing.M) {
//		os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
//	}
func RunTestsWithPrefect(m *testing.M, opts PrefectOptions, use func(*Prefect)) int {
	return runTestsWith(m, func(ctx context.Context) (*Prefect, error) { return StartPrefect(ctx, opts) }, use)
}

// RunTestsWithPrefectOnPostgres is RunTestsWithPrefect with the server on a
// throwaway PostgreSQL database (StartPrefectOnPostgres), for packages whose
// tests load the server with many concurrent clients.
func RunTestsWithPrefectOnPostgres(m *testing.M, opts PrefectOptions, pg PostgresOptions, use func(*Prefect)) int {
	return runTestsWith(m, func(ctx context.Context) (*Prefect, error) { return StartPrefectOnPostgres(ctx, opts, pg) }, use)
}

func runTestsWith(m *testing.M, start func(context.Context) (*Prefect, error), use func(*Prefect)) int {
	p, err := start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the integration tests need a real Prefect server and it did not start: %v\n", err)
		fmt.Fprintln(os.Stderr, "Fix: run `infra/local/stack.sh venv` to see the install output, or `make test` which prepares everything.")
		return 1
	}
	// The line below is what `make test` shows to prove which server the tests used.
	if p.Postgres != nil {
		fmt.Printf("pushpool-env: Prefect %s server at %s on %s\n", p.Version, p.URL, p.Postgres.Version)
	} else {
		fmt.Printf("pushpool-env: Prefect %s server at %s\n", p.Version, p.URL)
	}
	use(p)
	code := m.Run()
	if err := p.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the Prefect server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
