//! Health checks through the real binary: a killed server is marked down within
//! fall x inter and gets no new connection, comes back after rise x inter, flapping does not
//! flap, check timeouts, a server that never answers the expect, agent replies, and
//! `observe layer4` marking a server down from live traffic, and `http-check connect`/`send`
//! judging a Patroni-like API on its own port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::backends::{self, connect, read_line, wait_until, Backend};
use crate::common::running::Sluice;

/// A check target that can be stopped and started again on the same port, answering each
/// connection with a line produced by `reply` (call number -> line; None: say nothing and
/// hold the connection).
struct Flip {
    addr: SocketAddr,
    reply: Arc<dyn Fn(usize) -> Option<String> + Send + Sync>,
    calls: Arc<AtomicUsize>,
    run: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Flip {
    fn new(reply: impl Fn(usize) -> Option<String> + Send + Sync + 'static) -> Flip {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut f = Flip {
            addr,
            reply: Arc::new(reply),
            calls: Arc::new(AtomicUsize::new(0)),
            run: None,
        };
        f.serve(l);
        f
    }

    fn serve(&mut self, l: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, reply, calls) = (
            Arc::clone(&stop),
            Arc::clone(&self.reply),
            Arc::clone(&self.calls),
        );
        l.set_nonblocking(true).unwrap();
        let t = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let n = calls.fetch_add(1, Ordering::Relaxed);
                        match reply(n) {
                            Some(line) => {
                                let _ = c.write_all(line.as_bytes());
                            }
                            None => held.push(c),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.run = Some((stop, t));
    }

    fn stop(&mut self) {
        if let Some((stop, t)) = self.run.take() {
            stop.store(true, Ordering::Relaxed);
            t.join().unwrap();
        }
    }

    fn start(&mut self) {
        let l = TcpListener::bind(self.addr).unwrap();
        self.serve(l);
    }
}

impl Drop for Flip {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ok_line(_: usize) -> Option<String> {
    Some("OK\n".to_string())
}

fn two_servers(
    check_opts: &str,
    s1_check_port: u16,
    s1: &Backend,
    s2: &Backend,
    extra: &str,
) -> String {
    format!(
        "global\n    nbthread 2\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n{extra}\n    server s1 {} check port {s1_check_port} {check_opts}\n    server s2 {}\n",
        s1.addr(),
        s2.addr()
    )
}

/// The tags of `n` connections made one after the other.
fn tags(s: &Sluice, n: usize) -> Vec<String> {
    backends::tags(s.addr("fe"), n)
}

#[test]
fn a_dead_server_is_marked_down_in_time_and_gets_no_new_connection_then_comes_back() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    // s1's checks go to a separate port, so "dead to checks" does not stop its service.
    let mut check = Flip::new(ok_line);
    let s = Sluice::start(&two_servers(
        "inter 200ms rise 2 fall 3",
        check.addr.port(),
        &s1,
        &s2,
        "",
    ));
    wait_until(Duration::from_secs(3), "both servers in rotation", || {
        let t = tags(&s, 4);
        t.contains(&"s1".to_string()) && t.contains(&"s2".to_string())
    });
    check.stop();
    let killed = Instant::now();
    wait_until(Duration::from_secs(3), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    let took = killed.elapsed();
    // fall x inter, plus one inter of slack (and scheduling slack for a loaded machine).
    assert!(
        took < Duration::from_millis(3 * 200 + 200 + 400),
        "marked down after {took:?}"
    );
    let before = s1.accepted();
    assert!(tags(&s, 10).iter().all(|t| t == "s2"));
    assert_eq!(s1.accepted(), before, "a down server got new connections");

    check.start();
    let back = Instant::now();
    wait_until(Duration::from_secs(3), "s1 back up", || {
        s.log().contains("Server be/s1 is UP")
    });
    assert!(
        back.elapsed() < Duration::from_millis(2 * 200 + 200 + 400),
        "up after {:?}",
        back.elapsed()
    );
    wait_until(Duration::from_secs(3), "s1 in rotation again", || {
        tags(&s, 4).contains(&"s1".to_string())
    });
    let log = s.stop();
    assert!(log.contains("reason: Layer4 connection problem"), "{log}");
}

#[test]
fn a_flapping_check_does_not_flap_the_server() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    // Every other check fails: HAProxy's counter keeps the server up (fall 3).
    let check = Flip::new(|n| Some(if n % 2 == 0 { "OK\n" } else { "KO\n" }.to_string()));
    let s = Sluice::start(&two_servers(
        "inter 100ms rise 2 fall 3",
        check.addr.port(),
        &s1,
        &s2,
        "    option tcp-check\n    tcp-check expect string OK",
    ));
    wait_until(Duration::from_secs(5), "a dozen checks", || {
        check.calls.load(Ordering::Relaxed) >= 12
    });
    let log = s.stop();
    assert!(!log.contains("is DOWN"), "{log}");
}

#[test]
fn a_server_that_never_answers_the_expect_is_down_after_timeout_check() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let silent = Flip::new(|_| None);
    let s = Sluice::start(&two_servers(
        "inter 200ms fall 2",
        silent.addr.port(),
        &s1,
        &s2,
        "    timeout check 200ms\n    option tcp-check\n    tcp-check send PING\\r\\n\n    tcp-check expect string +PONG",
    ));
    wait_until(Duration::from_secs(5), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    let log = s.stop();
    assert!(log.contains("Layer7 timeout"), "{log}");
}

#[test]
fn a_check_that_cannot_connect_in_time_fails_with_a_layer4_timeout() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    // A listener with a full accept queue: SYNs are dropped, connects hang.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<TcpStream> = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    let s = Sluice::start(&two_servers(
        "inter 300ms fall 1",
        addr.port(),
        &s1,
        &s2,
        "    timeout check 1s",
    ));
    wait_until(Duration::from_secs(5), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    let log = s.stop();
    assert!(log.contains("Layer4 timeout"), "{log}");
    drop(fillers);
}

#[test]
fn agent_replies_change_weight_and_state() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let reply = Arc::new(std::sync::Mutex::new("100%\n".to_string()));
    let r2 = Arc::clone(&reply);
    let agent = Flip::new(move |_| Some(r2.lock().unwrap().clone()));
    let cfg = format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {} weight 100 agent-check agent-port {} agent-inter 100ms\n    server s2 {} weight 100\n",
        s1.addr(),
        agent.addr.port(),
        s2.addr()
    );
    let s = Sluice::start(&cfg);
    let share = |s: &Sluice| tags(s, 60).iter().filter(|t| *t == "s1").count();
    // 50%: s1 gets one third.
    *reply.lock().unwrap() = "50%\n".to_string();
    let calls = agent.calls.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(3), "agent polled", || {
        agent.calls.load(Ordering::Relaxed) > calls + 1
    });
    let n = share(&s);
    assert!((18..=22).contains(&n), "s1 got {n} of 60 at 50%");
    // drain: no new connection to s1.
    *reply.lock().unwrap() = "drain\n".to_string();
    wait_until(Duration::from_secs(3), "s1 drained", || share(&s) == 0);
    // ready, 100%: back to half.
    *reply.lock().unwrap() = "ready 100%\n".to_string();
    wait_until(Duration::from_secs(3), "s1 ready", || {
        (28..=32).contains(&share(&s))
    });
    // down: marked down.
    *reply.lock().unwrap() = "down # maintenance window\n".to_string();
    wait_until(Duration::from_secs(3), "s1 down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    assert_eq!(share(&s), 0);
    s.stop();
}

#[test]
fn observe_layer4_marks_a_server_down_from_live_traffic() {
    let dead = Backend::refusing();
    let alive = Backend::tagged("s2");
    let cfg = format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    retries 3\n    option redispatch\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {} observe layer4 error-limit 2 on-error mark-down\n    server s2 {}\n",
        dead.addr(),
        alive.addr()
    );
    let s = Sluice::start(&cfg);
    // Every connection still lands on s2 (redispatch) while s1 fails...
    for _ in 0..4 {
        assert_eq!(read_line(&connect(s.addr("fe"))), "s2");
    }
    // ...and two failures were enough to mark s1 down, without any active check.
    wait_until(Duration::from_secs(3), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    s.stop();
}

#[test]
fn a_backend_without_servers_left_says_so_once() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let mut c1 = Flip::new(ok_line);
    let cfg = format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {} check port {} inter 100ms fall 1\n    server s2 {} check port {} inter 100ms fall 1\n",
        s1.addr(),
        c1.addr.port(),
        s2.addr(),
        c1.addr.port()
    );
    let s = Sluice::start(&cfg);
    c1.stop();
    wait_until(Duration::from_secs(3), "no server left", || {
        s.log().contains("backend be has no server available!")
    });
    // New connections are closed at once.
    let start = Instant::now();
    let mut c = connect(s.addr("fe"));
    let mut buf = [0u8; 4];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    assert!(start.elapsed() < Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.stop();
    assert_eq!(log.matches("has no server available").count(), 1, "{log}");
}

// ---------------------------------------------------------------------------------------
// Real servers: MariaDB, Redis, nginx (installed by the README test command).

use crate::common::services::{Mariadb, Nginx, Redis};

/// A listen section in front of `servers` with the given check options; returns the log
/// once `done` says the wait is over.
fn checked(backend_opts: &str, servers: &str) -> Sluice {
    Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    option log-health-checks\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout check 2s\n\
         listen db\n    bind 127.0.0.1:{{port:fe}}\n{backend_opts}\n{servers}"
    ))
}

#[test]
fn mysql_check_logs_in_to_a_real_mariadb() {
    let Some(db) = Mariadb::start() else { return };
    let s = checked(
        &format!("    option mysql-check user {}", Mariadb::USER),
        &format!("    server good {} check inter 200ms fall 1 rise 1\n    server bad {} check inter 200ms fall 1 rise 1\n", db.addr(), db.addr()),
    );
    // The same server with the wrong user: a separate listen section.
    let bad = Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout check 2s\n\
         listen db\n    bind 127.0.0.1:{{port:fe}}\n    option mysql-check user nobody\n    server db1 {} check inter 200ms fall 1\n",
        db.addr()
    ));
    wait_until(Duration::from_secs(10), "wrong user marked down", || {
        bad.log().contains("Server db/db1 is DOWN")
    });
    let log = bad.stop();
    assert!(
        log.contains("Access denied for user 'nobody'"),
        "MariaDB's error in the log:\n{log}"
    );
    // The right user stays up: a client gets MariaDB's greeting through sluice.
    std::thread::sleep(Duration::from_millis(600));
    let mut c = connect(s.addr("fe"));
    let mut greeting = [0u8; 5];
    c.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting[4], 10, "protocol version 10 greeting");
    let log = s.stop();
    assert!(!log.contains("Server db/good is DOWN"), "{log}");
}

#[test]
fn redis_check_and_a_role_master_script_against_real_redis() {
    let (Some(master), Some(replica)) = (Redis::start(), Redis::start()) else {
        return;
    };
    replica.replicaof(&master);
    let s = checked(
        "    option tcp-check\n    tcp-check send PING\\r\\n\n    tcp-check expect string +PONG\n    tcp-check send info\\ replication\\r\\n\n    tcp-check expect string role:master\n    tcp-check send QUIT\\r\\n\n    tcp-check expect string +OK",
        &format!("    server master {} check inter 200ms fall 1 rise 1\n    server replica {} check inter 200ms fall 1 rise 1\n", master.addr(), replica.addr()),
    );
    wait_until(
        Duration::from_secs(10),
        "the replica is marked down",
        || s.log().contains("Server db/replica is DOWN"),
    );
    // Only the master takes connections.
    for _ in 0..4 {
        let mut c = connect(s.addr("fe"));
        c.write_all(b"INFO replication\r\n").unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("role:master"));
    }
    let log = s.stop();
    assert!(!log.contains("Server db/master is DOWN"), "{log}");

    // redis-check: a healthy Redis stays up over a few check intervals.
    let s = checked(
        "    option redis-check",
        &format!("    server r1 {} check inter 200ms fall 1\n", master.addr()),
    );
    std::thread::sleep(Duration::from_millis(700));
    let log = s.stop();
    assert!(!log.contains("is DOWN"), "{log}");
}

#[test]
fn httpchk_against_real_nginx() {
    let Some(ok) = Nginx::start(&[("/health", 200, "ok"), ("/sick", 503, "sick")]) else {
        return;
    };
    let s = checked(
        "    option httpchk GET /sick\n    http-check expect status 200",
        &format!("    server web {} check inter 200ms fall 1\n", ok.addr()),
    );
    wait_until(Duration::from_secs(10), "503 marks it down", || {
        s.log().contains("Server db/web is DOWN")
    });
    let log = s.stop();
    assert!(log.contains("Layer7 wrong status, code: 503"), "{log}");
    let s = checked(
        "    option httpchk GET /health\n    http-check expect status 200",
        &format!("    server web {} check inter 200ms fall 1\n", ok.addr()),
    );
    // A healthy server stays up: watch a few check intervals.
    std::thread::sleep(Duration::from_millis(800));
    let log = s.stop();
    assert!(!log.contains("is DOWN"), "{log}");
}

#[test]
fn on_marked_down_shutdown_sessions_closes_the_servers_connections() {
    let s1 = Backend::tagged("s1");
    let mut check = Flip::new(ok_line);
    let cfg = format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    server s1 {} check port {} inter 100ms fall 1 on-marked-down shutdown-sessions\n",
        s1.addr(),
        check.addr.port()
    );
    let s = Sluice::start(&cfg);
    let mut c = connect(s.addr("fe"));
    assert_eq!(read_line(&c), "s1");
    check.stop();
    wait_until(Duration::from_secs(3), "s1 marked down", || {
        s.log().contains("Server be/s1 is DOWN")
    });
    // The established connection is closed by sluice, not left to the server.
    let mut buf = [0u8; 8];
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    wait_until(Duration::from_secs(3), "backend connection closed", || {
        s1.active() == 0
    });
    s.stop();
}

/// A Patroni-like check endpoint: answers 200 to `GET /primary` with `Host: db.local` while
/// `primary` is set, 503 to anything else; records every request head it reads.
struct CheckApi {
    addr: SocketAddr,
    primary: Arc<AtomicBool>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CheckApi {
    fn start() -> CheckApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let primary = Arc::new(AtomicBool::new(true));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, r, s) = (
            Arc::clone(&primary),
            Arc::clone(&requests),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let host_ok = head
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case("host: db.local"));
                let ok = p.load(Ordering::Relaxed) && head.starts_with("GET /primary ") && host_ok;
                r.lock().unwrap().push(head);
                let reply: &[u8] = if ok {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = c.write_all(reply);
            }
        });
        CheckApi {
            addr,
            primary,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for CheckApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn http_check_send_and_connect_port_judge_a_patroni_like_api() {
    let db = Backend::tagged("s1");
    let api = CheckApi::start();
    let cfg = |uri: &str| {
        format!(
            "global\n    nbthread 1\ndefaults\n    mode tcp\n    option log-health-checks\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout check 2s\n\
             listen pg\n    bind 127.0.0.1:{{port:fe}}\n    option httpchk\n\
             \x20   http-check connect port {}\n\
             \x20   http-check send meth GET uri {uri} ver HTTP/1.1 hdr Host db.local hdr User-Agent sluice-check\n\
             \x20   http-check expect status 200\n\
             \x20   server s1 {} check inter 200ms rise 1 fall 2\n",
            api.addr.port(),
            db.addr()
        )
    };
    let s = Sluice::start(&cfg("/primary"));
    wait_until(Duration::from_secs(3), "a check reaches the API", || {
        !api.requests().is_empty()
    });
    // The bytes HAProxy 2.6.12 sends for this line (see health/protocol.rs), on the check
    // port, never on the traffic port.
    assert_eq!(
        api.requests()[0],
        "GET /primary HTTP/1.1\r\nhost: db.local\r\nuser-agent: sluice-check\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(db.accepted(), 0, "a check went to the traffic port");
    std::thread::sleep(Duration::from_millis(600));
    assert!(!s.log().contains("is DOWN"), "{}", s.log());
    assert_eq!(read_line(&connect(s.addr("fe"))), "s1");

    // Failover: the API now answers 503.
    api.primary.store(false, Ordering::Relaxed);
    wait_until(Duration::from_secs(3), "s1 marked down", || {
        s.log().contains("Server pg/s1 is DOWN")
    });
    api.primary.store(true, Ordering::Relaxed);
    wait_until(Duration::from_secs(3), "s1 back up", || {
        s.log().contains("Server pg/s1 is UP")
    });
    let log = s.stop();
    assert!(log.contains("Layer7 wrong status, code: 503"), "{log}");

    // Asking for another URI gets 503: the request really is the one configured.
    let s = Sluice::start(&cfg("/replica"));
    wait_until(
        Duration::from_secs(3),
        "a /replica check marks s1 down",
        || s.log().contains("Server pg/s1 is DOWN"),
    );
    s.stop();
    assert!(api
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /replica HTTP/1.1\r\nhost: db.local\r\n")));
}
