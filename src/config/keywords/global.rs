//! Keywords of the `global` section (configuration.txt §3), and the `log` target grammar
//! shared with proxies.

use std::path::PathBuf;

use super::values::{parse_port, parse_size, parse_u32_in, split_addr, Args, Family};
use super::{scope::GLOBAL, KeywordSpec, Parsed, Support, SINCE};
use crate::config::model::{
    AccessLevel, CpuMap, Global, LogDest, LogFormat, LogTarget, StatsSocket, StatsSocketAddr,
};

macro_rules! kw {
    ($name:expr, $usage:expr, $doc:expr, $f:expr) => {
        KeywordSpec {
            name: $name,
            scope: GLOBAL,
            support: Support::Yes,
            since: SINCE,
            usage: $usage,
            doc: $doc,
            parse: Some($f),
        }
    };
}

pub static KEYWORDS: &[KeywordSpec<Global>] = &[
    kw!("daemon", "", "run in the background (like -D)", |g, a| {
        g.daemon = a.flag()?;
        Ok(())
    }),
    kw!(
        "master-worker",
        "[no-exit-on-failure]",
        "run a master process that reloads workers (like -W)",
        |g, a| {
            let no_exit = a.peek() == Some("no-exit-on-failure");
            if no_exit {
                a.word();
            }
            g.master_worker = a.flag()?;
            g.no_exit_on_failure = no_exit && g.master_worker;
            Ok(())
        }
    ),
    kw!(
        "nbthread",
        "<n>",
        "number of worker threads (default: one per online CPU)",
        |g, a| {
            g.nbthread = Some(a.u32_in("<number of threads>", 1, 4_096)?);
            a.done()
        }
    ),
    kw!(
        "maxconn",
        "<n>",
        "process-wide maximum of concurrent connections",
        |g, a| {
            g.maxconn = Some(a.u32_in("<maxconn>", 1, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "ulimit-n",
        "<n>",
        "file-descriptor limit to set at start",
        |g, a| {
            g.ulimit_n = Some(u64::from(a.u32_in(
                "<number of fds>",
                1,
                i32::MAX as u32,
            )?));
            a.done()
        }
    ),
    kw!(
        "user",
        "<name>",
        "drop privileges to this user after binding",
        |g, a| {
            let name = a.expect("<user name>")?;
            if !matches!(nix::unistd::User::from_name(name), Ok(Some(_))) {
                return Err(format!("cannot find user id for '{name}'"));
            }
            g.user = Some(name.to_string());
            a.done()
        }
    ),
    kw!(
        "group",
        "<name>",
        "drop privileges to this group after binding",
        |g, a| {
            let name = a.expect("<group name>")?;
            if !matches!(nix::unistd::Group::from_name(name), Ok(Some(_))) {
                return Err(format!("cannot find group id for '{name}'"));
            }
            g.group = Some(name.to_string());
            a.done()
        }
    ),
    kw!(
        "uid",
        "<number>",
        "drop privileges to this user id after binding",
        |g, a| {
            g.uid = Some(a.u32_in("<uid>", 0, u32::MAX - 1)?);
            a.done()
        }
    ),
    kw!(
        "gid",
        "<number>",
        "drop privileges to this group id after binding",
        |g, a| {
            g.gid = Some(a.u32_in("<gid>", 0, u32::MAX - 1)?);
            a.done()
        }
    ),
    kw!(
        "chroot",
        "<dir>",
        "chroot to this directory after binding",
        |g, a| {
            g.chroot = Some(PathBuf::from(a.expect("<directory>")?));
            a.done()
        }
    ),
    kw!(
        "pidfile",
        "<file>",
        "write the process id here (like -p)",
        |g, a| {
            g.pidfile = Some(PathBuf::from(a.expect("<file>")?));
            a.done()
        }
    ),
    kw!(
        "log",
        "<target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]",
        "send logs to a syslog target, stdout or stderr",
        |g, a| {
            g.logs.push(parse_log_target(a)?);
            Ok(())
        }
    ),
    kw!(
        "stats socket",
        "<path|ipv4@addr:port> [mode <m>] [level <l>] [expose-fd listeners]",
        "the runtime API socket (socat, HAProxy tooling)",
        parse_stats_socket
    ),
    kw!(
        "stats timeout",
        "<time>",
        "idle timeout of stats socket sessions (default 10s)",
        |g, a| {
            g.stats_timeout = a.time("<timeout>")?;
            a.done()
        }
    ),
    kw!(
        "hard-stop-after",
        "<time>",
        "bound on a soft stop: close what remains after this",
        |g, a| {
            g.hard_stop_after = Some(a.time("<time>")?);
            a.done()
        }
    ),
    kw!(
        "nosplice",
        "",
        "never use splice(2): copy through user-space buffers",
        |g, a| {
            g.nosplice = a.flag()?;
            Ok(())
        }
    ),
    kw!(
        "maxpipes",
        "<n>",
        "maximum kernel pipes per process for splicing",
        |g, a| {
            g.maxpipes = Some(a.u32_in("<maxpipes>", 0, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "tune.pipesize",
        "<size>",
        "kernel pipe size for splicing (F_SETPIPE_SZ)",
        |g, a| {
            let n = parse_size(a.expect("<size>")?)?;
            if !(4_096..=1 << 30).contains(&n) {
                return Err(format!("pipe size {n} is out of range (4096-1g)"));
            }
            g.pipesize = Some(n as u32);
            a.done()
        }
    ),
    kw!(
        "tune.bufsize",
        "<size>",
        "buffer size when not splicing (default 16384)",
        |g, a| {
            let n = parse_size(a.expect("<size>")?)?;
            if !(1_024..=(1 << 30)).contains(&n) {
                return Err(format!("buffer size {n} is out of range (1024-1g)"));
            }
            g.bufsize = n as u32;
            a.done()
        }
    ),
    kw!(
        "spread-checks",
        "<0..50>",
        "random spread of health-check intervals, in percent",
        |g, a| {
            g.spread_checks = a.u32_in("<percent>", 0, 50)?;
            a.done()
        }
    ),
    kw!(
        "ca-base",
        "<dir>",
        "directory of a relative 'ca-file' (TLS health checks)",
        |g, a| {
            if g.ca_base.is_some() {
                return Err("already specified".to_string());
            }
            g.ca_base = Some(PathBuf::from(a.expect("a directory")?));
            a.done()
        }
    ),
    kw!(
        "ssl-server-verify",
        "none|required",
        "default 'verify' of TLS health checks (default: required)",
        |g, a| {
            g.ssl_server_verify = match a.expect("'none' or 'required'")? {
                "none" => false,
                "required" => true,
                m => return Err(format!("expects 'none' or 'required', not '{m}'")),
            };
            a.done()
        }
    ),
    kw!(
        "noreuseport",
        "",
        "do not set SO_REUSEPORT (one shared listener, no seamless reload)",
        |g, a| {
            g.noreuseport = a.flag()?;
            Ok(())
        }
    ),
    kw!(
        "cpu-map",
        "[auto:]<thread-set> <cpu-set>",
        "pin worker threads to CPUs",
        |g, a| {
            let threads = a.expect("<thread-set>")?;
            let cpus = parse_set(a.expect("<cpu-set>")?, 4_095)?;
            a.done()?;
            let (auto, threads) = match threads.strip_prefix("auto:") {
                Some(t) => (true, t),
                None => (false, threads),
            };
            // 2.x accepts "<process>/<thread-set>"; sluice has one process.
            let threads = match threads.split_once('/') {
                Some(("1" | "all", t)) => t,
                Some((p, _)) => {
                    return Err(format!(
                        "process set '{p}' must be 1 or all: sluice runs one process"
                    ))
                }
                None => threads,
            };
            let threads = parse_set(threads, 4_096)?;
            if threads.contains(&0) {
                return Err("thread numbers start at 1".to_string());
            }
            if auto {
                if threads.len() != cpus.len() && cpus.len() != 1 {
                    return Err(format!(
                        "auto: {} threads for {} CPUs: the sets must have the same size",
                        threads.len(),
                        cpus.len()
                    ));
                }
                for (i, t) in threads.iter().enumerate() {
                    let cpu = cpus.get(i).unwrap_or(&cpus[0]);
                    g.cpu_map.push(CpuMap {
                        threads: vec![*t],
                        cpus: vec![*cpu],
                    });
                }
            } else {
                g.cpu_map.push(CpuMap { threads, cpus });
            }
            Ok(())
        }
    ),
];

/// `1`, `1-4`, `0,2-3`, `all`, `odd`, `even` -> sorted numbers up to `max`.
fn parse_set(s: &str, max: u32) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let range = |lo: u32, step: usize| (lo..=max.min(63)).step_by(step).collect::<Vec<u32>>();
    match s {
        "all" => return Ok(range(1, 1)),
        "odd" => return Ok(range(1, 2)),
        "even" => return Ok(range(2, 2)),
        _ => {}
    }
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_u32_in(a, 0, max)?, parse_u32_in(b, 0, max)?),
            None => {
                let v = parse_u32_in(part, 0, max)?;
                (v, v)
            }
        };
        if lo > hi {
            return Err(format!("invalid range '{part}'"));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_stats_socket(g: &mut Global, a: &mut Args<'_>) -> Parsed {
    let target = a.expect("<path> or <address:port>")?;
    let addr = if target.starts_with('/') || target.starts_with("unix@") {
        StatsSocketAddr::Unix(PathBuf::from(target.trim_start_matches("unix@")))
    } else {
        let t = split_addr(target)?;
        let port = t
            .port
            .ok_or_else(|| format!("missing port in '{target}'"))
            .and_then(parse_port)?;
        let ip = super::values::bind_host(t.host, t.family)?;
        StatsSocketAddr::Tcp(std::net::SocketAddr::new(ip, port))
    };
    let mut sock = StatsSocket {
        span: a.span.clone(),
        addr,
        mode: None,
        uid: None,
        gid: None,
        level: AccessLevel::Operator,
        expose_fd_listeners: false,
    };
    while let Some(opt) = a.word() {
        match opt {
            "mode" => {
                let m = a.expect("an octal mode after 'mode'")?;
                sock.mode = Some(
                    u32::from_str_radix(m, 8)
                        .ok()
                        .filter(|&v| v <= 0o7777)
                        .ok_or_else(|| format!("invalid octal mode '{m}'"))?,
                );
            }
            "level" => {
                sock.level = match a.expect("user, operator or admin after 'level'")? {
                    "user" => AccessLevel::User,
                    "operator" => AccessLevel::Operator,
                    "admin" => AccessLevel::Admin,
                    l => return Err(format!("unknown level '{l}' (user, operator, admin)")),
                };
            }
            "uid" | "gid" => {
                let v = a.expect("a numeric id")?;
                let id = v
                    .parse::<u32>()
                    .map_err(|_| format!("'{opt}' expects a numeric id, not '{v}'"))?;
                if opt == "uid" {
                    sock.uid = Some(id);
                } else {
                    sock.gid = Some(id);
                }
            }
            "user" => {
                let name = a.expect("a user name after 'user'")?;
                match nix::unistd::User::from_name(name) {
                    Ok(Some(u)) => sock.uid = Some(u.uid.as_raw()),
                    _ => return Err(format!("unknown user '{name}'")),
                }
            }
            "group" => {
                let name = a.expect("a group name after 'group'")?;
                match nix::unistd::Group::from_name(name) {
                    Ok(Some(g)) => sock.gid = Some(g.gid.as_raw()),
                    _ => return Err(format!("unknown group '{name}'")),
                }
            }
            "expose-fd" => match a.expect("'listeners' after 'expose-fd'")? {
                "listeners" => sock.expose_fd_listeners = true,
                o => return Err(format!("'expose-fd' only supports 'listeners', not '{o}'")),
            },
            other => {
                let known = super::haproxy_known::BIND_OPTIONS.contains(&other);
                return Err(if known {
                    format!("stats socket option '{other}' is not supported by sluice")
                } else {
                    format!("unknown stats socket option '{other}'")
                });
            }
        }
    }
    g.stats_sockets.push(sock);
    Ok(())
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// `<target> [len <n>] [format <fmt>] [sample <r>:<s>] <facility> [<level> [<minlevel>]]`.
pub fn parse_log_target(a: &mut Args<'_>) -> Result<LogTarget, String> {
    let target = a.expect("<address>, stdout or stderr")?;
    let dest = match target {
        "stdout" | "fd@1" => LogDest::Stdout,
        "stderr" | "fd@2" => LogDest::Stderr,
        t if t.starts_with('/') || t.starts_with("unix@") => {
            LogDest::Unix(PathBuf::from(t.trim_start_matches("unix@")))
        }
        t if t.starts_with("ring@") || t.starts_with("fd@") || t.starts_with("tcp@") => {
            return Err(format!("log target '{t}' is not supported by sluice"))
        }
        t => {
            let t = t.strip_prefix("udp@").unwrap_or(t);
            let parts = split_addr(t)?;
            let port = match parts.port {
                Some(p) => parse_port(p)?,
                None => 514,
            };
            let ip = match parts.host.parse() {
                Ok(ip) => ip,
                Err(_) => super::values::resolve_host(parts.host, parts.family)?,
            };
            if parts.family == Family::V6 && !matches!(ip, std::net::IpAddr::V6(_)) {
                return Err(format!("'{t}' is not an IPv6 address"));
            }
            LogDest::Udp(std::net::SocketAddr::new(ip, port))
        }
    };
    let mut log = LogTarget {
        dest,
        maxlen: 1_024,
        format: LogFormat::Rfc3164,
        facility: 16,
        level: 7,
        minlevel: 0,
    };
    loop {
        match a.peek() {
            Some("len") => {
                a.word();
                log.maxlen = a.u32_in("<length> after 'len'", 80, 65_535)?;
            }
            Some("format") => {
                a.word();
                log.format = match a.expect("<format> after 'format'")? {
                    "rfc3164" => LogFormat::Rfc3164,
                    "rfc5424" => LogFormat::Rfc5424,
                    "short" => LogFormat::Short,
                    "raw" => LogFormat::Raw,
                    "iso" => LogFormat::Iso,
                    "timed" => LogFormat::Timed,
                    "priority" => LogFormat::Priority,
                    f => {
                        return Err(format!(
                            "unknown log format '{f}' (rfc3164, rfc5424, short, raw, iso, timed, priority)"
                        ))
                    }
                };
            }
            Some("sample") => return Err("'log ... sample' is not supported by sluice".to_string()),
            _ => break,
        }
    }
    let fac = a.expect("<facility>")?;
    log.facility = FACILITIES.iter().position(|f| *f == fac).ok_or_else(|| {
        let hint = crate::config::error::did_you_mean(fac, FACILITIES.iter().copied());
        format!("unknown log facility '{fac}'{hint}")
    })? as u8;
    let level = |a: &mut Args<'_>| -> Result<Option<u8>, String> {
        match a.word() {
            None => Ok(None),
            Some(l) => LEVELS
                .iter()
                .position(|x| *x == l)
                .map(|p| Some(p as u8))
                .ok_or_else(|| format!("unknown log level '{l}'")),
        }
    };
    if let Some(l) = level(a)? {
        log.level = l;
    }
    if let Some(m) = level(a)? {
        log.minlevel = m;
    }
    a.done()?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        assert_eq!(parse_set("1-3,5", 64).unwrap(), [1, 2, 3, 5]);
        assert_eq!(parse_set("odd", 8).unwrap(), [1, 3, 5, 7]);
        assert!(parse_set("3-1", 64).is_err());
        assert!(parse_set("x", 64).is_err());
    }
}
