//! Monitoring through the real binary: tcplog lines over UDP syslog (compared field by
//! field with real HAProxy's line for the same connection), dontlognull.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::backends::{cli, connect, read_line, tags, Backend};
use crate::common::running::{fill_ports, reference_haproxy, Haproxy, Sluice};
use crate::common::TempDir;

fn udp_receiver() -> UdpSocket {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u
}

fn recv_line(u: &UdpSocket) -> String {
    let mut buf = [0u8; 4_096];
    let (n, _) = u.recv_from(&mut buf).expect("a log line within 5 s");
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

fn log_cfg(udp: u16, extra: &str, server: &Backend) -> String {
    format!(
        "global\n    nbthread 1\n    log 127.0.0.1:{udp} local0\ndefaults\n    mode tcp\n    log global\n    option tcplog\n{extra}\n\
         \x20   timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        server.addr()
    )
}

/// The message part of an RFC 3164 line: after "haproxy[pid]: ".
fn message(line: &str) -> &str {
    line.split_once("]: ").map_or(line, |(_, m)| m)
}

#[test]
fn tcplog_lines_reach_a_udp_syslog_receiver() {
    let tagged = Backend::tagged("s1");
    let udp = udp_receiver();
    let s = Sluice::start(&log_cfg(udp.local_addr().unwrap().port(), "", &tagged));
    let mut c = connect(s.addr("fe"));
    assert_eq!(read_line(&c), "s1");
    c.write_all(b"hello\n").unwrap();
    let mut buf = [0u8; 6];
    c.read_exact(&mut buf).unwrap();
    drop(c);
    let line = recv_line(&udp);
    assert!(line.starts_with("<134>"), "local0.info priority: {line}");
    let f: Vec<&str> = message(&line).split(' ').collect();
    assert!(f[0].starts_with("127.0.0.1:"), "{line}");
    assert!(f[1].starts_with('[') && f[1].ends_with(']'), "{line}");
    assert_eq!(&f[2..4], ["fe", "be/s1"], "{line}");
    assert_eq!(f[6], "--", "{line}");
    assert_eq!(
        f[5], "9",
        "bytes to the client: 's1\\n' and the echo: {line}"
    );
    s.stop();
}

#[test]
fn dontlognull_skips_connections_without_data() {
    let tagged = Backend::tagged("s1");
    let udp = udp_receiver();
    let s = Sluice::start(&log_cfg(
        udp.local_addr().unwrap().port(),
        "    option dontlognull",
        &tagged,
    ));
    // No data from the client: not logged.
    let c = connect(s.addr("fe"));
    assert_eq!(read_line(&c), "s1");
    drop(c);
    // Data: logged.
    let mut c = connect(s.addr("fe"));
    c.write_all(b"x").unwrap();
    assert_eq!(read_line(&c), "s1");
    drop(c);
    let line = recv_line(&udp);
    let f: Vec<&str> = message(&line).split(' ').collect();
    assert_eq!(
        f[5], "4",
        "the logged connection is the one with data (s1 and the echo): {line}"
    );
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(udp.recv_from(&mut buf).is_err(), "a second line was logged");
    s.stop();
}

#[test]
fn tcplog_matches_haproxy_field_by_field() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var_os("SLUICE_SKIP_HAPROXY").is_some(),
            "haproxy is not installed"
        );
        return;
    }
    let tagged = Backend::tagged("s1");
    let mut lines = Vec::new();
    for which in ["haproxy", "sluice"] {
        let udp = udp_receiver();
        let cfg = log_cfg(udp.local_addr().unwrap().port(), "", &tagged);
        let exchange = |addr| {
            let mut c = connect(addr);
            assert_eq!(read_line(&c), "s1");
            c.write_all(b"hello\n").unwrap();
            let mut buf = [0u8; 6];
            c.read_exact(&mut buf).unwrap();
        };
        if which == "sluice" {
            let s = Sluice::start(&cfg);
            exchange(s.addr("fe"));
            lines.push(recv_line(&udp));
            s.stop();
        } else {
            let dir = TempDir::new("haproxy");
            let (text, ports) = fill_ports(&cfg);
            let f = dir.write("h.cfg", &text);
            let mut h = Command::new("haproxy")
                .args(["-db", "-f"])
                .arg(&f)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports["fe"]));
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "haproxy did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            // The readiness probe above is a connection too: skip its line.
            let _probe = recv_line(&udp);
            exchange(addr);
            lines.push(recv_line(&udp));
            let _ = h.kill();
            let _ = h.wait();
        }
    }
    let h: Vec<&str> = message(&lines[0]).split(' ').collect();
    let s: Vec<&str> = message(&lines[1]).split(' ').collect();
    assert_eq!(h.len(), s.len(), "\n{}\n{}", lines[0], lines[1]);
    // Same shape: client ip, date format, names, bytes, termination, counters, queues.
    assert_eq!(h[0].split(':').next(), s[0].split(':').next());
    assert_eq!(h[1].len(), s[1].len(), "date format: {} vs {}", h[1], s[1]);
    assert_eq!(&h[2..4], &s[2..4]);
    assert_eq!(h[4].split('/').count(), 3);
    assert_eq!(s[4].split('/').count(), 3);
    assert_eq!(h[5], s[5], "bytes");
    assert_eq!(h[6], s[6], "termination state");
    assert_eq!(h[7].split('/').count(), s[7].split('/').count(), "counters");
    assert_eq!(h[8], s[8], "queues");
}

// ---------------------------------------------------------------------------------------
// The stats socket, the exporter and the stats page, end to end.

fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (code, body)
}

struct Admin {
    s: Sluice,
    sock: std::path::PathBuf,
    _dir: TempDir,
}

fn with_admin(servers: &str, level: &str) -> Admin {
    let dir = TempDir::new("admin");
    let sock = dir.path().join("admin.sock");
    let s = Sluice::start(&format!(
        "global\n    nbthread 2\n    stats socket {} mode 600 level {level}\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n{servers}\
         listen stats\n    bind 127.0.0.1:{{port:stats}}\n    mode http\n    stats enable\n    stats uri /stats\n    stats refresh 5s\n\
         \x20   http-request use-service prometheus-exporter if {{ path /metrics }}\n",
        sock.display()
    ));
    Admin { s, sock, _dir: dir }
}

/// Parses `show stat` into rows of (pxname, svname) -> fields by header name.
fn stat_rows(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(
                f.len(),
                header.len(),
                "row and header differ in length: {l}"
            );
            header
                .iter()
                .cloned()
                .zip(f.iter().map(|x| x.to_string()))
                .collect()
        })
        .collect()
}

fn row<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    px: &str,
    sv: &str,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r["pxname"] == px && r["svname"] == sv)
        .unwrap_or_else(|| panic!("no row {px}/{sv}"))
}

#[test]
fn show_stat_is_csv_and_counts_what_happened() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let a = with_admin(
        &format!("    server s1 {}\n    server s2 {}\n", s1.addr(), s2.addr()),
        "admin",
    );
    for _ in 0..4 {
        let mut c = connect(a.s.addr("fe"));
        assert!(!read_line(&c).is_empty());
        c.write_all(b"ping\n").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
    }
    // The counters reach the workers' copies once the connections are closed.
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        rows = stat_rows(&cli(&a.sock, "show stat"));
        // Current counts come from shared atomics, totals from the workers' copies: wait
        // for both to settle.
        let fe = row(&rows, "fe", "FRONTEND");
        if fe["stot"] == "4" && fe["scur"] == "0" && fe["bin"] == "20" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let fe = row(&rows, "fe", "FRONTEND");
    assert_eq!(
        (
            fe["stot"].as_str(),
            fe["scur"].as_str(),
            fe["status"].as_str()
        ),
        ("4", "0", "OPEN")
    );
    assert_eq!(fe["bin"], "20", "4 x 'ping\\n'");
    assert_eq!(row(&rows, "be", "s1")["stot"], "2");
    assert_eq!(row(&rows, "be", "s2")["lbtot"], "2");
    assert_eq!(row(&rows, "be", "BACKEND")["status"], "UP");
    let info = cli(&a.sock, "show info");
    assert!(
        info.contains("CumConns: 4") || info.contains("Nbthread: 2"),
        "{info}"
    );
    a.s.stop();
}

#[test]
fn disable_and_drain_stop_new_connections_while_established_ones_go_on() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let a = with_admin(
        &format!("    server s1 {}\n    server s2 {}\n", s1.addr(), s2.addr()),
        "admin",
    );
    // An established connection to s1.
    let mut held = loop {
        let c = connect(a.s.addr("fe"));
        if read_line(&c) == "s1" {
            break c;
        }
    };
    for (cmd, undo) in [
        ("disable server be/s1", "enable server be/s1"),
        (
            "set server be/s1 state drain",
            "set server be/s1 state ready",
        ),
    ] {
        assert_eq!(cli(&a.sock, cmd), "\n", "{cmd}");
        for _ in 0..6 {
            assert_eq!(read_line(&connect(a.s.addr("fe"))), "s2", "after {cmd}");
        }
        held.write_all(b"still here\n").unwrap();
        assert_eq!(
            read_line(&held),
            "still here",
            "established connection after {cmd}"
        );
        assert_eq!(cli(&a.sock, undo), "\n");
        let tags = tags(a.s.addr("fe"), 4);
        assert!(
            tags.contains(&"s1".to_string()),
            "s1 back after {undo}: {tags:?}"
        );
    }
    let st = stat_rows(&cli(&a.sock, "show stat"));
    assert_eq!(
        row(&st, "be", "s1")["status"],
        "no check",
        "ready again, and not checked"
    );
    drop(held);
    a.s.stop();
}

#[test]
fn set_weight_changes_the_distribution() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let a = with_admin(
        &format!("    server s1 {}\n    server s2 {}\n", s1.addr(), s2.addr()),
        "admin",
    );
    assert_eq!(cli(&a.sock, "set weight be/s1 3"), "\n");
    assert_eq!(cli(&a.sock, "get weight be/s1"), "3 (initial 1)\n\n");
    let n = (0..40)
        .filter(|_| read_line(&connect(a.s.addr("fe"))) == "s1")
        .count();
    assert_eq!(n, 30, "weight 3 against 1");
    assert_eq!(cli(&a.sock, "set server be/s1 weight 0"), "\n");
    assert!((0..8).all(|_| read_line(&connect(a.s.addr("fe"))) == "s2"));
    a.s.stop();
}

#[test]
fn a_user_level_socket_cannot_change_anything() {
    let s1 = Backend::tagged("s1");
    let a = with_admin(&format!("    server s1 {}\n", s1.addr()), "user");
    assert_eq!(
        cli(&a.sock, "disable server be/s1"),
        "Permission denied\n\n"
    );
    assert_eq!(read_line(&connect(a.s.addr("fe"))), "s1");
    assert!(cli(&a.sock, "show stat").starts_with("# pxname,svname,"));
    a.s.stop();
}

#[test]
fn prometheus_exporter_output_passes_promtool() {
    let s1 = Backend::tagged("s1");
    let a = with_admin(&format!("    server s1 {}\n", s1.addr()), "admin");
    let _ = read_line(&connect(a.s.addr("fe")));
    let (code, body) = http_get(a.s.addr("stats"), "/metrics");
    assert_eq!(code, 200);
    assert!(
        body.contains("haproxy_frontend_current_sessions{proxy=\"fe\"}"),
        "{body}"
    );
    assert!(
        body.contains("haproxy_server_status{proxy=\"be\",server=\"s1\",state=\"UP\"} 1"),
        "{body}"
    );
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(promtool) = promtool else {
        assert!(
            std::env::var_os("SLUICE_SKIP_PROMTOOL").is_some(),
            "promtool is not installed (Debian's prometheus package)"
        );
        a.s.stop();
        return;
    };
    let mut p = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(http_get(a.s.addr("stats"), "/nope").0, 404);
    a.s.stop();
}

#[test]
fn the_stats_page_renders_in_headless_chromium() {
    let s1 = Backend::tagged("s1");
    let a = with_admin(
        &format!(
            "    server s1 {}\n    server s2 127.0.0.1:1 check inter 200ms\n",
            s1.addr()
        ),
        "admin",
    );
    let (code, html) = http_get(a.s.addr("stats"), "/stats");
    assert_eq!(code, 200);
    assert!(
        html.contains("<table") && html.contains(">s1<") && html.contains("http-equiv=\"refresh\""),
        "{html}"
    );
    let (code, csv) = http_get(a.s.addr("stats"), "/stats;csv");
    assert_eq!(code, 200);
    assert!(csv.starts_with("# pxname,svname,"));
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("SLUICE_SKIP_CHROMIUM").is_some(),
            "chromium is not installed (the README test command installs it)"
        );
        a.s.stop();
        return;
    };
    let shot = std::env::temp_dir().join(format!("sluice-stats-page-{}.png", std::process::id()));
    let profile = TempDir::new("chromium");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{}/stats", a.s.addr("stats")))
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("stats page screenshot: {}", shot.display());
    a.s.stop();
}

#[test]
fn log_format_lines_to_stderr() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    log stderr format raw local0\n    log-format \"conn %ci %f>%b/%s %ts %B\"\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        tagged.addr()
    ));
    let c = connect(s.addr("fe"));
    assert_eq!(read_line(&c), "s1");
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log().contains("conn 127.0.0.1 fe>be/s1") {
        assert!(
            Instant::now() < deadline,
            "no log-format line:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = s.stop();
    let line = log
        .lines()
        .find(|l| l.starts_with("conn 127.0.0.1 fe>be/s1"))
        .unwrap();
    assert!(line.ends_with(" 3"), "bytes to the client: {line}");
}

/// The stick tables on the stats socket of the real binary (empty: nothing tracks yet).
#[test]
fn show_table_lists_the_stick_tables() {
    let dir = TempDir::new("tables");
    let sock = dir.path().join("admin.sock");
    let user = dir.path().join("user.sock");
    let s = Sluice::start(&format!(
        "global\n    stats socket {} level admin\n    stats socket {} level user\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    stick-table type ip size 100 expire 30s store conn_cur,conn_rate(10s)\n    default_backend be\n\
         backend be\n    stick-table type ipv6 size 1m store conn_cnt\n    server s1 127.0.0.1:9\n",
        sock.display(),
        user.display()
    ));
    assert_eq!(
        cli(&sock, "show table"),
        "# table: be, type: ipv6, size:1048576, used:0\n\
         # table: fe, type: ip, size:100, used:0\n\n"
    );
    assert_eq!(
        cli(&sock, "show table fe"),
        "# table: fe, type: ip, size:100, used:0\n\n"
    );
    assert_eq!(cli(&sock, "show table nosuch"), "No such table\n\n");
    assert_eq!(cli(&sock, "clear table be key ::1"), "\n");
    assert_eq!(
        cli(&user, "clear table be key ::1"),
        "Permission denied\n\n"
    );
    assert_eq!(
        cli(&user, "show table be"),
        "# table: be, type: ipv6, size:1048576, used:0\n\
         # contents not dumped due to insufficient privileges\n\n"
    );
    s.stop();
}

/// The same tables in a live HAProxy and in sluice: `show table` answers byte for byte.
#[test]
fn show_table_matches_live_haproxy() {
    let Some(haproxy) = reference_haproxy() else {
        return;
    };
    let cfg = |sock: &std::path::Path| {
        format!(
            "global\n    stats socket {} level admin\n\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             backend b1\n    stick-table type ip size 1m expire 1h store conn_rate(1s)\n    server s1 127.0.0.1:9\n\
             backend b2\n    stick-table type ipv6 size 10 store bytes_out_cnt,conn_cnt\n    server s1 127.0.0.1:9\n\
             backend b3\n    stick-table type ip size 2 store conn_cnt\n    server s1 127.0.0.1:9\n",
            sock.display()
        )
    };
    let commands = [
        "show table",
        "show table b2",
        "show table b3 key 10.0.0.1",
        "show table b2 key 10.0.0.1",
        "show table nosuch",
        "clear table",
        "show table b1 data.conn_rate gt 1 extra",
        "show table b1 data.conn_cnt gt 1",
        "show table b1 foo",
    ];
    let dir = TempDir::new("tables-live");
    let hsock = dir.path().join("haproxy.sock");
    let hcfg = dir.write("h.cfg", &cfg(&hsock));
    let h = Haproxy::start_with_stats(haproxy, &hcfg, &hsock);
    let theirs: Vec<String> = commands.iter().map(|c| cli(&hsock, c)).collect();
    drop(h);
    let ssock = dir.path().join("sluice.sock");
    let s = Sluice::start(&cfg(&ssock));
    for (c, want) in commands.iter().zip(&theirs) {
        assert_eq!(&cli(&ssock, c), want, "{c}");
    }
    s.stop();
}

#[test]
fn stats_socket_owner_and_mode_are_applied() {
    let nobody = nix::unistd::User::from_name("nobody").ok().flatten();
    let (Some(nobody), true) = (nobody, nix::unistd::Uid::effective().is_root()) else {
        eprintln!("skipped: needs root and a 'nobody' user to change a socket's owner");
        return;
    };
    let dir = TempDir::new("owner");
    let sock = dir.path().join("admin.sock");
    let s = Sluice::start(&format!(
        "global\n    stats socket {} user nobody gid 4321 mode 640 level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         listen fe\n    bind 127.0.0.1:{{port:fe}}\n    server s1 127.0.0.1:9\n",
        sock.display()
    ));
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&sock).expect("socket file");
    assert_eq!(meta.uid(), nobody.uid.as_raw());
    assert_eq!(meta.gid(), 4321);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert!(cli(&sock, "show info").contains("Name: "));
    s.stop();
}
