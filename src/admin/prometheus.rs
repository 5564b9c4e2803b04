//! The Prometheus exporter: text exposition format 0.0.4 under HAProxy 2.6's exporter names
//! (`addons/promex`), so dashboards built for HAProxy work unchanged.
//!
//! Metric names, HELP texts, TYPEs, labels (`proxy`, `server`, `state`, `version`) and the
//! order (process metrics, then per metric every frontend, backend or server in
//! configuration order) are those a real HAProxy 2.6.12 prints for a `mode tcp`
//! configuration; only metrics sluice can fill are exported (no HTTP, SSL, compression,
//! pool or peer metrics). Values come from the same rows as `show stat`, with HAProxy's
//! conventions: a field `show stat` leaves empty is `NaN`, times in milliseconds become
//! seconds printed with `%f`, and states are one-hot gauges with a `state` label.

use std::fmt::Write as _;

use super::command::StatFilter;
use super::show::{check_status_code, stat_rows, Fld, Obj, Source, StatRow, Val};
use super::snapshot::{Info, ServerRow, ServerStatus, Snapshot};

/// The whole `/metrics` body.
pub fn prometheus(s: &Snapshot) -> String {
    let rows = stat_rows(s, &StatFilter::default());
    let mut out = String::with_capacity(16_384 + rows.len() * 4_096);
    for m in PROCESS {
        header(&mut out, "process", m.name, m.help, m.kind);
        process_value(&mut out, m, &s.info);
    }
    for (section, obj, table) in [
        ("frontend", Obj::Frontend, FRONTEND),
        ("backend", Obj::Backend, BACKEND),
        ("server", Obj::Server, SERVER),
    ] {
        let rows: Vec<&StatRow<'_>> = rows.iter().filter(|r| r.obj == obj).collect();
        if rows.is_empty() {
            continue;
        }
        for m in table {
            let mut body = String::new();
            for row in &rows {
                metric_lines(&mut body, section, m, row, s);
            }
            // HAProxy prints no HELP/TYPE for a metric no object has.
            if !body.is_empty() {
                header(&mut out, section, m.name, m.help, m.kind);
                out.push_str(&body);
            }
        }
    }
    out
}

/// Server states of the exporter's one-hot `status` metrics, in HAProxy's order.
pub const SERVER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// Check statuses of `check_status` and `agg_check_status`, in HAProxy's order.
pub const CHECK_STATES: [&str; 16] = [
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP",
    "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];

/// The exporter's state for a server: draining and maintenance first, then whether it runs.
pub fn server_state(st: ServerStatus) -> &'static str {
    match st {
        ServerStatus::Maint => "MAINT",
        ServerStatus::Drain => "DRAIN",
        ServerStatus::Up | ServerStatus::GoingDown { .. } | ServerStatus::NoCheck => "UP",
        ServerStatus::Down | ServerStatus::GoingUp { .. } => "DOWN",
    }
}

// ---------------------------------------------------------------------------------------------
// tables

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}
use Kind::{Counter, Gauge};

/// Where a process metric comes from.
#[derive(Debug, Clone, Copy)]
enum P {
    Nbthread,
    One,
    Zero,
    Uptime,
    UlimitN,
    Maxsock,
    Maxconn,
    CurrConns,
    CumConns,
    MaxPipes,
    PipesUsed,
    PipesFree,
    ConnRate,
    MaxConnRate,
    SessRate,
    MaxSessRate,
    Stopping,
    Jobs,
    Listeners,
    DroppedLogs,
    BytesOut,
    SplicedBytesOut,
    BuildInfo,
    StartTime,
}

struct ProcessMetric {
    name: &'static str,
    kind: Kind,
    src: P,
    help: &'static str,
}

const fn pm(name: &'static str, kind: Kind, src: P, help: &'static str) -> ProcessMetric {
    ProcessMetric {
        name,
        kind,
        src,
        help,
    }
}

/// Where a frontend, backend or server metric comes from.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// A `show stat` field, as is (empty: NaN).
    Field(Fld),
    /// A field in milliseconds, exported in seconds.
    Millis(Fld),
    /// One-hot status: UP/DOWN for proxies, [`SERVER_STATES`] for servers.
    Status,
    /// Per backend, how many servers are in each of [`SERVER_STATES`].
    AggServerStatus,
    /// Per backend, how many checked servers last saw each of [`CHECK_STATES`].
    AggCheckStatus,
    /// One-hot last check status, for servers whose checks run.
    CheckStatus,
    CheckCode,
    CheckDuration,
}

struct ProxyMetric {
    name: &'static str,
    kind: Kind,
    src: Src,
    help: &'static str,
}

const fn m(name: &'static str, kind: Kind, src: Src, help: &'static str) -> ProxyMetric {
    ProxyMetric {
        name,
        kind,
        src,
        help,
    }
}

// The tables below are HAProxy 2.6.12's metrics (names, TYPEs and HELP texts as its exporter
// prints them), restricted to what sluice fills.

const PROCESS: &[ProcessMetric] = &[
    pm("nbthread", Gauge, P::Nbthread, "Number of started threads (global.nbthread)"),
    pm("nbproc", Gauge, P::One, "Number of started worker processes (historical, always 1)"),
    pm("relative_process_id", Gauge, P::One, "Relative worker process number (1)"),
    pm("uptime_seconds", Gauge, P::Uptime, "How long ago this worker process was started (seconds)"),
    pm("max_fds", Gauge, P::UlimitN, "Hard limit on the number of per-process file descriptors"),
    pm("max_sockets", Gauge, P::Maxsock, "Hard limit on the number of per-process sockets"),
    pm("max_connections", Gauge, P::Maxconn, "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)"),
    pm("hard_max_connections", Gauge, P::Maxconn, "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)"),
    pm("current_connections", Gauge, P::CurrConns, "Current number of connections on this worker process"),
    pm("connections_total", Counter, P::CumConns, "Total number of connections on this worker process since started"),
    pm("max_pipes", Gauge, P::MaxPipes, "Hard limit on the number of pipes for splicing, 0=unlimited"),
    pm("pipes_used_total", Counter, P::PipesUsed, "Current number of pipes in use in this worker process"),
    pm("pipes_free_total", Counter, P::PipesFree, "Current number of allocated and available pipes in this worker process"),
    pm("current_connection_rate", Gauge, P::ConnRate, "Number of front connections created on this worker process over the last second"),
    pm("limit_connection_rate", Gauge, P::Zero, "Hard limit for ConnRate (global.maxconnrate)"),
    pm("max_connection_rate", Gauge, P::MaxConnRate, "Highest ConnRate reached on this worker process since started (in connections per second)"),
    pm("current_session_rate", Gauge, P::SessRate, "Number of sessions created on this worker process over the last second"),
    pm("limit_session_rate", Gauge, P::Zero, "Hard limit for SessRate (global.maxsessrate)"),
    pm("max_session_rate", Gauge, P::MaxSessRate, "Highest SessRate reached on this worker process since started (in sessions per second)"),
    pm("stopping", Gauge, P::Stopping, "1 if the worker process is currently stopping, otherwise zero"),
    pm("jobs", Gauge, P::Jobs, "Current number of active jobs on the current worker process (frontend connections, master connections, listeners)"),
    pm("listeners", Gauge, P::Listeners, "Current number of active listeners on the current worker process"),
    pm("dropped_logs_total", Counter, P::DroppedLogs, "Total number of dropped logs for current worker process since started"),
    pm("bytes_out_total", Counter, P::BytesOut, "Total number of bytes emitted by current worker process since started"),
    pm("spliced_bytes_out_total", Counter, P::SplicedBytesOut, "Total number of bytes emitted by current worker process through a kernel pipe since started"),
    pm("build_info", Gauge, P::BuildInfo, "Build info"),
    pm("max_memory_bytes", Gauge, P::Zero, "Worker process's hard limit on memory usage in byes (-m on command line)"),
    pm("start_time_seconds", Gauge, P::StartTime, "Start time in seconds"),
];

const FRONTEND: &[ProxyMetric] = &[
    m("current_sessions", Gauge, Src::Field(Fld::Scur), "Number of current sessions on the frontend, backend or server"),
    m("max_sessions", Gauge, Src::Field(Fld::Smax), "Highest value of current sessions encountered since process started"),
    m("limit_sessions", Gauge, Src::Field(Fld::Slim), "Frontend/listener/server's maxconn, backend's fullconn"),
    m("sessions_total", Counter, Src::Field(Fld::Stot), "Total number of sessions since process started"),
    m("bytes_in_total", Counter, Src::Field(Fld::Bin), "Total number of request bytes since process started"),
    m("bytes_out_total", Counter, Src::Field(Fld::Bout), "Total number of response bytes since process started"),
    m("requests_denied_total", Counter, Src::Field(Fld::Dreq), "Total number of denied requests since process started"),
    m("responses_denied_total", Counter, Src::Field(Fld::Dresp), "Total number of denied responses since process started"),
    m("request_errors_total", Counter, Src::Field(Fld::Ereq), "Total number of invalid requests since process started"),
    m("status", Gauge, Src::Status, "Current status of the service, per state label value."),
    m("limit_session_rate", Gauge, Src::Field(Fld::RateLim), "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)"),
    m("max_session_rate", Gauge, Src::Field(Fld::RateMax), "Highest value of sessions per second observed since the worker process started"),
    m("connections_rate_max", Gauge, Src::Field(Fld::ConnRateMax), "Highest value of connections per second observed since the worker process started"),
    m("connections_total", Counter, Src::Field(Fld::ConnTot), "Total number of new connections accepted on this frontend since the worker process started"),
    m("denied_connections_total", Counter, Src::Field(Fld::Dcon), "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started"),
    m("denied_sessions_total", Counter, Src::Field(Fld::Dses), "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started"),
    m("failed_header_rewriting_total", Counter, Src::Field(Fld::Wrew), "Total number of failed HTTP header rewrites since the worker process started"),
    m("internal_errors_total", Counter, Src::Field(Fld::Eint), "Total number of internal errors since process started"),
];

const BACKEND: &[ProxyMetric] = &[
    m("current_queue", Gauge, Src::Field(Fld::Qcur), "Number of current queued connections"),
    m("max_queue", Gauge, Src::Field(Fld::Qmax), "Highest value of queued connections encountered since process started"),
    m("current_sessions", Gauge, Src::Field(Fld::Scur), "Number of current sessions on the frontend, backend or server"),
    m("max_sessions", Gauge, Src::Field(Fld::Smax), "Highest value of current sessions encountered since process started"),
    m("limit_sessions", Gauge, Src::Field(Fld::Slim), "Frontend/listener/server's maxconn, backend's fullconn"),
    m("sessions_total", Counter, Src::Field(Fld::Stot), "Total number of sessions since process started"),
    m("bytes_in_total", Counter, Src::Field(Fld::Bin), "Total number of request bytes since process started"),
    m("bytes_out_total", Counter, Src::Field(Fld::Bout), "Total number of response bytes since process started"),
    m("requests_denied_total", Counter, Src::Field(Fld::Dreq), "Total number of denied requests since process started"),
    m("responses_denied_total", Counter, Src::Field(Fld::Dresp), "Total number of denied responses since process started"),
    m("connection_errors_total", Counter, Src::Field(Fld::Econ), "Total number of failed connections to server since the worker process started"),
    m("response_errors_total", Counter, Src::Field(Fld::Eresp), "Total number of invalid responses since the worker process started"),
    m("retry_warnings_total", Counter, Src::Field(Fld::Wretr), "Total number of server connection retries since the worker process started"),
    m("redispatch_warnings_total", Counter, Src::Field(Fld::Wredis), "Total number of server redispatches due to connection failures since the worker process started"),
    m("status", Gauge, Src::Status, "Current status of the service, per state label value."),
    m("weight", Gauge, Src::Field(Fld::Weight), "Server's effective weight, or sum of active servers' effective weights for a backend"),
    m("active_servers", Gauge, Src::Field(Fld::Act), "Total number of active UP servers with a non-zero weight"),
    m("backup_servers", Gauge, Src::Field(Fld::Bck), "Total number of backup UP servers with a non-zero weight"),
    m("check_up_down_total", Counter, Src::Field(Fld::Chkdown), "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    m("check_last_change_seconds", Gauge, Src::Field(Fld::Lastchg), "How long ago the last server state changed, in seconds"),
    m("downtime_seconds_total", Counter, Src::Field(Fld::Downtime), "Total time spent in DOWN state, for server or backend"),
    m("loadbalanced_total", Counter, Src::Field(Fld::Lbtot), "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)"),
    m("max_session_rate", Gauge, Src::Field(Fld::RateMax), "Highest value of sessions per second observed since the worker process started"),
    m("client_aborts_total", Counter, Src::Field(Fld::CliAbrt), "Total number of requests or connections aborted by the client since the worker process started"),
    m("server_aborts_total", Counter, Src::Field(Fld::SrvAbrt), "Total number of requests or connections aborted by the server since the worker process started"),
    m("last_session_seconds", Gauge, Src::Field(Fld::Lastsess), "How long ago some traffic was seen on this object on this worker process, in seconds"),
    m("connect_time_average_seconds", Gauge, Src::Millis(Fld::Ctime), "Avg. connect time for last 1024 successful connections."),
    m("response_time_average_seconds", Gauge, Src::Millis(Fld::Rtime), "Avg. response time for last 1024 successful connections."),
    m("total_time_average_seconds", Gauge, Src::Millis(Fld::Ttime), "Avg. total time for last 1024 successful connections."),
    m("failed_header_rewriting_total", Counter, Src::Field(Fld::Wrew), "Total number of failed HTTP header rewrites since the worker process started"),
    m("connection_reuses_total", Counter, Src::Field(Fld::Reuse), "Total number of reused connection on this backend/server since the worker process started"),
    m("internal_errors_total", Counter, Src::Field(Fld::Eint), "Total number of internal errors since process started"),
    m("uweight", Gauge, Src::Field(Fld::Uweight), "Server's user weight, or sum of active servers' user weights for a backend"),
    m("agg_server_status", Gauge, Src::AggServerStatus, "Backend's aggregated gauge of servers' status"),
    m("agg_server_check_status", Gauge, Src::AggServerStatus, "Backend's aggregated gauge of servers' state check status"),
    m("agg_check_status", Gauge, Src::AggCheckStatus, "Backend's aggregated gauge of servers' state check status"),
];

const SERVER: &[ProxyMetric] = &[
    m("current_queue", Gauge, Src::Field(Fld::Qcur), "Number of current queued connections"),
    m("max_queue", Gauge, Src::Field(Fld::Qmax), "Highest value of queued connections encountered since process started"),
    m("current_sessions", Gauge, Src::Field(Fld::Scur), "Number of current sessions on the frontend, backend or server"),
    m("max_sessions", Gauge, Src::Field(Fld::Smax), "Highest value of current sessions encountered since process started"),
    m("limit_sessions", Gauge, Src::Field(Fld::Slim), "Frontend/listener/server's maxconn, backend's fullconn"),
    m("sessions_total", Counter, Src::Field(Fld::Stot), "Total number of sessions since process started"),
    m("bytes_in_total", Counter, Src::Field(Fld::Bin), "Total number of request bytes since process started"),
    m("bytes_out_total", Counter, Src::Field(Fld::Bout), "Total number of response bytes since process started"),
    m("responses_denied_total", Counter, Src::Field(Fld::Dresp), "Total number of denied responses since process started"),
    m("connection_errors_total", Counter, Src::Field(Fld::Econ), "Total number of failed connections to server since the worker process started"),
    m("response_errors_total", Counter, Src::Field(Fld::Eresp), "Total number of invalid responses since the worker process started"),
    m("retry_warnings_total", Counter, Src::Field(Fld::Wretr), "Total number of server connection retries since the worker process started"),
    m("redispatch_warnings_total", Counter, Src::Field(Fld::Wredis), "Total number of server redispatches due to connection failures since the worker process started"),
    m("status", Gauge, Src::Status, "Current status of the service, per state label value."),
    m("weight", Gauge, Src::Field(Fld::Weight), "Server's effective weight, or sum of active servers' effective weights for a backend"),
    m("check_failures_total", Counter, Src::Field(Fld::Chkfail), "Total number of failed individual health checks per server/backend, since the worker process started"),
    m("check_up_down_total", Counter, Src::Field(Fld::Chkdown), "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    m("check_last_change_seconds", Gauge, Src::Field(Fld::Lastchg), "How long ago the last server state changed, in seconds"),
    m("downtime_seconds_total", Counter, Src::Field(Fld::Downtime), "Total time spent in DOWN state, for server or backend"),
    m("queue_limit", Gauge, Src::Field(Fld::Qlimit), "Limit on the number of connections in queue, for servers only (maxqueue argument)"),
    m("current_throttle", Gauge, Src::Field(Fld::Throttle), "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)"),
    m("loadbalanced_total", Counter, Src::Field(Fld::Lbtot), "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)"),
    m("max_session_rate", Gauge, Src::Field(Fld::RateMax), "Highest value of sessions per second observed since the worker process started"),
    m("check_status", Gauge, Src::CheckStatus, "Status of last health check, per state label value."),
    m("check_code", Gauge, Src::CheckCode, "layer5-7 code, if available of the last health check."),
    m("check_duration_seconds", Gauge, Src::CheckDuration, "Total duration of the latest server health check, in seconds."),
    m("client_aborts_total", Counter, Src::Field(Fld::CliAbrt), "Total number of requests or connections aborted by the client since the worker process started"),
    m("server_aborts_total", Counter, Src::Field(Fld::SrvAbrt), "Total number of requests or connections aborted by the server since the worker process started"),
    m("last_session_seconds", Gauge, Src::Field(Fld::Lastsess), "How long ago some traffic was seen on this object on this worker process, in seconds"),
    m("connect_time_average_seconds", Gauge, Src::Millis(Fld::Ctime), "Avg. connect time for last 1024 successful connections."),
    m("response_time_average_seconds", Gauge, Src::Millis(Fld::Rtime), "Avg. response time for last 1024 successful connections."),
    m("total_time_average_seconds", Gauge, Src::Millis(Fld::Ttime), "Avg. total time for last 1024 successful connections."),
    m("failed_header_rewriting_total", Counter, Src::Field(Fld::Wrew), "Total number of failed HTTP header rewrites since the worker process started"),
    m("connection_reuses_total", Counter, Src::Field(Fld::Reuse), "Total number of reused connection on this backend/server since the worker process started"),
    m("idle_connections_current", Gauge, Src::Field(Fld::SrvIcur), "Current number of idle connections available for reuse on this server"),
    m("internal_errors_total", Counter, Src::Field(Fld::Eint), "Total number of internal errors since process started"),
    m("unsafe_idle_connections_current", Gauge, Src::Field(Fld::IdleConnCur), "Current number of unsafe idle connections"),
    m("safe_idle_connections_current", Gauge, Src::Field(Fld::SafeConnCur), "Current number of safe idle connections"),
    m("used_connections_current", Gauge, Src::Field(Fld::UsedConnCur), "Current number of connections in use"),
    m("uweight", Gauge, Src::Field(Fld::Uweight), "Server's user weight, or sum of active servers' user weights for a backend"),
];

// ---------------------------------------------------------------------------------------------
// rendering

fn header(out: &mut String, section: &str, name: &str, help: &str, kind: Kind) {
    let kind = match kind {
        Gauge => "gauge",
        Counter => "counter",
    };
    let _ = write!(
        out,
        "# HELP haproxy_{section}_{name} {help}\n# TYPE haproxy_{section}_{name} {kind}\n"
    );
}

fn process_value(out: &mut String, m: &ProcessMetric, i: &Info) {
    let v = match m.src {
        P::Nbthread => u64::from(i.nbthread),
        P::One => 1,
        P::Zero => 0,
        P::Uptime => i.uptime.as_secs(),
        P::UlimitN => i.ulimit_n,
        P::Maxsock => i.maxsock,
        P::Maxconn => i.maxconn,
        P::CurrConns => i.curr_conns,
        P::CumConns => i.cum_conns,
        P::MaxPipes => i.max_pipes,
        P::PipesUsed => i.pipes_used,
        P::PipesFree => i.pipes_free,
        P::ConnRate => i.conn_rate,
        P::MaxConnRate => i.max_conn_rate,
        P::SessRate => i.sess_rate,
        P::MaxSessRate => i.max_sess_rate,
        P::Stopping => u64::from(i.stopping),
        P::Jobs => i.jobs,
        P::Listeners => i.listeners,
        P::DroppedLogs => i.dropped_logs,
        P::BytesOut => i.total_bytes_out,
        P::SplicedBytesOut => i.spliced_bytes_out,
        P::StartTime => i.start_time_sec,
        P::BuildInfo => {
            let _ = writeln!(
                out,
                "haproxy_process_{}{{version=\"{}\"}} 1",
                m.name,
                label(&i.version)
            );
            return;
        }
    };
    let _ = writeln!(out, "haproxy_process_{} {v}", m.name);
}

/// Writes the lines of metric `m` for one object.
fn metric_lines(out: &mut String, section: &str, m: &ProxyMetric, row: &StatRow<'_>, s: &Snapshot) {
    let labels = match row.src {
        Source::Server(sv) => format!(
            "proxy=\"{}\",server=\"{}\"",
            label(&sv.backend),
            label(&sv.name)
        ),
        Source::Frontend(f) => format!("proxy=\"{}\"", label(&f.name)),
        Source::Backend(b) => format!("proxy=\"{}\"", label(&b.name)),
    };
    let mut line = |labels: &str, value: &str| {
        let _ = writeln!(out, "haproxy_{section}_{}{{{labels}}} {value}", m.name);
    };
    match m.src {
        Src::Field(f) => line(&labels, &number(row.get(f))),
        Src::Millis(f) => line(&labels, &seconds(row.get(f))),
        Src::Status => match row.src {
            Source::Server(sv) => {
                one_hot(&mut line, &labels, &SERVER_STATES, server_state(sv.status))
            }
            // A frontend stopped by `disable frontend` is paused, not stopped: HAProxy
            // keeps it UP here (and PAUSED in `show stat`).
            Source::Frontend(_) => one_hot(&mut line, &labels, &["DOWN", "UP"], "UP"),
            Source::Backend(b) => one_hot(
                &mut line,
                &labels,
                &["DOWN", "UP"],
                if b.up { "UP" } else { "DOWN" },
            ),
        },
        Src::AggServerStatus => {
            for st in SERVER_STATES {
                let n = servers_of(s, row.iid)
                    .filter(|sv| server_state(sv.status) == st)
                    .count();
                line(&format!("{labels},state=\"{st}\""), &n.to_string());
            }
        }
        Src::AggCheckStatus => {
            for st in CHECK_STATES {
                // Maintenance does not hide a server's last check here.
                let n = servers_of(s, row.iid)
                    .filter_map(|sv| sv.check.as_ref())
                    .filter(|c| c.status.trim_start_matches("* ") == st)
                    .count();
                line(&format!("{labels},state=\"{st}\""), &n.to_string());
            }
        }
        Src::CheckStatus => {
            if let Source::Server(sv) = row.src {
                if let Some(status) = running_check(sv) {
                    let now = status.trim_start_matches("* ");
                    one_hot(&mut line, &labels, &CHECK_STATES, now);
                }
            }
        }
        Src::CheckCode => {
            if let Source::Server(sv) = row.src {
                if let Some(c) = sv.check.as_ref().filter(|_| running_check(sv).is_some()) {
                    // Only layer-7 statuses carry a code; HAProxy prints 0 for the others.
                    let code = if check_status_code(&c.status) >= 15 {
                        c.code.unwrap_or(0)
                    } else {
                        0
                    };
                    line(&labels, &code.to_string());
                }
            }
        }
        Src::CheckDuration => {
            if let Source::Server(sv) = row.src {
                // Shown once a check has completed, even when maintenance paused checks.
                if let Some(ms) = sv.check.as_ref().and_then(|c| c.duration_ms) {
                    line(&labels, &format!("{:.6}", ms as f64 / 1000.0));
                }
            }
        }
    }
}

fn one_hot(line: &mut impl FnMut(&str, &str), labels: &str, states: &[&str], now: &str) {
    for st in states {
        line(
            &format!("{labels},state=\"{st}\""),
            if *st == now { "1" } else { "0" },
        );
    }
}

fn servers_of(s: &Snapshot, iid: u32) -> impl Iterator<Item = &ServerRow> {
    s.servers.iter().filter(move |sv| sv.iid == iid)
}

/// The last check status of a server whose checks run (configured, enabled, not paused by
/// maintenance).
fn running_check(sv: &ServerRow) -> Option<&str> {
    if sv.status == ServerStatus::Maint {
        return None;
    }
    sv.check.as_ref().map(|c| c.status.as_str())
}

fn number(v: &Val) -> String {
    match v {
        Val::U(n) => n.to_string(),
        Val::I(n) => n.to_string(),
        Val::Empty | Val::S(_) => "NaN".to_string(),
    }
}

fn seconds(v: &Val) -> String {
    match v {
        Val::U(n) => format!("{:.6}", *n as f64 / 1000.0),
        Val::I(n) => format!("{:.6}", *n as f64 / 1000.0),
        Val::Empty | Val::S(_) => "NaN".to_string(),
    }
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
