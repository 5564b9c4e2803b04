//! Server persistence through the real binary: `stick on dst` (the single-writer pattern:
//! every client on one server until it goes, then all on another, staying there when the
//! first comes back), `stick on src` (a client keeps its server while clients spread),
//! `stick match` + `stick store-request` on another proxy's table with a condition, a
//! redispatch away from a stored server that refuses, and `show table` printing the
//! stored `server_id`/`server_key` as HAProxy 2.6 does.

use std::collections::HashSet;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

// The tags of sequential connections are the names of the servers they reached.
use crate::common::backends::{
    cli, connect_from, read_line, tagged, tags as names, tags_from as names_from, wait_until,
    Backend, IO_TIMEOUT,
};
use crate::common::running::Sluice;
use crate::common::TempDir;

fn all_on(names: &[String], server: &str) -> bool {
    names.iter().all(|n| n == server)
}

/// `global` with an admin socket in `dir`, 4 workers, and the defaults.
fn head(dir: &TempDir) -> String {
    format!(
        "global\n    nbthread 4\n    stats socket {} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n",
        dir.path().join("admin.sock").display()
    )
}

/// The entry lines of `show table <t>`, without their addresses.
fn entries(sock: &Path, table: &str) -> Vec<String> {
    cli(sock, &format!("show table {table}"))
        .lines()
        .filter(|l| l.starts_with("0x"))
        .map(|l| l.split_once(": ").map_or(l, |(_, r)| r).to_string())
        .collect()
}

#[test]
fn stick_on_dst_keeps_every_client_on_one_writer() {
    let dir = TempDir::new("persist");
    let sock = dir.path().join("admin.sock");
    let b = tagged(3);
    let s = Sluice::start(&format!(
        "{}frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n    balance roundrobin\n    stick-table type ip size 1\n    stick on dst\n\
         \x20   server s1 {} id 11\n    server s2 {} id 12\n    server s3 {} id 13\n",
        head(&dir),
        b[0].addr(),
        b[1].addr(),
        b[2].addr()
    ));
    let fe = s.addr("fe");
    // Round-robin alone would spread these over the three servers.
    let first = names(fe, 30);
    let writer = first[0].clone();
    assert!(all_on(&first, &writer), "one writer: {first:?}");
    // The one entry, naming `server` by its id (10 + its number) and its name.
    let stored_on = |server: &str| {
        let uid = 10 + server.trim_start_matches('s').parse::<u32>().unwrap();
        [format!(
            "key=127.0.0.1 use=0 exp=0 server_id={uid} server_key={server}"
        )]
    };
    assert_eq!(entries(&sock, "be"), stored_on(&writer));

    // The writer goes into maintenance: everyone moves to one other server...
    assert_eq!(cli(&sock, &format!("disable server be/{writer}")), "\n");
    let mut next = String::new();
    wait_until(
        Duration::from_secs(10),
        "every client on a new writer",
        || {
            let n = names(fe, 10);
            next = n[0].clone();
            next != writer && all_on(&n, &next)
        },
    );
    assert!(all_on(&names(fe, 30), &next));
    assert_eq!(entries(&sock, "be"), stored_on(&next));
    // ...and stays there when the old writer comes back.
    assert_eq!(cli(&sock, &format!("enable server be/{writer}")), "\n");
    wait_until(Duration::from_secs(10), "the old writer back up", || {
        cli(&sock, "show stat")
            .lines()
            .any(|l| l.starts_with(&format!("be,{writer},")) && !l.contains("MAINT"))
    });
    assert!(all_on(&names(fe, 30), &next));
    s.stop();
}

#[test]
fn stick_on_src_keeps_each_client_on_its_server() {
    let dir = TempDir::new("persist");
    let sock = dir.path().join("admin.sock");
    let b = tagged(3);
    let s = Sluice::start(&format!(
        "{}listen db\n    bind 127.0.0.1:{{port:fe}}\n    balance roundrobin\n\
         \x20   stick-table type ip size 100 expire 30s\n    stick on src\n\
         \x20   server s1 {}\n    server s2 {}\n    server s3 {}\n",
        head(&dir),
        b[0].addr(),
        b[1].addr(),
        b[2].addr()
    ));
    let fe = s.addr("fe");
    let mut used = HashSet::new();
    for i in 2..=7 {
        let src = Ipv4Addr::new(127, 0, 0, i);
        let n = names_from(src, fe, 4);
        assert!(all_on(&n, &n[0]), "{src} moved: {n:?}");
        used.insert(n[0].clone());
    }
    assert!(used.len() >= 2, "clients spread: {used:?}");
    let lines = entries(&sock, "db");
    assert_eq!(lines.len(), 6, "{lines:?}");
    for l in &lines {
        // HAProxy 2.6.12: `key=127.0.0.2 use=0 exp=29779 server_id=1 server_key=s1`.
        let words: Vec<&str> = l.split(' ').collect();
        assert_eq!(words.len(), 5, "{l}");
        assert!(words[2].starts_with("exp=") && words[2] != "exp=0", "{l}");
        let id = words[3].strip_prefix("server_id=").expect("server_id");
        assert_eq!(words[4], format!("server_key=s{id}"), "{l}");
    }
    s.stop();
}

#[test]
fn stick_match_and_store_request_on_another_proxys_table() {
    let dir = TempDir::new("persist");
    let sock = dir.path().join("admin.sock");
    let b = tagged(3);
    let s = Sluice::start(&format!(
        "{}frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend shared\n    stick-table type ipv6 size 100\n\
         backend be\n    balance roundrobin\n\
         \x20   stick match src table shared\n\
         \x20   stick store-request src table shared if {{ src 127.0.0.2 }}\n\
         \x20   server s1 {}\n    server s2 {}\n    server s3 {}\n",
        head(&dir),
        b[0].addr(),
        b[1].addr(),
        b[2].addr()
    ));
    let fe = s.addr("fe");
    let sticky = names_from(Ipv4Addr::new(127, 0, 0, 2), fe, 5);
    assert!(all_on(&sticky, &sticky[0]), "{sticky:?}");
    // Not stored for this client: round-robin moves it on every connection.
    let free = names_from(Ipv4Addr::new(127, 0, 0, 3), fe, 3);
    assert_eq!(free.iter().collect::<HashSet<_>>().len(), 3, "{free:?}");
    let id = sticky[0].trim_start_matches('s');
    assert_eq!(
        entries(&sock, "shared"),
        [format!(
            "key=::ffff:127.0.0.2 use=0 exp=0 server_id={id} server_key={}",
            sticky[0]
        )]
    );
    s.stop();
}

#[test]
fn a_stored_server_that_refuses_is_left_by_redispatch() {
    let dir = TempDir::new("persist");
    let sock = dir.path().join("admin.sock");
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let s = Sluice::start(&format!(
        "{}listen db\n    bind 127.0.0.1:{{port:fe}}\n    balance first\n\
         \x20   retries 1\n    option redispatch\n\
         \x20   stick-table type ip size 10\n    stick on src\n\
         \x20   server s1 {}\n    server s2 {}\n",
        head(&dir),
        s1.addr(),
        s2.addr()
    ));
    let fe = s.addr("fe");
    let client = Ipv4Addr::new(127, 0, 0, 2);
    assert_eq!(names_from(client, fe, 2), ["s1", "s1"]);
    // s1 stops listening (no health check: still up for sluice). The stored s1 is tried,
    // refused, and the last retry redispatches to s2, which is then stored.
    s1.stop();
    assert_eq!(names_from(client, fe, 3), ["s2", "s2", "s2"]);
    assert_eq!(
        entries(&sock, "db"),
        ["key=127.0.0.2 use=0 exp=0 server_id=2 server_key=s2"]
    );
    s.stop();
}

#[test]
fn a_persistent_server_at_maxconn_queues_its_clients_only() {
    let dir = TempDir::new("persist");
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let s = Sluice::start(&format!(
        "{}listen db\n    bind 127.0.0.1:{{port:fe}}\n    balance first\n    timeout queue 5s\n\
         \x20   stick-table type ip size 10\n    stick on src\n\
         \x20   server s1 {} maxconn 1\n    server s2 {}\n",
        head(&dir),
        s1.addr(),
        s2.addr()
    ));
    let fe = s.addr("fe");
    let a = Ipv4Addr::new(127, 0, 0, 2);
    let held = connect_from(a, fe);
    assert_eq!(read_line(&held), "s1");
    // s1 is full: a's next connection waits for it rather than going to s2...
    let queued = connect_from(a, fe);
    queued
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = (&queued).read(&mut byte);
    assert!(waited.is_err(), "not queued: {waited:?}");
    // ...while a new client is balanced past the full s1.
    assert_eq!(names_from(Ipv4Addr::new(127, 0, 0, 3), fe, 1), ["s2"]);
    drop(held);
    queued.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(read_line(&queued), "s1");
    s.stop();
}
