#!/usr/bin/env bash
# Build the serving image with podman and run it the way SageMaker does, end to end:
#   1. install podman, runc and mmdebstrap when missing (Debian, as root);
#   2. make the stand-in for python:3.11-slim when absent (no image registry is reachable here):
#      mmdebstrap minbase bookworm + python3.11, `podman import`, python/python3 symlinks and the
#      host's CA bundle, tagged docker.io/library/python:3.11-slim (reused on later runs);
#   3. build the Dockerfile (--pull=never), check the image size (SUPERDAN_IMAGE_MAX_MB, 600);
#   4. `train` on a small export mounted at /opt/ml/input/data/training: January and February
#      2018 of ../shared/data/chicago, or generated rows (superdan_assets_tests/datagen.py)
#      when ../shared is absent;
#   5. `serve` that model: /ping 200, one /invocations 200 with a prediction, one 415, the
#      image's HEALTHCHECK, then SIGTERM with a request in flight: it completes, and the
#      container exits 0 within SUPERDAN_DRAIN_TIMEOUT (40 s).
# The last line printed is one JSON object with the measurements and checks. Exits non-zero,
# saying which step failed and why, on any failure. Every container it starts is removed.
#
# podman on these machines (GUIDE section 5): always `--runtime runc --cgroup-manager cgroupfs`
# (crun refuses the hybrid cgroups), explicit ulimits (the defaults are refused) and host
# networking. Environment: SUPERDAN_IMAGE (localhost/superdan:check), SUPERDAN_IMAGE_MAX_MB
# (600), SUPERDAN_SHARED_DATA (../shared/data beside the checkout), SUPERDAN_DRAIN_TIMEOUT (40),
# SUPERDAN_DEBIAN_MIRROR (http://deb.debian.org/debian).
set -euo pipefail
export LC_ALL=C

REPO="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${SUPERDAN_IMAGE:-localhost/superdan:check}"
BASE_IMAGE="docker.io/library/python:3.11-slim"
MAX_MB="${SUPERDAN_IMAGE_MAX_MB:-600}"
SHARED_DATA="${SUPERDAN_SHARED_DATA:-$REPO/../shared/data}"
DRAIN_TIMEOUT="${SUPERDAN_DRAIN_TIMEOUT:-40}"
MIRROR="${SUPERDAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
READY_TIMEOUT=180
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host)
RUN_NAME="superdan-check-$$"

START=$(date +%s.%N)
STEP="start"
CHECKS=()   # "name" of every check that passed, in order
declare -A TIMES=()
TMP=""
SERVING=""

say() { printf '[container-check] %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
passed() { CHECKS+=("$1"); say "ok: $1${2:+ ($2)}"; }

result_json() {  # ok [error]
  local checks="" name key times=""
  for name in "${CHECKS[@]}"; do checks+="${checks:+, }\"$name\""; done
  for key in tools base build data train serve_ready drain; do
    [ -z "${TIMES[${key}_seconds]:-}" ] || times+=", \"${key}_seconds\": ${TIMES[${key}_seconds]}"
  done
  printf '{"ok": %s, "image": "%s", "image_mb": %s, "image_max_mb": %s, "base_mb": %s, ' \
    "$1" "$IMAGE" "${IMAGE_MB:-null}" "$MAX_MB" "${BASE_MB:-null}"
  printf '"base": "%s", "data": "%s", "checks_passed": %d, "checks": [%s]%s, ' \
    "${BASE_KIND:-unknown}" "${DATA_KIND:-none}" "${#CHECKS[@]}" "$checks" "$times"
  if [ -n "${2:-}" ]; then
    printf '"failed_step": "%s", "error": "%s", ' "$STEP" "$(printf '%s' "$2" | tr '"\\\n\t' "'/  " | tr -d '\000-\037')"
  fi
  printf '"total_seconds": %s}\n' "$(since "$START")"
}

fail() {
  trap - ERR
  echo "[container-check] FAILED at step '$STEP': $*" >&2
  if [ -n "$SERVING" ] && "${PODMAN[@]}" container exists "$SERVING" 2>/dev/null; then
    echo "[container-check] last lines of the serving container's log:" >&2
    "${PODMAN[@]}" logs --tail 30 "$SERVING" >&2 2>&1 || true
  fi
  result_json false "$*"
  exit 1
}
trap 'fail "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

cleanup() {
  local name
  for name in "$RUN_NAME-data" "$RUN_NAME-train" "$RUN_NAME-serve"; do
    if "${PODMAN[@]}" container exists "$name" 2>/dev/null; then
      "${PODMAN[@]}" rm --force --time 0 "$name" >/dev/null 2>&1 || true
    fi
  done
  if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

# ---- 1. tools -------------------------------------------------------------------------------
STEP="tools"
t0=$(now)
missing=()
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}: run as root, or apt-get install ${missing[*]}"
  command -v apt-get >/dev/null || fail "missing ${missing[*]} and no apt-get (Debian expected)"
  # Only refresh the package lists when apt does not know a package (a fresh image has none).
  for tool in "${missing[@]}"; do
    policy="$(apt-cache policy "$tool" 2>/dev/null || true)"
    if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
      say "apt-get update (apt does not know $tool yet)"
      apt-get update -qq
      break
    fi
  done
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
TIMES[tools_seconds]=$(since "$t0")

TMP="$(mktemp -d /var/tmp/superdan-container-check.XXXXXX)"

# ---- 2. the stand-in base -----------------------------------------------------------------------
STEP="base image"
t0=$(now)
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  BASE_KIND="$("${PODMAN[@]}" image inspect --format \
    '{{index .Labels "org.superdan.standin"}}' "$BASE_IMAGE" 2>/dev/null || true)"
  BASE_KIND="${BASE_KIND:-$BASE_IMAGE as found}"
  say "reusing $BASE_IMAGE ($BASE_KIND)"
else
  say "making the stand-in $BASE_IMAGE (mmdebstrap minbase bookworm, about 25 s)"
  mkdir -p "$TMP/base"
  mmdebstrap --quiet --variant=minbase \
    --include=python3.11,python3.11-venv,python3-pip-whl,python3-setuptools-whl,ca-certificates \
    bookworm "$TMP/base/rootfs.tar" "$MIRROR" </dev/null >"$TMP/mmdebstrap.log" 2>&1 \
    || fail "mmdebstrap failed: $(tail -5 "$TMP/mmdebstrap.log")"
  "${PODMAN[@]}" import --quiet "$TMP/base/rootfs.tar" localhost/superdan-standin-rootfs:bookworm \
    >/dev/null
  rm "$TMP/base/rootfs.tar"
  # pip and apt in the build reach the registries as the host does: through its CA bundle
  # (which may hold a proxy's CA that Debian's bundle lacks).
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$TMP/base/ca-certificates.crt"
    ca_copy="COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"
  else
    say "the host has no /etc/ssl/certs/ca-certificates.crt: the base keeps Debian's bundle"
    ca_copy=""
  fi
  cat >"$TMP/base/Containerfile" <<EOF
FROM localhost/superdan-standin-rootfs:bookworm
$ca_copy
# As in the official image: \`python\` and \`python3\` on the PATH.
RUN ln -s /usr/bin/python3.11 /usr/local/bin/python3 && ln -s /usr/bin/python3.11 /usr/local/bin/python
ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.superdan.standin="stand-in: Debian bookworm minbase + python3.11 (mmdebstrap)"
CMD ["python3"]
EOF
  "${PODMAN[@]}" build --quiet --format docker "${LIMITS[@]}" --pull=never \
    -t "$BASE_IMAGE" "$TMP/base" >/dev/null
  "${PODMAN[@]}" rmi localhost/superdan-standin-rootfs:bookworm >/dev/null 2>&1 || true
  BASE_KIND="stand-in: Debian bookworm minbase + python3.11 (mmdebstrap)"
fi
BASE_MB=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE" \
  | awk '{ printf "%.1f", $1 / 1e6 }')
TIMES[base_seconds]=$(since "$t0")

# ---- 3. build -----------------------------------------------------------------------------
STEP="build"
say "building $IMAGE from $REPO/Dockerfile"
t0=$(now)
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop the image's.
"${PODMAN[@]}" build --format docker "${LIMITS[@]}" --pull=never -t "$IMAGE" "$REPO" \
  >"$TMP/build.log" 2>&1 || fail "podman build failed; its last lines:
$(tail -25 "$TMP/build.log")"
TIMES[build_seconds]=$(since "$t0")
passed build "${TIMES[build_seconds]} s"

STEP="image size"
IMAGE_MB=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" \
  | awk '{ printf "%.1f", $1 / 1e6 }')
say "image size: $IMAGE_MB MB ($BASE_MB MB of it the base $BASE_IMAGE)"
awk -v s="$IMAGE_MB" -v m="$MAX_MB" 'BEGIN { exit !(s <= m) }' \
  || fail "image is $IMAGE_MB MB, above the $MAX_MB MB limit (SUPERDAN_IMAGE_MAX_MB); see where \
it goes with: ${PODMAN[*]} run --rm ${LIMITS[*]} --entrypoint sh $IMAGE -c \
'du -sm /opt/venv/lib/python3.11/site-packages/* | sort -n'"
passed image_size "$IMAGE_MB MB <= $MAX_MB MB"

# ---- 4. train -----------------------------------------------------------------------------
STEP="training data"
t0=$(now)
mkdir -p "$TMP/ml/input/data/training" "$TMP/ml/input/config" "$TMP/ml/model" "$TMP/ml/output"
# The image runs as its own user (uid 1000): it must be able to write the model and failure file.
chmod 0777 "$TMP/ml/model" "$TMP/ml/output"
channel="$TMP/ml/input/data/training"
export_2018="$SHARED_DATA/chicago/crimes_2018.csv.gz"
if [ -f "$export_2018" ]; then
  # January and February 2018, every crime type, in the export's own format (ID, Case Number
  # and Date lead each row and are never quoted, so a line filter is exact here).
  zcat "$export_2018" | {
    IFS= read -r header
    printf '%s\n' "$header"
    grep -E '^[0-9]+,[^,]*,0[12]/[0-9]{2}/2018 ' || true
  } | gzip -c >"$channel/crimes_2018_jan_feb.csv.gz"
  rows=$(zcat "$channel/crimes_2018_jan_feb.csv.gz" | tail -n +2 | wc -l)
  [ "$rows" -gt 0 ] || fail "no January-February 2018 rows in $export_2018 (is it the export format?)"
  DATA_KIND="real: $export_2018, 2018-01-01..2018-02-28, $rows rows"
else
  say "no $export_2018: generating the export with superdan_assets_tests/datagen.py"
  "${PODMAN[@]}" run --rm --name "$RUN_NAME-data" "${LIMITS[@]}" --no-healthcheck --user 0 \
    -v "$REPO/superdan_assets_tests:/opt/check/superdan_assets_tests:ro" \
    -v "$channel:/opt/ml/input/data/training" -e PYTHONPATH=/opt/check --entrypoint python \
    "$IMAGE" -c "from pathlib import Path
from superdan_assets_tests.datagen import export_rows, write_export
write_export(Path('/opt/ml/input/data/training/crimes_2018_generated.csv.gz'),
             export_rows('2018-01-01', days=59, per_day=120))"
  rows=$((59 * 120))
  DATA_KIND="generated: datagen.export_rows, 2018-01-01..2018-02-28, $rows rows"
fi
say "training channel: $DATA_KIND"
# SageMaker passes hyper-parameters as strings; skip the slow random-forest baseline here.
printf '{"include_seed_protocol": "false"}\n' >"$TMP/ml/input/config/hyperparameters.json"
TIMES[data_seconds]=$(since "$t0")

STEP="train"
t0=$(now)
say "running: $IMAGE train"
if ! "${PODMAN[@]}" run --rm --name "$RUN_NAME-train" "${LIMITS[@]}" --no-healthcheck \
  -v "$channel:/opt/ml/input/data/training:ro" \
  -v "$TMP/ml/input/config:/opt/ml/input/config:ro" \
  -v "$TMP/ml/model:/opt/ml/model" -v "$TMP/ml/output:/opt/ml/output" \
  "$IMAGE" train >"$TMP/train.log" 2>&1; then
  fail "train exited non-zero; /opt/ml/output/failure says: \
$(cat "$TMP/ml/output/failure" 2>/dev/null || echo '(no failure file)'); log tail:
$(tail -15 "$TMP/train.log")"
fi
[ -f "$TMP/ml/model/model.json" ] || fail "train exited 0 but wrote no /opt/ml/model/model.json"
TIMES[train_seconds]=$(since "$t0")
grep -E '^(test PR-AUC|model .* written)' "$TMP/train.log" | sed 's/^/  train: /' || true
passed train "${TIMES[train_seconds]} s"

# ---- 5. serve -----------------------------------------------------------------------------
# HTTP/1.1 over bash's /dev/tcp: nothing to install, and a request can be left half-sent.
open_conn() {  # -> CONN (a file descriptor), or fails
  { exec {CONN}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null
}
send_request() {  # fd method path content-type body [bytes of the body to send now]
  local body="$5"
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s' \
    "$2" "$3" "$4" "${#body}" "${body:0:${6:-${#body}}}" >&"$1"
}
read_response() {  # fd -> HTTP_STATUS, HTTP_BODY (the body is framed by Content-Length)
  local line length=""
  HTTP_STATUS="" HTTP_BODY=""
  IFS= read -r -t 60 line <&"$1" || return 1
  HTTP_STATUS="${line#* }"
  HTTP_STATUS="${HTTP_STATUS%% *}"
  while IFS= read -r -t 60 line <&"$1"; do
    line="${line%$'\r'}"
    [ -z "$line" ] && break
    case "${line,,}" in content-length:*) length="${line#*:}" length="${length// /}" ;; esac
  done
  [ -n "$length" ] || return 1
  [ "$length" -eq 0 ] || IFS= read -r -N "$length" -t 60 HTTP_BODY <&"$1" || return 1
}
request() {  # method path content-type body -> HTTP_STATUS, HTTP_BODY on a new connection
  open_conn || return 1
  send_request "$CONN" "$@" && read_response "$CONN"
  local ok=$?
  exec {CONN}>&-
  return $ok
}
port_free() { ! { exec {probe}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || { exec {probe}>&-; false; }; }
container_state() { "${PODMAN[@]}" inspect --format '{{.State.Status}}' "$SERVING" 2>/dev/null; }

STEP="serve"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  PORT=$((20000 + RANDOM % 40000))
  port_free "$PORT" && break
done
port_free "$PORT" || fail "no free port found for SAGEMAKER_BIND_TO_PORT"
SERVING="$RUN_NAME-serve"
t0=$(now)
say "running: $IMAGE serve on port $PORT (host network)"
# --health-interval disable: no systemd timer (there is no systemd here); the image's
# HEALTHCHECK is still defined, and run once below.
"${PODMAN[@]}" run --detach --name "$SERVING" "${LIMITS[@]}" --health-interval disable \
  -v "$TMP/ml/model:/opt/ml/model:ro" \
  -e SAGEMAKER_BIND_TO_PORT="$PORT" -e SAGEMAKER_MODEL_SERVER_WORKERS=1 \
  "$IMAGE" serve >/dev/null 2>"$TMP/serve-start.log" \
  || fail "podman run serve failed: $(cat "$TMP/serve-start.log")"
deadline=$(( $(date +%s) + READY_TIMEOUT ))
while :; do
  state="$(container_state)"
  [ "$state" = running ] || fail "the serving container is $state before /ping answered 200"
  if request GET /ping text/plain "" 2>/dev/null && [ "$HTTP_STATUS" = 200 ]; then break; fi
  [ "$(date +%s)" -lt "$deadline" ] || fail "/ping not 200 after ${READY_TIMEOUT} s (last: ${HTTP_STATUS:-no answer})"
  sleep 0.5
done
TIMES[serve_ready_seconds]=$(since "$t0")
passed ping "200 after ${TIMES[serve_ready_seconds]} s"

STEP="invocations"
INCIDENTS='{"instances": [{"date": "2018-03-04T13:00:00", "block": "045XX S MARSHFIELD AVE", "location_description": "RESIDENCE", "beat": "0924", "district": "009", "ward": "15", "community_area": "61", "latitude": 41.811344308, "longitude": -87.666278625}, {"date": "2018-03-04T02:30:00", "location_description": "STREET"}]}'
request POST /invocations application/json "$INCIDENTS" || fail "/invocations did not answer"
[ "$HTTP_STATUS" = 200 ] || fail "/invocations gave $HTTP_STATUS: $HTTP_BODY"
count=$(grep -o '"burglary_probability"' <<<"$HTTP_BODY" | wc -l)
[ "$count" -eq 2 ] && grep -q '"predicted_type"' <<<"$HTTP_BODY" && grep -q '"model_version"' <<<"$HTTP_BODY" \
  || fail "/invocations 200 but not two predictions: $HTTP_BODY"
passed invocations "200, $(grep -o '"predictions".*' <<<"$HTTP_BODY" | cut -c1-120)"

STEP="client error"
request POST /invocations text/plain "hello" || fail "/invocations (text/plain) did not answer"
[ "$HTTP_STATUS" = 415 ] || fail "text/plain body gave $HTTP_STATUS, expected 415: $HTTP_BODY"
grep -q '"error"' <<<"$HTTP_BODY" || fail "the 415 body does not say what is wrong: $HTTP_BODY"
passed unsupported_media_type "415, $HTTP_BODY"

STEP="healthcheck"
"${PODMAN[@]}" healthcheck run "$SERVING" >"$TMP/health.log" 2>&1 \
  || fail "the image's HEALTHCHECK failed: $(cat "$TMP/health.log")"
passed healthcheck "the image's HEALTHCHECK command"

STEP="sigterm drain"
# A request is in flight (headers and part of the body received on a connection the worker
# has already served) when SIGTERM arrives; the listener must close, the request complete, and
# the container exit 0.
open_conn || fail "cannot connect to the endpoint"
drain_conn=$CONN
send_request "$drain_conn" POST /invocations application/json "$INCIDENTS"
read_response "$drain_conn" && [ "$HTTP_STATUS" = 200 ] \
  || fail "keep-alive request before SIGTERM gave ${HTTP_STATUS:-no answer}"
send_request "$drain_conn" POST /invocations application/json "$INCIDENTS" 10
t0=$(now)
"${PODMAN[@]}" kill --signal TERM "$SERVING" >/dev/null
deadline=$(( $(date +%s) + 15 ))
until port_free "$PORT"; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "still accepting connections 15 s after SIGTERM"
  sleep 0.1
done
[ "$(container_state)" = running ] \
  || fail "the container stopped with a request in flight ($(container_state))"
printf '%s' "${INCIDENTS:10}" >&"$drain_conn"
read_response "$drain_conn" || fail "the in-flight request got no complete answer after SIGTERM"
exec {drain_conn}>&-
[ "$HTTP_STATUS" = 200 ] && grep -q '"predictions"' <<<"$HTTP_BODY" \
  || fail "the in-flight request gave $HTTP_STATUS after SIGTERM: $HTTP_BODY"
code=$(timeout "$DRAIN_TIMEOUT" "${PODMAN[@]}" wait "$SERVING" 2>/dev/null) \
  || fail "the container did not exit within ${DRAIN_TIMEOUT} s of SIGTERM"
TIMES[drain_seconds]=$(since "$t0")
[ "$code" = 0 ] || fail "the container exited $code after SIGTERM, expected 0"
# (To a file first: `podman logs | grep -q` fails under pipefail when grep exits early.)
"${PODMAN[@]}" logs "$SERVING" >"$TMP/serve.log" 2>&1
grep -q 'received SIGTERM' "$TMP/serve.log" \
  || fail "the serving log does not say it received SIGTERM"
passed sigterm_drain "in-flight request 200, exit 0 ${TIMES[drain_seconds]} s after SIGTERM"
# (podman also tries to remove a systemd healthcheck timer, and says so on stderr when there is
# no systemd: noise, kept out of the output unless removing the container fails.)
"${PODMAN[@]}" rm "$SERVING" >/dev/null 2>"$TMP/rm.log" \
  || fail "podman rm $SERVING failed: $(cat "$TMP/rm.log")"
SERVING=""

STEP="done"
say "all ${#CHECKS[@]} checks passed; image $IMAGE_MB MB (base $BASE_MB MB, $BASE_KIND)"
trap - ERR
result_json true
