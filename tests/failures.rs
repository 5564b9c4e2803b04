//! Servers killed under load: clients keep sending requests through sluice while a server
//! dies, and only the requests that server was serving at that moment may fail. Everything
//! started after its death is retried or redispatched to the survivor, and once the load
//! stops every count is back to zero.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::backends::{cli, try_connect, wait_until, Backend};
use crate::common::running::Sluice;
use crate::common::TempDir;

/// What one request through the balancer ended as.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    /// The body's server name, or what went wrong.
    result: Result<String, String>,
}

/// One `GET /` with `Connection: close`, read to the end: the server's name from the body.
fn request(addr: SocketAddr) -> Result<String, String> {
    let mut c: TcpStream = try_connect(addr).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    c.read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let reply = String::from_utf8_lossy(&reply);
    match reply.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.trim().to_string()),
        _ => Err(format!("incomplete reply {reply:?}")),
    }
}

/// `n` clients sending requests one after the other until `stop`; every outcome recorded.
fn load(
    addr: SocketAddr,
    n: usize,
    stop: &Arc<AtomicBool>,
    out: &Arc<Mutex<Vec<Outcome>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (stop, out) = (Arc::clone(stop), Arc::clone(out));
            std::thread::spawn(move || {
                // Bounded in count as well as by the flag.
                for _ in 0..20_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let started = Instant::now();
                    let result = request(addr);
                    out.lock().unwrap().push(Outcome { started, result });
                }
            })
        })
        .collect()
}

fn served_by(out: &Mutex<Vec<Outcome>>, name: &str) -> usize {
    let out = out.lock().unwrap();
    out.iter()
        .filter(|o| o.result.as_deref() == Ok(name))
        .count()
}

/// The `show stat` field `field` of the row `pxname,svname`.
fn stat(sock: &std::path::Path, row: &str, field: &str) -> String {
    let csv = cli(sock, "show stat");
    crate::common::checks::stat_field(&csv, row, field)
        .unwrap_or_else(|| panic!("no column {field} or no row {row} in {csv}"))
}

#[test]
fn a_server_killed_under_load_fails_only_the_requests_it_was_serving() {
    const CLIENTS: usize = 8;
    let s1 = Backend::http("s1");
    let s2 = Backend::http("s2");
    let dir = TempDir::new("failures");
    let sock = dir.path().join("stats.sock");
    let s = Sluice::start(&format!(
        "global\n    nbthread 2\n    stats socket {}\n\
         defaults\n    mode tcp\n    retries 3\n    option redispatch\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    balance roundrobin\n    default-server check inter 100ms fall 2 rise 2\n\
         \x20   server s1 {}\n    server s2 {}\n",
        sock.display(),
        s1.addr(),
        s2.addr()
    ));
    let (stop, out) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let clients = load(s.addr("fe"), CLIENTS, &stop, &out);
    wait_until(Duration::from_secs(10), "both servers under load", || {
        served_by(&out, "s1") >= 100 && served_by(&out, "s2") >= 100
    });

    // Kill s1: its listener closes and its open connections are shut down mid-request.
    s1.stop();
    let killed = Instant::now();
    wait_until(Duration::from_secs(5), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    let after = |out: &Mutex<Vec<Outcome>>| {
        out.lock()
            .unwrap()
            .iter()
            .filter(|o| o.started > killed && o.result.is_ok())
            .count()
    };
    wait_until(
        Duration::from_secs(10),
        "300 requests after the kill",
        || after(&out) >= 300,
    );
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }

    let out = Arc::try_unwrap(out).unwrap().into_inner().unwrap();
    let failed: Vec<&Outcome> = out.iter().filter(|o| o.result.is_err()).collect();
    let late: Vec<&&Outcome> = failed.iter().filter(|o| o.started > killed).collect();
    assert!(
        late.is_empty(),
        "{} requests started after s1 died failed (retries and redispatch must carry \
         them to s2): {late:?}\n{}",
        late.len(),
        s.log()
    );
    assert!(
        failed.len() <= CLIENTS,
        "{} requests failed, more than the {CLIENTS} in flight when s1 died: {failed:?}",
        failed.len()
    );
    assert!(
        out.iter()
            .filter(|o| o.started > killed)
            .all(|o| o.result.as_deref() == Ok("s2")),
        "a request after the kill was served by s1"
    );

    // Nothing leaked: every session count is back to zero and s1 shows DOWN.
    wait_until(Duration::from_secs(5), "sessions back to zero", || {
        ["fe,FRONTEND", "be,BACKEND", "be,s1", "be,s2"]
            .iter()
            .all(|row| stat(&sock, row, "scur") == "0")
    });
    assert!(stat(&sock, "be,s1", "status").starts_with("DOWN"));
    let total: usize = stat(&sock, "be,BACKEND", "stot").parse().unwrap();
    assert!(total >= out.len() - failed.len(), "stot {total}");
    s.stop();
}

/// A backend of one refusing server and one of a refusing and a live server, with retries
/// and redispatch.
fn refused_cfg(
    sock: &std::path::Path,
    dead: std::net::SocketAddr,
    live: std::net::SocketAddr,
) -> String {
    format!(
        "global\n    stats socket {}\n\
         defaults\n    mode tcp\n    retries 3\n    timeout connect 100ms\n    timeout client 5s\n    timeout server 5s\n\
         frontend lone\n    bind 127.0.0.1:{{port:lone}}\n    default_backend lone\n\
         frontend pair\n    bind 127.0.0.1:{{port:pair}}\n    default_backend pair\n\
         backend lone\n    server dead {dead}\n\
         backend pair\n    option redispatch\n    server dead {dead}\n    server live {live}\n",
        sock.display()
    )
}

/// Three connections through each frontend, then the counters of every server and backend.
fn refused_counts(
    lone: std::net::SocketAddr,
    pair: std::net::SocketAddr,
    sock: &std::path::Path,
) -> Vec<String> {
    for fe in [lone, pair] {
        for _ in 0..3 {
            let _ = request(fe);
        }
    }
    let rows = [
        "lone,dead",
        "lone,BACKEND",
        "pair,dead",
        "pair,live",
        "pair,BACKEND",
    ];
    let mut out = Vec::new();
    wait_until(Duration::from_secs(5), "every session closed", || {
        out = rows
            .iter()
            .map(|r| {
                ["scur", "stot", "econ", "wretr", "wredis", "lbtot"]
                    .iter()
                    .map(|f| format!("{f}={}", stat(sock, r, f)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.iter().all(|l| l.starts_with("scur=0 "))
    });
    rows.iter()
        .zip(out)
        .map(|(r, l)| format!("{r}: {l}"))
        .collect()
}

#[test]
fn connection_errors_retries_and_selections_count_as_haproxys() {
    let dead = Backend::refusing();
    let live = Backend::http("live");
    let dir = TempDir::new("refused-counts");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&refused_cfg(&sock, dead.addr(), live.addr()));
    let ours = refused_counts(s.addr("lone"), s.addr("pair"), &sock);
    s.stop();
    // Each try counts in the server's stot, a connection error once when the retries are
    // spent, a balancing choice (not a retry on the same server) in lbtot; with two servers
    // and redispatch, a refused connect goes to the other server at once, counted as a
    // redispatch.
    assert_eq!(
        ours,
        [
            "lone,dead: scur=0 stot=12 econ=3 wretr=9 wredis=0 lbtot=3",
            "lone,BACKEND: scur=0 stot=3 econ=3 wretr=9 wredis=0 lbtot=3",
            "pair,dead: scur=0 stot=3 econ=0 wretr=0 wredis=3 lbtot=3",
            "pair,live: scur=0 stot=3 econ=0 wretr=0 wredis=0 lbtot=3",
            "pair,BACKEND: scur=0 stot=3 econ=0 wretr=0 wredis=3 lbtot=6",
        ]
    );
    let theirs = crate::common::running::on_reference_haproxy(
        &dir,
        |sock| refused_cfg(sock, dead.addr(), live.addr()),
        |sock, at| refused_counts(at("lone"), at("pair"), sock),
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "sluice vs HAProxy");
    }
}

#[test]
fn a_refused_connect_is_retried_on_the_same_server_after_a_turn_around() {
    // HAProxy waits min(1 s, timeout connect) before retrying the server that refused: a
    // server restarting within that time takes the connection.
    let dead = Backend::refusing();
    let addr = dead.addr();
    let dir = TempDir::new("turn-around");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&format!(
        "global\n    stats socket {}\n\
         defaults\n    mode tcp\n    retries 3\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {addr}\n",
        sock.display()
    ));
    let fe = s.addr("fe");
    let client = std::thread::spawn(move || request(fe));
    // The first try is refused: a retry is counted and waits out its turn-around (1 s).
    wait_until(Duration::from_secs(5), "a retry", || {
        stat(&sock, "be,s1", "wretr") == "1"
    });
    drop(dead);
    let server = std::net::TcpListener::bind(addr).expect("the server's port again");
    let served = std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = c.read(&mut buf);
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ns1\n")
            .unwrap();
    });
    assert_eq!(client.join().unwrap(), Ok("s1".to_string()));
    served.join().unwrap();
    assert_eq!(stat(&sock, "be,s1", "econ"), "0");
    s.stop();
}
