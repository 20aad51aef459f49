package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// sqsMaxDelay is SQS's longest delivery delay.
const sqsMaxDelay = 15 * time.Minute

// sqsQueue sends shards and wake-ups through the function's SQS queue; a
// wake-up is a message with a delivery delay.
type sqsQueue struct {
	client *sqs.Client
	url    string
	now    func() time.Time
}

func (q *sqsQueue) MaxDelay() time.Duration { return sqsMaxDelay }

func (q *sqsQueue) Send(ctx context.Context, m invoke.Message, at time.Time) error {
	now := time.Now
	if q.now != nil {
		now = q.now
	}
	// SQS counts whole seconds: round up, so a wake-up never comes early.
	delay := int32(0)
	if d := at.Sub(now()); d > 0 {
		delay = int32(math.Ceil(d.Seconds()))
		if delay > int32(sqsMaxDelay/time.Second) {
			return fmt.Errorf("wake-up for flow run %v is %v ahead; SQS delays at most %v", m.FlowRunIDs, d.Round(time.Second), sqsMaxDelay)
		}
	}
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(q.url), MessageBody: aws.String(string(m.Encode())), DelaySeconds: delay,
	})
	if err != nil {
		return fmt.Errorf("send to SQS queue %s: %w; the function's role needs sqs:SendMessage on it", q.url, err)
	}
	return nil
}
