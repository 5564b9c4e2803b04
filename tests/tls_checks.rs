//! TLS health checks through the real binary, against nginx serving TLS with a certificate
//! made at test time: kubeadm's HTTPS check of /healthz (UP on 200, DOWN on 500 and on a
//! missing path) while the data path passes TLS through untouched; check-ssl with
//! verify required and the right or another CA, names, SNI, a plain-text server and a
//! silent one, judged exactly as a live HAProxy 2.6 judges them (`show stat`); and `-c`
//! refusing verify required without a CA.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use crate::common::backends::connect;
use crate::common::checks::{row, settled};
use crate::common::running::{on_reference_haproxy, Sluice};
use crate::common::services::{Nginx, TestPki};
use crate::common::{repo_root, sluice, stderr, stdout, TempDir};

/// kubeadm's documented configuration (HAProxy 2.1+ variant, minus `daemon`), on
/// loopback, with one backend per path checked and a stats socket.
fn kubeadm(sock: &Path, api: std::net::SocketAddr) -> String {
    let backend = |name: &str, uri: &str| {
        format!(
            "backend {name}\n    option httpchk\n    http-check connect ssl\n    \
             http-check send meth GET uri {uri}\n    http-check expect status 200\n    \
             mode tcp\n    balance     roundrobin\n    \
             server cp1 {api} check verify none inter 200ms fall 1 rise 1\n"
        )
    };
    format!(
        "global\n    log stdout format raw local0\n    nbthread 1\n    stats socket {} level admin\n\
         defaults\n    mode                    http\n    log                     global\n    \
         option                  httplog\n    option                  dontlognull\n    \
         option http-server-close\n    option forwardfor       except 127.0.0.0/8\n    \
         option                  redispatch\n    retries                 1\n    \
         timeout http-request    10s\n    timeout queue           20s\n    \
         timeout connect         5s\n    timeout client          35s\n    \
         timeout server          35s\n    timeout http-keep-alive 10s\n    \
         timeout check           10s\n\
         frontend apiserver\n    bind 127.0.0.1:{{port:fe}}\n    mode tcp\n    option tcplog\n    \
         default_backend apiserverbackend\n{}{}{}",
        sock.display(),
        backend("apiserverbackend", "/healthz"),
        backend("sick", "/sick"),
        backend("missing", "/nothing"),
    )
}

#[test]
fn kubeadm_https_check_is_up_on_200_and_down_on_500_or_a_missing_path() {
    let Some(pki) = TestPki::new() else { return };
    let routes = [("/healthz", 200, "ok"), ("/sick", 500, "sick")];
    let Some(api) = Nginx::start_tls(&routes, &pki.cert(), &pki.key()) else {
        return;
    };
    let dir = TempDir::new("kubeadm");
    let sock = dir.path().join("stats.sock");
    let s = Sluice::start(&kubeadm(&sock, api.addr()));
    let rows = settled(&sock, 3);
    assert_eq!(
        rows["apiserverbackend/cp1"],
        row("UP", "L7OK", "200", "", "Layer7 check passed")
    );
    assert_eq!(
        rows["sick/cp1"],
        row(
            "DOWN",
            "L7STS",
            "500",
            "Internal Server Error",
            "Layer7 wrong status"
        )
    );
    assert_eq!(
        rows["missing/cp1"],
        row("DOWN", "L7STS", "404", "Not Found", "Layer7 wrong status")
    );
    // The data path passes TLS through as bytes: plain text sent to the VIP reaches nginx's
    // TLS port, which says so.
    let mut c = connect(s.addr("fe"));
    c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = c.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(reply.contains("HTTPS port"), "{reply}");
    let log = s.stop();
    assert!(log.contains("Server sick/cp1 is DOWN, reason: Layer7 wrong status, code: 500, info: \"Internal Server Error\""), "{log}");
    assert!(!log.contains("apiserverbackend/cp1 is DOWN"), "{log}");
}

/// The same backends for HAProxy and sluice: every way a TLS check can end. `addrs`: the TLS
/// nginx, the plain one, a silent listener, and the nginx with a self-signed certificate.
fn verify_cases(sock: &Path, pki: &TestPki, addrs: &[String; 4]) -> String {
    let [tls, plain, silent, selfie] = addrs;
    let (ca, other, self_cert) = (pki.ca(), pki.other_ca(), pki.self_signed().0);
    let (ca, other, self_cert) = (ca.display(), other.display(), self_cert.display());
    let host = TestPki::HOST;
    format!(
        "global\n    stats socket {} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    \
         timeout server 5s\n    timeout check 2s\n    default-server inter 300ms fall 1 rise 1\n\
         backend https\n    option httpchk GET /healthz\n    \
         server right-ca {tls} check check-ssl ca-file {ca}\n    \
         server other-ca {tls} check check-ssl verify required ca-file {other}\n    \
         server verifyhost {tls} check check-ssl ca-file {ca} verifyhost {host}\n    \
         server wrong-host {tls} check check-ssl ca-file {ca} verifyhost wrong.test\n    \
         server sni {tls} check check-ssl ca-file {ca} check-sni {host}\n    \
         server wrong-sni {tls} check check-ssl ca-file {ca} check-sni wrong.test\n    \
         server verify-none {tls} check check-ssl verify none ca-file {other}\n    \
         server plain {plain} check check-ssl verify none\n    \
         server silent {silent} check check-ssl verify none\n    \
         server self-signed {selfie} check check-ssl ca-file {self_cert} verifyhost {host}\n\
         backend tcp\n    option tcp-check\n    tcp-check connect ssl\n    \
         server tls {tls} check verify none\n    \
         server plain {plain} check verify none\n",
        sock.display()
    )
}

#[test]
fn check_ssl_verifies_with_the_ca_file_and_fails_as_haproxy_does() {
    let Some(pki) = TestPki::new() else { return };
    let routes = [("/healthz", 200, "ok")];
    let (self_cert, self_key) = pki.self_signed();
    let (Some(tls), Some(plain), Some(selfie)) = (
        Nginx::start_tls(&routes, &pki.cert(), &pki.key()),
        Nginx::start(&routes),
        Nginx::start_tls(&routes, &self_cert, &self_key),
    ) else {
        return;
    };
    // Accepted by the kernel, never read: the ClientHello waits forever.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [
        tls.addr(),
        plain.addr(),
        silent.local_addr().unwrap(),
        selfie.addr(),
    ]
    .map(|a| a.to_string());
    let dir = TempDir::new("tls-verify");
    let cfg = |sock: &Path| verify_cases(sock, &pki, &addrs);

    let ssock = dir.path().join("sluice.sock");
    let s = Sluice::start(&cfg(&ssock));
    let ours = settled(&ssock, 12);
    let log = s.stop();

    let handshake = "SSL handshake failure";
    let l7ok = || row("UP", "L7OK", "200", "", "Layer7 check passed");
    let l6rsp = |last: &str| row("DOWN", "L6RSP", "", last, "Layer6 invalid response");
    let want = [
        ("https/right-ca", l7ok()),
        ("https/other-ca", l6rsp(handshake)),
        ("https/verifyhost", l7ok()),
        (
            "https/wrong-host",
            l6rsp("Server presented an SSL certificate different from the configured one"),
        ),
        ("https/sni", l7ok()),
        (
            "https/wrong-sni",
            l6rsp("Server presented an SSL certificate different from the expected one"),
        ),
        ("https/verify-none", l7ok()),
        // A plain-text server behind check-ssl: down at once, no hang.
        ("https/plain", l6rsp(handshake)),
        (
            "https/silent",
            row("DOWN", "L6TOUT", "", "", "Layer6 timeout"),
        ),
        // Its own ca-file: trusted as is (though a CA), as OpenSSL trusts it.
        ("https/self-signed", l7ok()),
        (
            "tcp/tls",
            row("UP", "L6OK", "", "(tcp-check)", "Layer6 check passed"),
        ),
        (
            "tcp/plain",
            l6rsp("SSL handshake failure at step 1 of tcp-check (connect)"),
        ),
    ];
    for (server, expected) in &want {
        assert_eq!(&ours[*server], expected, "{server}\n{log}");
    }

    // The reference: a live HAProxy on the same servers says the same, field by field.
    let Some(theirs) = on_reference_haproxy(&dir, cfg, |sock, _| settled(sock, 12)) else {
        return;
    };
    for (server, _) in &want {
        assert_eq!(
            ours[*server], theirs[*server],
            "{server}: sluice vs HAProxy"
        );
    }
}

#[test]
fn check_refuses_verify_required_without_a_ca_file() {
    let dir = TempDir::new("tls-c");
    let text = "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 35s\n    \
                timeout server 35s\n\
                backend apiserverbackend\n    option httpchk\n    http-check connect ssl\n    \
                http-check send meth GET uri /healthz\n    http-check expect status 200\n    \
                server cp1 127.0.0.1:6443 check\n";
    let cfg = dir.write("k.cfg", text);
    let out = sluice(&["-c", "-f", &cfg.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "{}:11: 'server': 'server apiserverbackend/cp1': verify is enabled by default but \
             no CA file specified. If you're running on a LAN where you're certain to trust \
             the server's certificate, please set an explicit 'verify none' statement on the \
             'server' line, or use 'ssl-server-verify none' in the global section to disable \
             server-side verifications by default. To verify the server, name the CA that \
             signed its certificate with 'ca-file <file>'.\n",
            cfg.display()
        )
    );
    // 'verify none', or the CA: valid.
    let ca = repo_root().join("src/health/testdata/ca.pem");
    for fix in [
        "verify none".to_string(),
        format!("ca-file {}", ca.display()),
    ] {
        let ok = dir.write(
            "ok.cfg",
            &text.replace("6443 check", &format!("6443 check {fix}")),
        );
        let out = sluice(&["-c", "-f", &ok.display().to_string()]);
        assert_eq!(
            (out.status.code(), stdout(&out)),
            (Some(0), "Configuration file is valid\n".to_string()),
            "{fix}: {}",
            stderr(&out)
        );
    }
}
