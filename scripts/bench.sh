#!/usr/bin/env bash
# Benchmarks sluice against HAProxy (TCP mode) and against nginx reached directly, on
# 127.0.0.1 only, and writes BENCHMARKS.md (the tables are also printed).
#
#   ./scripts/bench.sh                 # defaults: ROUNDS=3 DURATION=8s THREADS="1 2"
#   QUICK=1 ./scripts/bench.sh         # ROUNDS=1 DURATION=3s
#   PROFILE=1 ./scripts/bench.sh       # then strace/perf profiles (see below)
#   PROFILE=only ./scripts/bench.sh    # only the profiles, BENCHMARKS.md is left alone
#
# Environment:
#   ROUNDS        rounds; each round runs every workload against every target (3)
#   DURATION      wrk duration of one run (8s)
#   THREADS       nbthread values to test, space separated ("1 2")
#   CONNS         wrk connections (64); WRK_THREADS wrk threads (2)
#   NGINX_WORKERS nginx worker processes serving both backends (2)
#   WARMUP        wrk warm-up per target after the balancers start, not recorded (1s)
#   OUT           where raw results and logs go (target/bench)
#   PROFILE       1: profile after the benchmark; only: profile only
#   PROFILE_THREADS  nbthread for the profile (1); PROFILE_SECS strace/perf window (5)
#   (the profile also runs a third balancer, sluice with `nosplice`, under perf only)
#
# One nginx (NGINX_WORKERS workers) serves two backends; HAProxy and sluice read the same
# configuration (scripts/bench/lb.cfg.in, only the bind port differs) and balance over
# both. Workloads (wrk -t2 -c64 --latency): keep-alive /small, one connection per request
# (Connection: close) /small, keep-alive /1m (1 MiB). Runs are interleaved: each round runs
# each workload against direct, haproxy and sluice in a rotating order. Balancer CPU per
# request comes from utime+stime of /proc/PID/stat before and after each run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
if [[ ${QUICK:-0} == 1 ]]; then
    ROUNDS=${ROUNDS:-1}
    DURATION=${DURATION:-3s}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
THREADS=${THREADS:-1 2}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
WARMUP=${WARMUP:-1s}
OUT=${OUT:-$ROOT/target/bench}
PROFILE=${PROFILE:-0}
PROFILE_THREADS=${PROFILE_THREADS:-1}
PROFILE_SECS=${PROFILE_SECS:-5}

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# cleanup: everything started is recorded in PIDS and stopped on exit, also on Ctrl-C.

PIDS=()
TMP=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        stop_wait "$p"
    done
    if [[ -n $TMP && -d $TMP ]]; then
        mkdir -p "$OUT/logs"
        cp -f "$TMP"/*.log "$OUT/logs/" 2>/dev/null || true
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True while a process exists and is not a zombie.
proc_alive() {
    local st
    st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Waits up to 5 s for a process (already signalled) to exit, then kills it.
stop_wait() {
    local p=$1 deadline=$(($(now_ms) + 5000))
    while proc_alive "$p"; do
        if (($(now_ms) > deadline)); then
            kill -KILL "$p" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$p" 2>/dev/null || true
}

# Stops one process we started and forgets it.
stop_pid() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || true
    stop_wait "$p"
    for i in "${!PIDS[@]}"; do
        [[ ${PIDS[$i]} == "$p" ]] && unset 'PIDS[i]'
    done
    PIDS=("${PIDS[@]}")
}

# Polls until 127.0.0.1:PORT accepts a connection (max 10 s), or the process died.
wait_port() {
    local port=$1 pid=$2 name=$3 deadline=$(($(now_ms) + 10000))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        proc_alive "$pid" || die "$name exited during start-up, see $TMP/$name.log: $(tail -5 "$TMP/$name.log" 2>/dev/null)"
        (($(now_ms) < deadline)) || die "$name is not listening on port $port after 10 s"
        sleep 0.02
    done
}

# Polls until an HTTP GET through PORT answers (max 10 s).
wait_http() {
    local port=$1 pid=$2 name=$3 deadline=$(($(now_ms) + 10000)) reply
    wait_port "$port" "$pid" "$name"
    while :; do
        reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
            printf 'GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
            timeout 2 cat <&3) 2>/dev/null || true)
        [[ $reply == "HTTP/1.1 200"* ]] && return 0
        proc_alive "$pid" || die "$name exited during start-up, see $TMP/$name.log"
        (($(now_ms) < deadline)) || die "no HTTP answer through $name (port $port) after 10 s"
        sleep 0.02
    done
}

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---------------------------------------------------------------------------------------
# 1. tools and build

SUDO=
[[ $(id -u) -eq 0 ]] || SUDO=sudo
need=()
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v python3 >/dev/null || need+=(python3)
if [[ $PROFILE != 0 ]]; then
    command -v strace >/dev/null || need+=(strace)
    command -v perf >/dev/null || need+=(linux-perf)
fi
if ((${#need[@]})); then
    log "installing ${need[*]}"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
export PATH=$PATH:/usr/sbin:/sbin

log "building sluice (cargo build --release)"
(cd "$ROOT" && cargo build --release)

TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as nobody
mkdir -p "$OUT" "$TMP/www" "$TMP/nginx-tmp"
# A private copy, so that a concurrent `cargo build` cannot swap the binary mid-run.
cp "$ROOT/target/release/sluice" "$TMP/sluice"
SLUICE_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    SLUICE_REV="$SLUICE_REV + uncommitted changes"
fi
SLUICE_REV="$SLUICE_REV (binary sha256 $(sha256sum "$TMP/sluice" | cut -c1-12))"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# maxconn 20000 needs about 50,000 file descriptors (HAProxy refuses to start without 2 per
# connection); where the hard limit is lower (containers), maxconn is lowered to fit.
NOFILE=$(ulimit -n)
MAXCONN=20000
if [[ $NOFILE != unlimited ]] && ((NOFILE < 3 * MAXCONN + 1000)); then
    MAXCONN=$(((NOFILE - 1000) / 3 / 1000 * 1000))
    log "file-descriptor limit $NOFILE: using maxconn $MAXCONN instead of 20000"
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------
# 2. nginx backends

read -r P_N1 P_N2 P_HA P_SL P_SN < <(free_ports 5)
printf 'ok\n' >"$TMP/www/small"
head -c 1048576 /dev/urandom >"$TMP/www/1m"
chmod -R a+rX "$TMP/www"
sed -e "s|@DIR@|$TMP|g" -e "s|@P1@|$P_N1|g" -e "s|@P2@|$P_N2|g" \
    -e "s|@WORKERS@|$NGINX_WORKERS|g" "$HERE/nginx.conf.in" >"$TMP/nginx.conf"
nginx -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" ||
    die "nginx rejects $TMP/nginx.conf"
nginx -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "$P_N1" "$NGINX_PID" nginx
wait_http "$P_N2" "$NGINX_PID" nginx
log "nginx up on $P_N1 and $P_N2 (pid $NGINX_PID, $NGINX_WORKERS workers)"

# ---------------------------------------------------------------------------------------
# 3. balancers

HA_PID=
SL_PID=
SN_PID=
write_cfg() { # nbthread port file
    sed -e "s|@NBTHREAD@|$1|g" -e "s|@PORT@|$2|g" -e "s|@MAXCONN@|$MAXCONN|g" -e "s|@P1@|$P_N1|g" -e "s|@P2@|$P_N2|g" \
        "$HERE/lb.cfg.in" >"$3"
}
start_balancers() { # nbthread
    write_cfg "$1" "$P_HA" "$TMP/haproxy.cfg"
    write_cfg "$1" "$P_SL" "$TMP/sluice.cfg"
    haproxy -c -q -f "$TMP/haproxy.cfg" || die "haproxy rejects $TMP/haproxy.cfg"
    "$TMP/sluice" -c -q -f "$TMP/sluice.cfg" || die "sluice rejects $TMP/sluice.cfg"
    haproxy -f "$TMP/haproxy.cfg" -db >>"$TMP/haproxy.log" 2>&1 &
    HA_PID=$!
    PIDS+=("$HA_PID")
    RUST_LOG=warn "$TMP/sluice" -f "$TMP/sluice.cfg" >>"$TMP/sluice.log" 2>&1 &
    SL_PID=$!
    PIDS+=("$SL_PID")
    wait_http "$P_HA" "$HA_PID" haproxy
    wait_http "$P_SL" "$SL_PID" sluice
    log "nbthread $1: haproxy on $P_HA (pid $HA_PID), sluice on $P_SL (pid $SL_PID)"
}
stop_balancers() {
    [[ -n $HA_PID ]] && stop_pid "$HA_PID"
    [[ -n $SL_PID ]] && stop_pid "$SL_PID"
    HA_PID=
    SL_PID=
}

# ---------------------------------------------------------------------------------------
# 4. workloads

WORKLOADS=(keepalive-small close-small keepalive-1MiB)
TARGETS=(direct haproxy sluice)

wl_path() { [[ $1 == *1MiB ]] && echo /1m || echo /small; }
wl_args() { [[ $1 == close-* ]] && printf '%s\n' -H 'Connection: close'; true; }
target_port() {
    case $1 in
        direct) echo "$P_N1" ;; haproxy) echo "$P_HA" ;; sluice) echo "$P_SL" ;;
        sluice-nosplice) echo "$P_SN" ;;
    esac
}
target_pid() {
    case $1 in
        direct) echo "" ;; haproxy) echo "$HA_PID" ;; sluice) echo "$SL_PID" ;;
        sluice-nosplice) echo "$SN_PID" ;;
    esac
}

# utime+stime of a whole process (all threads), in clock ticks.
cpu_ticks() {
    [[ -n $1 ]] || { echo 0; return; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# Parses wrk --latency output: requests/s, p99 in ms, requests, errors, error detail.
parse_wrk() {
    awk '
    function ms(v) {
        if (v ~ /us$/) return v * 0.001
        if (v ~ /ms$/) return v + 0
        if (v ~ /m$/) return v * 60000
        if (v ~ /s$/) return v * 1000
        return v + 0
    }
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { req = $1 }
    /Socket errors:/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
    /Non-2xx or 3xx responses:/ { n = $5 }
    END {
        err = c + r + w + t + n
        printf "%s\t%.3f\t%d\t%d\tconnect=%d,read=%d,write=%d,timeout=%d,non2xx=%d\n",
            rps + 0, p99, req, err, c, r, w, t, n
    }' "$1"
}

RAW=$OUT/raw.tsv
run_one() { # nbthread round workload target
    local nb=$1 round=$2 wl=$3 target=$4 port pid t0 t1 wlog line
    local -a extra
    port=$(target_port "$target")
    pid=$(target_pid "$target")
    wlog=$OUT/wrk/nb$nb-r$round-$wl-$target.txt
    mapfile -t extra < <(wl_args "$wl")
    [[ -z $pid ]] || proc_alive "$pid" || die "$target (pid $pid) is gone, see $TMP/$target.log"
    t0=$(cpu_ticks "$pid")
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "${extra[@]}" \
        "http://127.0.0.1:$port$(wl_path "$wl")" >"$wlog" 2>&1 || log "wrk failed: $wlog"
    t1=$(cpu_ticks "$pid")
    line=$(parse_wrk "$wlog")
    local rps p99 req err detail cpu
    IFS=$'\t' read -r rps p99 req err detail <<<"$line"
    if [[ -n $pid ]] && ((req > 0)); then
        cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
    else
        cpu=NA
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$nb" "$round" "$wl" "$target" "$rps" "$p99" "$req" "$err" "$cpu" "$detail" >>"$RAW"
    log "$(printf 'nb%s r%s %-15s %-7s %10s req/s  p99 %8s ms  cpu %6s us/req  errors %s' \
        "$nb" "$round" "$wl" "$target" "$rps" "$p99" "$cpu" "$err")"
}

warm_up() {
    local t wl
    for t in "${TARGETS[@]}"; do
        for wl in keepalive-small keepalive-1MiB; do
            wrk -t1 -c8 -d"$WARMUP" "http://127.0.0.1:$(target_port "$t")$(wl_path "$wl")" >/dev/null 2>&1 || true
        done
    done
}

LOAD_BEFORE=
bench() {
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    rm -rf "$OUT/wrk"
    mkdir -p "$OUT/wrk"
    printf 'nbthread\tround\tworkload\ttarget\treq_per_s\tp99_ms\trequests\terrors\tcpu_us_per_req\terror_detail\n' >"$RAW"
    local nb r w i k
    for nb in $THREADS; do
        start_balancers "$nb"
        warm_up
        for ((r = 1; r <= ROUNDS; r++)); do
            for w in "${!WORKLOADS[@]}"; do
                for ((i = 0; i < 3; i++)); do
                    k=$(((r - 1 + w + i) % 3))
                    run_one "$nb" "$r" "${WORKLOADS[$w]}" "${TARGETS[$k]}"
                done
            done
        done
        stop_balancers
    done
}

# ---------------------------------------------------------------------------------------
# 5. report

report() {
    local date kernel hav ngv wrkv cpu
    date=$(date -u '+%Y-%m-%d %H:%M UTC')
    kernel=$(uname -r)
    hav=$(haproxy -v 2>/dev/null | head -1 | awk '{ print $3 }') || true
    ngv=$(nginx -v 2>&1 | sed 's|.*nginx/||')
    wrkv=$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')  || true
    cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
    python3 "$HERE/summarize.py" --raw "$RAW" --out "$ROOT/BENCHMARKS.md" \
        --meta "nproc=$(nproc)" --meta "cpu=$cpu" --meta "kernel=$kernel" \
        --meta "haproxy=$hav" --meta "nginx=$ngv" --meta "wrk=$wrkv" --meta "date=$date" \
        --meta "sluice=$SLUICE_REV" --meta "rounds=$ROUNDS" --meta "duration=$DURATION" \
        --meta "conns=$CONNS" --meta "wrk_threads=$WRK_THREADS" \
        --meta "nginx_workers=$NGINX_WORKERS" --meta "maxconn=$MAXCONN" --meta "nofile=$NOFILE" \
        --meta "load=$LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
}

# ---------------------------------------------------------------------------------------
# 7. profiles (PROFILE=1 or only): strace -c, perf stat (software events and syscall
# tracepoints, when perf works) and the sizes of the data syscalls, per balancer and workload.

SYSCALLS="epoll_wait epoll_pwait epoll_pwait2 epoll_ctl splice read write recvfrom sendto readv writev recvmsg sendmsg accept accept4 connect socket setsockopt getsockopt getsockname getpeername close shutdown fcntl pipe2 futex ioctl"

wait_file() { # file pattern: polls (max 10 s) until the file mentions the pattern
    local deadline=$(($(now_ms) + 10000))
    until grep -q "$2" "$1" 2>/dev/null; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.02
    done
}

# Polls (max 10 s) until a file is not empty.
wait_size() {
    local deadline=$(($(now_ms) + 10000))
    until [[ -s $1 ]]; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.02
    done
}

# utime and stime of a whole process, in clock ticks, and the ticks per second.
cpu_split() {
    awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); print $12, $13, hz }' "/proc/$1/stat"
}

# Stops an attached tracer (SIGINT makes strace and perf print their summary).
end_tool() {
    local p=$1 i
    kill -INT "$p" 2>/dev/null || true
    stop_wait "$p"
    for i in "${!PIDS[@]}"; do
        [[ ${PIDS[$i]} == "$p" ]] && unset 'PIDS[i]'
    done
    PIDS=("${PIDS[@]}")
}

# Runs wrk for SECS against PORT; writes its output to $1.
profile_wrk() { # wrklog workload port secs
    local -a extra
    mapfile -t extra < <(wl_args "$2")
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$4s" --latency "${extra[@]}" \
        "http://127.0.0.1:$3$(wl_path "$2")" >"$1" 2>&1 || true
}

profile() {
    local nb=$PROFILE_THREADS dir=$OUT/profile perf_ok=0 ev="" s
    rm -rf "$dir"
    mkdir -p "$dir"
    if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
        perf_ok=1
        for s in $SYSCALLS; do
            if perf stat -e "syscalls:sys_enter_$s" true >/dev/null 2>&1; then
                ev="$ev,syscalls:sys_enter_$s"
            fi
        done
        s=$(perf stat -e instructions true 2>&1 || true)
        if [[ $s == *"not supported"* || $s == *"not counted"* ]]; then
            echo no >"$dir/hw_counters"
        else
            echo yes >"$dir/hw_counters"
        fi
    else
        log "perf does not work here: skipping perf stat"
    fi
    printf 'nbthread=%s\nn1=%s\nn2=%s\nhaproxy=%s\nsluice=%s\n' \
        "$nb" "$P_N1" "$P_N2" "$P_HA" "$P_SL" >"$dir/ports"
    start_balancers "$nb"
    # A third balancer for comparison: sluice with `nosplice` (read/write buffers only).
    write_cfg "$nb" "$P_SN" "$TMP/sluice-nosplice.cfg"
    sed -i 's/^\( *\)maxconn .*/&\n\1nosplice/' "$TMP/sluice-nosplice.cfg"
    RUST_LOG=warn "$TMP/sluice" -f "$TMP/sluice-nosplice.cfg" >>"$TMP/sluice-nosplice.log" 2>&1 &
    SN_PID=$!
    PIDS+=("$SN_PID")
    wait_http "$P_SN" "$SN_PID" sluice-nosplice
    warm_up
    local lb wl pid port base sp wp
    for wl in keepalive-small close-small keepalive-1MiB; do
        for lb in haproxy sluice sluice-nosplice; do
            pid=$(target_pid "$lb")
            port=$(target_port "$lb")
            base=$dir/$lb-$wl
            log "profile: $lb $wl"
            # a) perf stat: software events and syscall tracepoints (low overhead). -I 100
            #    prints every 100 ms: the first line tells that perf is attached.
            if ((perf_ok)); then
                perf stat -I 100 -x, -e "task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter$ev" \
                    -p "$pid" -o "$base.perf" 2>"$base.perf.err" &
                sp=$!
                PIDS+=("$sp")
                wait_file "$base.perf" task-clock || log "perf stat did not start?"
                cpu_split "$pid" >"$base.cpu"
                profile_wrk "$base.perf-wrk" "$wl" "$port" "$PROFILE_SECS"
                cpu_split "$pid" >>"$base.cpu"
                end_tool "$sp"
                # a') perf record: where the CPU goes (cpu-clock samples, user and kernel).
                perf record -q -e cpu-clock -F 1999 -p "$pid" -o "$base.perf.data" \
                    >"$base.record.err" 2>&1 &
                sp=$!
                PIDS+=("$sp")
                wait_size "$base.perf.data" || log "perf record did not start?"
                profile_wrk "$base.record-wrk" "$wl" "$port" "$PROFILE_SECS"
                end_tool "$sp"
                perf report -i "$base.perf.data" --no-children --sort dso,sym --stdio \
                    >"$base.report" 2>/dev/null || true
                perf report -i "$base.perf.data" --no-children --sort dso --stdio \
                    >"$base.report-dso" 2>/dev/null || true
                rm -f "$base.perf.data" "$base.perf.data.old"
            else
                cpu_split "$pid" >"$base.cpu"
                profile_wrk "$base.perf-wrk" "$wl" "$port" "$PROFILE_SECS"
                cpu_split "$pid" >>"$base.cpu"
            fi
            [[ $lb == sluice-nosplice ]] && continue # perf only
            # b) strace -c -f: slows the balancer down a lot, so only counts per request.
            strace -c -f -p "$pid" -o "$base.strace-c" 2>"$base.strace-c.err" &
            sp=$!
            PIDS+=("$sp")
            wait_file "$base.strace-c.err" attached || log "strace did not attach?"
            profile_wrk "$base.strace-wrk" "$wl" "$port" "$PROFILE_SECS"
            end_tool "$sp"
            # c) what each data syscall asked for and moved (2 s, traced). -y names the
            #    fds (pipe or socket inode); a snapshot of /proc/net/tcp during the run
            #    tells client sockets from server sockets.
            strace -f -y -e trace=splice,read,write,recvfrom,sendto,readv,writev,recvmsg,sendmsg \
                -e signal=none -p "$pid" -o "$base.strace-sizes" 2>"$base.strace-sizes.err" &
            sp=$!
            PIDS+=("$sp")
            wait_file "$base.strace-sizes.err" attached || log "strace did not attach?"
            profile_wrk "$base.sizes-wrk" "$wl" "$port" 2 &
            wp=$!
            PIDS+=("$wp")
            sleep 1 # mid-run: the keep-alive connections are all open
            cat /proc/net/tcp /proc/net/tcp6 >"$base.tcp" 2>/dev/null || true
            wait "$wp" || true
            end_tool "$wp"
            end_tool "$sp"
        done
    done
    stop_balancers
    stop_pid "$SN_PID"
    SN_PID=
    python3 "$HERE/profile_summary.py" "$dir" | tee "$dir/profile.md"
}

case $PROFILE in
    only) profile ;;
    0) bench && report ;;
    *) bench && report && profile ;;
esac
log "done; raw results in $OUT"
