//! Connection logs: the tcplog line (or a `log-format`) built by the worker when a
//! connection closes, handed to the log thread through a bounded channel (a full channel
//! drops the line and counts it: logging never blocks a worker), and written by the log
//! thread to UDP syslog, a UNIX socket, stdout or stderr in the target's format.
//!
//! Dates are UTC (HAProxy uses the local time zone, which is UTC on most servers). The
//! syslog tag is `haproxy`, HAProxy's default `log-tag`, so existing log parsers match.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

use crate::config::logformat::TCPLOG_FORMAT;
use crate::config::model::{LogDest, LogFormat, LogItem, LogTarget, Model};

/// One line to write, with where it goes (the frontend's targets).
pub struct LogLine {
    pub frontend: usize,
    /// Syslog severity (6 = info).
    pub level: u8,
    pub text: String,
}

/// Everything a log line may mention about one connection.
pub struct LogCtx<'a> {
    pub client: SocketAddr,
    pub frontend_addr: Option<SocketAddr>,
    pub accept_date: SystemTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    pub server: &'a str,
    pub server_addr: Option<SocketAddr>,
    /// Queue, connect and total times in ms (-1: did not happen).
    pub tw: i64,
    pub tc: i64,
    pub tt: i64,
    /// Bytes sent to the client (%B) and received from it (%U).
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub termination: [u8; 2],
    pub actconn: u64,
    pub feconn: u64,
    pub beconn: u64,
    pub srv_conn: u64,
    pub retries: u32,
    pub srv_queue: u64,
    pub backend_queue: u64,
}

/// The default log-format items for `option tcplog`.
pub fn tcplog_items() -> Vec<LogItem> {
    crate::config::logformat::parse(TCPLOG_FORMAT).unwrap_or_default()
}

/// Formats a line from log-format items.
pub fn format_line(items: &[LogItem], c: &LogCtx<'_>) -> String {
    let mut out = String::with_capacity(160);
    for item in items {
        match item {
            LogItem::Literal(s) => out.push_str(s),
            LogItem::Var { name, flags } => {
                let quote = flags.iter().any(|f| f == "+Q");
                if quote {
                    out.push('"');
                }
                var(&mut out, name, c);
                if quote {
                    out.push('"');
                }
            }
        }
    }
    out
}

fn var(out: &mut String, name: &str, c: &LogCtx<'_>) {
    let _ = match name {
        "ci" => write!(out, "{}", c.client.ip()),
        "cp" => write!(out, "{}", c.client.port()),
        "fi" => ip_or_dash(out, c.frontend_addr),
        "fp" => write!(out, "{}", c.frontend_addr.map_or(0, |a| a.port())),
        "si" => ip_or_dash(out, c.server_addr),
        "sp" => write!(out, "{}", c.server_addr.map_or(0, |a| a.port())),
        "t" => write!(out, "{}", accept_date(c.accept_date)),
        "T" => write!(out, "{}", gmt_date(c.accept_date)),
        "Ts" => write!(
            out,
            "{}",
            c.accept_date
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
        "ms" => write!(
            out,
            "{:03}",
            c.accept_date
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_millis())
        ),
        "f" | "ft" => write!(out, "{}", c.frontend),
        "b" => write!(out, "{}", c.backend),
        "s" => write!(out, "{}", c.server),
        "Tw" => write!(out, "{}", c.tw),
        "Tc" => write!(out, "{}", c.tc),
        "Tt" => write!(out, "{}", c.tt),
        "B" => write!(out, "{}", c.bytes_out),
        "U" => write!(out, "{}", c.bytes_in),
        "ts" => write!(
            out,
            "{}{}",
            c.termination[0] as char, c.termination[1] as char
        ),
        "ac" => write!(out, "{}", c.actconn),
        "fc" => write!(out, "{}", c.feconn),
        "bc" => write!(out, "{}", c.beconn),
        "sc" => write!(out, "{}", c.srv_conn),
        "rc" => write!(out, "{}", c.retries),
        "sq" => write!(out, "{}", c.srv_queue),
        "bq" => write!(out, "{}", c.backend_queue),
        "pid" => write!(out, "{}", std::process::id()),
        "H" => out.write_str(hostname()),
        "lc" | "rt" => write!(out, "0"),
        "o" | "bi" | "bp" => Ok(()),
        _ => write!(out, "-"),
    };
}

/// An address's IP, or "-" when there is none, written in place (no temporary string).
fn ip_or_dash(out: &mut String, a: Option<SocketAddr>) -> std::fmt::Result {
    match a {
        Some(a) => write!(out, "{}", a.ip()),
        None => out.write_str("-"),
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (Howard Hinnant's
/// civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: u64,
    mi: u64,
    s: u64,
    ms: u32,
}

fn parts(t: SystemTime) -> Parts {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, day) = civil((secs / 86_400) as i64);
    Parts {
        y,
        mo,
        d: day,
        h: (secs / 3_600) % 24,
        mi: (secs / 60) % 60,
        s: secs % 60,
        ms: d.subsec_millis(),
    }
}

/// HAProxy's %t: `21/Nov/2026:08:55:12.345`.
pub fn accept_date(t: SystemTime) -> String {
    let p = parts(t);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
        p.d,
        MONTHS[(p.mo - 1) as usize],
        p.y,
        p.h,
        p.mi,
        p.s,
        p.ms
    )
}

fn gmt_date(t: SystemTime) -> String {
    let p = parts(t);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        p.d,
        MONTHS[(p.mo - 1) as usize],
        p.y,
        p.h,
        p.mi,
        p.s
    )
}

/// The host name, read once: `%H` is formatted by the workers for every logged
/// connection, and the log thread frames every line with it.
fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string())
    })
}

/// The syslog framing of one line for a target.
pub fn frame(target: &LogTarget, level: u8, text: &str, now: SystemTime, host: &str) -> String {
    let pri = u32::from(target.facility) * 8 + u32::from(level.min(7));
    let pid = std::process::id();
    let mut line = match target.format {
        LogFormat::Raw => text.to_string(),
        LogFormat::Rfc5424 => {
            let p = parts(now);
            format!(
                "<{pri}>1 {}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {host} haproxy {pid} - - {text}",
                p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
            )
        }
        LogFormat::Short => format!("<{}>{text}", level.min(7)),
        LogFormat::Priority => format!("<{pri}>{text}"),
        LogFormat::Iso | LogFormat::Timed => {
            let p = parts(now);
            format!(
                "<{pri}>{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z haproxy[{pid}]: {text}",
                p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
            )
        }
        LogFormat::Rfc3164 => {
            let p = parts(now);
            format!(
                "<{pri}>{} {:2} {:02}:{:02}:{:02} haproxy[{pid}]: {text}",
                MONTHS[(p.mo - 1) as usize],
                p.d,
                p.h,
                p.mi,
                p.s
            )
        }
    };
    if line.len() > target.maxlen as usize {
        let mut cut = target.maxlen as usize;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// The log thread: writes what workers send until the channel closes.
pub fn run(model: Arc<Model>, rx: Receiver<LogLine>) {
    let udp = UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| UdpSocket::bind("[::]:0"))
        .ok();
    let unix = UnixDatagram::unbound().ok();
    let host = hostname();
    while let Ok(l) = rx.recv() {
        let Some(f) = model.frontends.get(l.frontend) else {
            continue;
        };
        let now = SystemTime::now();
        for t in &f.log.targets {
            let line = frame(t, l.level, &l.text, now, host);
            match &t.dest {
                // Datagrams end with a LF, as HAProxy sends them.
                LogDest::Udp(addr) => {
                    if let Some(s) = &udp {
                        let _ = s.send_to(format!("{line}\n").as_bytes(), addr);
                    }
                }
                LogDest::Unix(path) => {
                    if let Some(s) = &unix {
                        let _ = s.send_to(format!("{line}\n").as_bytes(), path);
                    }
                }
                LogDest::Stdout => {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
                LogDest::Stderr => {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        // 2026-11-21 08:55:12.345 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_251_312_345);
        assert_eq!(accept_date(t), "21/Nov/2026:08:55:12.345");
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
    }

    #[test]
    fn tcplog_line() {
        let c = LogCtx {
            client: "10.0.0.1:40000".parse().unwrap(),
            frontend_addr: None,
            accept_date: UNIX_EPOCH + Duration::from_millis(1_795_251_312_345),
            frontend: "fe",
            backend: "be",
            server: "s1",
            server_addr: None,
            tw: 0,
            tc: 1,
            tt: 25,
            bytes_out: 512,
            bytes_in: 80,
            termination: *b"--",
            actconn: 1,
            feconn: 1,
            beconn: 1,
            srv_conn: 1,
            retries: 0,
            srv_queue: 0,
            backend_queue: 0,
        };
        assert_eq!(
            format_line(&tcplog_items(), &c),
            "10.0.0.1:40000 [21/Nov/2026:08:55:12.345] fe be/s1 0/1/25 512 -- 1/1/1/1/0 0/0"
        );
    }

    #[test]
    fn framing() {
        let t = LogTarget {
            dest: LogDest::Stdout,
            maxlen: 1_024,
            format: LogFormat::Rfc3164,
            facility: 16,
            level: 7,
            minlevel: 0,
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_795_251_312_345);
        let line = frame(&t, 6, "hello", now, "h");
        assert!(line.starts_with("<134>Nov 21 08:55:12 haproxy["), "{line}");
        assert!(line.ends_with("]: hello"));
        let raw = LogTarget {
            format: LogFormat::Raw,
            ..t
        };
        assert_eq!(frame(&raw, 6, "hello", now, "h"), "hello");
    }
}
