//! The command line through the real binary: -c, -f with files and directories, -q, -v,
//! -dK, -dr, unknown flags, missing files, every error reported at once.

use crate::common::{sluice, stderr, stdout, TempDir};

const OK: &str = "defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
                  listen l\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n";

#[test]
fn check_valid_file() {
    let dir = TempDir::new("cli");
    let f = dir.write("ok.cfg", OK);
    let out = sluice(&["-c", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "Configuration file is valid\n");
    assert_eq!(stderr(&out), "");
    let out = sluice(&["-c", "-q", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

#[test]
fn every_error_is_reported_with_file_line_and_keyword() {
    let dir = TempDir::new("cli");
    let f = dir.write(
        "bad.cfg",
        "global\n    maxconn lots\n    nbthred 2\nbackend b\n    balance leastcon\n    server s 127.0.0.1:99999\n",
    );
    let path = f.to_str().unwrap();
    let out = sluice(&["-c", "-f", path]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(
        lines,
        [
            format!("{path}:2: 'maxconn': 'lots' is not a valid number"),
            format!("{path}:3: 'nbthred': unknown keyword in 'global' section; did you mean 'nbthread'?"),
            format!("{path}:5: 'balance': unknown algorithm 'leastcon' (roundrobin, static-rr, leastconn, first, source, random, hash <expr>, leasttime); did you mean 'leastconn'?"),
            format!("{path}:6: 'server': 'server b/s': invalid port '99999' (1-65535)"),
        ]
    );
}

#[test]
fn warnings_are_a_separate_severity() {
    let dir = TempDir::new("cli");
    let f = dir.write(
        "w.cfg",
        "frontend f\n    bind 127.0.0.1:1\n    balance roundrobin\n    timeout client 1s\n",
    );
    let path = f.to_str().unwrap();
    let out = sluice(&["-c", "-f", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("{path}:3: warning: 'balance': ignored because frontend 'f' has no backend capability\n")
    );
    let out = sluice(&["-c", "-q", "-f", path]);
    assert_eq!(stderr(&out), "");
}

#[test]
fn directory_means_its_cfg_files_in_lexical_order() {
    let dir = TempDir::new("cli");
    dir.write(
        "20-backend.cfg",
        "backend b\n    timeout connect 1s\n    timeout server 1s\n    server s 127.0.0.1:2\n",
    );
    dir.write(
        "10-frontend.cfg",
        "frontend f\n    bind 127.0.0.1:1\n    timeout client 1s\n    default_backend b\n",
    );
    dir.write("notes.txt", "this is not a configuration\n");
    let out = sluice(&["-c", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Errors name the file they come from.
    dir.write("30-broken.cfg", "backend c\n    bogus\n");
    let out = sluice(&["-c", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("30-broken.cfg:2: 'bogus': unknown keyword in 'backend' section"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_files_are_one_configuration() {
    let dir = TempDir::new("cli");
    let a = dir.write("a.cfg", "defaults\n    timeout client 1s\n    timeout connect 1s\n    timeout server 1s\nfrontend f\n    bind 127.0.0.1:1\n    default_backend b\n");
    let b = dir.write("b.cfg", "backend b\n    server s 127.0.0.1:2\n");
    let out = sluice(&["-c", "-f", a.to_str().unwrap(), "-f", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = sluice(&["-c", "-f", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_file_and_no_file() {
    let out = sluice(&["-c", "-f", "/nonexistent/sluice.cfg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Could not open configuration file /nonexistent/sluice.cfg"));
    let out = sluice(&["-c"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Usage:"));
}

#[test]
fn unknown_flag_prints_usage() {
    let out = sluice(&["-Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("sluice: unknown option '-Z'\nUsage: sluice -f"));
}

#[test]
fn version_flags() {
    let out = sluice(&["-v"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("sluice version "));
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = sluice(&["-vv"]);
    assert!(stdout(&out).lines().count() > 1);
}

#[test]
fn dump_keywords_lists_the_registry() {
    let out = sluice(&["-dK"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let n = sluice::config::keywords::registry().len();
    assert_eq!(text.lines().count(), n);
    assert!(text
        .lines()
        .any(|l| l
            .starts_with("proxy\ttimeout connect <time>\t[defaults,listen,backend]\tsupported")));
    assert!(text
        .lines()
        .any(|l| l.starts_with("bind\tssl\t") && l.contains("not supported")));
    let out = sluice(&["-dK", "server"]);
    assert!(stdout(&out).lines().all(|l| l.starts_with("server\t")));
}

#[test]
fn dr_lets_unresolvable_servers_start_in_maintenance() {
    let dir = TempDir::new("cli");
    let f = dir.write("dns.cfg", "backend b\n    timeout connect 1s\n    timeout server 1s\n    server s no-such-host.invalid:80\n");
    let out = sluice(&["-c", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("could not resolve address 'no-such-host.invalid'"));
    let out = sluice(&["-c", "-dr", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: 'server': 'server b/s': could not resolve address 'no-such-host.invalid', starting in maintenance (-dr)"));
}

#[test]
fn nothing_is_half_applied_on_error() {
    // A broken file next to a good one: the whole load fails, nothing is printed as valid.
    let dir = TempDir::new("cli");
    let good = dir.write("good.cfg", OK);
    let bad = dir.write(
        "bad.cfg",
        "backend x\n    server s 127.0.0.1:2 weight 999\n",
    );
    let out = sluice(&[
        "-c",
        "-f",
        good.to_str().unwrap(),
        "-f",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
}
