//! Monitoring through the real binary: tcplog lines over UDP syslog (compared field by
//! field with real HAProxy's line for the same connection), dontlognull.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::backends::{connect, read_line, Backend};
use crate::common::running::{fill_ports, Sluice};
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
