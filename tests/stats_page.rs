//! The stats page's access and looks through the real binary: `stats auth` (HTTP Basic,
//! HAProxy's 401 compared byte for byte with a live HAProxy 2.6 on the same
//! configuration), `stats realm`, `stats hide-version`, `stats show-node`/`show-desc`, and
//! `stats admin` behind the credentials.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::common::backends::{cli, connect, read_line, wait_until, Backend};
use crate::common::running::{fill_ports, reference_haproxy, Haproxy, Sluice};
use crate::common::{sluice, stderr, TempDir};

/// Sends `raw` on a new connection and reads the whole answer (sluice and HAProxy close
/// after it here: every request says `Connection: close` or is HTTP/1.0).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading the answer from {addr}: {e}"));
    out
}

fn get(path: &str, authorization: Option<&str>) -> Vec<u8> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n").into_bytes()
}

fn basic(user_pass: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("Basic ");
    for c in user_pass.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            out.push(if k <= c.len() {
                T[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Status code, head and body of a response.
fn parse(resp: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

const REALM_401: &str = "HTTP/1.1 401 Unauthorized\r\n\
    content-length: 112\r\n\
    cache-control: no-cache\r\n\
    content-type: text/html\r\n\
    www-authenticate: Basic realm=\"Haproxy Statistics\"\r\n\
    connection: close\r\n\r\n\
    <html><body><h1>401 Unauthorized</h1>\n\
    You need a valid user and password to access this content.\n</body></html>\n";

/// RabbitMQ's usual stats listener (haproxy-compat/valid/39-rabbitmq-stats-auth.cfg), on
/// loopback, with a stats socket for HAProxy's readiness.
fn rabbitmq_cfg(sock: &Path) -> String {
    format!(
        "global\n    nbthread 1\n    stats socket {} level admin\n\
         defaults\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         listen stats\n    bind 127.0.0.1:{{port:stats}}\n    mode http\n    stats enable\n    stats uri /\n\
         \x20   stats refresh 5s\n    stats realm Haproxy\\ Statistics\n    stats auth admin:admin\n\
         \x20   stats auth ops:ops\n    stats hide-version\n",
        sock.display()
    )
}

/// Requests that must all get the 401: no credentials, wrong ones, malformed headers.
fn refused_requests() -> Vec<(&'static str, Vec<u8>)> {
    let long = format!("Basic {}", "QUFB".repeat(3_000));
    vec![
        ("no credentials", get("/", None)),
        ("wrong password", get("/", Some(&basic("admin:nope")))),
        ("unknown user", get("/", Some(&basic("root:admin")))),
        ("other user's password", get("/", Some(&basic("ops:admin")))),
        ("garbage base64", get("/", Some("Basic !!!!garbage"))),
        ("missing padding", get("/", Some("Basic YWRtaW46YWRtaW4"))),
        ("no colon", get("/", Some(&basic("adminadmin")))),
        ("another scheme", get("/", Some("Bearer YWRtaW46YWRtaW4="))),
        ("empty value", get("/", Some(""))),
        ("12 KB header", get("/", Some(&long))),
        ("path under the uri", get("/x;csv", None)),
        ("HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        (
            "HEAD",
            b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "admin POST",
            b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 24\r\n\r\ns=s1&action=maint&b=%232"
                .to_vec(),
        ),
    ]
}

#[test]
fn requests_without_valid_credentials_get_haproxys_401() {
    let dir = TempDir::new("stats-auth");
    let s = Sluice::start(&rabbitmq_cfg(&dir.path().join("s.sock")));
    for (what, req) in refused_requests() {
        let resp = exchange(s.addr("stats"), &req);
        let want = if what == "HEAD" {
            REALM_401.split_once("<html>").unwrap().0.to_string()
        } else {
            REALM_401.to_string()
        };
        assert_eq!(String::from_utf8_lossy(&resp), want, "{what}");
    }
    s.stop();
}

/// Sends `requests` to a live HAProxy 2.6 running `cfg` (given its stats socket path),
/// then to sluice on the same configuration, at the `{port:stats}` listener: sluice must
/// answer each byte for byte as HAProxy did.
fn same_answers_as_haproxy(cfg: impl Fn(&Path) -> String, requests: &[(&str, Vec<u8>)]) {
    let Some(haproxy) = reference_haproxy() else {
        return;
    };
    let dir = TempDir::new("stats-auth-live");
    let hsock = dir.path().join("h.sock");
    let (text, ports) = fill_ports(&cfg(&hsock));
    let hcfg = dir.write("h.cfg", &text);
    let addr = SocketAddr::from(([127, 0, 0, 1], ports["stats"]));
    let h = Haproxy::start_with_stats(haproxy, &hcfg, &hsock);
    let theirs: Vec<Vec<u8>> = requests.iter().map(|(_, r)| exchange(addr, r)).collect();
    drop(h);
    let s = Sluice::start(&cfg(&dir.path().join("s.sock")));
    for ((what, req), want) in requests.iter().zip(&theirs) {
        let ours = exchange(s.addr("stats"), req);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(want),
            "{what}"
        );
    }
    s.stop();
}

#[test]
fn the_401_is_haproxys_byte_for_byte() {
    same_answers_as_haproxy(rabbitmq_cfg, &refused_requests());
}

#[test]
fn each_account_gets_the_page_and_the_csv_without_the_version() {
    let dir = TempDir::new("stats-auth-ok");
    let s = Sluice::start(&rabbitmq_cfg(&dir.path().join("s.sock")));
    for account in ["admin:admin", "ops:ops"] {
        let (code, head, body) =
            parse(&exchange(s.addr("stats"), &get("/", Some(&basic(account)))));
        assert_eq!(code, 200, "{account}: {head}");
        assert!(body.contains("<table"), "{account}: {body}");
        // hide-version: neither the header nor the footer names the version.
        assert!(!body.contains("class=\"ver\""), "{body}");
        assert!(
            !body.contains(&format!("sluice {}", sluice::VERSION)),
            "{body}"
        );
        let (code, _, csv) = parse(&exchange(
            s.addr("stats"),
            &get("/;csv", Some(&basic(account))),
        ));
        assert_eq!(code, 200);
        assert!(csv.starts_with("# pxname,svname,"), "{csv}");
        assert!(csv.contains("\nstats,FRONTEND,"), "{csv}");
    }
    // The scheme is case-insensitive, as in HAProxy.
    let lower = basic("ops:ops").replace("Basic", "basic");
    assert_eq!(
        parse(&exchange(s.addr("stats"), &get("/", Some(&lower)))).0,
        200
    );
    s.stop();
}

#[test]
fn the_default_realm_and_the_page_looks() {
    let s = Sluice::start(
        "defaults\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         listen stats\n    bind 127.0.0.1:{port:stats}\n    mode http\n    stats uri /s\n\
         \x20   stats auth a:b\n    stats show-node edge-1\n    stats show-desc Galera node one\n\
         \x20   http-request use-service prometheus-exporter if { path /metrics }\n\
         \x20   stats show-legends\n\
         listen plain\n    bind 127.0.0.1:{port:plain}\n    mode http\n    stats uri /\n\
         backend db\n    server s1 127.0.0.1:9\n    server s2 [::1]:9 id 7\n",
    );
    let (code, head, _) = parse(&exchange(s.addr("stats"), &get("/s", None)));
    assert_eq!(code, 401);
    assert!(
        head.contains("\r\nwww-authenticate: Basic realm=\"HAProxy Statistics\"\r\n"),
        "{head}"
    );
    let (code, _, body) = parse(&exchange(s.addr("stats"), &get("/s", Some(&basic("a:b")))));
    assert_eq!(code, 200);
    assert!(
        body.contains("Statistics report for pid ")
            && body.contains(" on edge-1: Galera node one</p>"),
        "{body}"
    );
    assert!(
        body.contains(&format!("version {}", sluice::VERSION)),
        "{body}"
    );
    // show-legends, in HAProxy's words.
    for legend in [
        "<a href=\"#stats\" title=\"cap: proxy, mode: http, id: 1\">",
        "<a href=\"#db\" title=\"cap: backend, mode: tcp, id: 3\">",
        "id=\"db/s1\" title=\"IPv4: 127.0.0.1:9, id: 1\">",
        "id=\"db/s2\" title=\"IPv6: [::1]:9, id: 7\">",
    ] {
        assert!(body.contains(legend), "no {legend} in {body}");
    }
    // Outside the stats URI nothing asks for credentials: the exporter (as in HAProxy,
    // where `stats auth` guards the stats URI only) and unknown paths.
    assert_eq!(
        parse(&exchange(s.addr("stats"), &get("/metrics", None))).0,
        200
    );
    assert_eq!(
        parse(&exchange(s.addr("stats"), &get("/other", None))).0,
        404
    );
    // No `stats auth`: no credentials asked, and no node name unless `stats show-node`.
    let (code, _, body) = parse(&exchange(s.addr("plain"), &get("/", None)));
    assert_eq!(code, 200);
    assert!(!body.contains(" on "), "{body}");
    assert!(!body.contains("title=\"cap: ") && !body.contains("title=\"IPv4"));
    s.stop();
}

/// `stats admin if TRUE` with `stats auth`: the admin form works for an account, and a
/// POST without credentials changes nothing.
#[test]
fn admin_actions_need_the_credentials() {
    let s1 = Backend::tagged("s1");
    let dir = TempDir::new("stats-admin");
    let sock = dir.path().join("a.sock");
    let s = Sluice::start(&format!(
        "global\n    stats socket {} level admin\n\
         defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen app\n    bind 127.0.0.1:{{port:app}}\n    server s1 {}\n\
         listen stats\n    bind 127.0.0.1:{{port:stats}}\n    mode http\n    stats uri /\n\
         \x20   stats auth admin:pw\n    stats admin if TRUE\n",
        sock.display(),
        s1.addr()
    ));
    let post = |auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let body = "s=s1&action=maint&b=%231";
        exchange(
            s.addr("stats"),
            format!(
                "POST / HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let maint = || {
        cli(&sock, "show servers state app")
            .lines()
            .find(|l| l.contains(" s1 "))
            .unwrap_or_default()
            .split(' ')
            .nth(6)
            .map(|st| st != "0")
            .unwrap_or(false)
    };
    for bad in [None, Some(basic("admin:nope"))] {
        assert_eq!(parse(&post(bad.as_deref())).0, 401);
    }
    assert!(!maint(), "a refused POST changed the server");
    assert_eq!(read_line(&connect(s.addr("app"))), "s1");
    let (code, head, _) = parse(&post(Some(&basic("admin:pw"))));
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("\r\nlocation: /;st=DONE\r\n"), "{head}");
    wait_until(Duration::from_secs(5), "s1 in maintenance", maint);
    s.stop();
}

/// Writes `text` as a configuration in a new directory tagged `tag`, checks it with
/// `sluice -c` (which must accept it) and returns the file's path and what it warned.
fn check_warnings(tag: &str, text: &str) -> (String, String) {
    let dir = TempDir::new(tag);
    let cfg = dir.write("check.cfg", text).display().to_string();
    let out = sluice(&["-c", "-f", &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (cfg, stderr(&out))
}

/// What HAProxy warns about, sluice warns about too: a repeated user (the first line
/// wins), an account without ':' (an empty password), `stats show-desc` without text.
#[test]
fn stats_auth_warnings() {
    let (cfg, warnings) = check_warnings(
        "stats-warn",
        "defaults\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         listen stats\n    bind :8404\n    mode http\n    stats uri /\n    stats auth admin:a\n\
         \x20   stats auth admin:b\n    stats auth ops\n    stats show-desc\n",
    );
    assert_eq!(
        warnings,
        format!(
            "{cfg}:10: warning: 'stats auth': ignoring duplicated user 'admin' (the first line wins)\n\
             {cfg}:11: warning: 'stats auth': 'ops' has no ':': user 'ops' gets an empty password\n\
             {cfg}:12: warning: 'stats show-desc': requires a description here ('description' in \
             the global section is not supported by sluice); ignored\n"
        )
    );
}

/// Percona's PXC pattern (haproxy-compat/valid/38-percona-pxc-stats.cfg): a `mode http`
/// frontend whose `default_backend` is a serverless stats backend with `stats auth`, next
/// to tcp traffic; and a second frontend reaching it with `use_backend`, which also has an
/// exporter of its own (a frontend's settings answer before its backend's).
fn percona_cfg(sock: &Path, server: &str) -> String {
    format!(
        "global\n    nbthread 1\n    stats socket {} level admin\n\
         defaults\n    log global\n    mode http\n    option tcplog\n    maxconn 2000\n\
         \x20   timeout connect 5s\n    timeout client 50s\n    timeout server 50s\n\
         frontend pxc-front\n    bind 127.0.0.1:{{port:pxc}}\n    mode tcp\n    default_backend pxc-back\n\
         frontend stats-front\n    bind 127.0.0.1:{{port:stats}}\n    mode http\n    default_backend stats-back\n\
         frontend stats-front2\n    bind 127.0.0.1:{{port:stats2}}\n    mode http\n    use_backend stats-back\n\
         \x20   http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         backend pxc-back\n    mode tcp\n    balance leastconn\n    server c1 {server}\n\
         backend stats-back\n    mode http\n    balance roundrobin\n    stats uri /haproxy/stats\n\
         \x20   stats auth pxcstats:secret\n",
        sock.display()
    )
}

#[test]
fn a_stats_backend_behind_an_http_frontend_serves_the_page_and_the_csv() {
    let c1 = Backend::tagged("c1");
    let dir = TempDir::new("percona");
    let s = Sluice::start(&percona_cfg(
        &dir.path().join("s.sock"),
        &c1.addr().to_string(),
    ));
    assert_eq!(read_line(&connect(s.addr("pxc"))), "c1");
    for fe in ["stats", "stats2"] {
        let ask = |path: &str, auth: Option<&str>| parse(&exchange(s.addr(fe), &get(path, auth)));
        let (code, head, _) = ask("/haproxy/stats", None);
        assert_eq!(code, 401, "{fe}: {head}");
        assert!(head.contains("www-authenticate: Basic realm=\"HAProxy Statistics\""));
        assert_eq!(ask("/haproxy/stats", Some(&basic("pxcstats:wrong"))).0, 401);
        let creds = basic("pxcstats:secret");
        let (code, _, html) = ask("/haproxy/stats", Some(&creds));
        assert_eq!(code, 200, "{fe}");
        assert!(html.contains("id=\"pxc-back/c1\""), "{html}");
        let (code, _, csv) = ask("/haproxy/stats;csv", Some(&creds));
        assert_eq!(code, 200);
        for row in [
            "\nstats-front,FRONTEND,",
            "\nstats-back,BACKEND,",
            "\npxc-back,c1,",
        ] {
            assert!(csv.contains(row), "{fe}: no {row:?} in\n{csv}");
        }
        // Both halves of the stats page say mode http, as in HAProxy's CSV.
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let mode = header.iter().position(|h| *h == "mode").unwrap();
        for (px, sv, want) in [
            ("stats-front", "FRONTEND", "http"),
            ("stats-back", "BACKEND", "http"),
            ("pxc-back", "BACKEND", "tcp"),
        ] {
            let row = csv
                .lines()
                .find(|l| l.starts_with(&format!("{px},{sv},")))
                .unwrap();
            assert_eq!(row.split(',').nth(mode), Some(want), "{px}/{sv}");
        }
        // Outside the stats URI: nothing (HAProxy would answer 503: no server).
        assert_eq!(ask("/", Some(&creds)).0, 404);
    }
    // The frontend's own exporter.
    let (code, _, metrics) = parse(&exchange(s.addr("stats2"), &get("/metrics", None)));
    assert_eq!(code, 200);
    assert!(
        metrics.contains("haproxy_backend_status{proxy=\"stats-back\""),
        "{metrics}"
    );
    assert_eq!(
        parse(&exchange(s.addr("stats"), &get("/metrics", None))).0,
        404
    );
    s.stop();
}

#[test]
fn the_stats_backends_401_is_haproxys_byte_for_byte() {
    let requests = vec![
        ("no credentials", get("/haproxy/stats", None)),
        (
            "wrong",
            get("/haproxy/stats;csv", Some(&basic("pxcstats:no"))),
        ),
    ];
    same_answers_as_haproxy(|sock| percona_cfg(sock, "127.0.0.1:9"), &requests);
}

/// `stats` lines (own or inherited) and the exporter in a tcp-mode proxy do nothing, with
/// HAProxy's warnings.
#[test]
fn stats_lines_in_a_tcp_proxy_warn_as_in_haproxy() {
    let (cfg, warnings) = check_warnings(
        "stats-tcp",
        "defaults\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   stats auth a:b\n\
         listen app\n    bind :3306\n    http-request use-service prometheus-exporter\n\
         \x20   server s1 10.0.0.1:3306\n\
         backend b\n    stats uri /s\n    server s1 10.0.0.1:3306\n",
    );
    assert_eq!(
        warnings,
        format!(
            "{cfg}:5: warning: 'stats': 'stats' statement ignored for proxy 'app' as it requires HTTP mode\n\
             {cfg}:8: warning: 'http-request use-service': 'http-request' rules ignored for proxy 'app' as they require HTTP mode\n\
             {cfg}:11: warning: 'stats': 'stats' statement ignored for backend 'b' as it requires HTTP mode\n"
        )
    );
}
