//! The data plane through the real binary on loopback: byte-exact transfers with and
//! without splice, half-close both ways, resets, retries and redispatch, timeouts,
//! concurrency, balancing order, maxconn, soft stop, and no leaked socket or count.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::common::backends::{
    connect, read_line, stream_checksum, tagged, tags, wait_until, Backend, Fnv,
};
use crate::common::running::Sluice;

const MIB: usize = 1 << 20;

fn cfg(global: &str, defaults: &str, backend: &str) -> String {
    format!(
        "global\n{global}\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n{defaults}\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n{backend}\n"
    )
}

fn server_lines(backends: &[&Backend]) -> String {
    backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("    server s{} {}\n", i + 1, b.addr()))
        .collect()
}

/// Sends `len` pseudo-random bytes to a sink through sluice and checks its checksum.
fn upload(s: &Sluice, len: usize) {
    let mut c = connect(s.addr("fe"));
    c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut fnv = Fnv::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < len {
        let n = buf.len().min(len - sent);
        for b in &mut buf[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        fnv.update(&buf[..n]);
        c.write_all(&buf[..n]).unwrap();
        sent += n;
    }
    c.shutdown(Shutdown::Write).unwrap();
    let line = read_line(&c);
    assert_eq!(line, format!("{len} {:016x}", fnv.finish()));
}

/// Receives `len` bytes from a source through sluice and checks them.
fn download(s: &Sluice, len: usize, seed: u64) {
    let mut c = connect(s.addr("fe"));
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut fnv = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        fnv.update(&buf[..n]);
        got += n;
    }
    assert_eq!(got, len);
    assert_eq!(fnv.finish(), stream_checksum(len as u64, seed));
}

fn transfer_64mib(global: &str) {
    let sink = Backend::sink();
    let s = Sluice::start(&cfg(global, "", &server_lines(&[&sink])));
    upload(&s, 64 * MIB);
    drop(sink);
    let source = Backend::source(64 * MIB as u64, 7);
    let s2 = Sluice::start(&cfg(global, "", &server_lines(&[&source])));
    download(&s2, 64 * MIB, 7);
    let listeners = s.open_sockets().min(2);
    s.wait_sockets(listeners, Duration::from_secs(5));
    s.stop();
    s2.stop();
}

#[test]
fn transfers_64mib_exactly_with_splice() {
    transfer_64mib("    nbthread 2");
}

#[test]
fn transfers_64mib_exactly_without_splice() {
    transfer_64mib("    nbthread 2\n    nosplice");
}

#[test]
fn small_pipes_and_buffers_still_deliver_everything() {
    let sink = Backend::sink();
    let s = Sluice::start(&cfg(
        "    nbthread 1\n    tune.pipesize 4096\n    maxpipes 1",
        "",
        &server_lines(&[&sink]),
    ));
    // Several at once: one gets the only pipe, the others fall back to buffers.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let addr = s.addr("fe");
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let data = vec![0x5a_u8; 3 * MIB + 17];
                c.write_all(&data).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut f = Fnv::new();
                f.update(&data);
                assert_eq!(read_line(&c), format!("{} {:016x}", data.len(), f.finish()));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    s.stop();
}

#[test]
fn client_half_close_keeps_the_response_flowing() {
    let echo = Backend::echo();
    let s = Sluice::start(&cfg("    nbthread 2", "", &server_lines(&[&echo])));
    let mut c = connect(s.addr("fe"));
    c.write_all(b"hello after which I stop sending").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello after which I stop sending");
    s.stop();
}

#[test]
fn server_half_close_keeps_the_request_flowing() {
    // The source sends its bytes and FIN, then keeps reading until our FIN.
    let source = Backend::source(1_000, 3);
    let s = Sluice::start(&cfg("    nbthread 2", "", &server_lines(&[&source])));
    let mut c = connect(s.addr("fe"));
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 1_000);
    // Our side is still open: we can still send, and the server still reads.
    c.write_all(b"still talking").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    wait_until(Duration::from_secs(5), "server side closed", || {
        source.active() == 0
    });
    s.stop();
}

#[test]
fn a_client_reset_closes_the_server_side_promptly() {
    let echo = Backend::echo();
    let s = Sluice::start(&cfg("    nbthread 1", "", &server_lines(&[&echo])));
    let mut c = connect(s.addr("fe"));
    c.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).unwrap();
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
    wait_until(Duration::from_secs(3), "backend connection closed", || {
        echo.active() == 0
    });
    s.wait_sockets(1, Duration::from_secs(3));
    s.stop();
}

#[test]
fn a_server_reset_closes_the_client_side_promptly() {
    // A server that accepts, reads one byte, then resets.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).unwrap();
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "",
        &format!("    server s1 {addr}\n"),
    ));
    let mut c = connect(s.addr("fe"));
    c.write_all(b"x").unwrap();
    t.join().unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let r = c.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "expected EOF or reset, got {r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    s.wait_sockets(1, Duration::from_secs(3));
    s.stop();
}

#[test]
fn a_refused_server_is_retried_then_redispatched_to_another() {
    let dead = Backend::refusing();
    let alive = Backend::tagged("s2");
    let s = Sluice::start(&cfg(
        "    nbthread 2",
        "    retries 2\n    option redispatch",
        &server_lines(&[&dead, &alive]),
    ));
    for _ in 0..6 {
        let c = connect(s.addr("fe"));
        assert_eq!(read_line(&c), "s2");
    }
    s.stop();
}

#[test]
fn all_servers_down_closes_the_client_promptly() {
    let a = Backend::refusing();
    let b = Backend::refusing();
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "    retries 3\n    option redispatch",
        &server_lines(&[&a, &b]),
    ));
    let start = Instant::now();
    let mut c = connect(s.addr("fe"));
    let mut buf = [0u8; 8];
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    s.stop();
}

/// A server that accepts and then holds every connection open, silent, until dropped.
struct Holder {
    addr: std::net::SocketAddr,
    _stop: std::sync::mpsc::Sender<()>,
}

impl Holder {
    fn new() -> Holder {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Err(std::sync::mpsc::TryRecvError::Empty) = rx.try_recv() {
                match l.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Holder { addr, _stop: tx }
    }
}

/// Time until sluice closes an idle connection to `server` under `timeouts`, measured on
/// sluice's own sockets (the client sees a FIN earlier when the server sends one).
fn idle_close_after(timeouts: &str, server: std::net::SocketAddr, send_fin: bool) -> Duration {
    let s = Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n{timeouts}\nfrontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\nbackend be\n    server s1 {server}\n"
    ));
    let mut c = connect(s.addr("fe"));
    c.write_all(b"ping").unwrap();
    if send_fin {
        c.shutdown(Shutdown::Write).unwrap();
    }
    wait_until(Duration::from_secs(5), "connection established", || {
        s.open_sockets() == 3
    });
    let took = s.wait_sockets(1, Duration::from_secs(10));
    drop(c);
    s.stop();
    took
}

fn assert_near(took: Duration, want_ms: u64) {
    let want = Duration::from_millis(want_ms);
    assert!(
        took >= want.mul_f32(0.8) && took < want + Duration::from_millis(1_500),
        "closed after {took:?}, expected about {want:?}"
    );
}

#[test]
fn timeout_client_closes_an_idle_connection() {
    let hold = Holder::new();
    let took = idle_close_after(
        "    timeout connect 2s\n    timeout client 400ms\n    timeout server 30s",
        hold.addr,
        false,
    );
    assert_near(took, 400);
}

#[test]
fn timeout_server_closes_an_idle_connection() {
    let hold = Holder::new();
    let took = idle_close_after(
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 400ms",
        hold.addr,
        false,
    );
    assert_near(took, 400);
}

#[test]
fn timeout_tunnel_replaces_client_and_server_timeouts() {
    let hold = Holder::new();
    let took = idle_close_after(
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    timeout tunnel 400ms",
        hold.addr,
        false,
    );
    assert_near(took, 400);
}

#[test]
fn timeout_client_fin_applies_once_the_client_has_sent_its_fin() {
    let hold = Holder::new();
    let took = idle_close_after(
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    timeout client-fin 400ms",
        hold.addr,
        true,
    );
    assert_near(took, 400);
}

#[test]
fn timeout_server_fin_applies_once_the_server_has_sent_its_fin() {
    // The source sends 10 bytes and its FIN, then waits for ours, which never comes.
    let source = Backend::source(10, 1);
    let took = idle_close_after(
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    timeout server-fin 400ms",
        source.addr(),
        false,
    );
    assert_near(took, 400);
}

#[test]
fn timeout_connect_gives_up_on_a_server_that_never_answers() {
    // A listener whose accept queue is full: further SYNs are dropped, connects hang.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(c);
        }
    }
    let s = Sluice::start(&format!(
        "defaults\n    mode tcp\n    retries 1\n    timeout connect 300ms\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\nbackend be\n    server s1 {addr}\n"
    ));
    let start = Instant::now();
    let mut c = connect(s.addr("fe"));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8];
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // Two attempts (retries 1) of 300 ms each.
    assert_near(start.elapsed(), 600);
    s.stop();
    drop(fillers);
}

#[test]
fn timeout_queue_closes_a_connection_waiting_for_a_full_server() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "    timeout queue 400ms",
        &format!("    server s1 {} maxconn 1\n", tagged.addr()),
    ));
    let first = connect(s.addr("fe"));
    assert_eq!(read_line(&first), "s1");
    let mut second = connect(s.addr("fe"));
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 8];
    let r = second.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_near(start.elapsed(), 400);
    drop(first);
    s.stop();
}

#[test]
fn a_queued_connection_gets_the_slot_a_finished_one_frees() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "    timeout queue 5s",
        &format!("    server s1 {} maxconn 1\n", tagged.addr()),
    ));
    let first = connect(s.addr("fe"));
    assert_eq!(read_line(&first), "s1");
    let second = connect(s.addr("fe"));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        tagged.active(),
        1,
        "the second connection must wait in the queue"
    );
    drop(first);
    assert_eq!(read_line(&second), "s1");
    s.stop();
}

#[test]
fn two_thousand_concurrent_connections() {
    raise_fd_limit();
    let echo = Backend::echo();
    let s = Sluice::start(&cfg(
        "    nbthread 2\n    maxconn 5000",
        "",
        &server_lines(&[&echo]),
    ));
    let mut conns: Vec<TcpStream> = (0..2_000).map(|_| connect(s.addr("fe"))).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("{i:06}").as_bytes()).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut buf = [0u8; 6];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, format!("{i:06}").as_bytes());
    }
    wait_until(Duration::from_secs(5), "2000 backend connections", || {
        echo.active() == 2_000
    });
    drop(conns);
    wait_until(
        Duration::from_secs(10),
        "backend connections closed",
        || echo.active() == 0,
    );
    s.wait_sockets(2, Duration::from_secs(10));
    s.stop();
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65_536), hard);
    }
}

#[test]
fn roundrobin_rotates_in_order_across_workers() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        "    nbthread 2",
        "    balance roundrobin",
        &server_lines(&b.iter().collect::<Vec<_>>()),
    ));
    let got = tags(s.addr("fe"), 9);
    assert_eq!(got, ["s1", "s2", "s3", "s1", "s2", "s3", "s1", "s2", "s3"]);
    s.stop();
}

#[test]
fn leastconn_spreads_long_lived_connections_evenly() {
    let b = tagged(3);
    let s = Sluice::start(&cfg(
        "    nbthread 2",
        "    balance leastconn",
        &server_lines(&b.iter().collect::<Vec<_>>()),
    ));
    // Three client threads open long-lived connections at the same time.
    let addr = s.addr("fe");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| {
                        let c = connect(addr);
                        let tag = read_line(&c);
                        (tag, c)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let held: Vec<(String, TcpStream)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    for name in ["s1", "s2", "s3"] {
        let n = held.iter().filter(|(t, _)| t == name).count();
        assert!((18..=22).contains(&n), "{name} got {n} of 60");
    }
    drop(held);
    s.stop();
}

#[test]
fn global_maxconn_holds_new_connections_until_one_closes() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&cfg(
        "    nbthread 2\n    maxconn 4",
        "",
        &server_lines(&[&tagged]),
    ));
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let c = connect(s.addr("fe"));
            assert_eq!(read_line(&c), "s1");
            c
        })
        .collect();
    // The fifth is accepted by the kernel but not served while four are open.
    let mut fifth = connect(s.addr("fe"));
    fifth
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4];
    assert!(fifth.read(&mut buf).is_err(), "served beyond maxconn");
    assert_eq!(tagged.accepted(), 4);
    held.pop();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_line(&fifth), "s1");
    drop(held);
    s.stop();
}

#[test]
fn soft_stop_lets_an_in_flight_transfer_finish() {
    let len = 32 * MIB;
    let source = Backend::source(len as u64, 11);
    let mut s = Sluice::start(&cfg("    nbthread 2", "", &server_lines(&[&source])));
    let mut c = connect(s.addr("fe"));
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut fnv = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let n = c.read(&mut buf).unwrap();
    fnv.update(&buf[..n]);
    let mut got = n;
    s.signal(libc::SIGUSR1);
    // The listener closes: new connections are refused.
    let addr = s.addr("fe");
    wait_until(Duration::from_secs(5), "listener closed", || {
        TcpStream::connect(addr).is_err()
    });
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        fnv.update(&buf[..n]);
        got += n;
    }
    assert_eq!(got, len);
    assert_eq!(fnv.finish(), stream_checksum(len as u64, 11));
    drop(c);
    let st = s.wait_exit(Duration::from_secs(10));
    assert!(st.success(), "{st}:\n{}", s.log());
}

#[test]
fn start_line_lists_binds_and_workers() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&cfg("    nbthread 2", "", &server_lines(&[&tagged])));
    let port = s.ports["fe"];
    let log = s.stop();
    assert!(
        log.contains("2 worker(s)") && log.contains(&format!("fe@127.0.0.1:{port}")),
        "{log}"
    );
}

#[test]
fn refuses_to_start_with_what_this_build_does_not_do() {
    // -x (listener takeover), refused before anything is bound.
    let out = crate::common::sluice(&[
        "-x",
        "/run/haproxy/admin.sock",
        "-f",
        "haproxy-compat/valid/24-global-tuning.cfg",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::stderr(&out);
    assert!(err.contains("cannot start"), "{err}");
}

#[test]
fn running_out_of_file_descriptors_pauses_then_recovers() {
    raise_fd_limit();
    let echo = Backend::echo();
    let s = Sluice::start(&cfg(
        "    nbthread 1\n    ulimit-n 64\n    maxconn 1000",
        "    retries 0",
        &server_lines(&[&echo]),
    ));
    // Far more connections than 64 descriptors allow: some are served, the others wait or
    // are closed, and sluice stays up.
    let mut conns = Vec::new();
    for _ in 0..80 {
        if let Ok(c) = crate::common::backends::try_connect(s.addr("fe")) {
            conns.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(conns);
    wait_until(
        Duration::from_secs(10),
        "backend connections closed",
        || echo.active() == 0,
    );
    s.wait_sockets(1, Duration::from_secs(10));
    let mut c = connect(s.addr("fe"));
    c.write_all(b"alive").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"alive");
    drop(c);
    s.stop();
}

#[test]
fn a_client_that_never_reads_does_not_make_sluice_buffer() {
    let source = Backend::source(256 * MIB as u64, 5);
    let s = Sluice::start(&cfg("    nbthread 1", "", &server_lines(&[&source])));
    let c = connect(s.addr("fe"));
    wait_until(Duration::from_secs(5), "backend connected", || {
        source.active() == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        })
        .unwrap();
    assert!(
        rss_kib < 32 * 1024,
        "sluice holds {rss_kib} KiB for a client that never reads"
    );
    drop(c);
    s.wait_sockets(1, Duration::from_secs(5));
    s.stop();
}

#[test]
fn maxqueue_bounds_the_queue() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "    timeout queue 5s",
        &format!("    server s1 {} maxconn 1 maxqueue 1\n", tagged.addr()),
    ));
    let first = connect(s.addr("fe"));
    assert_eq!(read_line(&first), "s1");
    let _queued = connect(s.addr("fe"));
    std::thread::sleep(Duration::from_millis(100));
    // The queue holds one: a third connection is closed at once.
    let mut third = connect(s.addr("fe"));
    let start = Instant::now();
    let mut buf = [0u8; 4];
    let r = third.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(first);
    s.stop();
}

#[test]
fn pidfile_and_daemon_mode() {
    let tagged = Backend::tagged("s1");
    let dir = crate::common::TempDir::new("daemon");
    let pidfile = dir.path().join("sluice.pid");
    let (text, ports) =
        crate::common::running::fill_ports(&cfg("    nbthread 1", "", &server_lines(&[&tagged])));
    let cfgfile = dir.write("d.cfg", &text);
    // -D: the command returns once the daemon runs; the pidfile names the daemon.
    let out = std::process::Command::new(crate::common::sluice_bin())
        .args(["-D", "-p"])
        .arg(&pidfile)
        .arg("-f")
        .arg(&cfgfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pid = 0;
    wait_until(Duration::from_secs(5), "pidfile written", || {
        pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports["fe"]));
    let c = connect(addr);
    assert_eq!(read_line(&c), "s1");
    drop(c);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_until(
        Duration::from_secs(5),
        "daemon stopped and pidfile removed",
        || !std::path::Path::new(&format!("/proc/{pid}")).exists() && !pidfile.exists(),
    );
}

#[test]
fn sigint_stops_at_once() {
    let tagged = Backend::tagged("s1");
    let mut s = Sluice::start(&cfg("    nbthread 2", "", &server_lines(&[&tagged])));
    let mut c = connect(s.addr("fe"));
    assert_eq!(read_line(&c), "s1");
    s.signal(libc::SIGINT);
    let st = s.wait_exit(Duration::from_secs(5));
    assert!(st.success(), "{st}");
    let mut buf = [0u8; 4];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
}

/// Connects from a chosen loopback source address.
fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    crate::common::backends::connect_from(src.parse().expect("an IPv4 address"), to)
}

fn try_connect_from(src: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    crate::common::backends::try_connect_from(src.parse().expect("an IPv4 address"), to)
}

#[test]
fn tcp_request_rules_accept_and_reject_by_source() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&format!(
        "global\n    nbthread 2\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    acl blocked src 127.0.0.3 127.0.0.5\n\
         \x20   tcp-request connection accept if {{ src 127.0.0.5 }}\n\
         \x20   tcp-request connection reject if blocked\n\
         \x20   tcp-request content reject if {{ src 127.0.0.4 }}\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        tagged.addr()
    ));
    let addr = s.addr("fe");
    assert_eq!(read_line(&connect_from("127.0.0.1", addr)), "s1");
    // 127.0.0.5 is accepted by the first rule before the reject applies.
    assert_eq!(read_line(&connect_from("127.0.0.5", addr)), "s1");
    for src in ["127.0.0.3", "127.0.0.4"] {
        let mut buf = [0u8; 4];
        let r = try_connect_from(src, addr).and_then(|mut c| c.read(&mut buf));
        assert!(matches!(r, Ok(0) | Err(_)), "{src} must be rejected: {r:?}");
    }
    assert_eq!(
        tagged.accepted(),
        2,
        "rejected clients never reach the server"
    );
    s.stop();
}

#[test]
fn a_reload_with_sf_hands_over_without_refusing_connections() {
    let tagged = Backend::tagged("s1");
    let dir = crate::common::TempDir::new("reload");
    let pidfile = dir.path().join("sluice.pid");
    let cfg_text = cfg("    nbthread 1", "", &server_lines(&[&tagged]));
    let (text, ports) = crate::common::running::fill_ports(&cfg_text);
    let cfgfile = dir.write("r.cfg", &text);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports["fe"]));
    let start = |extra: &[String]| {
        std::process::Command::new(crate::common::sluice_bin())
            .arg("-p")
            .arg(&pidfile)
            .arg("-f")
            .arg(&cfgfile)
            .args(extra)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut old = start(&[]);
    wait_until(Duration::from_secs(5), "old process listening", || {
        TcpStream::connect(addr).is_ok()
    });
    // An established connection through the old process survives the reload.
    let mut held = connect(addr);
    assert_eq!(read_line(&held), "s1");
    let mut new = start(&["-sf".to_string(), old.id().to_string()]);
    // Wait until the old process has closed its listener (its two sockets left are the held
    // connection). Connections queued on the old listener at that instant would be reset:
    // without -x (listener hand-over) that is SO_REUSEPORT's limit, so the test waits.
    let old_pid = old.id();
    let sockets = || {
        std::fs::read_dir(format!("/proc/{old_pid}/fd"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(5), "old listener closed", || {
        sockets() == 2
    });
    // The old one exits once its connection is done; meanwhile the new one serves.
    for _ in 0..10 {
        assert_eq!(read_line(&connect(addr)), "s1");
    }
    held.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&held), "still here");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let st = loop {
        if let Some(st) = old.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the old process did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(st.success());
    // The pidfile names the new process, and it still serves.
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        new.id().to_string()
    );
    assert_eq!(read_line(&connect(addr)), "s1");
    let _ = new.kill();
    let _ = new.wait();
}

#[test]
fn send_proxy_v1_and_v2_headers_come_first() {
    use std::io::BufRead;
    // A server that reads what arrives first and sends it back, then closes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().take(2).flatten() {
            let mut c = c;
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = vec![0u8; 256];
            let mut n = 0;
            // Read until the client's "hello\n" follows the header.
            while !got[..n].ends_with(b"hello\n") {
                match c.read(&mut got[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            let _ = c.write_all(&got[..n]);
        }
    });
    let s = Sluice::start(&cfg(
        "    nbthread 1",
        "",
        &format!("    server v1 {server} send-proxy\n    server v2 {server} send-proxy-v2\n"),
    ));
    let fe = s.addr("fe");
    // First connection: v1 (roundrobin), the text header then our bytes.
    let mut c = connect(fe);
    c.write_all(b"hello\n").unwrap();
    let mut r = std::io::BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let port = c.local_addr().unwrap().port();
    assert_eq!(
        line,
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 {port} {}\r\n", fe.port())
    );
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "hello\n");
    // Second connection: v2, the binary header.
    let mut c = connect(fe);
    c.write_all(b"hello\n").unwrap();
    let mut h = [0u8; 28];
    c.read_exact(&mut h).unwrap();
    assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
    assert_eq!(
        u16::from_be_bytes([h[24], h[25]]),
        c.local_addr().unwrap().port()
    );
    assert_eq!(u16::from_be_bytes([h[26], h[27]]), fe.port());
    let mut rest = [0u8; 6];
    c.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"hello\n");
    s.stop();
}

#[test]
fn accept_proxy_takes_the_client_address_from_the_header() {
    let tagged = Backend::tagged("s1");
    let s = Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 400ms\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}} accept-proxy\n    log stderr format raw local0\n    log-format \"from %ci:%cp %ts\"\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        tagged.addr()
    ));
    let fe = s.addr("fe");
    // v1, header and data in one write.
    let mut c = connect(fe);
    c.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\nhello\n")
        .unwrap();
    assert_eq!(read_line(&c), "s1");
    assert_eq!(read_line(&c), "hello");
    drop(c);
    // v2, the header split over two writes.
    let h = {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1]);
        h.extend_from_slice(&4242u16.to_be_bytes());
        h.extend_from_slice(&80u16.to_be_bytes());
        h
    };
    let mut c = connect(fe);
    c.write_all(&h[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(&h[10..]).unwrap();
    c.write_all(b"again\n").unwrap();
    assert_eq!(read_line(&c), "s1");
    assert_eq!(read_line(&c), "again");
    drop(c);
    // Not a PROXY header: closed, never forwarded.
    let mut c = connect(fe);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    // No header at all: closed after the client timeout.
    let mut c = connect(fe);
    let start = Instant::now();
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        tagged.accepted(),
        2,
        "only the two proxied clients reached the server"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(s.log().contains("from 192.0.2.7:5555 --")
        && s.log().contains("from 198.51.100.9:4242 --"))
    {
        assert!(
            Instant::now() < deadline,
            "header addresses not logged:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s.stop();
}

#[test]
fn expect_proxy_rules_and_fc_rcvd_proxy() {
    let direct = Backend::tagged("direct");
    let proxied = Backend::tagged("proxied");
    let s = Sluice::start(&format!(
        "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 2s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   tcp-request connection expect-proxy layer4 if {{ src 127.0.0.3 }}\n\
         \x20   acl via_lb fc_rcvd_proxy\n    use_backend viaproxy if via_lb\n    default_backend plain\n\
         backend plain\n    server s1 {}\nbackend viaproxy\n    server s1 {}\n",
        direct.addr(),
        proxied.addr()
    ));
    let fe = s.addr("fe");
    // From 127.0.0.1: no header expected.
    assert_eq!(read_line(&connect_from("127.0.0.1", fe)), "direct");
    // From 127.0.0.3 (the load balancer in front): a header, then routed on fc_rcvd_proxy.
    let mut c = connect_from("127.0.0.3", fe);
    c.write_all(b"PROXY TCP4 192.0.2.8 10.0.0.1 6000 443\r\n")
        .unwrap();
    assert_eq!(read_line(&c), "proxied");
    s.stop();
}

/// `tcp-request connection` rules judge the socket's own address, before the PROXY header;
/// `tcp-request session` rules judge the address the header announces.
fn session_rules_cfg(be: &Backend, sock: &std::path::Path) -> String {
    format!(
        "global\n    stats socket {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 2s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}} accept-proxy\n\
         \x20   tcp-request connection reject if {{ src 192.0.2.9 }}\n\
         \x20   tcp-request connection reject unless {{ src 127.0.0.1 }}\n\
         \x20   tcp-request session reject if {{ src 192.0.2.66 }}\n\
         \x20   default_backend be\n\
         frontend refused\n    bind 127.0.0.1:{{port:refused}}\n\
         \x20   tcp-request connection reject\n\
         \x20   default_backend be\n\
         backend be\n    server s1 {}\n",
        sock.display(),
        be.addr()
    )
}

/// Three proxied clients on `fe` and two on `refused`: whether each reached the server,
/// then each frontend's `dcon`/`dses`/`stot`/`conn_tot` from `show stat`.
fn session_rules_probe(
    fe: SocketAddr,
    refused: SocketAddr,
    sock: &std::path::Path,
) -> (Vec<bool>, String) {
    let reached: Vec<bool> = ["192.0.2.9", "192.0.2.66", "192.0.2.10"]
        .iter()
        .map(|src| {
            let mut c = connect(fe);
            c.write_all(format!("PROXY TCP4 {src} 10.0.0.1 5555 80\r\n").as_bytes())
                .unwrap();
            let mut buf = [0u8; 8];
            matches!(c.read(&mut buf), Ok(n) if n > 0)
        })
        .collect();
    for _ in 0..2 {
        let mut buf = [0u8; 8];
        let r = crate::common::backends::try_connect(refused).and_then(|mut c| c.read(&mut buf));
        assert!(matches!(r, Ok(0) | Err(_)), "refused at accept: {r:?}");
    }
    let csv = crate::common::backends::cli(sock, "show stat");
    let counts = |proxy: &str| {
        let field = |name: &str| {
            crate::common::checks::stat_field(&csv, &format!("{proxy},FRONTEND"), name)
                .unwrap_or_else(|| "?".to_string())
        };
        format!(
            "{proxy}: dcon={} dses={} stot={} conn_tot={}",
            field("dcon"),
            field("dses"),
            field("stot"),
            field("conn_tot")
        )
    };
    (reached, format!("{}; {}", counts("fe"), counts("refused")))
}

#[test]
fn connection_rules_see_the_socket_and_session_rules_the_proxy_header_like_haproxy() {
    let be = Backend::tagged("s1");
    let dir = crate::common::TempDir::new("session-rules");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&session_rules_cfg(&be, &sock));
    let got = session_rules_probe(s.addr("fe"), s.addr("refused"), &sock);
    // 192.0.2.9 passes the connection rules (they see 127.0.0.1); .66 is refused by the
    // session rule; .10 passes both.
    assert_eq!(
        got,
        (
            vec![true, false, true],
            "fe: dcon=0 dses=1 stot=2 conn_tot=3; refused: dcon=2 dses=0 stot=0 conn_tot=2"
                .to_string()
        )
    );
    s.stop();

    let theirs = crate::common::running::on_reference_haproxy(
        &dir,
        |sock| session_rules_cfg(&be, sock),
        |sock, at| session_rules_probe(at("fe"), at("refused"), sock),
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs, got, "HAProxy judges differently");
    }
}

#[test]
fn a_reload_with_sf_takes_over_the_stats_listener_too() {
    // The new process binds the stats page's port beside the old one (SO_REUSEPORT, as any
    // bind), so a reload of a configuration with a stats listener starts.
    let port = crate::common::running::free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen stats\n    bind 127.0.0.1:{port}\n    mode http\n    stats enable\n    stats uri /\n"
    );
    let page = || {
        let c = crate::common::backends::try_connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let reply = crate::common::backends::http_get(&c, "/", false);
        Ok::<u16, std::io::Error>(reply.status)
    };
    let mut old = Sluice::start(&cfg);
    assert_eq!(page().unwrap(), 200);
    let old_pid = old.pid().to_string();
    let new = Sluice::start_with(&cfg, &["-sf", &old_pid]);
    old.wait_exit(Duration::from_secs(10));
    assert_eq!(page().unwrap(), 200, "the new process serves the page");
    new.stop();
}
