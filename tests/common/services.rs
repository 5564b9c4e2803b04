//! Real services for the health-check tests: MariaDB, Redis and nginx (plain or TLS) from
//! Debian's packages (`mariadb-server`, `redis-server`, `nginx-light`, which `scripts/test.sh`
//! installs), and TLS certificates made with the `openssl` command ([`TestPki`]). Each
//! runs as a child process on 127.0.0.1 with an ephemeral port, keeps all its files in a
//! private temporary directory, is waited for with a deadline (never a fixed sleep), and is
//! killed and reaped when dropped. A start that loses its port to another process (the port is
//! picked free, then bound by the service) is retried on a new port.
//!
//! A missing binary fails the test with what to install, unless `SLUICE_SKIP_SERVICES` is set:
//! then `start` returns None and the test skips itself with a line on stderr. Works as root
//! (MariaDB is told `--user=root`, nginx runs without a master process) and as any user.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::running::free_port;
use super::TempDir;

/// How long a service may take to come up (MariaDB creates its data directory first).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Attempts at starting a service, each on a new port.
const ATTEMPTS: usize = 5;

/// Connect, read and write timeout of the readiness probes and helpers.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// MariaDB

/// A MariaDB server with a fresh data directory, and the user HAProxy's mysql-check needs:
/// [`Mariadb::USER`] with no password, from 127.0.0.1 and localhost.
pub struct Mariadb {
    service: Service,
}

impl Mariadb {
    /// The passwordless user created for `option mysql-check user haproxy`.
    pub const USER: &'static str = "haproxy";

    /// Creates a data directory with `mariadb-install-db`, starts `mariadbd` on a free
    /// loopback port, and waits until the check user can log in.
    pub fn start() -> Option<Mariadb> {
        let mariadbd = binary("mariadbd", "mariadb-server")?;
        let install = binary("mariadb-install-db", "mariadb-server")?;
        let dir = TempDir::new("mariadb");
        let data = dir.path().join("data");
        let root = nix::unistd::geteuid().is_root();
        let user_arg = root.then(|| "--user=root".to_string());

        let out = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(&user_arg)
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let init = dir.write(
            "init.sql",
            &format!(
                "CREATE USER IF NOT EXISTS '{u}'@'127.0.0.1';\n\
                 CREATE USER IF NOT EXISTS '{u}'@'localhost';\n",
                u = Mariadb::USER
            ),
        );
        let p = dir.path().to_path_buf();
        let error_log = p.join("error.log");
        let service = Service::start(
            "mariadb",
            dir,
            |port| {
                let mut c = Command::new(&mariadbd);
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--socket={}", p.join("mariadb.sock").display()))
                    .arg(format!("--port={port}"))
                    .arg("--bind-address=127.0.0.1")
                    .arg("--skip-networking=0")
                    .arg("--skip-name-resolve")
                    .arg("--max-connect-errors=1000000")
                    .arg(format!("--pid-file={}", p.join("mariadb.pid").display()))
                    .arg(format!("--log-error={}", error_log.display()))
                    .arg(format!("--tmpdir={}", p.display()))
                    .arg(format!("--init-file={}", init.display()))
                    .args(&user_arg);
                c
            },
            // Its own log says it listens (so the port is not someone else's), and the
            // check user can log in (so the init file ran).
            |addr| {
                read_lossy(&error_log).contains(&format!("port: {}", addr.port()))
                    && mysql_login_ok(addr)
            },
        );
        Some(Mariadb { service })
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr
    }

    /// The server's error log.
    pub fn log(&self) -> String {
        self.service.read("error.log")
    }

    /// Stops the server (as dropping it does).
    pub fn stop(self) {}
}

/// Logs in as [`Mariadb::USER`] the way HAProxy's mysql-check does (post-4.1 client packet,
/// no password, then COM_QUIT) and tells whether the server said OK.
fn mysql_login_ok(addr: SocketAddr) -> bool {
    let user = Mariadb::USER.as_bytes();
    let mut body = vec![0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21];
    body.extend_from_slice(&[0; 23]);
    body.extend_from_slice(user);
    body.extend_from_slice(&[0, 0]);
    let len = body.len().to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], 1];
    packet.extend_from_slice(&body);
    packet.extend_from_slice(&[1, 0, 0, 0, 1]);
    let Ok(mut s) = connect(addr) else {
        return false;
    };
    if s.write_all(&packet).is_err() {
        return false;
    }
    // The greeting, then the answer to the login.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1_024];
    loop {
        let greeting = buf.len() >= 4 && buf.len() >= 4 + packet_len(&buf, 0);
        if greeting {
            let at = 4 + packet_len(&buf, 0);
            if buf.len() >= at + 5 {
                return buf[at + 4] == 0x00;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn packet_len(buf: &[u8], at: usize) -> usize {
    usize::from(buf[at]) | usize::from(buf[at + 1]) << 8 | usize::from(buf[at + 2]) << 16
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A Redis server without persistence.
pub struct Redis {
    service: Service,
}

impl Redis {
    /// Starts `redis-server` (no persistence) on a free loopback port and waits until it
    /// answers, from its own directory.
    pub fn start() -> Option<Redis> {
        let bin = binary("redis-server", "redis-server")?;
        let dir = TempDir::new("redis");
        let p = dir.path().to_path_buf();
        let service = Service::start(
            "redis",
            dir,
            |port| {
                let mut c = Command::new(&bin);
                c.args(["--port", &port.to_string()])
                    .args(["--bind", "127.0.0.1"])
                    .args(["--save", ""])
                    .args(["--appendonly", "no"])
                    .args(["--daemonize", "no"])
                    .arg("--dir")
                    .arg(&p)
                    .arg("--logfile")
                    .arg(p.join("redis.log"));
                c
            },
            // Answers, and from our directory (not another test's server on that port).
            |addr| {
                Redis::command_at(addr, &["CONFIG", "GET", "dir"])
                    .is_ok_and(|r| r.contains(&*p.to_string_lossy()))
            },
        );
        Some(Redis { service })
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr
    }

    /// Sends one command and returns the reply in RESP's text form ("+OK", ":1", "$5\r\n...").
    pub fn command(&self, args: &[&str]) -> String {
        Redis::command_at(self.addr(), args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}\n{}", self.log()))
    }

    /// Makes this server a replica of `master` and waits until the link is up, so that
    /// `INFO replication` says `role:slave` here and `role:master` there.
    pub fn replicaof(&self, master: &Redis) {
        let port = master.addr().port().to_string();
        let reply = self.command(&["REPLICAOF", "127.0.0.1", &port]);
        assert!(reply.starts_with("+OK"), "REPLICAOF: {reply}");
        let up = wait_for(Duration::from_secs(20), || {
            self.command(&["INFO", "replication"])
                .contains("master_link_status:up")
        });
        assert!(up, "the replica link did not come up:\n{}", self.log());
    }

    /// The server's log.
    pub fn log(&self) -> String {
        self.service.read("redis.log")
    }

    /// Stops the server (as dropping it does).
    pub fn stop(self) {}

    fn command_at(addr: SocketAddr, args: &[&str]) -> io::Result<String> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let mut s = connect(addr)?;
        s.write_all(req.as_bytes())?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4_096];
        while resp_len(&reply).is_none() {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            reply.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        Ok(text.trim_end_matches("\r\n").to_string())
    }
}

/// The length of the first complete RESP value in `b`, None if it is not all there.
fn resp_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(b.get(1..line_end)?).ok()?;
    let after = line_end + 2;
    match b.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' => {
            let n: i64 = head.parse().ok()?;
            let mut at = after;
            for _ in 0..n.max(0) {
                at += resp_len(b.get(at..)?)?;
            }
            Some(at)
        }
        _ => Some(b.len()),
    }
}

// ---------------------------------------------------------------------------------------------
// nginx

/// An nginx answering fixed responses per path.
pub struct Nginx {
    service: Service,
}

impl Nginx {
    /// Starts nginx in the foreground (one process, no master) on a free loopback port; each
    /// `(path, status, text)` answers requests for exactly `path` with `status` and `text` as
    /// the body (for a redirect status, nginx takes the text as the Location). Any other path
    /// is a 404.
    pub fn start(routes: &[(&str, u16, &str)]) -> Option<Nginx> {
        Nginx::start_with(routes, None)
    }

    /// The same over TLS (1.2 and 1.3), presenting the certificate `cert` (PEM) with its
    /// key.
    pub fn start_tls(routes: &[(&str, u16, &str)], cert: &Path, key: &Path) -> Option<Nginx> {
        Nginx::start_with(routes, Some((cert, key)))
    }

    fn start_with(routes: &[(&str, u16, &str)], tls: Option<(&Path, &Path)>) -> Option<Nginx> {
        let bin = binary("nginx", "nginx-light")?;
        let dir = TempDir::new("nginx");
        let p = dir.path().to_path_buf();
        fs::create_dir_all(p.join("www")).expect("nginx root");
        // A route naming the directory tells this nginx from any other on the port.
        let token = p.display().to_string();
        let mut locations =
            format!("        location = /.sluice-ready {{ return 200 \"{token}\"; }}\n");
        for (path, status, text) in routes {
            assert!(
                !path.contains(char::is_whitespace) && !text.contains('$'),
                "nginx route {path:?}: no spaces in the path, no '$' in the text"
            );
            let text = text.replace('\\', "\\\\").replace('"', "\\\"");
            locations.push_str(&format!(
                "        location = {path} {{ return {status} \"{text}\"; }}\n"
            ));
        }
        // Over TLS the readiness probe asks a plain listener on a Unix socket of the
        // directory: nginx binds every listener before it serves, so an answer there means
        // the TCP port is this nginx's too.
        let ready_sock = p.join("ready.sock");
        let (listen, ready_server) = match tls {
            None => (String::new(), String::new()),
            Some((cert, key)) => (
                format!(
                    " ssl;\n\
                     \x20       ssl_certificate {};\n\
                     \x20       ssl_certificate_key {};\n\
                     \x20       ssl_protocols TLSv1.2 TLSv1.3",
                    cert.display(),
                    key.display()
                ),
                format!(
                    "\x20   server {{\n\
                     \x20       listen unix:{};\n\
                     \x20       location = /.sluice-ready {{ return 200 \"{token}\"; }}\n\
                     \x20   }}\n",
                    ready_sock.display()
                ),
            ),
        };
        let service = Service::start(
            "nginx",
            dir,
            |port| {
                let _ = fs::remove_file(&ready_sock);
                let d = p.display();
                let conf = format!(
                    "daemon off;\n\
                     master_process off;\n\
                     worker_processes 1;\n\
                     pid {d}/nginx.pid;\n\
                     error_log {d}/error.log warn;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{\n\
                     \x20   access_log off;\n\
                     \x20   default_type text/plain;\n\
                     \x20   client_body_temp_path {d}/client_body;\n\
                     \x20   proxy_temp_path {d}/proxy;\n\
                     \x20   fastcgi_temp_path {d}/fastcgi;\n\
                     \x20   uwsgi_temp_path {d}/uwsgi;\n\
                     \x20   scgi_temp_path {d}/scgi;\n\
                     \x20   server {{\n\
                     \x20       listen 127.0.0.1:{port}{listen};\n\
                     \x20       root {d}/www;\n\
                     {locations}\
                     \x20   }}\n\
                     {ready_server}\
                     }}\n"
                );
                fs::write(p.join("nginx.conf"), conf).expect("write nginx.conf");
                let mut c = Command::new(&bin);
                c.arg("-p")
                    .arg(&p)
                    .arg("-e")
                    .arg(p.join("error.log"))
                    .arg("-c")
                    .arg(p.join("nginx.conf"));
                c
            },
            |addr| match tls {
                None => http_get(addr, "/.sluice-ready").is_ok_and(|r| r.ends_with(&token)),
                Some(_) => {
                    unix_http_get(&ready_sock, "/.sluice-ready").is_ok_and(|r| r.ends_with(&token))
                }
            },
        );
        Some(Nginx { service })
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr
    }

    /// The server's error log.
    pub fn log(&self) -> String {
        self.service.read("error.log")
    }

    /// Stops the server (as dropping it does).
    pub fn stop(self) {}
}

/// A plain HTTP/1.0 GET on a Unix socket; returns the whole response as text.
fn unix_http_get(path: &Path, uri: &str) -> io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.write_all(format!("GET {uri} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------------------------
// TLS certificates

/// A certificate authority and a server certificate it signed, made at test time with the
/// `openssl` command (P-256 keys, valid a day), a second CA that signed nothing here, and a
/// self-signed server certificate as `openssl req -x509` makes them (a CA, CA:TRUE). The
/// server certificates name `apiserver.test` and 127.0.0.1.
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// The name in the server certificate.
    pub const HOST: &'static str = "apiserver.test";

    pub fn new() -> Option<TestPki> {
        let openssl = binary("openssl", "openssl")?;
        let dir = TempDir::new("pki");
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [
            ("ca", "sluice test CA"),
            ("other-ca", "sluice other test CA"),
            ("self-signed", TestPki::HOST),
        ] {
            let (key, pem, subj) = (
                format!("{name}.key"),
                format!("{name}.pem"),
                format!("/CN={cn}"),
            );
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend([
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "1",
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ]);
            let san = format!("subjectAltName=DNS:{},IP:127.0.0.1", TestPki::HOST);
            if name == "self-signed" {
                args.extend(["-addext", &san]);
            } else {
                args.extend(["-addext", "keyUsage=critical,keyCertSign"]);
            }
            run(&args);
        }
        let mut args = vec!["req"];
        args.extend(ec);
        let subj = format!("/CN={}", TestPki::HOST);
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &subj,
        ]);
        run(&args);
        dir.write(
            "server.ext",
            &format!(
                "subjectAltName=DNS:{},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\n",
                TestPki::HOST
            ),
        );
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);
        Some(TestPki { dir })
    }

    /// The CA that signed the server certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing here (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The self-signed server certificate (a CA), and its key.
    pub fn self_signed(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("self-signed.pem"),
            self.dir.path().join("self-signed.key"),
        )
    }
}

/// A plain HTTP/1.0 GET; returns the whole response as text.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut s = connect(addr)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------------------------
// the common part

/// A service process and its directory. Dropping it kills and reaps the process, then
/// removes the directory.
struct Service {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Service {
    /// Spawns `command(port)` on a free port, stdout and stderr in `<dir>/<name>.out`, until
    /// `ready(addr)` is true; a process that exits first (its port was taken) is started
    /// again on another port. Panics with the logs if the service never comes up.
    fn start(
        name: &str,
        dir: TempDir,
        mut command: impl FnMut(u16) -> Command,
        ready: impl Fn(SocketAddr) -> bool,
    ) -> Service {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let out = fs::File::create(dir.path().join(format!("{name}.out"))).expect("output");
            let err = out.try_clone().expect("output");
            let mut child = command(port)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
            let deadline = Instant::now() + START_LIMIT;
            loop {
                // Ready, and still ours: not another process that got the port first.
                if ready(addr) && matches!(child.try_wait(), Ok(None)) {
                    return Service { child, addr, dir };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("{name} exited with {status}:\n{}", logs(dir.path()));
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{name} did not come up on {addr} in {START_LIMIT:?}:\n{}",
                        logs(dir.path())
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{name} did not start in {ATTEMPTS} attempts; the last one: {last}");
    }

    /// A file of the service's directory, empty if missing.
    fn read(&self, file: &str) -> String {
        read_lossy(&self.dir.path().join(file))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a service wrote in `dir`: its output and its logs.
fn logs(dir: &Path) -> String {
    let mut all = String::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return all;
    };
    for p in entries.filter_map(Result::ok).map(|e| e.path()) {
        if p.extension().is_some_and(|x| x == "out" || x == "log") {
            all.push_str(&format!("--- {}\n{}\n", p.display(), read_lossy(&p)));
        }
    }
    all
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The path of `name` in PATH or the sbin directories (a user's PATH often lacks them); if
/// it is missing, None when `SLUICE_SKIP_SERVICES` is set, else a panic saying what to
/// install.
fn binary(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_some() {
        return found;
    }
    if std::env::var_os("SLUICE_SKIP_SERVICES").is_some() {
        eprintln!("skipped: {name} is not installed ({package}) and SLUICE_SKIP_SERVICES is set");
        return None;
    }
    panic!("{name} is not installed: install {package} (the README test command does)");
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Polls `f` until it is true or `limit` passes.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
