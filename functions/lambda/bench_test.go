package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// BenchmarkDueToClaim measures how late a run due between two ticks is
// claimed, side by side: woken by a delayed SQS message that the tick sent
// (moto's SQS, long-polled as Lambda's event source does), and by ticks
// alone every 10 seconds. Lookahead is 1s in both, so the figure is
// lateness, not prefetch. Reported: late-ms (mean due → claim).
func BenchmarkDueToClaim(b *testing.B) {
	const tick = 10 * time.Second
	for _, mode := range []string{"wake-up", "ticks-only"} {
		b.Run(mode, func(b *testing.B) {
			s := newStack(b, 20)
			s.env["PREFECT_WORKER_PREFETCH_SECONDS"] = "1"
			if mode == "ticks-only" {
				delete(s.env, EnvQueueURL)
			}
			f := s.function()
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				// Due at a random point between this tick and the next.
				due := time.Now().Add(time.Duration(rand.Int64N(int64(tick))))
				run := s.run(due)
				next := time.Now()
				for {
					if time.Now().After(next) {
						if _, err := f.Handle(b.Context(), testdata(b, "scheduler-tick.json")); err != nil {
							b.Fatal(err)
						}
						next = next.Add(tick)
					}
					if mode == "wake-up" {
						out, err := s.sqs.ReceiveMessage(b.Context(), &sqs.ReceiveMessageInput{QueueUrl: &s.queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
						if err != nil {
							b.Fatal(err)
						}
						if len(out.Messages) > 0 {
							s.deliver(f, out.Messages)
							for _, m := range out.Messages {
								_, _ = s.sqs.DeleteMessage(b.Context(), &sqs.DeleteMessageInput{QueueUrl: &s.queueURL, ReceiptHandle: m.ReceiptHandle})
							}
						}
					} else {
						time.Sleep(200 * time.Millisecond)
					}
					if s.read(run.ID).InfrastructurePID != nil {
						break
					}
				}
				total += claimTime(b, s.api, run.ID).Sub(due)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "late-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
