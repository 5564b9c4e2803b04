//! The real services of `common::services` start, answer on loopback, and go away when
//! dropped: MariaDB (its greeting, and the passwordless check user logs in), Redis (PING, and
//! a replica reporting its role), nginx (the configured statuses and bodies).

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use crate::common::services::{http_get, Mariadb, Nginx, Redis};

/// Refused or closed: nothing listens there any more.
fn gone(addr: std::net::SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

#[test]
fn mariadb_greets_and_stops() {
    let Some(db) = Mariadb::start() else { return };
    let addr = db.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut greeting = [0u8; 64];
    let n = s.read(&mut greeting).unwrap();
    assert!(n > 5, "short greeting: {:?}", &greeting[..n]);
    // Protocol 10, then the version string.
    assert_eq!(greeting[4], 10, "{:?}", &greeting[..n]);
    let version = String::from_utf8_lossy(&greeting[5..n]);
    assert!(version.contains("MariaDB"), "{version}\n{}", db.log());
    drop(s);
    db.stop();
    assert!(gone(addr), "MariaDB still listens on {addr}");
}

#[test]
fn redis_answers_ping_and_replicates() {
    let Some(master) = Redis::start() else { return };
    let Some(replica) = Redis::start() else {
        return;
    };
    assert_eq!(master.command(&["PING"]), "+PONG");
    replica.replicaof(&master);
    assert!(master
        .command(&["INFO", "replication"])
        .contains("role:master"));
    assert!(replica
        .command(&["INFO", "replication"])
        .contains("role:slave"));
    let addr = master.addr();
    master.stop();
    assert!(gone(addr), "Redis still listens on {addr}");
}

#[test]
fn nginx_answers_its_routes() {
    let routes = [
        ("/health", 200, "alive\n"),
        ("/down", 503, "maintenance \"soon\"\n"),
        ("/moved", 301, "http://example.com/"),
    ];
    let Some(web) = Nginx::start(&routes) else {
        return;
    };
    let ok = http_get(web.addr(), "/health").unwrap();
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nalive\n"), "{ok}");
    let down = http_get(web.addr(), "/down").unwrap();
    assert!(down.starts_with("HTTP/1.1 503 "), "{down}");
    assert!(down.ends_with("maintenance \"soon\"\n"), "{down}");
    let moved = http_get(web.addr(), "/moved").unwrap();
    assert!(moved.starts_with("HTTP/1.1 301 "), "{moved}");
    assert!(
        moved.contains("\r\nLocation: http://example.com/\r\n"),
        "{moved}"
    );
    let missing = http_get(web.addr(), "/nothing").unwrap();
    assert!(
        missing.starts_with("HTTP/1.1 404 "),
        "{missing}\n{}",
        web.log()
    );
    let addr = web.addr();
    web.stop();
    assert!(gone(addr), "nginx still listens on {addr}");
}
