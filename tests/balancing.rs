//! Balancing through the real binary on loopback, with tagged backends and several workers:
//! the distribution of each algorithm, weights, backups, `maxconn` with `first`, source
//! stickiness with clients bound to different 127.0.0.x addresses, and the differential test
//! against a real HAProxy 2.6: for roundrobin and static-rr with weights 3,2,1, the servers of
//! 60 sequential connections must be the ones HAProxy picks.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::backends::{connect, read_line, tagged, tags, tags_from, Backend};
use crate::common::running::{fill_ports, Sluice};
use crate::common::TempDir;

/// A configuration with one frontend `fe` and one backend `be` holding `servers`.
fn cfg(threads: u32, backend: &str, servers: &[(&Backend, &str)]) -> String {
    let lines: String = servers
        .iter()
        .enumerate()
        .map(|(i, (b, opts))| format!("    server s{} {} {opts}\n", i + 1, b.addr()))
        .collect();
    format!(
        "global\n    nbthread {threads}\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n{backend}\n{lines}"
    )
}

fn counts(names: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for n in names {
        *m.entry(n.clone()).or_insert(0) += 1;
    }
    m
}

fn count(m: &HashMap<String, usize>, name: &str) -> usize {
    m.get(name).copied().unwrap_or(0)
}

#[test]
fn roundrobin_weights_give_exact_shares_across_workers() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        4,
        "    balance roundrobin",
        &[
            (&b[0], "weight 3"),
            (&b[1], "weight 2"),
            (&b[2], "weight 1"),
        ],
    ));
    // The rotation is shared by the workers: 10 whole cycles of 6.
    let c = counts(&tags(s.addr("fe"), 60));
    assert_eq!(
        (count(&c, "s1"), count(&c, "s2"), count(&c, "s3")),
        (30, 20, 10)
    );
    s.stop();
}

#[test]
fn static_rr_weights_give_exact_shares_across_workers() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        4,
        "    balance static-rr",
        &[
            (&b[0], "weight 5"),
            (&b[1], "weight 1"),
            (&b[2], "weight 0"),
        ],
    ));
    let c = counts(&tags(s.addr("fe"), 60));
    assert_eq!(
        (count(&c, "s1"), count(&c, "s2"), count(&c, "s3")),
        (50, 10, 0)
    );
    s.stop();
}

#[test]
fn leastconn_spreads_held_connections_evenly() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        4,
        "    balance leastconn",
        &[(&b[0], ""), (&b[1], ""), (&b[2], "weight 2")],
    ));
    let held: Vec<TcpStream> = (0..40).map(|_| connect(s.addr("fe"))).collect();
    let names: Vec<String> = held.iter().map(read_line).collect();
    let c = counts(&names);
    assert_eq!(
        (count(&c, "s1"), count(&c, "s2"), count(&c, "s3")),
        (10, 10, 20)
    );
    drop(held);
    s.stop();
}

#[test]
fn first_fills_servers_in_id_order_up_to_maxconn() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        2,
        "    balance first",
        &[
            (&b[0], "maxconn 2 id 30"),
            (&b[1], "maxconn 2 id 10"),
            (&b[2], "maxconn 2 id 20"),
        ],
    ));
    // One at a time (each picked before the next connects), all held open.
    let mut held = Vec::new();
    let names: Vec<String> = (0..5)
        .map(|_| {
            let c = connect(s.addr("fe"));
            let name = read_line(&c);
            held.push(c);
            name
        })
        .collect();
    assert_eq!(names, ["s2", "s2", "s3", "s3", "s1"]);
    drop(held);
    s.stop();
}

#[test]
fn random_and_leasttime_use_every_server() {
    for balance in ["random", "random(3)", "leasttime"] {
        let b = tagged(3);
        let s = Sluice::start(&cfg(
            4,
            &format!("    balance {balance}"),
            &[(&b[0], ""), (&b[1], ""), (&b[2], "")],
        ));
        let held: Vec<TcpStream> = (0..30).map(|_| connect(s.addr("fe"))).collect();
        let names: Vec<String> = held.iter().map(read_line).collect();
        let c = counts(&names);
        for name in ["s1", "s2", "s3"] {
            // Held connections count: each pick prefers the less loaded servers. leasttime
            // also weighs each server's connect time, which on a busy loopback is mostly
            // noise (one slow connect makes a server look slow for seconds), so it is only
            // held to using every server.
            let n = count(&c, name);
            let want = if balance == "leasttime" {
                1..=28
            } else {
                5..=15
            };
            assert!(want.contains(&n), "{balance}: {c:?}");
        }
        drop(held);
        s.stop();
    }
}

#[test]
fn backups_serve_only_without_active_servers() {
    let b = tagged(4);
    let s = Sluice::start(&cfg(
        2,
        "    balance roundrobin",
        &[
            (&b[0], "disabled"),
            (&b[1], ""),
            (&b[2], "backup"),
            (&b[3], "backup"),
        ],
    ));
    let c = counts(&tags(s.addr("fe"), 10));
    assert_eq!(count(&c, "s2"), 10, "{c:?}");
    s.stop();
    let s = Sluice::start(&cfg(
        2,
        "    balance roundrobin",
        &[
            (&b[0], "disabled"),
            (&b[1], "weight 0"),
            (&b[2], "backup"),
            (&b[3], "backup"),
        ],
    ));
    let c = counts(&tags(s.addr("fe"), 10));
    assert_eq!(count(&c, "s3"), 10, "the first backup only: {c:?}");
    s.stop();
    let s = Sluice::start(&cfg(
        2,
        "    balance roundrobin\n    option allbackups",
        &[(&b[0], "disabled"), (&b[2], "backup"), (&b[3], "backup")],
    ));
    let c = counts(&tags(s.addr("fe"), 10));
    assert_eq!(
        (count(&c, "s3"), count(&c, "s4")),
        (5, 5),
        "all backups: {c:?}"
    );
    s.stop();
}

/// The servers of clients 127.0.0.2 to .9, each connecting three times.
fn by_source(addr: SocketAddr) -> String {
    (2..=9)
        .map(|i| {
            let src = Ipv4Addr::new(127, 0, 0, i);
            let names = tags_from(src, addr, 3);
            assert!(
                names.iter().all(|n| *n == names[0]),
                "{src} moved: {names:?}"
            );
            names[0].trim_start_matches('s').to_string()
        })
        .collect()
}

#[test]
fn source_sticks_each_client_where_haproxy_puts_it() {
    let b = tagged(3);
    // Recorded from HAProxy 2.6 for the same clients and weights 1,1,1.
    for (hash_type, expected) in [
        ("map-based", "12312312"),
        ("map-based sdbm avalanche", "11121331"),
        ("consistent sdbm avalanche", "13121311"),
    ] {
        let s = Sluice::start(&cfg(
            4,
            &format!("    balance source\n    hash-type {hash_type}"),
            &[(&b[0], ""), (&b[1], ""), (&b[2], "")],
        ));
        assert_eq!(by_source(s.addr("fe")), expected, "{hash_type}");
        s.stop();
    }
}

// ---- against HAProxy ----

/// A real HAProxy (-db, in the foreground) on a configuration with `{port:NAME}` filled,
/// killed when dropped.
struct Haproxy {
    child: Child,
    ports: HashMap<String, u16>,
    _dir: TempDir,
}

impl Haproxy {
    fn binary() -> PathBuf {
        [
            "/usr/sbin/haproxy",
            "/usr/local/sbin/haproxy",
            "/usr/bin/haproxy",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("the differential tests need HAProxy 2.6 (apt-get install haproxy)")
    }

    fn start(cfg: &str) -> Haproxy {
        let (text, ports) = fill_ports(cfg);
        let dir = TempDir::new("haproxy");
        let path = dir.write("haproxy.cfg", &text);
        let child = Command::new(Haproxy::binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let h = Haproxy {
            child,
            ports,
            _dir: dir,
        };
        // Wait for the listener without connecting: a probe would take a turn.
        let port = h.ports["fe"];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(port) {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        h
    }

    fn addr(&self, name: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[name]))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something listens on 127.0.0.1:`port` (from /proc/net/tcp, state 0A).
fn listening(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == local && f[3] == "0A"
        })
    })
}

fn differential(balance: &str) {
    let b = tagged(3);
    let servers = [
        (&b[0], "weight 3"),
        (&b[1], "weight 2"),
        (&b[2], "weight 1"),
    ];
    let text = cfg(1, &format!("    balance {balance}"), &servers);
    let h = Haproxy::start(&text);
    let theirs = tags(h.addr("fe"), 60);
    drop(h);
    let s = Sluice::start(&text);
    let ours = tags(s.addr("fe"), 60);
    s.stop();
    assert_eq!(ours.join(" "), theirs.join(" "), "balance {balance}");
}

#[test]
fn roundrobin_matches_haproxy() {
    differential("roundrobin");
}

#[test]
fn static_rr_matches_haproxy() {
    differential("static-rr");
}
