#!/usr/bin/env python3
"""Summarizes the profiles that `PROFILE=1 ./scripts/bench.sh` leaves in target/bench/profile/
into markdown on stdout: per balancer and workload,

- perf stat (low overhead, when perf works): CPU and context switches per request, and
  syscalls per request from the syscall tracepoints;
- strace -c -f: syscalls per request and the top syscalls (strace slows the balancer a lot,
  so only ratios per request mean something);
- strace of the data syscalls: calls per request, EAGAIN, and the bytes each one moved, by
  direction (client or server socket, pipe).
"""

import os
import re
import statistics
import sys
from collections import defaultdict

WORKLOADS = ["keepalive-small", "close-small", "keepalive-1MiB"]
BALANCERS = ["haproxy", "sluice", "sluice-nosplice"]


def read_lines(path, **kw):
    """The lines of `path`, or None when it cannot be read."""
    try:
        return open(path, **kw).read().splitlines()
    except OSError:
        return None


def runs(d):
    """(workload, balancer, path prefix) of every profiled run, in table order."""
    for wl in WORKLOADS:
        for lb in BALANCERS:
            yield wl, lb, os.path.join(d, f"{lb}-{wl}")


def wrk_requests(path):
    try:
        text = open(path).read()
    except OSError:
        return None, None
    req = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return (int(req.group(1)) if req else None, float(rps.group(1)) if rps else None)


def perf_counts(path):
    """Sums `perf stat -I -x,` interval lines per event."""
    counts = defaultdict(float)
    lines = read_lines(path)
    if lines is None:
        return None
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 4:
            continue
        try:
            v = float(f[1])
        except ValueError:
            continue  # <not counted> / <not supported>
        counts[f[3]] += v
    return counts


def perf_report(path, n):
    """Top entries of `perf report --stdio`: ['12.3% sym', ...]."""
    res = []
    lines = read_lines(path) or []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if not f[0].endswith("%"):
            continue
        if len(f) >= 4 and f[2] in ("[k]", "[.]"):
            name = " ".join(f[3:])
            name = re.sub(r"<.*>", "<..>", name)
            if len(name) > 60:
                name = name[:57] + "..."
            res.append(f"{f[0]} {name}{' (k)' if f[2] == '[k]' else ''}")
        else:
            res.append(f"{f[0]} {' '.join(f[1:])}")
        if len(res) >= n:
            break
    return res


def strace_c(path):
    """Parses `strace -c` output: {syscall: (calls, errors)}."""
    res = {}
    lines = read_lines(path)
    if lines is None:
        return None
    for line in lines:
        f = line.split()
        if len(f) < 5 or not re.match(r"^[\d.]+$", f[0]):
            continue
        name = f[-1]
        if name == "total":
            continue
        calls = int(f[3])
        errors = int(f[4]) if len(f) == 6 else 0
        res[name] = (calls, errors)
    return res


LINE = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)(?:\s+(\w+))?")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"(?:\.\.\.)?')
FD = re.compile(r"^(\d+)<(.*)>$")
INODE = re.compile(r"^(?:TCP|TCPv6|socket):\[(\d+)\]$")


def tcp_table(path):
    """inode -> remote port, from a snapshot of /proc/net/tcp{,6}."""
    res = {}
    lines = read_lines(path) or []
    for line in lines:
        f = line.split()
        if len(f) < 10 or ":" not in f[2] or not f[9].isdigit():
            continue
        res[f[9]] = str(int(f[2].rsplit(":", 1)[1], 16))
    return res


def fd_kind(arg, backend_ports, tcp):
    m = FD.match(arg.strip())
    if not m:
        return "fd"
    desc = m.group(2)
    if desc.startswith("pipe:"):
        return "pipe"
    i = INODE.match(desc)
    if i:
        rport = tcp.get(i.group(1))
        if rport is None:
            return "socket"
        return "server" if rport in backend_ports else "client"
    return desc.split(":")[0] or "fd"


def sizes(path, backend_ports, tcp):
    """Per operation label: calls, EAGAIN, EOF, bytes moved, requested sizes."""
    ops = defaultdict(lambda: {"calls": 0, "eagain": 0, "eof": 0, "moved": [], "asked": []})
    lines = read_lines(path, errors="replace")
    if lines is None:
        return None
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        name, args, ret, err = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        args = [a.strip() for a in STRING.sub("S", args).split(", ")]
        if name == "splice" and len(args) >= 5:
            src, dst = fd_kind(args[0], backend_ports, tcp), fd_kind(args[2], backend_ports, tcp)
            label = f"splice {src} -> {dst}"
            asked = args[4]
        elif name in ("read", "recvfrom", "recvmsg", "readv"):
            label = f"{name} from {fd_kind(args[0], backend_ports, tcp)}"
            asked = args[2] if len(args) > 2 else ""
        elif name in ("write", "sendto", "sendmsg", "writev"):
            label = f"{name} to {fd_kind(args[0], backend_ports, tcp)}"
            asked = args[2] if len(args) > 2 else ""
        else:
            continue
        o = ops[label]
        o["calls"] += 1
        if ret < 0:
            if err == "EAGAIN":
                o["eagain"] += 1
            continue
        if ret == 0:
            o["eof"] += 1
            continue
        o["moved"].append(ret)
        if asked.isdigit():
            o["asked"].append(int(asked))
    return ops


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def main():
    d = sys.argv[1]
    ports = {}
    try:
        for line in open(os.path.join(d, "ports")):
            k, v = line.strip().split("=", 1)
            ports[k] = v
    except OSError:
        pass
    backend_ports = {ports.get("n1"), ports.get("n2")} - {None}
    hw = open(os.path.join(d, "hw_counters")).read().strip() if os.path.exists(os.path.join(d, "hw_counters")) else "?"
    out = []
    out.append(f"Profiled at nbthread {ports.get('nbthread', '?')}. Hardware counters available: {hw}.\n")

    # perf stat
    perf_rows = []
    perf_top = []
    for wl, lb, base in runs(d):
        c = perf_counts(base + ".perf")
        req, rps = wrk_requests(base + ".perf-wrk")
        if not c or not req:
            continue
        tc = c.get("task-clock")  # msec
        user = None
        try:
            a, b = [l.split() for l in open(base + ".cpu").read().splitlines()[:2]]
            du, ds = int(b[0]) - int(a[0]), int(b[1]) - int(a[1])
            user = f"{100 * du / (du + ds):.0f} %" if du + ds else "n/a"
        except (OSError, ValueError, IndexError):
            pass
        sysc = {k.split("sys_enter_", 1)[1]: v for k, v in c.items() if "sys_enter_" in k}
        perf_rows.append(
            f"| {wl} | {lb} | {fmt(rps)} | {fmt(tc * 1000 / req if tc else None)} "
            f"| {fmt(c.get('context-switches', 0) / req, 3)} "
            f"| {fmt(c.get('raw_syscalls:sys_enter', 0) / req)} | {user or 'n/a'} |"
        )
        top = sorted(((v, k) for k, v in sysc.items() if v > 0), reverse=True)[:10]
        perf_top.append(
            f"| {wl} | {lb} | "
            + ", ".join(f"{k} {fmt(v / req)}" for v, k in top)
            + " |"
        )
    if perf_rows:
        out.append("#### perf stat (software events and syscall tracepoints; low overhead)\n")
        out.append("| workload | balancer | req/s | CPU µs/req | context switches/req | syscalls/req | user share of CPU |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        out += perf_rows
        out.append("")
        out.append("Syscalls per request by name (tracepoints, top 10):\n")
        out.append("| workload | balancer | calls per request |")
        out.append("|---|---|---|")
        out += perf_top
        out.append("")

    # perf record
    rows = []
    for wl, lb, base in runs(d):
        top = perf_report(base + ".report", 12)
        dsos = perf_report(base + ".report-dso", 4)
        if top:
            rows.append(f"| {wl} | {lb} | " + ", ".join(dsos) + " | " + ", ".join(top) + " |")
    if rows:
        out.append("#### perf record -e cpu-clock (share of the balancer's samples)\n")
        out.append("| workload | balancer | by object | top symbols |")
        out.append("|---|---|---|---|")
        out += rows
        out.append("")

    # strace -c
    rows = []
    for wl, lb, base in runs(d):
        s = strace_c(base + ".strace-c")
        req, rps = wrk_requests(base + ".strace-wrk")
        if not s or not req:
            continue
        total = sum(v[0] for v in s.values())
        errs = sum(v[1] for v in s.values())
        top = sorted(((v[0], k, v[1]) for k, v in s.items()), reverse=True)[:8]
        rows.append(
            f"| {wl} | {lb} | {fmt(rps)} | {fmt(total / req)} | {fmt(errs / req)} | "
            + ", ".join(
                f"{k} {fmt(n / req)}" + (f" ({fmt(e / req)} err)" if e else "")
                for n, k, e in top
            )
            + " |"
        )
    if rows:
        out.append("#### strace -c -f (traced, so req/s is much lower; per-request counts only)\n")
        out.append("| workload | balancer | req/s traced | syscalls/req | failed/req | top syscalls per request |")
        out.append("|---|---|---:|---:|---:|---|")
        out += rows
        out.append("")

    # data syscall sizes
    rows = []
    for wl, lb, base in runs(d):
        ops = sizes(base + ".strace-sizes", backend_ports, tcp_table(base + ".tcp"))
        req, _ = wrk_requests(base + ".sizes-wrk")
        if not ops or not req:
            continue
        for label in sorted(ops):
            o = ops[label]
            moved = o["moved"]
            asked = o["asked"]
            rows.append(
                f"| {wl} | {lb} | {label} | {fmt(o['calls'] / req)} | {fmt(o['eagain'] / req)} "
                f"| {fmt(o['eof'] / req)} "
                f"| {fmt(statistics.mean(moved)) if moved else 'n/a'} "
                f"| {fmt(statistics.median(moved)) if moved else 'n/a'} "
                f"| {fmt(statistics.median(asked)) if asked else 'n/a'} |"
            )
    if rows:
        out.append("#### Data syscalls (strace -y, 2 s; 'socket' = a connection not in the mid-run /proc/net/tcp snapshot): per request, and bytes per successful call\n")
        out.append("| workload | balancer | operation | calls/req | EAGAIN/req | EOF/req | mean bytes | median bytes | median asked |")
        out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
        out += rows
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
