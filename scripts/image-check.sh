#!/usr/bin/env bash
# image-check: build the Dockerfile with podman (no Docker engine, no image registry needed) and
# prove the image serves: the demo model baked in (DEMO_MODEL=1), the gateway run from the
# exported root filesystem as uid 10001, /readyz, one /predict, the version in GET /v2 and in
# modelgate_build_info.
#
# Base images are made here instead of pulled: `debootstrap --variant=minbase bookworm` (from the
# Debian mirror) imported as localhost/localbase:bookworm (the runtime base), and a build base
# localhost/localgo:<go version>-bookworm = that root filesystem + gcc/libc6-dev + this machine's
# Go toolchain (GOROOT), standing in for golang:1.26-bookworm. `podman run` does not work in this
# sandbox, so the gateway runs with chroot. Needs root and apt (Debian).
#
# Environment: VERSION, GIT_SHA (build args; default from git), ORT_SOURCE (npm or context;
# default context when `make ort` has fetched the library, else npm), IMAGE_CHECK_CACHE (where the
# base root filesystems are kept between runs; default /var/tmp/modelgate-image-check), PORT,
# IMAGE (tag; default localhost/modelgate:image-check).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
t0=$(date +%s)
step() { printf '[image-check %3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { echo "image-check: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, podman with vfs storage, chroot, mount)"
cache=${IMAGE_CHECK_CACHE:-/var/tmp/modelgate-image-check}
image=${IMAGE:-localhost/modelgate:image-check}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
GIT_SHA=${GIT_SHA:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
ort_lib=.cache/onnxruntime/1.30.0/libonnxruntime.so.1
if [ -z "${ORT_SOURCE:-}" ]; then
  if [ -f "$ort_lib" ]; then ORT_SOURCE=context; else ORT_SOURCE=npm; fi
fi
podman=(podman --storage-driver=vfs)

work=""; gw_pid=""; cid=""
cleanup() {
  local rc=$?
  if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
    kill -TERM "$gw_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gw_pid" 2>/dev/null || true
  fi
  if [ -n "$work" ]; then
    mountpoint -q "$work/root/proc" 2>/dev/null && umount "$work/root/proc"
    rm -rf "$work"
  fi
  [ -n "$cid" ] && "${podman[@]}" rm -f "$cid" >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ---------------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || die "go is needed (its GOROOT becomes the build image's toolchain)"

# --- base images -----------------------------------------------------------------------------------
mkdir -p "$cache"
if ! "${podman[@]}" image exists localhost/localbase:bookworm; then
  if [ ! -d "$cache/base" ]; then
    step "debootstrap --variant=minbase bookworm into $cache/base"
    rm -rf "$cache/base.tmp"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$cache/base.tmp" >"$cache/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $cache/debootstrap.log"
    mv "$cache/base.tmp" "$cache/base"
  fi
  step "podman import -> localhost/localbase:bookworm"
  tar -C "$cache/base" -c . | "${podman[@]}" import -q - localhost/localbase:bookworm >/dev/null
fi

goroot=$(go env GOROOT)
gover=$(go env GOVERSION)            # e.g. go1.26.8
go_image=localhost/localgo:${gover#go}-bookworm
if ! "${podman[@]}" image exists "$go_image"; then
  [ -d "$cache/base" ] || die "$cache/base is missing but localbase exists: remove the image (podman --storage-driver=vfs rmi localhost/localbase:bookworm) and rerun"
  if [ ! -d "$cache/go" ]; then
    step "making the build base $cache/go: base + gcc libc6-dev + this machine's extra CA certificates"
    rm -rf "$cache/go.tmp"
    cp -a "$cache/base" "$cache/go.tmp"
    cp -L /etc/resolv.conf "$cache/go.tmp/etc/resolv.conf"
    # TLS to the Go module proxy may go through this machine's egress proxy: trust what it trusts.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$cache/go.tmp/usr/local/share/ca-certificates/"
    fi
    chroot "$cache/go.tmp" /bin/sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev && apt-get clean && rm -rf /var/lib/apt/lists/* && update-ca-certificates' \
      >"$cache/go-image.log" 2>&1 || die "apt-get in the build base failed; see $cache/go-image.log"
    mv "$cache/go.tmp" "$cache/go"
  fi
  step "making $go_image: $cache/go + $goroot"
  rm -rf "$cache/go/usr/local/go"
  cp -a "$goroot" "$cache/go/usr/local/go"
  tar -C "$cache/go" -c . | "${podman[@]}" import -q \
    --change 'ENV PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOTOOLCHAIN=local' - "$go_image" >/dev/null
fi

# --- build -------------------------------------------------------------------------------------------
step "podman build (GO_IMAGE=$go_image RUNTIME_BASE=localhost/localbase:bookworm ORT_SOURCE=$ORT_SOURCE DEMO_MODEL=1 VERSION=$VERSION GIT_SHA=$GIT_SHA)"
tb=$(date +%s)
"${podman[@]}" build --isolation=chroot -f Dockerfile -t "$image" \
  --build-arg GO_IMAGE="$go_image" \
  --build-arg RUNTIME_BASE=localhost/localbase:bookworm \
  --build-arg ORT_SOURCE="$ORT_SOURCE" \
  --build-arg GOPROXY="$(go env GOPROXY)" \
  --build-arg VERSION="$VERSION" --build-arg GIT_SHA="$GIT_SHA" \
  --build-arg DEMO_MODEL=1 \
  . >"$cache/build.log" 2>&1 || { tail -40 "$cache/build.log" >&2; die "podman build failed; full log in $cache/build.log"; }
build_s=$(( $(date +%s) - tb ))
step "built $image in ${build_s}s"

# --- the image's configuration ------------------------------------------------------------------------
user=$("${podman[@]}" image inspect --format '{{.Config.User}}' "$image")
entry=$("${podman[@]}" image inspect --format '{{join .Config.Entrypoint " "}}' "$image")
# shellcheck disable=SC2016  # a Go template, not shell
ports=$("${podman[@]}" image inspect --format '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$image")
mapfile -t envs < <("${podman[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" | sed '/^$/d')
[ "$user" = "10001:10001" ] || die "image user is '$user', want 10001:10001"
[ "$entry" = "/usr/local/bin/gateway" ] || die "entrypoint is '$entry'"
[[ " $ports " == *" 8080/tcp "* && " $ports " == *" 8081/tcp "* ]] || die "exposed ports '$ports' lack 8080/tcp or 8081/tcp"
for want in ONNXRUNTIME_LIB=/usr/lib/modelgate/libonnxruntime.so.1 MODELGATE_REGISTRY=/var/lib/modelgate/registry MODELGATE_CACHE_DIR=/var/cache/modelgate; do
  printf '%s\n' "${envs[@]}" | grep -qx "$want" || die "image env lacks $want"
done

# --- export the root filesystem, run the gateway in it -------------------------------------------------
work=$(mktemp -d /var/tmp/modelgate-image-root.XXXXXX)
mkdir -p "$work/root"
cid=$("${podman[@]}" create "$image")
"${podman[@]}" export "$cid" | tar -C "$work/root" -x
"${podman[@]}" rm "$cid" >/dev/null; cid=""
size=$(du -sh "$work/root" | cut -f1)
mkdir -p "$work/root/proc"
mount -t proc proc "$work/root/proc"          # ONNX Runtime reads /proc/cpuinfo

port=${PORT:-$(( 20000 + RANDOM % 20000 ))}
base="http://127.0.0.1:$port"
step "chroot --userspec=10001:10001 $work/root /usr/local/bin/gateway --listen 127.0.0.1:$port --grpc-listen 127.0.0.1:$((port + 1)) (rootfs $size)"
env -i "${envs[@]}" /usr/sbin/chroot --userspec=10001:10001 "$work/root" /usr/local/bin/gateway --listen "127.0.0.1:$port" --grpc-listen "127.0.0.1:$((port + 1))" \
  >"$work/gateway.log" 2>&1 &
gw_pid=$!
tr=$(date +%s)
ready=""
for _ in $(seq 300); do
  kill -0 "$gw_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; die "the gateway exited"; }
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ]; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { cat "$work/gateway.log" >&2; die "/readyz not 200 within 60s"; }
ready_s=$(( $(date +%s) - tr ))

row=$(sed -n 2p examples/breast-cancer/holdout.csv | awk -F, '{ for (i = 1; i < NF; i++) printf "%s%s", (i > 1 ? "," : ""), $i }')
predict=$(curl -sf "$base/predict" -H 'Content-Type: application/json' -d "{\"features\": [$row]}") \
  || { cat "$work/gateway.log" >&2; die "/predict failed"; }
[[ "$predict" == *'"prediction"'* ]] || die "/predict answer lacks \"prediction\": $predict"
v2=$(curl -sf "$base/v2") || die "GET /v2 failed"
[[ "$v2" == *"\"version\":\"$VERSION\""* ]] || die "GET /v2 does not show version $VERSION: $v2"
metric=$(curl -sf "$base/metrics" | grep '^modelgate_build_info') || die "no modelgate_build_info metric"
[[ "$metric" == *"version=\"$VERSION\""* && "$metric" == *"revision=\"$GIT_SHA\""* ]] || die "build info metric: $metric"
# env and chroot exec the gateway, so $gw_pid is the gateway itself.
gw_uid=$(awk '/^Uid:/ { print $2 }' "/proc/$gw_pid/status")
[ "$gw_uid" = 10001 ] || die "the gateway runs as uid '$gw_uid', want 10001"

kill -TERM "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; gw_pid=""
step "PASS in $(( $(date +%s) - t0 ))s (build ${build_s}s, ready ${ready_s}s after start). Proved:"
cat <<MSG
  - Dockerfile builds with podman (GO_IMAGE=$go_image, RUNTIME_BASE=localhost/localbase:bookworm,
    ORT_SOURCE=$ORT_SOURCE, DEMO_MODEL=1); image user 10001:10001, entrypoint /usr/local/bin/gateway,
    EXPOSE 8080 8081, ONNXRUNTIME_LIB / MODELGATE_REGISTRY / MODELGATE_CACHE_DIR set; rootfs $size
  - the gateway, run as uid 10001 from the exported rootfs with the image's environment, loaded the
    baked demo model from /var/lib/modelgate/registry: /readyz 200
  - POST /predict (holdout.csv row 1): $predict
  - GET /v2: $v2
  - $metric
MSG
