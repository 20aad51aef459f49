// Command gcp is pushpool's Google Cloud function: an HTTP server on $PORT,
// deployable as a Cloud Run service or a Cloud Run function (Cloud
// Functions gen2). It takes Cloud Scheduler ticks and fan-out shards
// through Pub/Sub (push subscriptions or Eventarc triggers), delayed
// wake-ups from Cloud Tasks, and the signed webhook on /webhook. See
// README.md, "Deploying on Google Cloud", and infra/gcp.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

// shutdownGrace is how long in-flight requests may finish after SIGTERM;
// Cloud Run kills the instance 10 seconds after it.
const shutdownGrace = 9 * time.Second

func main() {
	logger := slog.New(newCloudLoggingHandler(os.Stderr, fnapp.LogLevel(os.LookupEnv)))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fn, err := newFunction(ctx, linked(), os.LookupEnv, logger)
	if err != nil {
		// Fail the start with the reason; Cloud Run shows it in the
		// revision's logs and does not route traffic to the instance.
		fmt.Fprintln(os.Stderr, "pushpool: "+err.Error())
		os.Exit(1)
	}
	if err := serve(ctx, fn, logger); err != nil {
		fmt.Fprintln(os.Stderr, "pushpool: "+err.Error())
		os.Exit(1)
	}
}

// serve listens on the configured port until ctx ends, then lets requests
// in flight finish.
func serve(ctx context.Context, fn *function, logger *slog.Logger) error {
	defer fn.Close()
	ln, err := net.Listen("tcp", ":"+fn.cfg.Port)
	if err != nil {
		return fmt.Errorf("listen on %s=%s: %w", EnvPort, fn.cfg.Port, err)
	}
	srv := &http.Server{Handler: fn, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "serving", slog.String("port", fn.cfg.Port), slog.Bool("events", fn.cfg.Routes.Events), slog.Bool("webhook", fn.cfg.Routes.Webhook))
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// newCloudLoggingHandler writes JSON lines that Cloud Logging reads as
// structured entries: "severity" and "message" instead of slog's "level"
// and "msg".
func newCloudLoggingHandler(w io.Writer, level slog.Level) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.MessageKey:
			a.Key = "message"
		case slog.LevelKey:
			a.Key = "severity"
			if l, ok := a.Value.Any().(slog.Level); ok {
				switch {
				case l >= slog.LevelError:
					a.Value = slog.StringValue("ERROR")
				case l >= slog.LevelWarn:
					a.Value = slog.StringValue("WARNING")
				case l >= slog.LevelInfo:
					a.Value = slog.StringValue("INFO")
				default:
					a.Value = slog.StringValue("DEBUG")
				}
			}
		}
		return a
	}})
}
