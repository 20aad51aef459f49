package main

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestPrefectRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		upgrade      bool
		want         string
	}{
		{"POST", "/api/flow_runs/0b9b5c4e-2f0a-4c43-9d7b-3a1d2c0e4f11/set_state", false, "POST /flow_runs/{id}/set_state"},
		{"PATCH", "/api/flow_runs/0B9B5C4E-2F0A-4C43-9D7B-3A1D2C0E4F11", false, "PATCH /flow_runs/{id}"},
		{"POST", "/api/work_pools/pgbench-01-worker/get_scheduled_flow_runs", false, "POST /work_pools/{name}/get_scheduled_flow_runs"},
		{"POST", "/api/work_pools/my pool/workers/heartbeat", false, "POST /work_pools/{name}/workers/heartbeat"},
		{"POST", "/api/work_pools/filter", false, "POST /work_pools/filter"},
		{"POST", "/api/logs/", false, "POST /logs"},
		{"GET", "/api/events/in", true, "GET /events/in (websocket)"},
		{"GET", "/api/variables/name/x", false, "GET /variables/name/x"},
		{"GET", "/api/", false, "GET /"},
	}
	for _, tt := range tests {
		if got := prefectRoute(tt.method, tt.path, tt.upgrade); got != tt.want {
			t.Errorf("prefectRoute(%s, %s, %v) = %q, want %q", tt.method, tt.path, tt.upgrade, got, tt.want)
		}
	}
}

func TestAWSAction(t *testing.T) {
	t.Parallel()
	const ecsAuth = "AWS4-HMAC-SHA256 Credential=test/20261205/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=abc"
	const ec2Auth = "AWS4-HMAC-SHA256 Credential=test/20261205/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=abc"
	tests := []struct {
		name                   string
		auth, target, rawQuery string
		body                   string
		want                   string
	}{
		{"json protocol", ecsAuth, "AmazonEC2ContainerServiceV20141113.RunTask", "", "", "ecs:RunTask"},
		{"query protocol in the body", ec2Auth, "", "", "Action=DescribeSubnets&Version=2016-11-15", "ec2:DescribeSubnets"},
		{"query protocol in the URL", ec2Auth, "", "Action=DescribeVpcs&Version=2016-11-15", "", "ec2:DescribeVpcs"},
		{"service from the target when unsigned", "", "AmazonSQS.ReceiveMessage", "", "", "amazonsqs:ReceiveMessage"},
		{"nothing known", "", "", "", "", "?:?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := awsAction(tt.auth, tt.target, tt.rawQuery, []byte(tt.body)); got != tt.want {
				t.Errorf("awsAction = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassifyAWS_restoresTheBody(t *testing.T) {
	t.Parallel()
	r, err := http.NewRequest(http.MethodPost, "http://moto/", strings.NewReader("Action=DescribeVpcs"))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261205/us-east-1/ec2/aws4_request")
	if got := classifyAWS(r); got != "ec2:DescribeVpcs" {
		t.Errorf("classifyAWS = %q, want ec2:DescribeVpcs", got)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != "Action=DescribeVpcs" {
		t.Errorf("body after classifying = %q (%v), want it intact", body, err)
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	var c counter
	for _, k := range []string{"a", "b", "b", "c"} {
		c.add(k)
	}
	before := c.snapshot()
	for _, k := range []string{"b", "c", "c", "d"} {
		c.add(k)
	}
	after := c.snapshot()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"total", after.total(), int64(8)},
		{"minus", after.minus(before), tally{"b": 1, "c": 2, "d": 1}},
		{"plus", before.plus(tally{"a": 2, "z": 1}), tally{"a": 3, "b": 2, "c": 1, "z": 1}},
		{"byCount", after.byCount(), []string{"b", "c", "a", "d"}},
		{"minus of nothing", tally{}.minus(before), tally{}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
