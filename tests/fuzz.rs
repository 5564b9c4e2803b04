//! Inputs the fuzzer (fuzz/fuzz_targets/config.rs) found crashing the front end, kept as
//! regressions: each must now give diagnostics, not a panic.

use crate::common::repo_root;

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = repo_root().join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-regressions") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("read regression");
        let text = String::from_utf8_lossy(&bytes);
        let name = path.display().to_string();
        let result = std::panic::catch_unwind(|| sluice::config::check_text(&name, &text));
        assert!(result.is_ok(), "{name} panics the configuration front end");
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn hostile_inputs_do_not_panic() {
    let cases = [
        "\u{0}",
        "\"",
        "'",
        "\\",
        "\\x",
        "\\x4",
        "global\n  log\n",
        "backend b\n  server\n",
        "backend b\n  server s\n",
        "backend b\n  server s [\n",
        "backend b\n  server s [::1\n",
        "backend b\n  server s :\n",
        "backend b\n  server s 1.1.1.1:+\n",
        "frontend f\n  bind :\n",
        "frontend f\n  bind ,,,\n",
        "frontend f\n  bind [::]:1-\n",
        "frontend f\n  acl\n",
        "frontend f\n  acl a\n",
        "frontend f\n  acl a req.payload(\n",
        "frontend f\n  acl a req.payload(1,99999999999)\n",
        "frontend f\n  acl a src_port 5: :7 : 1:2:3\n",
        "frontend f\n  acl a src_port gt\n",
        "frontend f\n  use_backend b if { }\n",
        "frontend f\n  use_backend b if ! || !\n",
        "frontend f\n  tcp-request connection track-sc\n",
        "frontend f\n  tcp-request connection track-sc99999999999999 src\n",
        "frontend f\n  log-format %{\n",
        "frontend f\n  log-format %\n",
        ".if (((((\n.endif\n",
        ".if streq(\n.endif\n",
        ".elif\n.else\n.else\n.endif\n.endif\n",
        "global\n  cpu-map auto:1-99999 0\n",
        "global\n  cpu-map 1/0-4294967295 1\n",
        "global\n  stats socket ipv4@:\n",
        "global\n  tune.bufsize 99999999999999999999g\n",
        "defaults\n  timeout client 99999999999999d\n",
        "backend b\n  balance random(\n",
        "backend b\n  balance random(99999999999)\n",
        "backend b\n  hash-type\n",
        "backend b\n  stick-table type ip size 0\n",
        "backend b\n  stick-table store conn_rate(\n",
        "\"${A[*]}\" \"${\n",
        "\"$\"",
        "\"${.LINE[*]-x}\"\n",
    ];
    for (i, c) in cases.iter().enumerate() {
        let text = format!("{c}\n");
        let r = std::panic::catch_unwind(|| sluice::config::check_text("h.cfg", &text));
        assert!(r.is_ok(), "case {i} panics: {c:?}");
    }
}
