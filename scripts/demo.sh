#!/usr/bin/env bash
# The demo of README.md: builds sluice, starts three small web backends of our own
# (examples/backend.rs), runs sluice in front of them with examples/demo.cfg, shows the
# requests spreading, stops one backend, shows traffic going on, and cleans up.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "building sluice and the demo backend (cargo build --release)"
cargo build --release --quiet --bin sluice --example backend
BIN=target/release/sluice
BACKEND=target/release/examples/backend

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A free loopback port: bind port 0 and read back what the kernel chose.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something accepts on 127.0.0.1:$1 (10 s at most).
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# One HTTP request through bash's /dev/tcp; prints the body's first line.
get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' >&3
    tail -n 1 <&3
    exec 3<&-
}

# One runtime API command over the stats socket (HAProxy's protocol), through /dev/tcp.
admin() {
    exec 4<>"/dev/tcp/127.0.0.1/$ADMIN_PORT" || return 1
    printf '%s\n' "$1" >&4
    cat <&4
    exec 4<&-
}

export DEMO_PORT S1_PORT S2_PORT S3_PORT ADMIN_PORT
DEMO_PORT=$(free_port); S1_PORT=$(free_port); S2_PORT=$(free_port); S3_PORT=$(free_port)
ADMIN_PORT=$(free_port)

say "starting three backends: s1 on :$S1_PORT, s2 on :$S2_PORT, s3 on :$S3_PORT"
for n in 1 2 3; do
    port_var="S${n}_PORT"
    "$BACKEND" --name "s$n" --listen "127.0.0.1:${!port_var}" >"$work/s$n.log" 2>&1 &
    pids+=($!)
    eval "pid_s$n=$!"
done
for p in "$S1_PORT" "$S2_PORT" "$S3_PORT"; do wait_port "$p"; done

say "checking examples/demo.cfg: $BIN -c -f examples/demo.cfg"
"$BIN" -c -f examples/demo.cfg

say "starting sluice on 127.0.0.1:$DEMO_PORT"
RUST_LOG=info "$BIN" -f examples/demo.cfg 2>"$work/sluice.log" &
pids+=($!)
# Wait for the start line, not a probe connection (a probe would be balanced too).
for _ in $(seq 1 200); do grep -q ' started: ' "$work/sluice.log" && break; sleep 0.05; done
grep -q ' started: ' "$work/sluice.log" || { cat "$work/sluice.log"; exit 1; }
sed 's/^/    sluice: /' "$work/sluice.log"

say "9 requests through sluice (balance roundrobin)"
for _ in $(seq 1 9); do printf '    %s\n' "$(get "$DEMO_PORT")"; done

say "stopping backend s2 (kill $pid_s2)"
kill "$pid_s2"; wait "$pid_s2" 2>/dev/null || true

say "9 more requests: s2 refuses, sluice retries and redispatches to s1 and s3"
ok=0
for _ in $(seq 1 9); do
    line=$(get "$DEMO_PORT" || true)
    printf '    %s\n' "${line:-<no answer>}"
    case "$line" in hello*) ok=$((ok + 1)) ;; esac
done
echo "    $ok of 9 requests answered"

say "the health checks mark s2 down (fall 2, inter 300ms)"
for _ in $(seq 1 100); do grep -q 'web/s2 is DOWN' "$work/sluice.log" && break; sleep 0.05; done
grep 'is DOWN' "$work/sluice.log" | sed 's/^/    sluice: /'

say "the stats socket, as HAProxy tooling sees it: show stat (name, server, status, sessions)"
admin "show stat" | cut -d, -f1,2,18,8 | sed 's/^/    /'

say "drain s1 from the runtime API: new requests go to s3 only"
admin "set server web/s1 state drain" >/dev/null
for _ in $(seq 1 4); do printf '    %s\n' "$(get "$DEMO_PORT")"; done
admin "set server web/s1 state ready" >/dev/null

say "stopping sluice (SIGTERM)"
kill -TERM "${pids[3]}"; wait "${pids[3]}" 2>/dev/null || true
tail -n 2 "$work/sluice.log" | sed 's/^/    sluice: /'
say "done"
[ "$ok" -eq 9 ]
