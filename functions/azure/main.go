// Command handler is pushpool's Azure Functions custom handler: the web
// server the Functions host starts from host.json and posts each
// invocation to. Three functions share it (functions/azure/app): tick, a
// timer trigger that dispatches and reconciles the pools every minute;
// fanout, a Storage queue trigger for fan-out shards and delayed wake-ups;
// webhook, an HTTP trigger for signed flow-run announcements. See
// README.md, "Deploying on Azure", and infra/azure.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: fnapp.LogLevel(os.LookupEnv)}))
	if err := run(logger); err != nil {
		// The host logs the handler's standard error; "error" in the line
		// makes it an error there.
		fmt.Fprintln(os.Stderr, "pushpool: error: "+err.Error())
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	port, ok := os.LookupEnv(EnvPort)
	if !ok || port == "" {
		return fmt.Errorf("%s is not set: the Functions host sets it when it starts the handler; to run the handler by hand, set it to a free port", EnvPort)
	}
	fn, err := newFunction(linked(), os.LookupEnv, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The host calls 127.0.0.1; nothing else needs to reach the handler.
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), Handler: fn.routes(), ReadHeaderTimeout: 30 * time.Second}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		// Let invocations under way answer, within the host's own grace.
		shutdown, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("pushpool handler listening", slog.String("addr", srv.Addr))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", srv.Addr, err)
	}
	<-drained
	return nil
}
