// Command bootstrap is pushpool's AWS Lambda function (provided.al2023,
// built with -tags lambda.norpc). One handler takes an EventBridge
// Scheduler tick, an SQS batch of fan-out shards, wake-ups and ECS task
// state changes, an ECS task state change from EventBridge directly, and a
// signed webhook through a Function URL or API Gateway. See README.md,
// "Deploying on AWS", and infra/aws.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: fnapp.LogLevel(os.LookupEnv)}))
	fn, err := newFunction(context.Background(), linked(), os.LookupEnv, logger)
	if err != nil {
		// Fail the init phase with the reason; Lambda shows it in the
		// function's logs and every invocation reports it.
		fmt.Fprintln(os.Stderr, "pushpool: "+err.Error())
		os.Exit(1)
	}
	lambda.StartWithOptions(fn.Handle)
}
