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
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = header
        .iter()
        .position(|h| *h == field)
        .unwrap_or_else(|| panic!("no column {field} in {csv}"));
    let line = lines
        .find(|l| l.starts_with(&format!("{row},")))
        .unwrap_or_else(|| panic!("no row {row} in {csv}"));
    line.split(',').nth(col).unwrap_or_default().to_string()
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
