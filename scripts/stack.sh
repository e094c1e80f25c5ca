# Source me: helpers the scripts that start nats-server and allot share.
# `stack_start_nats DIR PORT [ARGS...]` starts nats-server (extra ARGS,
# e.g. `-c nats.conf`) with its store and log in DIR and waits until it is
# ready; `stack_track PID` records a process the
# EXIT trap stops (`trap stack_stop EXIT`), last started first, so allot
# drains through the broker before nats-server goes. Nothing else is stopped.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stack_pids=()
stack_track() { stack_pids+=("$1"); }

stack_stop() {
    for ((i = ${#stack_pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${stack_pids[i]}" 2>/dev/null || true
        wait "${stack_pids[i]}" 2>/dev/null || true
    done
    stack_pids=()
}

stack_start_nats() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir/nats"
    "${ALLOT_NATS_SERVER:-$(command -v nats-server)}" -js -a 127.0.0.1 -p "$port" \
        -sd "$dir/nats" "$@" >"$dir/nats.log" 2>&1 &
    stack_track $!
    for _ in $(seq 100); do
        grep -q "Server is ready" "$dir/nats.log" && return 0
        sleep 0.1
    done
    cat "$dir/nats.log"
    echo "nats-server did not start" >&2
    return 1
}
