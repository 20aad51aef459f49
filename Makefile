# pushpool — see README.md. Every target works from a fresh clone.
SHELL := /bin/bash
GO    ?= go
# The pinned Python virtualenv (Prefect, moto) lives outside the tree; stack.sh
# creates it on first use and prints its path.
VENV   = $(shell infra/local/stack.sh venv)
TESTFLAGS ?=
NOSKIPS := $(if $(filter true,$(CI)),-no-skips,)

.PHONY: all build test demo bench chaos functions docs docs-check provider-dev lint venv

all: build

build: ## compile every package, the pushpool command (every backend) and its ECS-only build into bin/
	$(GO) build ./...
	$(GO) build -o bin/pushpool ./functions/pushpool
	$(GO) build -tags pushpool_ecs -o bin/pushpool-ecs ./functions/pushpool

venv: ## create the pinned Python virtualenv (Prefect server, moto)
	@infra/local/stack.sh venv >/dev/null

test: venv ## run every test, integration tests against a real Prefect server
	@set -o pipefail; export PUSHPOOL_VENV="$(VENV)"; \
	  echo "Prefect $$("$$PUSHPOOL_VENV/bin/python" -c 'import prefect; print(prefect.__version__)') from $$PUSHPOOL_VENV"; \
	  $(GO) vet ./... && \
	  $(GO) test -json -count=1 -timeout 20m $(TESTFLAGS) ./... | $(GO) run ./internal/tools/testreport $(NOSKIPS)

demo: venv ## run scheduled flows end to end on a local Prefect server
	@$(GO) build -o bin/pushpool ./functions/pushpool
	@PUSHPOOL_VENV="$(VENV)" $(GO) run ./internal/tools/demo -pushpool bin/pushpool

bench: venv ## pushpool vs Prefect's ECS worker on PostgreSQL, then the artifacts, the provider and the go test benchmarks (about 40 minutes); writes bench/results.txt
	@set -o pipefail; export PUSHPOOL_VENV="$(VENV)"; pg=$$(mktemp); fn=$$(mktemp); pv=$$(mktemp); trap 'rm -f "$$pg" "$$fn" "$$pv"' EXIT; \
	  $(GO) build -o bin/pushpool ./functions/pushpool && \
	  $(GO) build -tags pushpool_ecs -o bin/pushpool-ecs ./functions/pushpool && \
	  $(GO) run ./internal/tools/pgbench -pushpool bin/pushpool-ecs -pushpool-all bin/pushpool -o "$$pg" $(PGBENCHFLAGS) && \
	  $(GO) run ./internal/tools/fnbuild -o dist -report "$$fn" && \
	  $(GO) run ./internal/tools/providerbench -o "$$pv" $(PROVIDERBENCHFLAGS) && \
	  { $(GO) test -run '^$$' -bench '^BenchmarkDispatch$$' -benchtime=3x -timeout 30m ./dispatch/ && \
	    $(GO) test -run '^$$' -bench . -benchtime=50x -timeout 10m ./dispatch/backend/ecs/ && \
	    $(GO) test -run '^$$' -bench . -benchtime=4x -timeout 15m ./functions/lambda/; } | $(GO) run ./internal/tools/benchreport -pg "$$pg" -provider "$$pv" -fn "$$fn" -o bench/results.txt

chaos: venv ## the full chaos test: 1,000 runs, 8 dispatchers, 12% faults, random SIGKILLs, on PostgreSQL (about 10 minutes)
	@PUSHPOOL_VENV="$(VENV)" $(GO) run ./internal/tools/chaos $(CHAOSFLAGS)

functions: ## build the cloud function artifacts into dist/; print their sizes, the clouds they link and their init time beside the all-in-one build
	@$(GO) run ./internal/tools/fnbuild -o dist

docs: ## generate the Terraform provider docs into provider/docs (offline: uses the terraform on PATH)
	@command -v terraform >/dev/null || { echo "make docs needs terraform on PATH (go install github.com/hashicorp/terraform@v1.8.5)"; exit 1; }
	cd provider && CHECKPOINT_DISABLE=1 $(GO) tool tfplugindocs generate --provider-name prefect

docs-check: ## fail when provider/docs differs from what make docs generates (offline: uses the terraform on PATH)
	@command -v terraform >/dev/null || { echo "make docs-check needs terraform on PATH (go install github.com/hashicorp/terraform@v1.8.5)"; exit 1; }
	@set -o pipefail; out=$$(mktemp -d provider/.docs-check.XXXXXX); trap 'rm -rf "$$out"' EXIT; \
	  cp -R provider/docs/. "$$out/"; \
	  (cd provider && CHECKPOINT_DISABLE=1 $(GO) tool tfplugindocs generate --provider-name prefect \
	    --rendered-website-dir "$${out#provider/}" >/dev/null) || exit 1; \
	  diff -ru provider/docs "$$out" || { echo "provider/docs is out of date: run make docs and commit the result"; exit 1; }; \
	  echo "provider/docs is up to date"

provider-dev: ## build the provider into bin/ and write bin/dev.tfrc, a Terraform CLI config that uses it
	$(GO) build -o bin/terraform-provider-prefect ./provider
	@printf '%s\n' \
	  '# Written by make provider-dev: Terraform uses bin/terraform-provider-prefect for these' \
	  '# provider addresses, without terraform init; every other provider installs as usual.' \
	  'provider_installation {' \
	  '  dev_overrides {' \
	  '    "registry.terraform.io/prefecthq/prefect" = "$(CURDIR)/bin"' \
	  '    "registry.terraform.io/pushpool/prefect"  = "$(CURDIR)/bin"' \
	  '  }' \
	  '  direct {}' \
	  '}' > bin/dev.tfrc
	@echo "Wrote bin/dev.tfrc. To use the provider in bin/, run:"
	@echo "export TF_CLI_CONFIG_FILE=$(CURDIR)/bin/dev.tfrc"

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
