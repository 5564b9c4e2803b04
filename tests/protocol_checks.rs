//! `option ldap-check` and `option smtpchk` through the real binary, against scripted
//! servers that answer as LDAP and SMTP servers do (and as broken ones do), judged as a live
//! HAProxy 2.6 judges them: the same `show stat` status, check status, code and texts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::checks::{row, settled, CheckRow};
use crate::common::running::{on_reference_haproxy, Sluice};
use crate::common::TempDir;

/// A server that, on each connection, writes `greeting`, then answers each request it reads
/// with the next of `replies`, then waits for the client to close.
struct Scripted {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn new(greeting: &'static [u8], replies: &'static [&'static [u8]]) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = c.write_all(greeting);
                    let mut buf = [0u8; 512];
                    for reply in replies {
                        if !matches!(c.read(&mut buf), Ok(n) if n > 0) {
                            return;
                        }
                        let _ = c.write_all(reply);
                    }
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
        });
        Scripted { addr, stop }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One backend per case: `(name, check option, server)`.
fn cfg(sock: &Path, cases: &[(&str, &str, SocketAddr)]) -> String {
    let mut s = format!(
        "global\n    stats socket {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout check 1s\n",
        sock.display()
    );
    for (name, option, addr) in cases {
        s.push_str(&format!(
            "backend {name}\n    option {option}\n    server s {addr} check inter 300ms rise 1 fall 1\n"
        ));
    }
    s
}

const LDAP_OK: &[u8] = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
/// invalidCredentials (49).
const LDAP_REFUSED: &[u8] = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x31\x04\x00\x04\x00";
/// The same success with 4-byte long-form lengths (as Active Directory writes them).
const LDAP_LONG_FORM: &[u8] =
    b"\x30\x84\x00\x00\x00\x10\x02\x01\x01\x61\x84\x00\x00\x00\x07\x0a\x01\x00\x04\x00\x04\x00";
/// A message length in 3 bytes: HAProxy 2.6 takes only 2 or 4.
const LDAP_3_BYTES: &[u8] = b"\x30\x83\x00\x00\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
/// A message that says it is longer than what comes before the server closes.
const LDAP_TRUNCATED: &[u8] = b"\x30\x20\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";

#[test]
fn ldap_and_smtp_checks_judge_as_haproxy_does() {
    const BYE: &[u8] = b"221 2.0.0 Bye\r\n";
    // An LDAP server answers the bind request without a greeting.
    let ldap = |replies: &'static [&'static [u8]]| Scripted::new(b"", replies);
    let servers = [
        ("ldap_ok", "ldap-check", ldap(&[LDAP_OK])),
        ("ldap_refused", "ldap-check", ldap(&[LDAP_REFUSED])),
        ("ldap_long", "ldap-check", ldap(&[LDAP_LONG_FORM])),
        ("ldap_3bytes", "ldap-check", ldap(&[LDAP_3_BYTES])),
        ("ldap_short", "ldap-check", ldap(&[LDAP_TRUNCATED])),
        (
            "ldap_http",
            "ldap-check",
            ldap(&[b"HTTP/1.0 400 Bad Request\r\n\r\n"]),
        ),
        (
            "smtp_ok",
            "smtpchk",
            Scripted::new(
                b"220 mail.example.com ESMTP\r\n",
                &[b"250 mail.example.com\r\n", BYE],
            ),
        ),
        (
            "smtp_ehlo",
            "smtpchk EHLO lb.example.com",
            Scripted::new(
                b"220 mail.example.com ESMTP\r\n",
                &[
                    b"250-mail.example.com\r\n250-PIPELINING\r\n250 HELP\r\n",
                    BYE,
                ],
            ),
        ),
        (
            "smtp_busy",
            "smtpchk",
            Scripted::new(b"554 5.3.2 busy - try later\r\n", &[]),
        ),
        (
            "smtp_helo_refused",
            "smtpchk HELO lb.example.com",
            Scripted::new(b"220 ready\r\n", &[b"502 5.5.1 no HELO here\r\n"]),
        ),
        (
            "smtp_quit_refused",
            "smtpchk",
            Scripted::new(b"220 ready\r\n", &[b"250 hi\r\n", b"500 what\r\n"]),
        ),
        (
            "smtp_multiline_greeting",
            "smtpchk",
            Scripted::new(b"220-first line\r\n220 second line\r\n", &[]),
        ),
        (
            "smtp_garbage",
            "smtpchk",
            Scripted::new(b"hello there\r\n", &[]),
        ),
    ];
    let cases: Vec<(&str, &str, SocketAddr)> =
        servers.iter().map(|(n, o, s)| (*n, *o, s.addr)).collect();
    let dir = TempDir::new("l7-checks");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&cfg(&sock, &cases));
    let ours = settled(&sock, cases.len());
    let log = s.stop();

    let down = |chk: &str, code: &str, desc: &str, last: &str| row("DOWN", chk, code, last, desc);
    let sts = "Layer7 wrong status";
    let rsp = "Layer7 invalid response";
    let ok = |code: &str, last: &str| row("UP", "L7OK", code, last, "Layer7 check passed");
    let want: [(&str, CheckRow); 13] = [
        ("ldap_ok", ok("0", "")),
        (
            "ldap_refused",
            down(
                "L7STS",
                "49",
                sts,
                "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9",
            ),
        ),
        ("ldap_long", ok("0", "")),
        ("ldap_3bytes", down("L7RSP", "", rsp, "Not LDAPv3 protocol")),
        ("ldap_short", down("L7TOUT", "", "Layer7 timeout", "")),
        ("ldap_http", down("L7RSP", "", rsp, "Not LDAPv3 protocol")),
        ("smtp_ok", ok("221", "2.0.0 Bye")),
        ("smtp_ehlo", ok("221", "2.0.0 Bye")),
        (
            "smtp_busy",
            down("L7STS", "554", sts, "5.3.2 busy - try later"),
        ),
        // A refusal without a close: the expect waits for more, as HAProxy's does.
        (
            "smtp_helo_refused",
            down("L7TOUT", "", "Layer7 timeout", ""),
        ),
        ("smtp_quit_refused", down("L7STS", "500", sts, "what")),
        (
            "smtp_multiline_greeting",
            down("L7RSP", "", rsp, "220-first line"),
        ),
        ("smtp_garbage", down("L7RSP", "", rsp, "hello there")),
    ];
    for (name, expected) in &want {
        assert_eq!(&ours[&format!("{name}/s")], expected, "{name}\n{log}");
    }

    let theirs = on_reference_haproxy(
        &dir,
        |sock| cfg(sock, &cases),
        |sock, _| settled(sock, cases.len()),
    );
    if let Some(theirs) = theirs {
        for (name, _) in &want {
            let key = format!("{name}/s");
            assert_eq!(ours[&key], theirs[&key], "{name}: sluice vs HAProxy");
        }
    }
}

/// `show stat` rows (selected columns, the check duration left out) of every server and
/// backend, as soon as `ready` holds for the CSV.
fn stat_rows(sock: &Path, ready: impl Fn(&str) -> bool) -> Vec<String> {
    let mut csv = String::new();
    crate::common::backends::wait_until(Duration::from_secs(5), "the first check results", || {
        csv = crate::common::backends::cli(sock, "show stat");
        ready(&csv)
    });
    let mut lines = csv.lines();
    let header = crate::common::checks::columns(lines.next());
    let cols: Vec<usize> = [
        "pxname",
        "svname",
        "status",
        "chkfail",
        "chkdown",
        "check_status",
        "check_code",
        "last_chk",
        "check_desc",
        "check_rise",
        "check_fall",
        "check_health",
        "agent_status",
        "agent_desc",
        "agent_rise",
        "agent_fall",
        "agent_health",
    ]
    .iter()
    .map(|c| header.iter().position(|h| h == c).expect(c))
    .collect();
    lines
        .filter(|l| !l.is_empty() && !l.contains(",FRONTEND,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            cols.iter()
                .map(|&i| f.get(i).copied().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// A server whose first check has not run yet shows INI ("Initializing"), a server starts
/// at the bottom of UP (one failure takes it down), and a backend's chkdown counts the times
/// it went down as a whole, not its servers' transitions (here: none).
fn ini_cfg(sock: &Path, refused: SocketAddr) -> String {
    format!(
        "global\n    stats socket {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend two\n    server a {refused} check inter 60s\n    server b {refused} check inter 60s rise 3 fall 4\n",
        sock.display(),
    )
}

#[test]
fn checks_not_run_yet_and_backend_chkdown_show_as_haproxys() {
    let refused = crate::common::backends::Backend::refusing();
    let dir = TempDir::new("ini");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&ini_cfg(&sock, refused.addr()));
    // Checks start spread over `inter`: the first server at once, the second 30 s later.
    let ready = |csv: &str| {
        csv.lines()
            .any(|l| l.starts_with("two,a,") && l.contains(",DOWN,"))
    };
    let ours = stat_rows(&sock, ready);
    s.stop();
    assert_eq!(
        ours,
        [
            "two,a,DOWN,1,1,L4CON,,Connection refused,Layer4 connection problem,2,3,0,,,,,",
            "two,b,UP 1/4,0,0,INI,,,Initializing,3,4,3,,,,,",
            "two,BACKEND,UP,,0,,,,,,,,,,,,",
        ]
    );
    let theirs = on_reference_haproxy(
        &dir,
        |sock| ini_cfg(sock, refused.addr()),
        |sock, _| stat_rows(sock, ready),
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "sluice vs HAProxy");
    }
}
