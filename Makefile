# modelgate: the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

GO        ?= go
ORT_VERSION := 1.30.0
# sha256 of the npm tarball onnxruntime-node-$(ORT_VERSION).tgz (Microsoft's official package).
ORT_SHA256  := 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_DIR     := .cache/onnxruntime/$(ORT_VERSION)
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so.1
export ONNXRUNTIME_LIB ?= $(CURDIR)/$(ORT_LIB)

# MinIO server for the S3 tests and `make minio`, built once into a git-ignored tools folder.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS_BIN     := $(CURDIR)/.cache/tools/bin
MINIO         := $(TOOLS_BIN)/minio
export MODELGATE_MINIO_BIN ?= $(MINIO)
MINIO_PORT    ?= 9000
# actionlint checks the GitHub Actions workflows (a test runs it).
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT    := $(TOOLS_BIN)/actionlint
export MODELGATE_ACTIONLINT ?= $(ACTIONLINT)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GIT_SHA ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/modelgate/modelgate/internal/buildinfo.Version=$(VERSION) \
           -X github.com/modelgate/modelgate/internal/buildinfo.Revision=$(GIT_SHA)

DEMO_MODEL   := examples/breast-cancer/model.onnx
DEMO_HOLDOUT := examples/breast-cancer/holdout.csv
DEMO_TRAIN   := examples/breast-cancer/train.csv

# staticcheck for `make lint`, built into the tools folder.
STATICCHECK_VERSION := v0.8.2
STATICCHECK   := $(TOOLS_BIN)/staticcheck

# gRPC: grpcapi/ is generated from proto/ by protoc (Debian's protobuf-compiler) with these two
# plugins (protoc-gen-go at go.mod's google.golang.org/protobuf); grpcurl is the gRPC client the
# gateway's tests run.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
GRPCURL_VERSION            := v1.9.3
PROTOC_GEN_GO      := $(TOOLS_BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS_BIN)/protoc-gen-go-grpc
GRPCURL            := $(TOOLS_BIN)/grpcurl
export MODELGATE_GRPCURL ?= $(GRPCURL)
PROTO_FILES := grpc_service.proto model_config.proto
PROTO_MAP   := $(foreach f,$(PROTO_FILES),M$(f)=github.com/modelgate/modelgate/grpcapi)
# protoc_gen writes the Go code of proto/ into the folder $(1).
protoc_gen = protoc -I proto \
  --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --go_out=$(1) --go_opt=paths=source_relative $(addprefix --go_opt=,$(PROTO_MAP)) \
  --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) --go-grpc_out=$(1) --go-grpc_opt=paths=source_relative $(addprefix --go-grpc_opt=,$(PROTO_MAP)) \
  $(PROTO_FILES)

.PHONY: help build run test test-unit lint staticcheck vet fmt-check ort minio-bin minio actionlint prometheus image-check demo-model train-promote fuzz bench clean tidy-check proto proto-check protoc proto-plugins grpcurl

## help: list the targets.
help:
	@grep -E '^## [a-z-]+: ' $(MAKEFILE_LIST) | sed -E 's/^## ([a-z-]+): /\1\t/' | awk -F'\t' '{printf "  %-14s %s\n", $$1, $$2}'

## ort: fetch the ONNX Runtime shared library (CPU build) into $(ORT_DIR).
ort: $(ORT_LIB)
$(ORT_LIB):
	@command -v npm >/dev/null || { echo "npm is needed to fetch ONNX Runtime: apt-get install npm"; exit 1; }
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "fetching onnxruntime-node@$(ORT_VERSION) from the npm registry"; \
	(cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	echo "$(ORT_SHA256)  $$tmp/onnxruntime-node-$(ORT_VERSION).tgz" | sha256sum -c --quiet - \
	  || { echo "sha256 mismatch for onnxruntime-node-$(ORT_VERSION).tgz"; exit 1; }; \
	tar -xzf "$$tmp/onnxruntime-node-$(ORT_VERSION).tgz" -C "$$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	mkdir -p $(ORT_DIR); \
	install -m 0644 "$$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" $(ORT_LIB).tmp; \
	mv $(ORT_LIB).tmp $(ORT_LIB); \
	echo "ONNX Runtime $(ORT_VERSION) at $(ORT_LIB)"

## minio-bin: build the MinIO server the S3 tests run against (about 7 minutes the first time).
minio-bin: $(MINIO)
$(MINIO):
	@echo "building the MinIO server $(MINIO_VERSION) into $(TOOLS_BIN) (once; several minutes on 2 cores)"
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

## minio: run a MinIO server for local use (data in .modelgate/minio) and print the settings to export.
minio: minio-bin
	@mkdir -p .modelgate/minio
	@echo "MinIO on 127.0.0.1:$(MINIO_PORT). In another shell:"
	@echo "  export MODELGATE_REGISTRY=s3://models/registry MODELGATE_S3_ENDPOINT=127.0.0.1:$(MINIO_PORT) MODELGATE_S3_INSECURE=true"
	@echo "  export AWS_ACCESS_KEY_ID=modelgate AWS_SECRET_ACCESS_KEY=modelgate-secret"
	MINIO_ROOT_USER=modelgate MINIO_ROOT_PASSWORD=modelgate-secret MINIO_BROWSER=off \
	  $(MINIO) server --quiet --address 127.0.0.1:$(MINIO_PORT) --console-address 127.0.0.1:$$(($(MINIO_PORT)+1)) .modelgate/minio

## actionlint: install the workflow linter (rebuilt when ACTIONLINT_VERSION changes); shellcheck too where apt can.
actionlint: $(ACTIONLINT).$(ACTIONLINT_VERSION)
$(ACTIONLINT).$(ACTIONLINT_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	@touch $@
	@command -v shellcheck >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -q shellcheck >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q shellcheck >/dev/null)) \
	  || echo "shellcheck not installed: actionlint will not check run: scripts"; }

## prometheus: the Prometheus server the canary's Prometheus-source test scrapes gateways with (Debian package).
prometheus:
	@command -v prometheus >/dev/null || [ -x "$${MODELGATE_PROMETHEUS_BIN:-}" ] || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -q prometheus >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null)); } \
	  || { echo "the tests need the Prometheus server: apt-get install prometheus (or set MODELGATE_PROMETHEUS_BIN)"; exit 1; }

## build: bin/gateway and bin/promote.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gateway ./cmd/gateway
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/promote ./cmd/promote

## run: fetch what is missing, build, push the demo model if absent, serve.
run: ort build
	@if ! bin/promote show breast-cancer 1 >/dev/null 2>&1; then \
	  bin/promote push breast-cancer 1 $(DEMO_MODEL) --holdout $(DEMO_HOLDOUT) --train-data $(DEMO_TRAIN) \
	    --meta source=examples/train --meta dataset=breast-cancer-wisconsin; \
	fi
	bin/gateway

## test: lint (gofmt, vet, staticcheck), the generated gRPC code's check (proto-check) and the whole race-enabled suite: the real ONNX Runtime, MinIO, Prometheus and grpcurl.
test: ort minio-bin actionlint prometheus grpcurl lint proto-check
	$(GO) test -race -count=1 ./...
	@# RSS over 500 model swaps, measured without the race detector's shadow memory.
	@set -o pipefail; $(GO) test -count=1 -run '^TestSwapMemory$$' -v ./catalog | grep -E 'RSS|^(ok|FAIL|---)'

## test-unit: the fast tier: every test that needs no ONNX Runtime, MinIO or Prometheus (-short), with -race.
test-unit: actionlint
	$(GO) test -short -race -count=1 ./...

## lint: gofmt, go vet and staticcheck.
lint: fmt-check vet staticcheck
	$(STATICCHECK) ./...

## staticcheck: install staticcheck (rebuilt when STATICCHECK_VERSION changes).
staticcheck: $(STATICCHECK).$(STATICCHECK_VERSION)
$(STATICCHECK).$(STATICCHECK_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

## protoc: the protobuf compiler (Debian's protobuf-compiler) for `make proto`.
protoc:
	@command -v protoc >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -q protobuf-compiler >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q protobuf-compiler >/dev/null)); } \
	  || { echo "make proto needs protoc: apt-get install protobuf-compiler"; exit 1; }

## proto-plugins: install protoc-gen-go and protoc-gen-go-grpc (rebuilt when their versions change).
proto-plugins: $(PROTOC_GEN_GO).$(PROTOC_GEN_GO_VERSION) $(PROTOC_GEN_GO_GRPC).$(PROTOC_GEN_GO_GRPC_VERSION)
$(PROTOC_GEN_GO).$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(PROTOC_GEN_GO_GRPC).$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

## proto: regenerate grpcapi/ (the gRPC service's Go code) from proto/.
proto: protoc proto-plugins
	$(call protoc_gen,grpcapi)

## proto-check: fail when the committed grpcapi/ is not what `make proto` generates (protoc's own version aside).
proto-check: protoc proto-plugins
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; mkdir "$$tmp/committed" "$$tmp/generated"; \
	cp grpcapi/*.pb.go "$$tmp/committed"; $(call protoc_gen,$$tmp/generated); \
	diff -ru -I '^//.*protoc  *v[0-9.]*$$' "$$tmp/committed" "$$tmp/generated" \
	  || { echo "grpcapi/ is stale: run make proto and commit it"; exit 1; }

## grpcurl: the gRPC command-line client the gateway's tests call (rebuilt when GRPCURL_VERSION changes).
grpcurl: $(GRPCURL).$(GRPCURL_VERSION)
$(GRPCURL).$(GRPCURL_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@

## vet: go vet.
vet:
	$(GO) vet ./...

## fmt-check: fail when a Go file needs gofmt.
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## tidy-check: fail when go mod tidy changes go.mod or go.sum.
tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

## demo-model: retrain the demo model and rewrite its holdout split.
demo-model: ort
	$(GO) run ./examples/train -data examples/breast-cancer/data.csv -out examples/breast-cancer

## train-promote: the CI flow on this machine: train, push a new version, gate it against stable.
TRAIN_DIR ?= .modelgate/train
TRAIN_VERSION ?= local-$(shell date +%Y%m%d%H%M%S)
train-promote: ort build
	$(GO) run ./examples/train -data examples/breast-cancer/data.csv -out $(TRAIN_DIR)
	bin/promote push breast-cancer $(TRAIN_VERSION) $(TRAIN_DIR)/model.onnx --holdout $(TRAIN_DIR)/holdout.csv --train-data $(TRAIN_DIR)/train.csv --meta source=make-train-promote
	bin/promote gate breast-cancer $(TRAIN_VERSION) --min-accuracy 0.93 --max-regression 0.01 --max-latency-ratio 2 --report-dir $(TRAIN_DIR)/report

## image-check: build the Dockerfile with podman (local debootstrap bases, demo model baked), then
## run the gateway from the image's root filesystem and check /readyz, /predict and /v2.
image-check:
	VERSION=$(VERSION) GIT_SHA=$(GIT_SHA) scripts/image-check.sh

## fuzz: run each fuzz target for a while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecodeInfer -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecodePredict -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz FuzzPredictFraming -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz FuzzInferFraming -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz '^FuzzInferBinary$$' -fuzztime $(FUZZTIME)
	$(GO) test ./wire -run '^$$' -fuzz '^FuzzFromRaw$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzDecompress$$' -fuzztime $(FUZZTIME)

## eval: measure the false-alarm and detection rates of the data checks and the canary; writes docs/verdicts.md.
.PHONY: eval
eval:
	$(GO) run ./cmd/eval -runs 200 -canary-runs 500 -out docs/verdicts.md

## bench: modelgate (HTTP and gRPC) against an onnxruntime_go Run loop, a plain Go HTTP floor, onnxruntime-node with
## node:http and FastAPI + uvicorn (scikit-learn), with wrk at c = 1, 32, 128, and one 1x3x320x320 image a request over
## JSON, binary tensors and gRPC; writes cmd/bench/RESULTS.md
## and cmd/bench/results.svg. Installs wrk and the Python packages with apt-get when missing (as root), and
## onnxruntime-node from the npm registry into .cache/bench/node. BENCH_DURATION per measurement.
BENCH_DURATION ?= 10s
BENCH_NODE := .cache/bench/node/node_modules/onnxruntime-node/package.json
BENCH_APT := wrk python3-fastapi python3-uvicorn python3-httptools python3-uvloop python3-sklearn python3-joblib
bench: ort build $(BENCH_NODE)
	@if ! command -v wrk >/dev/null || ! /usr/bin/python3 -c 'import fastapi, uvicorn, httptools, uvloop, sklearn, joblib' 2>/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q $(BENCH_APT) >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $(BENCH_APT) >/dev/null); \
	  else echo "make bench needs: apt-get install $(BENCH_APT)"; exit 1; fi; \
	fi
	$(GO) build -o bin/bench ./cmd/bench
	bin/bench -gateway bin/gateway -duration $(BENCH_DURATION)

# The same package as `ort`, checked by the same sha256, installed with its dependencies from the npm
# registry. --ignore-scripts: its install script would fetch GPU binaries, which the CPU bench does not use.
$(BENCH_NODE):
	@command -v npm >/dev/null || { echo "make bench needs npm (apt-get install npm)"; exit 1; }
	@set -euo pipefail; mkdir -p .cache/bench/node; \
	(cd .cache/bench/node && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	echo "$(ORT_SHA256)  .cache/bench/node/onnxruntime-node-$(ORT_VERSION).tgz" | sha256sum -c --quiet - \
	  || { echo "sha256 mismatch for onnxruntime-node-$(ORT_VERSION).tgz"; exit 1; }; \
	npm install --silent --prefix .cache/bench/node --ignore-scripts --no-audit --no-fund ./.cache/bench/node/onnxruntime-node-$(ORT_VERSION).tgz

## clean: remove the build outputs.
clean:
	rm -rf bin
