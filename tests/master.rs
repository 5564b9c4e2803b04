//! Master-worker mode through the real binary (`-W`, `-Ws`, `master-worker`): one master
//! and one worker process, reloads on SIGUSR2 that switch new connections to the new
//! configuration without refusing any and let established ones finish in the old worker, a
//! broken configuration or a worker that cannot start leaving the current worker serving,
//! stops, HAProxy's exit-on-failure, systemd's notify socket and the pidfile.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::backends::{connect, read_line, try_connect, wait_until, Backend};
use crate::common::running::{parent_of, Sluice};
use crate::common::TempDir;

const LIMIT: Duration = Duration::from_secs(10);

fn cfg(global: &str, servers: &[&Backend]) -> String {
    let servers: String = servers
        .iter()
        .enumerate()
        .map(|(i, b)| format!("    server s{} {}\n", i + 1, b.addr()))
        .collect();
    format!(
        "global\n    nbthread 1\n{global}\ndefaults\n    mode tcp\n    timeout connect 2s\n    \
         timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{{port:fe}}\n    default_backend be\n\
         backend be\n{servers}"
    )
}

/// Starts a master and waits until its first worker is ready.
fn start(cfg: &str, args: &[&str]) -> Sluice {
    start_env(cfg, args, &[])
}

fn start_env(cfg: &str, args: &[&str], env: &[(&str, &str)]) -> Sluice {
    let s = Sluice::start_env(cfg, args, env);
    wait_log(&s, "Loading success.", 1);
    s
}

/// Waits until `what` appears `n` times in the log.
fn wait_log(s: &Sluice, what: &str, n: usize) {
    let deadline = Instant::now() + LIMIT;
    while s.log().matches(what).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {what:?} (x{n}) in the log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn only_worker(s: &Sluice) -> i32 {
    let children = s.children();
    assert_eq!(children.len(), 1, "workers: {children:?}\n{}", s.log());
    children[0]
}

fn alive(pid: i32) -> bool {
    parent_of(pid).is_some()
}

/// Rewrites the running configuration: `from` becomes `to`.
fn edit(s: &Sluice, from: &str, to: &str) {
    let text = std::fs::read_to_string(&s.config).unwrap();
    assert!(text.contains(from), "{from} not in:\n{text}");
    std::fs::write(&s.config, text.replace(from, to)).unwrap();
}

/// Connects and reads the backend's tag, without panicking.
fn try_tag(addr: SocketAddr) -> Result<String, String> {
    let mut c = try_connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        match c.read(&mut byte) {
            Ok(0) => return Err(format!("EOF after {line:?}")),
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    line.pop();
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Client threads, each connecting one connection after the other until stopped: the tags
/// seen (in the order they changed, per thread) and every failure. Several at once keep
/// connections waiting in the listener's queue, where a closed socket would reset them.
struct Clients {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    const THREADS: usize = 4;

    fn start(addr: SocketAddr) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(vec![Vec::new(); Clients::THREADS]));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..Clients::THREADS)
            .map(|i| {
                let (st, dn, se, fa) = (
                    Arc::clone(&stop),
                    Arc::clone(&done),
                    Arc::clone(&seen),
                    Arc::clone(&failures),
                );
                std::thread::spawn(move || {
                    // Bounded: at most 20,000 connections or 20 s each.
                    let end = Instant::now() + Duration::from_secs(20);
                    for _ in 0..20_000 {
                        if st.load(Ordering::Relaxed) || Instant::now() > end {
                            break;
                        }
                        match try_tag(addr) {
                            Ok(tag) => {
                                let mut seen = se.lock().unwrap();
                                if seen[i].last() != Some(&tag) {
                                    seen[i].push(tag);
                                }
                            }
                            Err(e) => fa.lock().unwrap().push(e),
                        }
                        dn.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Clients {
            stop,
            done,
            seen,
            failures,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the loops; returns (connections, tags in the order they changed per thread,
    /// failures).
    fn finish(mut self) -> (usize, Vec<Vec<String>>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let seen = self.seen.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (self.count(), seen, failures)
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn minus_w_runs_a_master_and_one_worker_and_sigterm_stops_both() {
    let s1 = Backend::tagged("s1");
    let dir = TempDir::new("mw-pid");
    let pidfile = dir.path().join("sluice.pid");
    let s = start(&cfg("", &[&s1]), &["-W", "-p", pidfile.to_str().unwrap()]);
    // The pidfile names the master; the master has one child, the worker, which serves.
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        s.pid().to_string()
    );
    let worker = only_worker(&s);
    assert_eq!(read_line(&connect(s.addr("fe"))), "s1");
    let log = s.log();
    assert!(
        log.contains(&format!("New worker ({worker}) forked")),
        "{log}"
    );
    // The worker's start line is the worker's own (lines carry their process id).
    assert!(log.contains(&format!("({worker}) sluice ")), "{log}");
    let log = s.stop();
    assert!(!alive(worker), "the worker is still there");
    for line in [
        "Exiting Master process...".to_string(),
        format!("Current worker ({worker}) exited with code 143 (Terminated)"),
        "All workers exited. Exiting... (0)".to_string(),
    ] {
        assert!(log.contains(&line), "no {line:?} in:\n{log}");
    }
    assert!(!pidfile.exists(), "the master removes its pidfile");
}

#[test]
fn sigusr2_switches_new_connections_while_old_ones_finish_and_refuses_none() {
    let s1 = Backend::tagged("s1");
    let s2 = Backend::tagged("s2");
    let s = start(&cfg("", &[&s1]), &["-W"]);
    let fe = s.addr("fe");
    let old = only_worker(&s);
    // Established through the old worker before the reload.
    let mut held = connect(fe);
    assert_eq!(read_line(&held), "s1");
    let clients = Clients::start(fe);
    wait_until(LIMIT, "clients connecting", || clients.count() >= 20);
    edit(&s, &s1.addr().to_string(), &s2.addr().to_string());
    s.signal(libc::SIGUSR2);
    wait_log(&s, "Loading success.", 2);
    // New connections go through the new worker to the new server.
    let before = clients.count();
    wait_until(LIMIT, "connections after the reload", || {
        clients.count() >= before + 50
    });
    assert_eq!(read_line(&connect(fe)), "s2");
    let children = s.children();
    assert_eq!(children.len(), 2, "old and new worker: {children:?}");
    assert!(children.contains(&old));
    // The old worker still carries the established connection, both ways.
    held.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&held), "still here");
    drop(held);
    wait_log(
        &s,
        &format!("Former worker ({old}) exited with code 0 (Exit)"),
        1,
    );
    let (n, seen, failures) = clients.finish();
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    // Each client went from s1 to s2 (both workers accept for an instant: s2, s1, s2 can be).
    for tags in &seen {
        assert!(
            tags.iter().all(|t| t == "s1" || t == "s2") && tags.last().unwrap() == "s2",
            "{n} connections: {tags:?}"
        );
    }
    assert!(
        crate::common::backends::tags(fe, 10)
            .iter()
            .all(|t| t == "s2"),
        "the old server still answers"
    );
    assert_eq!(
        only_worker(&s),
        *children.iter().find(|&&p| p != old).unwrap()
    );
    let log = s.stop();
    assert!(log.contains("Reloading sluice"), "{log}");
}

/// The pid `show info` gives on the stats socket at `path`.
fn stats_pid(path: &Path) -> String {
    let info = crate::common::backends::cli(path, "show info");
    info.lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .unwrap_or_else(|| panic!("no Pid in {info}"))
        .to_string()
}

#[test]
fn a_reload_that_cannot_apply_keeps_the_current_worker() {
    let s1 = Backend::tagged("s1");
    let dir = TempDir::new("mw-stats");
    let stats = dir.path().join("admin.sock");
    let s = start(
        &cfg(&format!("    stats socket {}", stats.display()), &[&s1]),
        &["-W"],
    );
    let fe = s.addr("fe");
    let worker = only_worker(&s);
    let good = std::fs::read_to_string(&s.config).unwrap();
    assert_eq!(stats_pid(&stats), worker.to_string());

    // 1. An invalid configuration: the errors (file:line) are logged, nothing changes.
    std::fs::write(&s.config, format!("{good}    balance roundrobn\n")).unwrap();
    s.signal(libc::SIGUSR2);
    wait_log(&s, "Loading failure!", 1);
    let log = s.log();
    assert!(
        log.contains("sluice.cfg:") && log.contains("'balance': unknown algorithm 'roundrobn'"),
        "{log}"
    );
    assert_eq!(s.children(), [worker]);
    assert_eq!(read_line(&connect(fe)), "s1");
    assert_eq!(stats_pid(&stats), worker.to_string());

    // 2. A new listener on a port another process holds: the master cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        &s.config,
        format!("{good}frontend fe2\n    bind 127.0.0.1:{port}\n    default_backend be\n"),
    )
    .unwrap();
    s.signal(libc::SIGUSR2);
    wait_log(&s, "Loading failure!", 2);
    assert!(
        s.log().contains(&format!("cannot bind 127.0.0.1:{port}")),
        "{}",
        s.log()
    );
    assert_eq!(s.children(), [worker]);
    assert_eq!(read_line(&connect(fe)), "s1");
    assert_eq!(stats_pid(&stats), worker.to_string());

    // 3. A worker that fails once forked: it cannot chroot to a directory that is not there.
    let missing = s.dir().join("no-such-dir");
    std::fs::write(
        &s.config,
        good.replacen(
            "global\n",
            &format!("global\n    chroot {}\n", missing.display()),
            1,
        ),
    )
    .unwrap();
    s.signal(libc::SIGUSR2);
    wait_log(&s, "Loading failure!", 3);
    let log = s.log();
    assert!(
        log.contains(&format!("chroot {}", missing.display()))
            && log.contains("exited with code 1 (Exit) before it was ready"),
        "{log}"
    );
    assert_eq!(s.children(), [worker]);
    assert_eq!(read_line(&connect(fe)), "s1");
    assert_eq!(stats_pid(&stats), worker.to_string());

    // And the next good reload still works.
    std::fs::write(&s.config, &good).unwrap();
    s.signal(libc::SIGHUP);
    wait_log(&s, "Loading success.", 2);
    wait_until(LIMIT, "the former worker gone", || !alive(worker));
    assert_eq!(read_line(&connect(fe)), "s1");
    // The same stats socket, answered by the new worker.
    assert_eq!(stats_pid(&stats), only_worker(&s).to_string());
    s.stop();
}

#[test]
fn a_killed_worker_makes_the_master_exit_with_its_code() {
    let s1 = Backend::tagged("s1");
    // The global keyword instead of -W.
    let mut s = start(&cfg("    master-worker", &[&s1]), &[]);
    let worker = only_worker(&s);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let st = s.wait_exit(LIMIT);
    assert_eq!(st.code(), Some(137), "{}", s.log());
    let log = s.log();
    for line in [
        format!("Current worker ({worker}) exited with code 137 (Killed)"),
        "exit-on-failure: killing every processes with SIGTERM".to_string(),
        "All workers exited. Exiting... (137)".to_string(),
    ] {
        assert!(log.contains(&line), "no {line:?} in:\n{log}");
    }
}

#[test]
fn a_worker_whose_master_is_killed_stops() {
    let s1 = Backend::tagged("s1");
    let s = start(&cfg("", &[&s1]), &["-W"]);
    let worker = only_worker(&s);
    s.signal(libc::SIGKILL);
    wait_until(LIMIT, "the orphaned worker gone", || !alive(worker));
    assert!(
        s.log().contains("the master process is gone"),
        "{}",
        s.log()
    );
}

#[test]
fn sigusr1_stops_softly_once_established_connections_end() {
    let s1 = Backend::tagged("s1");
    let mut s = start(&cfg("", &[&s1]), &["-W"]);
    let worker = only_worker(&s);
    let held = connect(s.addr("fe"));
    assert_eq!(read_line(&held), "s1");
    s.signal(libc::SIGUSR1);
    // The listener closes; the master and its worker wait for the connection.
    wait_until(LIMIT, "the listener closed", || {
        TcpStream::connect(s.addr("fe")).is_err()
    });
    assert!(s.try_status().is_none() && alive(worker));
    drop(held);
    let st = s.wait_exit(LIMIT);
    assert_eq!(st.code(), Some(0), "{}", s.log());
    assert!(!alive(worker));
}

#[test]
fn minus_ws_tells_systemd_ready_reloading_ready_stopping() {
    let s1 = Backend::tagged("s1");
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let recv = || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notify datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let s = start_env(
        &cfg("", &[&s1]),
        &["-Ws"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let ready = format!("READY=1\nMAINPID={}", s.pid());
    assert_eq!(recv(), ready);
    s.signal(libc::SIGUSR2);
    assert_eq!(recv(), "RELOADING=1");
    assert_eq!(recv(), ready);
    wait_log(&s, "Loading success.", 2);
    // A failed reload says ready again: the service runs on.
    edit(&s, "mode tcp", "mode tcpp");
    s.signal(libc::SIGUSR2);
    assert_eq!(recv(), "RELOADING=1");
    assert_eq!(recv(), ready);
    let pid = s.pid();
    let log = s.stop();
    assert_eq!(recv(), "STOPPING=1");
    assert!(log.contains(&format!("({pid}) Loading failure!")), "{log}");
}

#[test]
fn minus_d_daemonizes_the_master_and_the_pidfile_names_it() {
    let s1 = Backend::tagged("s1");
    let dir = TempDir::new("mw-daemon");
    let pidfile = dir.path().join("sluice.pid");
    let (text, ports) = crate::common::running::fill_ports(&cfg("", &[&s1]));
    let config = dir.write("d.cfg", &text);
    let out = crate::common::sluice(&[
        "-W",
        "-D",
        "-q",
        "-p",
        pidfile.to_str().unwrap(),
        "-f",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&out)
    );
    let mut master = 0;
    wait_until(LIMIT, "the pidfile", || {
        master = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        master > 0
    });
    // Stopped whatever happens below.
    let _guard = Killer(master);
    assert!(alive(master));
    let fe = SocketAddr::from(([127, 0, 0, 1], ports["fe"]));
    wait_until(LIMIT, "the worker serving", || {
        try_tag(fe).is_ok_and(|t| t == "s1")
    });
    let workers = crate::common::running::children_of(master);
    assert_eq!(workers.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(master),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_until(LIMIT, "master and worker gone", || {
        !alive(master) && !alive(workers[0])
    });
    assert!(!Path::new(&pidfile).exists());
}

/// Kills a daemonized master and its workers when dropped.
struct Killer(i32);

impl Drop for Killer {
    fn drop(&mut self) {
        let workers = crate::common::running::children_of(self.0);
        for pid in std::iter::once(self.0).chain(workers) {
            if alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
