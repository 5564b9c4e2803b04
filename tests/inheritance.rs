//! Defaults inheritance and the typed model, through the library: what HAProxy copies from
//! a defaults section, `from <name>`, `default-server`, `no option`, listen = frontend +
//! backend, HAProxy's default values.

use std::collections::HashMap;
use std::time::Duration;

use sluice::config::ast::Ast;
use sluice::config::model::*;
use sluice::config::{parse_text, validate, Diags, LoadOptions};

fn build(text: &str) -> Result<Model, Vec<String>> {
    let mut ast = Ast::default();
    let mut diags = Diags::default();
    let env: HashMap<String, String> = HashMap::new();
    parse_text("t.cfg", text, &env, &mut ast, &mut diags);
    let (model, more) = validate::build(&ast, &LoadOptions::default());
    diags.extend(more);
    match model {
        Some(m) if !diags.has_errors() => Ok(m),
        _ => Err(diags.errors().map(|d| d.to_string()).collect()),
    }
}

const T: &str = "    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n";

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn haproxy_defaults_when_the_file_is_silent() {
    let m = build("backend b\n    server s 127.0.0.1:80\n").unwrap();
    let b = &m.backends[0];
    assert_eq!(b.balance, Balance::RoundRobin);
    assert_eq!(b.retries, 3);
    assert_eq!(b.redispatch, None);
    assert_eq!(b.check, CheckKind::Connect);
    assert_eq!(b.hash_type.method, HashMethod::MapBased);
    let s = &m.servers[0];
    assert_eq!((s.rise, s.fall, s.weight), (2, 3, 1));
    assert_eq!(s.inter, Duration::from_secs(2));
    assert_eq!(s.fastinter, s.inter);
    assert_eq!(s.downinter, s.inter);
    assert!(!s.check && !s.backup);
    assert_eq!(m.global.bufsize, 16_384);
    assert_eq!(m.global.stats_timeout, Duration::from_secs(10));
}

#[test]
fn proxies_inherit_the_last_defaults_section() {
    let m = build(&format!(
        "defaults\n{T}    timeout client 5s\n    option tcplog\n\
         frontend f1\n    bind :1\n\
         defaults\n{T}    timeout client 7s\n\
         frontend f2\n    bind :2\n"
    ))
    .unwrap();
    assert_eq!(m.frontends[0].timeout_client, secs(5));
    assert!(m.frontends[0].log.tcplog);
    // A new defaults section starts from scratch: tcplog is not carried over.
    assert_eq!(m.frontends[1].timeout_client, secs(7));
    assert!(!m.frontends[1].log.tcplog);
}

#[test]
fn named_defaults_and_from() {
    let m = build(&format!(
        "defaults base\n{T}    retries 5\n    balance leastconn\n\
         defaults tuned from base\n    retries 7\n\
         defaults\n{T}    retries 2\n\
         backend a from base\n    server s 127.0.0.1:1\n\
         backend b from tuned\n    server s 127.0.0.1:1\n\
         backend c\n    server s 127.0.0.1:1\n"
    ))
    .unwrap();
    let by = |n: &str| m.backend_by_name(n).unwrap();
    assert_eq!((by("a").retries, by("a").balance), (5, Balance::LeastConn));
    assert_eq!((by("b").retries, by("b").balance), (7, Balance::LeastConn));
    assert_eq!((by("c").retries, by("c").balance), (2, Balance::RoundRobin));
}

#[test]
fn the_last_defaults_may_be_named() {
    let m = build(&format!(
        "defaults first\n{T}    retries 4\nbackend a\n    server s 127.0.0.1:1\n"
    ))
    .unwrap();
    assert_eq!(m.backends[0].retries, 4);
}

#[test]
fn default_server_applies_to_later_servers() {
    let m = build(&format!(
        "defaults\n{T}    default-server inter 3s fall 5 check\n\
         backend b\n    server s1 127.0.0.1:1\n    server s2 127.0.0.1:2 inter 1s no-check\n\
         \x20   default-server weight 9\n    server s3 127.0.0.1:3\n"
    ))
    .unwrap();
    let s = &m.servers;
    assert_eq!(
        (s[0].inter, s[0].fall, s[0].check),
        (Duration::from_secs(3), 5, true)
    );
    assert_eq!((s[1].inter, s[1].check), (Duration::from_secs(1), false));
    assert_eq!(
        (s[2].weight, s[2].fall, s[2].inter),
        (9, 5, Duration::from_secs(3))
    );
    assert_eq!(s[0].weight, 1);
}

#[test]
fn no_option_turns_an_inherited_option_off() {
    let m = build(&format!(
        "defaults\n{T}    option redispatch\n    option tcpka\n    option dontlognull\n\
         backend b\n    no option redispatch\n    no option tcpka\n    server s 127.0.0.1:1\n\
         backend c\n    server s 127.0.0.1:1\n"
    ))
    .unwrap();
    assert_eq!(m.backends[0].redispatch, None);
    assert!(!m.backends[0].server_side.tcpka);
    assert!(m.backends[0].log.dontlognull);
    assert_eq!(m.backends[1].redispatch, Some(-1));
    assert!(m.backends[1].server_side.tcpka);
}

#[test]
fn listen_is_a_frontend_and_a_backend_of_the_same_name() {
    let m = build(&format!(
        "defaults\n{T}listen db\n    bind :3306\n    server p 127.0.0.1:3307\n"
    ))
    .unwrap();
    assert_eq!(m.frontends.len(), 1);
    assert_eq!(m.backends.len(), 1);
    assert_eq!(m.frontends[0].kind, ProxyKind::Listen);
    assert_eq!(m.frontends[0].default_backend, Some(m.backends[0].id));
    assert_eq!(m.frontends[0].uid, m.backends[0].uid);
}

#[test]
fn switching_rules_resolve_to_backend_ids() {
    let m = build(&format!(
        "defaults\n{T}frontend f\n    bind :1\n    use_backend b2 if {{ dst_port 8080 }}\n    default_backend b1\n\
         backend b1\n    server s 127.0.0.1:1\nbackend b2\n    server s 127.0.0.1:2\n"
    ))
    .unwrap();
    let f = &m.frontends[0];
    assert_eq!(f.default_backend, Some(m.backend_by_name("b1").unwrap().id));
    assert_eq!(
        f.use_backend[0].target,
        sluice::config::model::BackendTarget::Named(m.backend_by_name("b2").unwrap().id)
    );
    assert!(f.use_backend[0].cond.is_some());
    // Servers of each backend are their own, with ids counted per backend.
    let b2 = m.backend_by_name("b2").unwrap();
    assert_eq!(m.server(b2.servers[0]).backend, b2.id);
    assert_eq!(m.server(b2.servers[0]).uid, 1);
}

#[test]
fn log_global_uses_the_global_targets() {
    let m = build(&format!(
        "global\n    log 127.0.0.1:514 local0 notice\ndefaults\n{T}    log global\n\
         frontend f\n    bind :1\n    log 127.0.0.1:515 local1\n"
    ))
    .unwrap();
    let t = &m.frontends[0].log.targets;
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].dest, LogDest::Udp("127.0.0.1:514".parse().unwrap()));
    assert_eq!((t[0].facility, t[0].level), (16, 5));
    assert_eq!(t[1].facility, 17);
}

#[test]
fn tcp_check_rules_of_a_proxy_replace_inherited_ones() {
    let m = build(&format!(
        "defaults\n{T}    option tcp-check\n    tcp-check send PING\\r\\n\n    tcp-check expect string +PONG\n\
         backend a\n    server s 127.0.0.1:1 check\n\
         backend b\n    tcp-check connect port 9\n    server s 127.0.0.1:1 check\n"
    ))
    .unwrap();
    let CheckKind::TcpCheck(a) = &m.backends[0].check else {
        panic!("a: tcp-check")
    };
    assert_eq!(a.len(), 2);
    assert_eq!(a[0], TcpCheckRule::Send(b"PING\r\n".to_vec()));
    let CheckKind::TcpCheck(b) = &m.backends[1].check else {
        panic!("b: tcp-check")
    };
    assert_eq!(
        b,
        &[TcpCheckRule::Connect(CheckConnect {
            port: Some(9),
            ..CheckConnect::default()
        })]
    );
}

#[test]
fn mode_http_inherited_by_a_tcp_proxy_is_refused_at_the_mode_line() {
    let errs = build(&format!(
        "defaults\n{T}    mode http\nbackend web\n    server s 127.0.0.1:1\n"
    ))
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "t.cfg:5: 'mode': 'mode http' is not supported by sluice for backend 'web'"
        ),
        "{errs:?}"
    );
}

#[test]
fn a_stats_listener_may_use_mode_http() {
    let m = build(&format!(
        "defaults\n{T}listen stats\n    bind :8404\n    mode http\n    stats enable\n    stats uri /s\n\
         \x20   http-request use-service prometheus-exporter if {{ path /metrics }}\n"
    ))
    .unwrap();
    let st = m.frontends[0].stats.as_ref().unwrap();
    assert_eq!(st.uri, "/s");
    assert!(matches!(st.prometheus, Some(Some(_))));
}

#[test]
fn stats_refresh_reads_seconds_by_default() {
    for (written, want) in [
        ("5", Duration::from_secs(5)),
        ("5s", Duration::from_secs(5)),
        ("1m", Duration::from_secs(60)),
        ("1500ms", Duration::from_millis(1_500)),
    ] {
        let m = build(&format!(
            "defaults\n{T}listen stats\n    bind :8404\n    mode http\n    stats refresh {written}\n"
        ))
        .unwrap();
        let st = m.frontends[0].stats.as_ref().unwrap();
        assert_eq!(st.refresh, Some(want), "stats refresh {written}");
    }
}

/// HAProxy shares a defaults section's stats settings with a proxy until the proxy writes a
/// `stats` line of its own: from then on it has only its own (no inherited accounts).
#[test]
fn a_proxys_first_stats_line_replaces_the_inherited_stats_settings() {
    let m = build(&format!(
        "defaults\n{T}    stats auth admin:x\n    stats uri /s\n    stats realm Def\n    stats hide-version\n\
         listen own\n    bind :8404\n    mode http\n    stats enable\n\
         listen inherits\n    bind :8405\n    mode http\n\
         listen adds\n    bind :8406\n    mode http\n    stats auth ops:y\n    stats auth ops:z\n\
         \x20   http-request use-service prometheus-exporter\n"
    ))
    .unwrap();
    let page = |name: &str| m.frontend_by_name(name).unwrap().stats.clone().unwrap();
    let own = page("own");
    assert!(own.users.is_empty() && !own.hide_version);
    assert_eq!(
        (own.uri.as_str(), own.realm.as_str()),
        ("/haproxy?stats", "HAProxy Statistics")
    );
    let inherits = page("inherits");
    assert_eq!(inherits.uri, "/s");
    assert_eq!(inherits.realm, "Def");
    assert!(inherits.hide_version && inherits.enabled);
    let names = |p: &StatsPage| {
        p.users
            .iter()
            .map(|u| format!("{}:{}", u.name, u.password))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&inherits), ["admin:x"]);
    // A repeated user keeps its first password, as in HAProxy.
    let adds = page("adds");
    assert_eq!(names(&adds), ["ops:y"]);
    assert!(adds.prometheus.is_some());
    // The password never shows in debug output.
    let debug = format!("{:?}", adds.users);
    assert!(
        debug.contains("<hidden>") && !debug.contains("\"y\""),
        "{debug}"
    );
}

#[test]
fn ids_are_assigned_like_haproxy() {
    let m = build(&format!(
        "defaults\n{T}backend a\n    server s 127.0.0.1:1\nbackend b\n    id 1\n    server s 127.0.0.1:1 id 4\n    server t 127.0.0.1:1\n"
    ))
    .unwrap();
    assert_eq!(m.backend_by_name("b").unwrap().uid, 1);
    assert_eq!(m.backend_by_name("a").unwrap().uid, 2);
    let b = m.backend_by_name("b").unwrap();
    assert_eq!(m.server(b.servers[0]).uid, 4);
    assert_eq!(m.server(b.servers[1]).uid, 1);
}

#[test]
fn env_in_addresses_and_weak_quotes() {
    std::env::set_var("SLUICE_TEST_BACKEND_IP", "127.0.0.9");
    let m = build(&format!(
        "defaults\n{T}backend b\n    description \"at ${{SLUICE_TEST_BACKEND_IP-none}}\"\n    server s ${{SLUICE_TEST_BACKEND_IP}}:80\n"
    ));
    // The library test env map is empty, so quoted text sees no variable; addresses read the
    // process environment as HAProxy's address parser does.
    let m = m.unwrap();
    assert_eq!(m.backends[0].description.as_deref(), Some("at none"));
    assert_eq!(
        m.servers[0].addr,
        ServerAddr::Resolved("127.0.0.9:80".parse().unwrap())
    );
}
