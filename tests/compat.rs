//! haproxy-compat/: every valid/*.cfg passes `sluice -c` (and real `haproxy -c`), every
//! invalid/*.cfg fails with exactly the lines of its .expected file, and the support matrix
//! in haproxy-compat/README.md is the one the keyword registry generates.

use std::process::Command;

use crate::common::{compat_files, rel, repo_root, sluice, stderr, stdout};

#[test]
fn valid_configs_pass_sluice_check() {
    let files = compat_files("valid", "cfg");
    assert!(files.len() >= 25, "only {} valid configs", files.len());
    for f in &files {
        let out = sluice(&["-c", "-f", &rel(f)]);
        assert!(
            out.status.success(),
            "{} rejected:\n{}",
            rel(f),
            stderr(&out)
        );
        assert_eq!(stdout(&out), "Configuration file is valid\n", "{}", rel(f));
    }
}

#[test]
fn valid_configs_pass_haproxy_check() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var_os("SLUICE_SKIP_HAPROXY").is_some(),
            "haproxy is not installed: run the README test command, which installs it \
             (or set SLUICE_SKIP_HAPROXY=1 to skip this reference check)"
        );
        return;
    }
    for f in compat_files("valid", "cfg") {
        let out = Command::new("haproxy")
            .args(["-c", "-f", &rel(&f)])
            .current_dir(repo_root())
            .output()
            .expect("run haproxy");
        assert!(
            out.status.success(),
            "HAProxy rejects {}:\n{}{}",
            rel(&f),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn invalid_configs_fail_with_the_expected_lines() {
    let files = compat_files("invalid", "cfg");
    assert!(files.len() >= 25, "only {} invalid configs", files.len());
    for f in &files {
        let expected_path = f.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", rel(f)));
        let out = sluice(&["-c", "-f", &rel(f)]);
        assert_eq!(out.status.code(), Some(1), "{} must fail", rel(f));
        let errors: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| !l.contains(": warning: "))
            .map(str::to_string)
            .collect();
        let want: Vec<&str> = expected.lines().collect();
        assert_eq!(errors, want, "errors of {}", rel(f));
        assert!(stdout(&out).is_empty(), "{} printed on stdout", rel(f));
    }
}

#[test]
fn support_matrix_is_generated_from_the_registry() {
    let path = repo_root().join("haproxy-compat/README.md");
    let generated = sluice::config::keywords::support_matrix();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write README");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "haproxy-compat/README.md is stale: run `SLUICE_BLESS=1 cargo test support_matrix`"
    );
}

#[test]
fn debian_stock_defaults_are_accepted_with_warnings() {
    let out = sluice(&[
        "-c",
        "-f",
        "haproxy-compat/valid/35-debian-stock-defaults.cfg",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    for kw in ["crt-base", "ssl-default-bind-options", "errorfile"] {
        assert!(
            err.contains(&format!("warning: '{kw}': ignored: ")),
            "{err}"
        );
    }
    // ca-base is applied (to a relative ca-file of TLS health checks), not warned about.
    assert!(!err.contains("'ca-base'"), "{err}");
}
