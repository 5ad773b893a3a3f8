# syntax=docker/dockerfile:1
# modelgate gateway image (CPU). See docs/images.md.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg GIT_SHA=$(git rev-parse --short HEAD) -t modelgate .
#   docker build --build-arg DEMO_MODEL=1 -t modelgate:demo .      # breast-cancer demo baked in
#
# Base images are build arguments so a check without a registry (scripts/image-check.sh) can pass
# locally made ones; the defaults are the real public images.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12
# Where the ONNX Runtime library comes from: "npm" fetches onnxruntime-node from the npm registry
# (as `make ort` does); "context" copies the one `make ort` left in .cache/ (checked by sha256).
ARG ORT_SOURCE=npm
ARG ORT_VERSION=1.30.0
# sha256 of the npm tarball onnxruntime-node-$ORT_VERSION.tgz (the Makefile's ORT_SHA256) and of
# the libonnxruntime.so.1 inside it.
ARG ORT_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ARG ORT_LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

# --- ONNX Runtime from the npm registry --------------------------------------------------------
FROM ${GO_IMAGE} AS ort-npm
ARG ORT_VERSION
ARG ORT_SHA256
ARG ORT_LIB_SHA256
RUN set -eu; \
    if ! command -v npm >/dev/null; then \
      apt-get update -q && apt-get install -y -q --no-install-recommends npm && rm -rf /var/lib/apt/lists/*; \
    fi; \
    mkdir -p /tmp/ort /out && cd /tmp/ort; \
    npm pack --silent "onnxruntime-node@${ORT_VERSION}" >/dev/null; \
    echo "${ORT_SHA256}  onnxruntime-node-${ORT_VERSION}.tgz" | sha256sum -c -; \
    tar -xzf "onnxruntime-node-${ORT_VERSION}.tgz" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
    install -m 0644 package/bin/napi-v6/linux/x64/libonnxruntime.so.1 /out/libonnxruntime.so.1; \
    echo "${ORT_LIB_SHA256}  /out/libonnxruntime.so.1" | sha256sum -c -; \
    cd / && rm -rf /tmp/ort /root/.npm

# --- ONNX Runtime from the build context (`make ort` first) ------------------------------------
FROM ${GO_IMAGE} AS ort-context
ARG ORT_VERSION
ARG ORT_LIB_SHA256
COPY .cache/onnxruntime/${ORT_VERSION}/libonnxruntime.so.1 /out/libonnxruntime.so.1
RUN echo "${ORT_LIB_SHA256}  /out/libonnxruntime.so.1" | sha256sum -c -

FROM ort-${ORT_SOURCE} AS ort

# --- Go build (cgo: onnxruntime_go loads the library with dlopen) ------------------------------
FROM ${GO_IMAGE} AS build
ARG VERSION=dev
ARG GIT_SHA=unknown
# DEMO_MODEL=1 pushes examples/breast-cancer into /var/lib/modelgate/registry (stable version 1).
ARG DEMO_MODEL=0
ARG GOPROXY
ENV CGO_ENABLED=1 GOFLAGS=-buildvcs=false ONNXRUNTIME_LIB=/usr/lib/modelgate/libonnxruntime.so.1
WORKDIR /src
COPY . .
COPY --from=ort /out/libonnxruntime.so.1 /usr/lib/modelgate/libonnxruntime.so.1
RUN set -eu; \
    ldflags="-X github.com/modelgate/modelgate/internal/buildinfo.Version=${VERSION} -X github.com/modelgate/modelgate/internal/buildinfo.Revision=${GIT_SHA}"; \
    go build -trimpath -ldflags "$ldflags" -o /out/bin/gateway ./cmd/gateway; \
    go build -trimpath -ldflags "$ldflags" -o /out/bin/promote ./cmd/promote; \
    /out/bin/gateway --version
RUN set -eu; \
    mkdir -p /var/lib/modelgate/registry /var/cache/modelgate; \
    case "${DEMO_MODEL}" in \
      1|true|yes) MODELGATE_REGISTRY=/var/lib/modelgate/registry /out/bin/promote push breast-cancer 1 \
                    examples/breast-cancer/model.onnx --holdout examples/breast-cancer/holdout.csv \
                    --meta source=examples/train --meta dataset=breast-cancer-wisconsin --meta image-build=true ;; \
      0|false|no|"") ;; \
      *) echo "DEMO_MODEL must be 0 or 1, not ${DEMO_MODEL}"; exit 1 ;; \
    esac

# --- runtime: glibc, no shell needed -----------------------------------------------------------
FROM ${RUNTIME_BASE} AS runtime
ARG VERSION=dev
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="modelgate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_SHA}"
COPY --from=ort /out/libonnxruntime.so.1 /usr/lib/modelgate/libonnxruntime.so.1
COPY --from=build /out/bin/gateway /out/bin/promote /usr/local/bin/
COPY --from=build --chown=10001:10001 /var/lib/modelgate /var/lib/modelgate
COPY --from=build --chown=10001:10001 /var/cache/modelgate /var/cache/modelgate
ENV ONNXRUNTIME_LIB=/usr/lib/modelgate/libonnxruntime.so.1 \
    MODELGATE_LISTEN=:8080 \
    MODELGATE_REGISTRY=/var/lib/modelgate/registry \
    MODELGATE_CACHE_DIR=/var/cache/modelgate
USER 10001:10001
WORKDIR /var/lib/modelgate
VOLUME ["/var/cache/modelgate"]
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/gateway"]
