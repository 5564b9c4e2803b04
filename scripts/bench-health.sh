#!/usr/bin/env bash
# Health-check scale: 1,000 servers checked every second (TCP connect checks against
# local listeners on 127.0.0.1), for DURATION seconds; reports the CPU the health thread
# used (utime+stime of the thread named sluice-health, from /proc) as a share of one core,
# and the time to forward a connection meanwhile. Everything stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-1000}
DURATION=${DURATION:-20}
cargo build --release --quiet
BIN=target/release/sluice
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# 20 listeners accept the checks (50 servers share each port).
ports=$(python3 - <<'EOF'
import socket
s=[]
for _ in range(21):
    x=socket.socket(); x.bind(("127.0.0.1",0)); s.append(x)
print(" ".join(str(x.getsockname()[1]) for x in s))
EOF
)
read -r fe_port rest <<<"$ports"
python3 - "$rest" >"$work/acceptor.log" 2>&1 <<'EOF' &
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1].split():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", int(p))); l.listen(1024); l.setblocking(False)
    sel.register(l, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except BlockingIOError:
            pass
EOF
pids+=($!)
# Wait until the acceptor listens on every port (checks would be refused before).
for p in $rest; do
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        sleep 0.05
    done
done

{
    printf 'global\n    nbthread 2\n    spread-checks 5\ndefaults\n    mode tcp\n'
    printf '    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout check 1s\n'
    printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\nbackend be\n' "$fe_port"
    i=0
    for n in $(seq 1 "$SERVERS"); do
        set -- $rest
        shift $((i % 20))
        printf '    server s%d 127.0.0.1:%s check inter 1s\n' "$n" "$1"
        i=$((i + 1))
    done
} >"$work/health.cfg"

RUST_LOG=warn "$BIN" -f "$work/health.cfg" 2>"$work/sluice.log" &
pid=$!
pids+=($pid)
for _ in $(seq 1 100); do
    tid=$(grep -l '^sluice-health$' /proc/$pid/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5 || true)
    [ -n "$tid" ] && break
    sleep 0.1
done
[ -n "$tid" ] || { echo "no health thread"; cat "$work/sluice.log"; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/task/$tid/stat"; }
hz=$(getconf CLK_TCK)
sleep 2   # let the first spread-out round start
t0=$(ticks); s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks); s1=$(date +%s.%N)
share=$(echo "($t1 - $t0) / $hz / ($s1 - $s0) * 100" | bc -l)
downs=$(grep -c 'is DOWN' "$work/sluice.log" || true)
printf 'servers=%s inter=1s duration=%ss health-thread CPU=%.2f%% of one core, servers marked down=%s\n' \
    "$SERVERS" "$DURATION" "$share" "$downs"
if [ "$downs" -gt 0 ]; then
    echo "reasons:"
    grep 'is DOWN' "$work/sluice.log" | sed 's/.*reason: //; s/, check duration.*//' | sort | uniq -c | sort -rn | head -5
fi
