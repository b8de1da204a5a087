# Sourced by scripts/demo.sh and bench/webhook.sh: the parts of the local world both start the same way. Every
# server lives in one temp folder ($WORK) and is stopped, and the folder removed, when the script exits.
# Needs REPO (the checkout) and PYTHON (the venv's python) set.

# local_world_dir PREFIX: makes $WORK and arranges the clean-up.
local_world_dir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    PIDS=()
    trap local_world_cleanup EXIT
}

local_world_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10 s).
wait_port() {
    for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "nothing listens on 127.0.0.1:$1 after 10 s (logs in $WORK)" >&2
    exit 1
}

# start_moto: moto_server on MOTO_PORT, logging to $WORK/moto.log.
start_moto() {
    MOTO_PORT="$(free_port)"
    "$REPO/.local/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
    PIDS+=($!)
    wait_port "$MOTO_PORT"
}

# start_lambda_emulator: the Lambda Runtime API emulator and its function URLs (plain HTTP in, function URL
# events out) on LAMBDA_PORT. With --only-lambda-apis its Runtime API serves the function named "_": run the
# function with AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$LAMBDA_PORT/.rt and AWS_LAMBDA_FUNCTION_NAME=_,
# and reach it at http://127.0.0.1:$LAMBDA_PORT/lambda-url/_/.
start_lambda_emulator() {
    LAMBDA_PORT="$(free_port)"
    (cd "$REPO" && PATH="$REPO/.local/venv/bin:$PATH" exec cargo-lambda lambda watch --only-lambda-apis \
        -A 127.0.0.1 -P "$LAMBDA_PORT" >"$WORK/emulator.log" 2>&1) &
    PIDS+=($!)
    wait_port "$LAMBDA_PORT"
}
