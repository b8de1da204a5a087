#!/usr/bin/env bash
# Benchmarks `ecr-promote copy` against `skopeo copy` between two local CNCF Distribution registries.
#
#   bench/copy.sh                          # 5 rounds, prints a markdown table
#   BENCH_ROUNDS=3 bench/copy.sh           # fewer rounds
#   BENCH_ROUNDS=5 BENCH_WRITE=1 bench/copy.sh   # also writes bench/RESULTS-<filesystem of the temp dir>.md
#
# Everything runs on 127.0.0.1 with free ports picked at run time; all data lives in one temp directory
# that is deleted on exit, and every server started here is stopped on exit. See bench/README.md.
#
# Environment:
#   BENCH_ROUNDS     rounds per scenario (default 5)
#   BENCH_WRITE      1: write bench/RESULTS-<filesystem>.md, e.g. RESULTS-ext4.md or RESULTS-tmpfs.md
#   BENCH_TMP        parent of the temp directory (default ${TMPDIR:-/tmp}); needs ~3.5 GiB free
#   BENCH_JOBS       passed to ecr-promote as --jobs (default: unset, the binary's own default)
#   BENCH_NO_BUILD   1: skip `cargo build --release` (use the binary already in target/release)
#   BENCH_DEBUG_LOG  a file: after the timed runs, one untimed cold and one warm ecr-promote copy with
#                    RUST_LOG=debug (or $BENCH_RUST_LOG), and one warm `skopeo --debug` copy for comparison,
#                    are logged there, to see where the time goes
#   BENCH_RUN_LIMIT  seconds before one copy is killed as hung (default 300)
set -euo pipefail

ROUNDS="${BENCH_ROUNDS:-5}"
WRITE="${BENCH_WRITE:-0}"
RUN_LIMIT="${BENCH_RUN_LIMIT:-300}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'" >&2; exit 2; }
[[ "$RUN_LIMIT" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUN_LIMIT must be a positive integer" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/target/release/ecr-promote"
USER_NAME=AWS
# Loopback-only throwaway credential; the registries live only as long as this script.
PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

# The command line as typed, with the BENCH_* settings that shape it.
COMMAND_LINE=""
for var in BENCH_ROUNDS BENCH_WRITE BENCH_JOBS BENCH_NO_BUILD BENCH_TMP BENCH_RUN_LIMIT BENCH_DEBUG_LOG; do
    if [[ -n "${!var:-}" ]]; then COMMAND_LINE+="$var=${!var} "; fi
done
COMMAND_LINE+="bench/copy.sh"
for arg in "$@"; do COMMAND_LINE+=" $(printf '%q' "$arg")"; done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[bench] FAILED: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------------------
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: install them (apt-get install -y ${missing[*]})"
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- temp dir, processes, cleanup ----------------------------------------------------------------------------
# skopeo keeps a blob-location cache outside any temp dir (no flag moves it); if this run creates it, this
# run deletes it again.
if [[ $(id -u) == 0 ]]; then
    SKOPEO_CACHE=/var/lib/containers/cache/blob-info-cache-v1.boltdb
else
    SKOPEO_CACHE="${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb"
fi
SKOPEO_CACHE_EXISTED=0
[[ -e "$SKOPEO_CACHE" ]] && SKOPEO_CACHE_EXISTED=1
WORK="$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/ecr-promote-bench.XXXXXX")"
declare -A PID=()

stop_registry() { # name
    local pid="${PID[$1]:-}"
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        PID[$1]=""
    fi
}

cleanup() {
    local status=$?
    for name in "${!PID[@]}"; do stop_registry "$name"; done
    if [[ $status != 0 ]]; then
        for name in staging production; do
            if [[ -s "$WORK/$name/registry.log" ]]; then
                echo "--- last lines of the $name registry log:" >&2
                tail -n 20 "$WORK/$name/registry.log" >&2
            fi
        done
    fi
    rm -rf "$WORK"
    if [[ $SKOPEO_CACHE_EXISTED == 0 ]]; then
        rm -f "$SKOPEO_CACHE"
        rmdir "$(dirname "$SKOPEO_CACHE")" "$(dirname "$(dirname "$SKOPEO_CACHE")")" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------------------------------------------
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x "$BIN" ]] || die "$BIN not found (build it with cargo build --release)"

# --- registries ------------------------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# bcrypt cost 4: Distribution checks the password on every request, so the default cost would dominate.
htpasswd -nbB -C 4 "$USER_NAME" "$PASSWORD" >"$WORK/htpasswd"

declare -A PORT=()
PORT[staging]="$(free_port)"
PORT[production]="$(free_port)"
while [[ "${PORT[production]}" == "${PORT[staging]}" ]]; do PORT[production]="$(free_port)"; done
STAGING="127.0.0.1:${PORT[staging]}"
PRODUCTION="127.0.0.1:${PORT[production]}"

for name in staging production; do
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/$name/storage
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${PORT[$name]}
  secret: bench-$name-http-secret
auth:
  htpasswd:
    realm: bench-$name
    path: $WORK/htpasswd
EOF
done

start_registry() { # name
    local name=$1 port=${PORT[$1]} code=""
    mkdir -p "$WORK/$name/storage"
    docker-registry serve "$WORK/$name/config.yml" >>"$WORK/$name/registry.log" 2>&1 &
    PID[$name]=$!
    for _ in $(seq 1 200); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)"
        [[ "$code" == 401 ]] && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || die "the $name registry exited at start"
        sleep 0.05
    done
    die "the $name registry did not answer 401 on 127.0.0.1:$port/v2/ within 10 s (last: $code)"
}

# Empties production: stop, delete its storage, start again (never inside a timed run).
reset_production() {
    stop_registry production
    rm -rf "$WORK/production/storage"
    start_registry production
}

start_registry staging
start_registry production
log "staging on $STAGING, production on $PRODUCTION (htpasswd, bcrypt cost 4)"

# --- the test images: OCI layouts of random, incompressible layers --------------------------------------------
# Layers are random bytes from /dev/urandom, wrapped in gzip with stored (level 0) deflate blocks: still
# incompressible, but labelled and detectable as gzip, so skopeo has no reason to recompress them and keeps
# the digest. The config is a valid OCI image config whose diff_ids are the uncompressed layer digests.
cat >"$WORK/oci.py" <<'PY'
import gzip, hashlib, json, os, sys

def layer(layout, size_file):
    """stdin: raw layer bytes. Writes blobs/sha256/<hex> and appends a descriptor line to size_file."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    tmp = os.path.join(blobs, "incoming")
    raw_hash, raw_size = hashlib.sha256(), 0

    class Hashing:
        def __init__(self, f):
            self.f, self.h, self.n = f, hashlib.sha256(), 0
        def write(self, b):
            self.h.update(b); self.n += len(b); return self.f.write(b)
        def flush(self):
            self.f.flush()

    with open(tmp, "wb") as out:
        hashing = Hashing(out)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=0, mtime=0) as gz:
            while chunk := sys.stdin.buffer.read(1 << 20):
                raw_hash.update(chunk); raw_size += len(chunk)
                gz.write(chunk)
    digest = hashing.h.hexdigest()
    os.rename(tmp, os.path.join(blobs, digest))
    with open(size_file, "a") as f:
        f.write(json.dumps({"digest": "sha256:" + digest, "size": hashing.n,
                            "diff_id": "sha256:" + raw_hash.hexdigest()}) + "\n")

def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def finish(layout, size_file, tag):
    layers = [json.loads(line) for line in open(size_file)]
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"}
                    for i in range(len(layers))],
    }
    cfg = write_blob(layout, json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": l["digest"], "size": l["size"]} for l in layers],
    }
    man = write_blob(layout, json.dumps(manifest, separators=(",", ":")).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(man["digest"])

if __name__ == "__main__":
    if sys.argv[1] == "layer":
        layer(sys.argv[2], sys.argv[3])
    else:
        finish(sys.argv[2], sys.argv[3], sys.argv[4])
PY

MIB=$((1024 * 1024))
# make_image NAME SIZE_IN_BYTES... : builds $WORK/oci/NAME and pushes it to staging as bench/NAME:seed.
make_image() {
    local name=$1 layout="$WORK/oci/$1" sizes="$WORK/oci/$1.layers" digest pushed
    shift
    mkdir -p "$layout"
    : >"$sizes"
    for size in "$@"; do
        head -c "$size" /dev/urandom | python3 "$WORK/oci.py" layer "$layout" "$sizes"
    done
    digest="$(python3 "$WORK/oci.py" finish "$layout" "$sizes" seed)"
    skopeo copy --quiet --dest-creds "$USER_NAME:$PASSWORD" --dest-tls-verify=false \
        "oci:$layout:seed" "docker://$STAGING/bench/$name:seed" >/dev/null
    pushed="$(manifest_digest "$STAGING" "bench/$name" seed)"
    [[ "$pushed" == "$digest" ]] || die "staging has bench/$name:seed as $pushed, the layout says $digest"
    rm -rf "$layout" "$sizes"
    echo "$digest"
}

# The sha256 of the manifest bytes the registry serves: the digest, computed rather than trusted.
manifest_digest() { # host repository reference
    curl -fsS -u "$USER_NAME:$PASSWORD" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
        "http://$1/v2/$2/manifests/$3" | sha256sum | awk '{print "sha256:" $1}'
}

log "synthesising bench/app (8 x 30 MiB + 4 x 1 MiB random layers) and bench/big (1 x 1 GiB) into staging"
APP_DIGEST="$(make_image app $((30 * MIB)) $((30 * MIB)) $((30 * MIB)) $((30 * MIB)) \
    $((30 * MIB)) $((30 * MIB)) $((30 * MIB)) $((30 * MIB)) $MIB $MIB $MIB $MIB)"
BIG_DIGEST="$(make_image big $((1024 * MIB)))"
log "staging: bench/app:seed = $APP_DIGEST, bench/big:seed = $BIG_DIGEST"

# --- the two tools ----------------------------------------------------------------------------------------------
mkdir -p "$WORK/docker"
AUTH="$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)"
printf '{"auths":{"%s":{"auth":"%s"},"%s":{"auth":"%s"}}}\n' "$STAGING" "$AUTH" "$PRODUCTION" "$AUTH" \
    >"$WORK/docker/config.json"
ENDPOINTS="$STAGING=http://$STAGING,$PRODUCTION=http://$PRODUCTION"
JOBS_ARGS=()
[[ -n "${BENCH_JOBS:-}" ]] && JOBS_ARGS=(--jobs "$BENCH_JOBS")

# Printed with the results: the commands as run, with ports and password as placeholders.
ECR_COMMAND="DOCKER_CONFIG=<tmp> PROMOTE_REGISTRY_ENDPOINTS=<staging>=http://<staging>,<production>=http://<production> ecr-promote copy ${JOBS_ARGS[*]:+${JOBS_ARGS[*]} }<staging>/bench/app:seed <production>/bench/app:<tag>"
SKOPEO_COMMAND="skopeo copy --src-creds AWS:<pw> --dest-creds AWS:<pw> --src-tls-verify=false --dest-tls-verify=false docker://<staging>/bench/app:seed docker://<production>/bench/app:<tag>"

# tool_command TOOL SOURCE TARGET: sets CMD to the exact argv of one copy. `env` execs the binary, so the
# process GNU time measures is the tool itself and nothing else.
tool_command() {
    case $1 in
        ecr-promote)
            CMD=(env DOCKER_CONFIG="$WORK/docker" PROMOTE_REGISTRY_ENDPOINTS="$ENDPOINTS"
                "$BIN" copy ${JOBS_ARGS[@]+"${JOBS_ARGS[@]}"} "$2" "$3")
            ;;
        skopeo)
            CMD=(skopeo copy --src-creds "$USER_NAME:$PASSWORD" --dest-creds "$USER_NAME:$PASSWORD"
                --src-tls-verify=false --dest-tls-verify=false "docker://$2" "docker://$3")
            ;;
    esac
}

# Puts bench/app's image into production as bench/replica:seed, as ECR replication would (untimed).
seed_replica() {
    skopeo copy --quiet --src-creds "$USER_NAME:$PASSWORD" --dest-creds "$USER_NAME:$PASSWORD" \
        --src-tls-verify=false --dest-tls-verify=false \
        "docker://$STAGING/bench/app:seed" "docker://$PRODUCTION/bench/replica:seed" >/dev/null ||
        die "seeding the replica repository failed"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
mkdir -p "$WORK/runs"

# CPU seconds (user+sys) a registry process has used so far.
registry_cpu() { # name
    awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/${PID[$1]}/stat"
}

# measure SCENARIO TOOL ROUND REPOSITORY TAG EXPECTED_DIGEST [SOURCE]: one timed copy of SOURCE (default
# staging's bench/REPOSITORY:seed) to production's bench/REPOSITORY:TAG, then a check that production serves
# the staging digest.
measure() {
    local scenario=$1 tool=$2 round=$3 repository=$4 tag=$5 expected=$6
    local source=${7:-$STAGING/bench/$repository:seed}
    local out="$WORK/runs/$scenario-$tool-$round" wall user sys rss got s0 p0 s1 p1 staging_cpu production_cpu load
    tool_command "$tool" "$source" "$PRODUCTION/bench/$repository:$tag"
    # Earlier runs' dirty pages (and the deleted storage) are written back now, not during the timed copy.
    sync
    load="$(cut -d' ' -f1 /proc/loadavg)"
    s0="$(registry_cpu staging)" p0="$(registry_cpu production)"
    if ! timeout -k 10 "$RUN_LIMIT" /usr/bin/time -f '%e %U %S %M' -o "$out.time" "${CMD[@]}" \
        >"$out.log" 2>&1; then
        echo "--- $tool output:" >&2
        tail -n 30 "$out.log" >&2
        die "$tool, $scenario round $round: the copy failed (see its output above)"
    fi
    s1="$(registry_cpu staging)" p1="$(registry_cpu production)"
    staging_cpu="$(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}')"
    production_cpu="$(awk -v a="$p0" -v b="$p1" 'BEGIN {print b - a}')"
    read -r wall user sys rss <"$out.time"
    got="$(manifest_digest "$PRODUCTION" "bench/$repository" "$tag")"
    [[ "$got" == "$expected" ]] ||
        die "$tool, $scenario round $round: production has bench/$repository:$tag as $got, staging as $expected"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$round" "$wall" "$user" "$sys" "$rss" \
        "$staging_cpu" "$production_cpu" "$load" >>"$RESULTS"
    log "$(printf '%-5s %-11s round %d: wall %6.2fs  cpu %6.2fs  rss %5d MiB  (registries cpu: staging %5.2fs, production %5.2fs; load %s)' \
        "$scenario" "$tool" "$round" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" \
        "$((rss / 1024))" "$staging_cpu" "$production_cpu" "$load")"
}

# --- the rounds ---------------------------------------------------------------------------------------------------
STARTED=$SECONDS
for round in $(seq 1 "$ROUNDS"); do
    # Alternate who goes first, so neither tool always meets the warmer caches.
    if ((round % 2)); then order=(ecr-promote skopeo); else order=(skopeo ecr-promote); fi
    for tool in "${order[@]}"; do
        reset_production
        measure cold "$tool" "$round" app cold "$APP_DIGEST"
    done
    # Production now holds every blob of bench/app: a new tag is a re-run of a release.
    for tool in "${order[@]}"; do
        measure warm "$tool" "$round" app "warm-$tool-$round" "$APP_DIGEST"
    done
    for tool in "${order[@]}"; do
        reset_production
        measure big "$tool" "$round" big cold "$BIG_DIGEST"
    done
    # One registry, two repositories (a replica of staging in the production account): the blobs can be
    # mounted across repositories and no byte need move. The replica is seeded untimed.
    for tool in "${order[@]}"; do
        reset_production
        seed_replica
        measure mount "$tool" "$round" app mount "$APP_DIGEST" "$PRODUCTION/bench/replica:seed"
    done
done
log "timed runs done in $((SECONDS - STARTED)) s"

# --- warm copies, finely timed ---------------------------------------------------------------------------------
# GNU time's 10 ms steps are coarse for copies of ~50 ms, so hyperfine times the warm case again over many runs.
# Before each run (untimed) production's manifest is deleted by digest: every run then meets what a warm copy
# meets, all blobs present and the tag absent.
FINE_JSON="$WORK/warm-fine.json"
FINE_MD="$WORK/warm-fine.md"
FINE_RUNS="${BENCH_FINE_RUNS:-30}"
tool_command ecr-promote "$STAGING/bench/app:seed" "$PRODUCTION/bench/app:fine"
ecr_fine="$(printf '%q ' "${CMD[@]}")"
tool_command skopeo "$STAGING/bench/app:seed" "$PRODUCTION/bench/app:fine"
skopeo_fine="$(printf '%q ' "${CMD[@]}")"
log "warm copies with hyperfine, $FINE_RUNS runs each"
hyperfine -N --style basic --warmup 3 --runs "$FINE_RUNS" --export-json "$FINE_JSON" --export-markdown "$FINE_MD" \
    --prepare "curl -s -o /dev/null -u $USER_NAME:$PASSWORD -X DELETE http://$PRODUCTION/v2/bench/app/manifests/$APP_DIGEST" \
    -n ecr-promote "$ecr_fine" -n skopeo "$skopeo_fine" >&2
export FINE_JSON FINE_MD FINE_RUNS

if [[ -n "${BENCH_DEBUG_LOG:-}" ]]; then
    log "untimed ecr-promote runs with RUST_LOG=${BENCH_RUST_LOG:-debug} -> $BENCH_DEBUG_LOG"
    reset_production
    {
        echo "### cold: $STAGING/bench/app:seed -> $PRODUCTION/bench/app:cold"
        tool_command ecr-promote "$STAGING/bench/app:seed" "$PRODUCTION/bench/app:cold"
        RUST_LOG="${BENCH_RUST_LOG:-debug}" "${CMD[@]}" 2>&1
        echo "### warm: $STAGING/bench/app:seed -> $PRODUCTION/bench/app:debug-warm"
        tool_command ecr-promote "$STAGING/bench/app:seed" "$PRODUCTION/bench/app:debug-warm"
        RUST_LOG="${BENCH_RUST_LOG:-debug}" "${CMD[@]}" 2>&1
        echo "### for comparison, skopeo --debug warm: $STAGING/bench/app:seed -> $PRODUCTION/bench/app:debug-warm-skopeo"
        tool_command skopeo "$STAGING/bench/app:seed" "$PRODUCTION/bench/app:debug-warm-skopeo"
        "${CMD[0]}" --debug "${CMD[@]:1}" 2>&1
    } >"$BENCH_DEBUG_LOG" || die "the debug runs failed: see $BENCH_DEBUG_LOG"
fi

# --- report -----------------------------------------------------------------------------------------------------
cpu_model="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
mem_total="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
git_rev="$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$REPO" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    git_rev+=" + uncommitted changes in src/"
fi

export RESULTS ROUNDS COMMAND_LINE ECR_COMMAND SKOPEO_COMMAND APP_DIGEST BIG_DIGEST
export NPROC="$(nproc)"
export MACHINE="$(nproc) CPUs ($cpu_model), $mem_total RAM, $(uname -sr)"
export V_ECR="$("$BIN" --version) (work tree at commit $git_rev; binary built $(date -u -r "$BIN" +%Y-%m-%dT%H:%MZ))"
export V_SKOPEO="$(skopeo --version)"
export V_REGISTRY="$(docker-registry --version)"
export V_RUSTC="$(rustc --version 2>/dev/null || echo unknown)"
export V_CURL="$(curl --version | head -n 1 | cut -d' ' -f1-2)"
export WHEN="$(date -u +%Y-%m-%dT%H:%MZ)"
# Where the registries keep their blobs: on a disk, each finished upload waits for Distribution's fsync.
STORAGE_FS="$(df --output=fstype "$WORK" | tail -n 1 | tr -d ' ')"
export STORAGE="$STORAGE_FS ($(df --output=target "$WORK" | tail -n 1 | tr -d ' '))"
export JOBS="${BENCH_JOBS:-default}"

REPORT="$(python3 - <<'PY'
import os, statistics
from collections import defaultdict

runs = defaultdict(list)
raw = []
for line in open(os.environ["RESULTS"]):
    scenario, tool, rnd, wall, user, sys_, rss, staging, production, load = line.rstrip("\n").split("\t")
    row = dict(wall=float(wall), cpu=float(user) + float(sys_), rss=int(rss) / 1024,
               staging=float(staging), production=float(production))
    runs[(scenario, tool)].append(row)
    raw.append((scenario, tool, int(rnd), float(wall), float(user), float(sys_), int(rss) / 1024,
                float(staging), float(production), float(load)))

def summary(scenario, tool):
    rows = runs[(scenario, tool)]
    return (statistics.median(r["wall"] for r in rows),
            statistics.median(r["cpu"] for r in rows),
            max(r["rss"] for r in rows))

E, S = "ecr-promote", "skopeo"
out = []
out.append("# ecr-promote copy vs skopeo copy\n")
out.append(f"Produced by `{os.environ['COMMAND_LINE']}` on {os.environ['WHEN']}, "
           f"{os.environ['ROUNDS']} round(s) per scenario, tools alternating (odd rounds ecr-promote first).\n")
out.append(f"- Machine: {os.environ['MACHINE']}")
out.append(f"- ecr-promote: {os.environ['V_ECR']}, --jobs {os.environ['JOBS']}")
out.append(f"- skopeo: {os.environ['V_SKOPEO']}")
out.append(f"- registries: {os.environ['V_REGISTRY']}, filesystem storage on {os.environ['STORAGE']}, htpasswd bcrypt cost 4, plain http on 127.0.0.1")
out.append(f"- built with: {os.environ['V_RUSTC']}")
out.append(f"- images: bench/app = OCI manifest, config + 8 x 30 MiB + 4 x 1 MiB random layers ({os.environ['APP_DIGEST']}); "
           f"bench/big = one 1 GiB random layer ({os.environ['BIG_DIGEST']})")
loads = [r[9] for r in raw]
nproc = int(os.environ["NPROC"])
out.append(f"- 1-minute load average before each copy (the bench's own three processes included): median "
           f"{statistics.median(loads):.2f}, max {max(loads):.2f}"
           + (" — **other work was competing for the CPUs; expect noisy wall times**"
              if statistics.median(loads) > nproc + 1 else ""))
out.append("- measured with GNU time `%e %U %S %M`: wall = median elapsed, CPU = median user+sys, "
           "RSS = max peak resident set over the rounds\n")
out.append("| scenario | ecr-promote wall (s) | skopeo wall (s) | wall ratio | ecr-promote CPU (s) | skopeo CPU (s) | CPU ratio | ecr-promote peak RSS (MiB) | skopeo peak RSS (MiB) | RSS ratio |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
names = {"cold": "cold (bench/app, empty production)", "warm": "warm (bench/app, new tag, blobs present)",
         "big": "big (1 GiB layer, empty production)",
         "mount": "same registry (bench/replica -> bench/app in production, blobs mountable)"}
results = {}
for scenario in ("cold", "warm", "big", "mount"):
    e, s = summary(scenario, E), summary(scenario, S)
    results[scenario] = (e, s)
    ratio = lambda a, b: f"{a / b:.2f}" if b else "n/a"
    out.append(f"| {names[scenario]} | {e[0]:.2f} | {s[0]:.2f} | {ratio(e[0], s[0])} | {e[1]:.2f} | {s[1]:.2f} | "
               f"{ratio(e[1], s[1])} | {e[2]:.1f} | {s[2]:.1f} | {ratio(e[2], s[2])} |")

out.append("\nTargets:\n")
out.append("| target | measured | met |")
out.append("|---|---:|:---:|")
def target(label, value, limit, unit):
    out.append(f"| {label} | {value:.2f}{unit} | {'yes' if value <= limit else '**no**'} |")
(ec, sc), (ew, sw), (eb, _) = results["cold"], results["warm"], results["big"]
target("cold wall <= 0.6 x skopeo", ec[0] / sc[0], 0.6, "x")
target("warm wall <= 0.5 x skopeo", ew[0] / sw[0], 0.5, "x")
target("peak RSS <= 32 MiB (cold, warm)", max(ec[2], ew[2]), 32, " MiB")
target("peak RSS <= 32 MiB with the 1 GiB layer", eb[2], 32, " MiB")
em, sm = results["mount"]
target("same-registry wall <= 0.5 x skopeo", em[0] / sm[0], 0.5, "x")

out.append("\nWhere the CPU goes (medians; registry CPU is read from /proc/<pid>/stat around each copy; the "
           "machine has " + os.environ["NPROC"] + " CPUs for all three processes):\n")
out.append("| scenario | tool | wall (s) | tool CPU (s) | staging registry CPU (s) | production registry CPU (s) | all CPU / wall |")
out.append("|---|---|---:|---:|---:|---:|---:|")
for scenario in ("cold", "warm", "big", "mount"):
    for tool in (E, S):
        rows = runs[(scenario, tool)]
        wall = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        st = statistics.median(r["staging"] for r in rows)
        pr = statistics.median(r["production"] for r in rows)
        out.append(f"| {scenario} | {tool} | {wall:.2f} | {cpu:.2f} | {st:.2f} | {pr:.2f} | {(cpu + st + pr) / wall:.2f} |")

out.append("\nCommands (ports and password filled in at run time):\n")
out.append(f"    {os.environ['ECR_COMMAND']}")
out.append(f"    {os.environ['SKOPEO_COMMAND']}")

import json
fine = {r["command"]: r for r in json.load(open(os.environ["FINE_JSON"]))["results"]}
fe, fs = fine["ecr-promote"]["mean"], fine["skopeo"]["mean"]
out.append(f"\nWarm copies again, finely timed: `hyperfine -N --warmup 3 --runs {os.environ['FINE_RUNS']}`, production's "
           "manifest deleted (untimed, `--prepare`) before each run so that every run finds all blobs present and "
           f"the tag absent. Mean ratio ecr-promote/skopeo: **{fe / fs:.2f}x** (target <= 0.5x: "
           f"{'met' if fe / fs <= 0.5 else 'not met'}).\n")
out.append(open(os.environ["FINE_MD"]).read())
out.append("\n<details><summary>Every run</summary>\n")
out.append("| scenario | tool | round | wall (s) | user (s) | sys (s) | peak RSS (MiB) | staging CPU (s) | production CPU (s) | load avg before |")
out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in raw:
    out.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.1f} | {r[7]:.2f} | {r[8]:.2f} | {r[9]:.2f} |")
out.append("\n</details>")
print("\n".join(out))
PY
)"

echo
echo "$REPORT"
if [[ "$WRITE" == 1 ]]; then
    echo "$REPORT" >"$REPO/bench/RESULTS-$STORAGE_FS.md"
    log "wrote bench/RESULTS-$STORAGE_FS.md"
fi
