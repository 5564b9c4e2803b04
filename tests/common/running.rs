//! A running `sluice` process for data-plane tests: started from a configuration text with
//! `{port:NAME}` placeholders replaced by free loopback ports, waited for with a deadline,
//! stopped with a signal, and checked for leaked sockets and counts.

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{sluice_bin, TempDir};

/// A free port on 127.0.0.1 for sluice to listen on, in 10000-22000: below the kernel's ephemeral range
/// (32768 and up by default): a port the kernel picks for some outgoing connection of
/// another test could otherwise be taken between this pick and sluice's bind. Checked free by
/// binding it, and never handed out twice by this process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let base = 20_000 + (std::process::id() % 97) * 128;
    for _ in 0..4_096 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (10_000 + (base + n * 7) % 12_000) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between 10000 and 22000")
}

pub struct Sluice {
    child: Option<Child>,
    dir: TempDir,
    pub ports: HashMap<String, u16>,
    pub config: PathBuf,
}

impl Sluice {
    /// Starts sluice with `cfg`, where `{port:NAME}` becomes a fresh loopback port, and waits
    /// until it logs its start line (after every listener is bound).
    pub fn start(cfg: &str) -> Sluice {
        Sluice::start_with(cfg, &[])
    }

    pub fn start_with(cfg: &str, extra_args: &[&str]) -> Sluice {
        Sluice::start_env(cfg, extra_args, &[])
    }

    /// `start_with`, with `env` added to sluice's environment. sluice runs in a process group
    /// of its own, so that dropping it kills its worker processes too (master-worker mode).
    pub fn start_env(cfg: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Sluice {
        use std::os::unix::process::CommandExt;
        let (text, ports) = fill_ports(cfg);
        let dir = TempDir::new("run");
        let config = dir.write("sluice.cfg", &text);
        let log = fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = Command::new(sluice_bin())
            .arg("-f")
            .arg(&config)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sluice");
        let mut s = Sluice {
            child: Some(child),
            dir,
            ports,
            config,
        };
        // Wait for the start line rather than probing the ports: a probe would be a real
        // connection, forwarded to a backend, and would skew what the test counts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.log().contains(" started: ") {
            if let Some(st) = s.try_status() {
                panic!("sluice exited with {st} before starting:\n{}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not start:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    /// The address of a `{port:NAME}` placeholder.
    pub fn addr(&self, name: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[name]))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::try_from(sig).expect("signal"),
        );
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_status() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit in {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The processes whose parent is sluice (the workers of master-worker mode), by pid.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    /// The directory of this run (the configuration and the log are there).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Sockets the process has open (listeners, connections), not pipes or event fds.
    pub fn open_sockets(&self) -> usize {
        let Ok(rd) = fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return 0;
        };
        rd.filter_map(Result::ok)
            .filter_map(|e| fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits until the open sockets drop to `n` (the listeners): no connection leaked.
    /// Returns how long it took.
    pub fn wait_sockets(&self, n: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        let deadline = start + limit;
        loop {
            let now = self.open_sockets();
            if now == n {
                return start.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "sluice still has {now} sockets open, expected {n}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops with SIGTERM and checks a clean exit (which includes the leak check of the
    /// supervisor: every count back to zero).
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let st = self.wait_exit(Duration::from_secs(10));
        let log = self.log();
        assert!(st.success(), "sluice exited with {st}:\n{log}");
        assert!(!log.contains("leak"), "sluice reported a leak:\n{log}");
        self.child = None;
        log
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The whole group: the master and any worker process it forked.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The processes whose parent is `pid`, from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| parent_of(p) == Some(pid))
        .collect();
    out.sort_unstable();
    out
}

/// The parent of `pid` from /proc/<pid>/stat, `None` once it is gone (or a zombie).
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the
    // last ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.next()?.parse().ok()
}

/// Replaces each `{port:NAME}` with a free port (the same port for the same name).
pub fn fill_ports(cfg: &str) -> (String, HashMap<String, u16>) {
    let mut ports = HashMap::new();
    let mut out = String::new();
    let mut rest = cfg;
    while let Some(i) = rest.find("{port:") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing brace") + i;
        let name = rest[i + 6..end].to_string();
        let port = *ports.entry(name).or_insert_with(free_port);
        out.push_str(&port.to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    (out, ports)
}

/// The installed HAProxy for a reference check. A missing HAProxy fails the test unless
/// SLUICE_SKIP_HAPROXY is set, in which case this is None and the check is skipped.
pub fn reference_haproxy() -> Option<&'static str> {
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    if haproxy.is_none() {
        assert!(
            std::env::var_os("SLUICE_SKIP_HAPROXY").is_some(),
            "haproxy is not installed: run the README test command, which installs it \
             (or set SLUICE_SKIP_HAPROXY=1 to skip this reference check)"
        );
    }
    haproxy
}

/// A HAProxy running in the foreground (`-db`), killed when dropped.
pub struct Haproxy(Child);

impl Haproxy {
    /// Runs `haproxy -db -f cfg` and waits, 10 s at most, until its stats socket `sock`
    /// accepts connections.
    pub fn start_with_stats(
        haproxy: &str,
        cfg: &std::path::Path,
        sock: &std::path::Path,
    ) -> Haproxy {
        let child = Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run haproxy");
        let h = Haproxy(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not open its stats socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A differential check: runs `probe` against a real HAProxy started in `dir` with the
/// configuration `cfg` makes for a stats socket path (which it must declare in `global`),
/// its `{port:NAME}`s filled. `probe` gets the socket path and each name's address. None
/// when HAProxy is missing and SLUICE_SKIP_HAPROXY allows it (see [`reference_haproxy`]).
pub fn on_reference_haproxy<T>(
    dir: &TempDir,
    cfg: impl FnOnce(&std::path::Path) -> String,
    probe: impl FnOnce(&std::path::Path, &dyn Fn(&str) -> SocketAddr) -> T,
) -> Option<T> {
    let haproxy = reference_haproxy()?;
    let sock = dir.path().join("haproxy.sock");
    let (text, ports) = fill_ports(&cfg(&sock));
    let path = dir.write("haproxy.cfg", &text);
    let _h = Haproxy::start_with_stats(haproxy, &path, &sock);
    let at = |name: &str| SocketAddr::from(([127, 0, 0, 1], ports[name]));
    Some(probe(&sock, &at))
}
