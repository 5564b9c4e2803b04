//! Content inspection through the real binary: an SNI router (`tcp-request inspect-delay`,
//! `req.ssl_hello_type`, `req.ssl_sni` with `-i`, `-m end`), a protocol multiplexer on
//! `req.payload` and `req.len`, the peeked bytes forwarded intact, `balance hash
//! req.ssl_sni`, stick counters limiting clients, and `silent-drop`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::backends::{connect, read_line, read_to_eof, tagged, wait_until, Backend};
use crate::common::running::Sluice;

/// The `defaults` section of every configuration here: TCP mode and its timeouts.
const DEFAULTS: &str =
    "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

/// A minimal but well-formed TLS 1.2 ClientHello record, with an SNI extension for `name`
/// when given (and a second, unrelated extension before it).
pub fn client_hello(name: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    // extension 0x000b (ec_point_formats), 2 bytes of data
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    if let Some(name) = name {
        let n = name.as_bytes();
        let list_len = 3 + n.len();
        ext.extend_from_slice(&[0x00, 0x00]);
        ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list_len as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
        ext.extend_from_slice(n);
    }
    let mut hello = vec![0x03, 0x03];
    hello.extend_from_slice(&[0x5a; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn sni_router(api: &Backend, git: &Backend, web: &Backend, delay: &str) -> String {
    format!(
        "{DEFAULTS}\
         frontend https-in\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   tcp-request inspect-delay {delay}\n\
         \x20   tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
         \x20   tcp-request content reject\n\
         \x20   acl is_api req_ssl_sni -i api.example.com\n\
         \x20   acl is_git req.ssl_sni -m end -i .git.example.com\n\
         \x20   use_backend api if is_api\n\
         \x20   use_backend gitlab if is_git || {{ req.ssl_sni -i git.example.com }}\n\
         \x20   default_backend web\n\
         backend api\n    server a1 {}\n\
         backend gitlab\n    server g1 {}\n\
         backend web\n    server w1 {}\n",
        api.addr(),
        git.addr(),
        web.addr()
    )
}

/// The three tagged backends of the SNI router.
fn sni_backends() -> (Backend, Backend, Backend) {
    (
        Backend::tagged("api"),
        Backend::tagged("git"),
        Backend::tagged("web"),
    )
}

/// True when a new connection reaches a backend (its tag arrives).
fn gets_in(fe: SocketAddr) -> bool {
    // A connection rule's refusal is an RST, which may beat the socket options.
    let Ok(c) = crate::common::backends::try_connect(fe) else {
        return false;
    };
    let mut buf = [0u8; 3];
    matches!((&c).read(&mut buf), Ok(n) if n > 0)
}

/// Sends `bytes` and returns the tag line of the backend it reached.
fn routed(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(bytes).expect("send");
    read_line(&s)
}

/// True when a new connection to `fe` is refused: reset at once, or closed with no tag.
fn refused_at(fe: SocketAddr) -> bool {
    crate::common::backends::try_connect(fe).map_or(true, refused)
}

/// True when sluice closed the connection without a backend: EOF or reset, no tag.
fn refused(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn sni_router_routes_by_server_name_and_rejects_the_rest() {
    let (api, git, web) = sni_backends();
    let sl = Sluice::start(&sni_router(&api, &git, &web, "5s"));
    let fe = sl.addr("fe");
    assert_eq!(routed(fe, &client_hello(Some("api.example.com"))), "api");
    assert_eq!(routed(fe, &client_hello(Some("API.Example.COM"))), "api");
    assert_eq!(routed(fe, &client_hello(Some("ci.git.example.com"))), "git");
    assert_eq!(routed(fe, &client_hello(Some("git.example.com"))), "git");
    assert_eq!(routed(fe, &client_hello(Some("www.example.org"))), "web");
    assert_eq!(routed(fe, &client_hello(None)), "web");
    // Not TLS: decided at once (not after the 5 s delay), and rejected.
    let started = Instant::now();
    let mut s = connect(fe);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(refused(s));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(web.accepted(), 2, "no backend saw the plain-text client");
    sl.stop();
}

#[test]
fn a_hello_in_pieces_waits_and_an_idle_client_is_judged_at_the_delay() {
    let (api, git, web) = sni_backends();
    let sl = Sluice::start(&sni_router(&api, &git, &web, "1s"));
    let fe = sl.addr("fe");
    let hello = client_hello(Some("api.example.com"));
    let mut s = connect(fe);
    s.write_all(&hello[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    s.write_all(&hello[7..40]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    s.write_all(&hello[40..]).unwrap();
    assert_eq!(read_line(&s), "api");
    // Silent client: the rules decide when the inspect-delay ends (reject), not before.
    let started = Instant::now();
    let s = connect(fe);
    assert!(refused(s));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    sl.stop();
}

#[test]
fn inspected_bytes_reach_the_server_intact() {
    let echo = Backend::echo();
    let cfg = format!(
        "{DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    tcp-request inspect-delay 2s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   use_backend be if {{ req.ssl_sni -m found }}\n\
         backend be\n    server e1 {}\n",
        echo.addr()
    );
    let sl = Sluice::start(&cfg);
    let mut sent = client_hello(Some("echo.example.com"));
    sent.extend((0..200_000u32).map(|i| (i * 7 % 251) as u8));
    let s = connect(sl.addr("fe"));
    let mut w = s.try_clone().unwrap();
    let data = sent.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let got = read_to_eof(&s, Duration::from_secs(10));
    writer.join().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes changed on the way");
    sl.stop();
}

#[test]
fn protocol_mux_on_payload_and_length() {
    let (ssh, tls) = (Backend::tagged("ssh"), Backend::tagged("tls"));
    let cfg = format!(
        "{DEFAULTS}\
         frontend mux\n    bind 127.0.0.1:{{port:fe}}\n    tcp-request inspect-delay 3s\n\
         \x20   acl is_ssh req.payload(0,3) -m bin 535348\n\
         \x20   acl is_tls req.ssl_hello_type 1\n\
         \x20   acl old_tls req.ssl_ver lt 3.3\n\
         \x20   acl got_data req.len ge 3\n\
         \x20   tcp-request content accept if is_ssh\n\
         \x20   tcp-request content reject if is_tls old_tls\n\
         \x20   tcp-request content accept if is_tls\n\
         \x20   tcp-request content reject if got_data\n\
         \x20   use_backend ssh if is_ssh\n\
         \x20   default_backend tls\n\
         backend ssh\n    server s1 {}\n\
         backend tls\n    server t1 {}\n",
        ssh.addr(),
        tls.addr()
    );
    let sl = Sluice::start(&cfg);
    let fe = sl.addr("fe");
    assert_eq!(routed(fe, b"SSH-2.0-OpenSSH_9.2\r\n"), "ssh");
    // "SS" alone is not enough to decide: the rule waits for the third byte.
    let mut s = connect(fe);
    s.write_all(b"SS").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"H-2.0-x\r\n").unwrap();
    assert_eq!(read_line(&s), "ssh");
    // req.ssl_ver reads the ClientHello's version: 3.3 passes, 3.1 is "old" and refused.
    let tls12 = client_hello(Some("a.example.com"));
    assert_eq!(routed(fe, &tls12), "tls");
    let mut tls10 = tls12.clone();
    tls10[10] = 0x01;
    let mut s = connect(fe);
    s.write_all(&tls10).unwrap();
    assert!(refused(s));
    let mut s = connect(fe);
    s.write_all(b"PING\r\n").unwrap();
    assert!(refused(s), "three bytes of something else are rejected");
    // Bytes and the client's FIN together: decided on the final data, routed, forwarded.
    let mut s = connect(fe);
    s.write_all(b"SSH").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_line(&s), "ssh");
    assert_eq!((ssh.accepted(), tls.accepted()), (3, 1));
    sl.stop();
}

#[test]
fn balance_hash_on_the_server_name_sticks() {
    let backends = tagged(3);
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("    server s{} {}\n", i + 1, b.addr()))
        .collect();
    let cfg = format!(
        "global\n    nbthread 2\n\
         {DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    tcp-request inspect-delay 2s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   default_backend be\n\
         backend be\n    balance hash req.ssl_sni\n    hash-type consistent\n{servers}"
    );
    let sl = Sluice::start(&cfg);
    let fe = sl.addr("fe");
    let mut seen = std::collections::HashSet::new();
    for i in 0..24 {
        let name = format!("tenant{i}.example.com");
        let first = routed(fe, &client_hello(Some(&name)));
        for _ in 0..3 {
            assert_eq!(routed(fe, &client_hello(Some(&name))), first, "{name}");
        }
        seen.insert(first);
    }
    assert!(seen.len() >= 2, "24 names all went to {seen:?}");
    sl.stop();
}

#[test]
fn openssl_clients_are_routed_by_their_server_name() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl binary");
        return;
    }
    let (api, git, web) = sni_backends();
    let sl = Sluice::start(&sni_router(&api, &git, &web, "5s"));
    let fe = sl.addr("fe");
    for (name, backend) in [("api.example.com", &api), ("x.git.example.com", &git)] {
        let before = backend.accepted();
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &fe.to_string(), "-servername", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        wait_until(
            Duration::from_secs(5),
            "openssl to reach its backend",
            || backend.accepted() > before,
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(web.accepted(), 0);
    sl.stop();
}

fn stick_cfg(be: &Backend, rules: &str) -> String {
    format!(
        "global\n    nbthread 2\n\
         {DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   stick-table type ip size 100 expire 30s store conn_cur,conn_rate(10s)\n\
         {rules}\
         \x20   default_backend be\n\
         backend be\n    server s1 {}\n",
        be.addr()
    )
}

#[test]
fn stick_counters_cap_concurrent_connections_per_client() {
    let be = Backend::tagged("s1");
    let sl = Sluice::start(&stick_cfg(
        &be,
        "    tcp-request connection track-sc1 src\n\
         \x20   tcp-request connection reject if { sc1_conn_cur gt 2 }\n",
    ));
    let fe = sl.addr("fe");
    let a = connect(fe);
    assert_eq!(read_line(&a), "s1");
    let b = connect(fe);
    assert_eq!(read_line(&b), "s1");
    // The third concurrent connection from 127.0.0.1 counts 3 and is refused.
    assert!(refused_at(fe));
    drop(a);
    // Once one has closed, there is room again (the count follows closes promptly).
    wait_until(Duration::from_secs(5), "a slot to free up", || gets_in(fe));
    drop(b);
    sl.stop();
}

#[test]
fn stick_counters_limit_the_connection_rate() {
    let be = Backend::tagged("s1");
    let sl = Sluice::start(&stick_cfg(
        &be,
        "    tcp-request connection track-sc0 src\n\
         \x20   tcp-request connection reject if { sc0_conn_rate gt 3 }\n",
    ));
    let fe = sl.addr("fe");
    for _ in 0..3 {
        assert_eq!(routed(fe, b""), "s1");
    }
    // The fourth within 10 s is over the rate, and so are the next ones.
    assert!(refused_at(fe));
    assert!(refused_at(fe));
    assert_eq!(be.accepted(), 3);
    sl.stop();
}

#[test]
fn src_conn_cur_reads_the_table_without_tracking() {
    let be = Backend::tagged("s1");
    let sl = Sluice::start(&stick_cfg(
        &be,
        "    tcp-request connection reject if { src_conn_cur ge 1 }\n\
         \x20   tcp-request content track-sc2 src\n",
    ));
    let fe = sl.addr("fe");
    // Tracked at content time: the first connection is counted after the check.
    let a = connect(fe);
    assert_eq!(read_line(&a), "s1");
    assert!(refused_at(fe), "the table already counts one");
    drop(a);
    wait_until(Duration::from_secs(5), "the count to drop", || gets_in(fe));
    sl.stop();
}

#[test]
fn silent_drop_sends_nothing_to_the_client() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: TCP_REPAIR needs CAP_NET_ADMIN (run as root)");
        return;
    }
    let be = Backend::tagged("s1");
    let cfg = format!(
        "{DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   tcp-request connection silent-drop if {{ src 127.0.0.1 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s1 {}\n",
        be.addr()
    );
    let sl = Sluice::start(&cfg);
    let mut s = connect(sl.addr("fe"));
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 8];
    let got = s.read(&mut buf);
    // No FIN (Ok(0)) and no RST (ConnectionReset): the read just times out.
    match got {
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Ok(n) => panic!("read {n} bytes: the client heard from sluice"),
    }
    assert_eq!(be.accepted(), 0);
    sl.stop();
}

#[test]
fn rate_limit_sessions_spreads_a_burst_over_time() {
    let be = Backend::tagged("s1");
    let cfg = format!(
        "global\n    nbthread 2\n\
         {DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    rate-limit sessions 10\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        be.addr()
    );
    let sl = Sluice::start(&cfg);
    let fe = sl.addr("fe");
    let started = Instant::now();
    // 25 clients at once: about 10 get in at once, the others wait in the backlog (none
    // is refused) and get in as the rate over the last second allows.
    let clients: Vec<_> = (0..25)
        .map(|_| std::thread::spawn(move || read_line(&connect(fe))))
        .collect();
    wait_until(Duration::from_secs(5), "the first sessions", || {
        be.accepted() >= 10
    });
    let early = be.accepted();
    assert!(early <= 12, "{early} sessions in the first burst");
    for c in clients {
        assert_eq!(c.join().unwrap(), "s1");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_200) && took < Duration::from_secs(8),
        "{took:?}"
    );
    sl.stop();
}

#[test]
fn random_bytes_and_mangled_hellos_never_hurt_the_router() {
    let (api, git, web) = sni_backends();
    let sl = Sluice::start(&sni_router(&api, &git, &web, "200ms"));
    let fe = sl.addr("fe");
    let hello = client_hello(Some("api.example.com"));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..150 {
        let mut bytes = if i % 2 == 0 {
            // A real hello with a few bytes flipped and a random length.
            let mut h = hello.clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % h.len();
                h[at] ^= (next() % 255 + 1) as u8;
            }
            h.truncate(1 + (next() as usize) % h.len());
            h
        } else {
            (0..(next() % 600)).map(|_| next() as u8).collect()
        };
        if i % 3 == 0 {
            bytes.insert(0, 0x16);
        }
        let mut s = connect(fe);
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    // Still routing, and no worker died.
    assert_eq!(routed(fe, &hello), "api");
    assert!(!sl.log().contains("panicked"), "{}", sl.log());
    sl.stop();
}

#[test]
fn backend_rules_read_the_real_destination() {
    let be = Backend::tagged("s1");
    // Only the backend's rule reads dst_port: the frontend's reads nothing.
    let cfg = format!(
        "{DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    tcp-request content reject unless {{ dst_port {{port:fe}} }}\n\
         \x20   server s1 {}\n",
        be.addr()
    );
    let sl = Sluice::start(&cfg);
    assert_eq!(read_line(&connect(sl.addr("fe"))), "s1");
    sl.stop();
}

/// The SNI router of the map-file pattern: `use_backend %[req.ssl_sni,lower,map(...)]`
/// plus, on a second frontend, the client's network through `map_ip`.
fn map_router(dir: &crate::common::TempDir, tags: &[Backend; 4], extra_global: &str) -> String {
    let names = dir.write(
        "sni.map",
        "# server name -> backend\n\
         api.example.com be_api\n\
         git.example.com\tbe_git\n\
         \n\
         ghost.example.com be_missing\n",
    );
    let nets = dir.write(
        "nets.map",
        "127.0.0.0/8 be_api\n127.0.0.2/32 be_git\n10.0.0.0/8 be_web\n",
    );
    format!(
        "global\n{extra_global}\
         {DEFAULTS}\
         frontend https-in\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   tcp-request inspect-delay 5s\n\
         \x20   tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
         \x20   use_backend %[req.ssl_sni,lower,map({},be_web)]\n\
         \x20   default_backend be_fallback\n\
         frontend by-net\n    bind 127.0.0.1:{{port:net}}\n\
         \x20   use_backend %[src,map_ip({})] if {{ src,ipmask(24) 127.0.0.0/24 }}\n\
         \x20   default_backend be_fallback\n\
         backend be_api\n    server a {}\n\
         backend be_git\n    server g {}\n\
         backend be_web\n    server w {}\n\
         backend be_fallback\n    server f {}\n",
        names.display(),
        nets.display(),
        tags[0].addr(),
        tags[1].addr(),
        tags[2].addr(),
        tags[3].addr(),
    )
}

/// Where each probe lands: SNI names on `fe`, source addresses on `net`.
fn map_routes(fe: SocketAddr, net: SocketAddr) -> Vec<String> {
    let mut out: Vec<String> = [
        Some("API.Example.COM"),
        Some("git.example.com"),
        Some("www.example.org"),
        Some("ghost.example.com"),
        None,
    ]
    .iter()
    .map(|n| routed(fe, &client_hello(*n)))
    .collect();
    for src in ["127.0.0.1", "127.0.0.2", "127.0.1.1"] {
        let c = crate::common::backends::connect_from(src.parse().unwrap(), net);
        out.push(read_line(&c));
    }
    out
}

#[test]
fn use_backend_names_from_a_map_file_route_like_haproxy() {
    let tags = ["api", "git", "web", "fallback"].map(Backend::tagged);
    let dir = crate::common::TempDir::new("maps");
    let s = Sluice::start(&map_router(&dir, &tags, ""));
    let got = map_routes(s.addr("fe"), s.addr("net"));
    assert_eq!(
        got,
        [
            "api",      // folded by `lower`, then found in the map
            "git",      // a tab between key and value
            "web",      // not in the map: the map's default names the backend
            "fallback", // the map names a backend that does not exist: default_backend
            "fallback", // no server name at all: default_backend
            "api",      // 127.0.0.0/8
            "git",      // the longest network wins: 127.0.0.2/32
            "fallback", // outside 127.0.0.0/24: the rule's condition fails
        ]
    );
    s.stop();

    let theirs = crate::common::running::on_reference_haproxy(
        &dir,
        |sock| {
            map_router(
                &dir,
                &tags,
                &format!("    stats socket {}\n", sock.display()),
            )
        },
        |_, at| map_routes(at("fe"), at("net")),
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs, got, "HAProxy routes differently");
    }
}

/// HAProxy's own `use-server` example (servers of weight 0 reached only by SNI), plus a
/// disabled server, a log-format server name from a map, and a catch-all rule.
fn use_server_cfg(dir: &crate::common::TempDir, tags: &[Backend; 4], extra_global: &str) -> String {
    let map = dir.write(
        "servers.map",
        "a.dyn.example.com mail\nb.dyn.example.com nosuch\n",
    );
    format!(
        "global\n{extra_global}\
         {DEFAULTS}\
         listen sni\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   tcp-request inspect-delay 5s\n\
         \x20   tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
         \x20   use-server www if {{ req.ssl_sni -i www.example.com }}\n\
         \x20   use-server mail if {{ req.ssl_sni -i mail.example.com }}\n\
         \x20   use-server off if {{ req.ssl_sni -i off.example.com }}\n\
         \x20   use-server %[req.ssl_sni,lower,map({})] if {{ req.ssl_sni -m end .dyn.example.com }}\n\
         \x20   use-server www if {{ req.ssl_sni -m end .example.com }}\n\
         \x20   server www {} weight 0\n\
         \x20   server mail {} weight 0\n\
         \x20   server off {} disabled\n\
         \x20   server default {}\n",
        map.display(),
        tags[0].addr(),
        tags[1].addr(),
        tags[2].addr(),
        tags[3].addr(),
    )
}

fn use_server_routes(fe: SocketAddr) -> Vec<String> {
    [
        "www.example.com",
        "MAIL.example.com",
        "off.example.com",
        "a.dyn.example.com",
        "b.dyn.example.com",
        "other.example.org",
    ]
    .iter()
    .map(|n| routed(fe, &client_hello(Some(n))))
    .collect()
}

#[test]
fn use_server_picks_servers_by_sni_like_haproxy() {
    let tags = ["www", "mail", "off", "default"].map(Backend::tagged);
    let dir = crate::common::TempDir::new("use-server");
    let s = Sluice::start(&use_server_cfg(&dir, &tags, ""));
    let got = use_server_routes(s.addr("fe"));
    assert_eq!(
        got,
        [
            "www",     // weight 0, reached by its rule
            "mail",    // -i
            "www",     // 'off' is disabled: the rule is passed over, the catch-all takes it
            "mail",    // the map names the server
            "default", // the map names no server: the rules end, balancing decides
            "default", // no rule matches
        ]
    );
    s.stop();
    assert_eq!(
        tags[2].accepted(),
        0,
        "the disabled server got a connection"
    );

    let theirs = crate::common::running::on_reference_haproxy(
        &dir,
        |sock| {
            use_server_cfg(
                &dir,
                &tags,
                &format!("    stats socket {}\n", sock.display()),
            )
        },
        |_, at| use_server_routes(at("fe")),
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs, got, "HAProxy picks differently");
    }
}

/// HAProxy's "ban the abuser" pattern: a connection rate over 3 sets gpc0, a set gpc0
/// refuses every further connection; connecting to a second frontend clears it.
fn gpc_cfg(be: &Backend, sock: &std::path::Path) -> String {
    format!(
        "global\n    stats socket {} level admin\n\
         {DEFAULTS}\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n\
         \x20   stick-table type ip size 100 expire 1m store gpc0,gpc0_rate(10s),conn_rate(10s),gpc1\n\
         \x20   tcp-request connection track-sc0 src\n\
         \x20   tcp-request connection reject if {{ sc0_get_gpc0 gt 0 }}\n\
         \x20   tcp-request connection sc-inc-gpc0(0) if {{ sc0_conn_rate gt 3 }}\n\
         \x20   tcp-request connection sc-inc-gpc1(0)\n\
         \x20   default_backend be\n\
         frontend unban\n    bind 127.0.0.1:{{port:unban}}\n\
         \x20   tcp-request connection reject if {{ src_clr_gpc0(fe) ge 0 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s1 {}\n",
        sock.display(),
        be.addr()
    )
}

/// Which of the probes got in, then the table (entry addresses and expiry masked).
fn gpc_probe(fe: SocketAddr, unban: SocketAddr, sock: &std::path::Path) -> (Vec<bool>, String) {
    let mut got: Vec<bool> = (0..5).map(|_| gets_in(fe)).collect();
    assert!(!gets_in(unban), "the unban frontend always refuses");
    got.extend((0..2).map(|_| gets_in(fe)));
    let table = || {
        crate::common::backends::cli(sock, "show table fe")
            .lines()
            .map(|l| {
                l.split(' ')
                    .filter(|w| !w.starts_with("0x") && !w.starts_with("exp="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The last connection's close reaches the balancer a moment after ours.
    wait_until(
        Duration::from_secs(5),
        "no connection left on the entry",
        || table().contains(" use=0 "),
    );
    (got, table())
}

#[test]
fn gpc0_bans_an_abuser_and_src_clr_gpc0_lifts_it_like_haproxy() {
    let be = Backend::tagged("s1");
    let dir = crate::common::TempDir::new("gpc");
    let sock = dir.path().join("sluice.sock");
    let s = Sluice::start(&gpc_cfg(&be, &sock));
    let got = gpc_probe(s.addr("fe"), s.addr("unban"), &sock);
    assert_eq!(got.0, [true, true, true, true, false, true, false]);
    assert_eq!(
        got.1,
        "# table: fe, type: ip, size:100, used:1\n\
         key=127.0.0.1 use=0 gpc0=1 gpc0_rate(10000)=2 conn_rate(10000)=7 gpc1=5\n"
    );
    s.stop();

    let theirs = crate::common::running::on_reference_haproxy(
        &dir,
        |sock| gpc_cfg(&be, sock),
        |sock, at| gpc_probe(at("fe"), at("unban"), sock),
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs, got, "HAProxy counts differently");
    }
}
