//! Boot and stop: turns a validated model into running threads. It checks that every
//! configured feature is one this build acts on, then [`bind`] sizes the limits (maxconn,
//! file descriptors, pipes) and binds one SO_REUSEPORT socket per worker for every bind
//! address (through a [`Binder`]: afresh, or reused by a master-worker master); [`run`]
//! daemonizes, drops privileges and writes the pidfile; [`serve`] spawns one worker per
//! thread, then waits for signals: SIGTERM/SIGINT stop at once, SIGUSR1 stops softly
//! (listeners closed, established connections finish, bounded by `hard-stop-after`). A worker
//! process of master-worker mode runs `serve` too, after [`drop_privileges`]. Only this file
//! knows every thread.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::admin::server::{AdminControl, AdminListener};
use crate::balance::{self, Counters, Pool};
use crate::cli::Cli;
use crate::config::model::{Frontend, Mode, Model};
use crate::health::{self, HealthControl, HealthSetup, HealthThread, WorkerLink};
use crate::sys::signal::{Signal, Signals};
use crate::sys::socket::{self, ListenOpts};
use crate::worker::conn::{SessionRate, Shared};
use crate::worker::listener::Listener;
use crate::worker::{rules, Control, ObserveLink, Worker, WorkerSetup};

/// File descriptors kept aside for everything that is not a connection.
const FD_RESERVE: u64 = 100;

/// What the configuration asks that this build does not do yet: each item refuses the
/// start with its reason (never silently ignored).
pub fn readiness(model: &Model, cli: &Cli) -> Vec<String> {
    let mut errors = Vec::new();
    if cli.takeover_socket.is_some() {
        errors.push(
            "-x (listener takeover through the stats socket) is not available in this build"
                .to_string(),
        );
    }
    for f in &model.frontends {
        let at = |what: &str| {
            format!(
                "{}: frontend '{}': {what} is not available in this build yet",
                f.span, f.name
            )
        };
        if !f.enabled {
            continue;
        }
        if f.mode == Mode::Http {
            // Served by the admin thread.
            continue;
        }
        for r in f
            .tcp_request_connection
            .iter()
            .chain(&f.tcp_request_content)
        {
            if let Some(why) = rules::unsupported_rule(r, &f.acls) {
                errors.push(format!(
                    "{}: frontend '{}': {why} is not available in this build yet",
                    r.span, f.name
                ));
            }
        }
        for u in &f.use_backend {
            if let Some(bad) = rules::use_backend_fetches(u, &f.acls)
                .into_iter()
                .find(|x| !rules::supported_fetch(x))
            {
                errors.push(at(&format!("a 'use_backend' rule on {bad:?}")));
            }
        }
    }
    for b in &model.backends {
        if !b.enabled {
            continue;
        }
        let pool = Pool::from_model(model, b);
        if let Err(e) = balance::for_backend(b, &pool) {
            errors.push(format!("{}: {e}", b.span));
        }
        for r in &b.tcp_request_content {
            if let Some(why) = rules::unsupported_rule(r, &b.acls) {
                errors.push(format!(
                    "{}: backend '{}': {why} is not available in this build yet",
                    r.span, b.name
                ));
            }
        }
    }
    errors
}

/// Where a start's listening sockets come from. [`Fresh`] binds each one (a plain start);
/// the master of master-worker mode hands out the previous worker's sockets where they match,
/// so a reload never closes a socket with connections waiting in its queue.
pub trait Binder {
    /// A listening TCP socket for `addr` with `opts`, the `nth` of that address (one per
    /// worker thread with SO_REUSEPORT).
    fn tcp(
        &mut self,
        addr: SocketAddr,
        opts: &ListenOpts,
        nth: usize,
    ) -> std::io::Result<std::net::TcpListener>;

    /// A listening Unix socket at `path` (a stats socket).
    fn unix(&mut self, path: &Path) -> std::io::Result<std::os::unix::net::UnixListener>;
}

/// Binds every socket afresh.
pub struct Fresh;

impl Binder for Fresh {
    fn tcp(
        &mut self,
        addr: SocketAddr,
        opts: &ListenOpts,
        _nth: usize,
    ) -> std::io::Result<std::net::TcpListener> {
        socket::listen(addr, opts)
    }

    fn unix(&mut self, path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
        socket::listen_unix(path)
    }
}

/// What a start binds and sizes before any thread exists: done by the process itself, or
/// by the master before it forks the worker process that [`serve`]s it.
pub struct Bound {
    lim: Limits,
    per_worker: Vec<Vec<Listener>>,
    admin: Vec<AdminListener>,
}

impl Bound {
    /// Every descriptor this start holds (a forked worker keeps these and closes the rest).
    pub fn fds(&self) -> Vec<RawFd> {
        self.per_worker
            .iter()
            .flatten()
            .filter_map(Listener::fd)
            .chain(self.admin.iter().map(AdminListener::fd))
            .collect()
    }
}

/// Sizes the limits, then binds every listener and stats socket of `model`: nothing is
/// started yet, and an error leaves nothing behind.
pub fn bind(model: &Model, binder: &mut dyn Binder) -> Result<Bound, String> {
    let nlisten: usize = model
        .frontends
        .iter()
        .map(|f| f.binds.iter().map(|b| b.addrs.len()).sum::<usize>())
        .sum();
    let lim = limits(model, nlisten);
    let per_worker = bind_all(model, lim.threads, lim.maxconn, binder)?;
    let admin = if crate::admin::needed(model) {
        crate::admin::server::bind(model, binder)?
    } else {
        Vec::new()
    };
    Ok(Bound {
        lim,
        per_worker,
        admin,
    })
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Soft stop (SIGUSR1): the listeners closed and every connection finished.
    Softly,
    /// Hard stop on this signal (SIGTERM, SIGINT).
    Now(Signal),
    /// A worker process whose master is gone (its link closed): stopped at once.
    Orphaned,
}

/// A sized process: limits derived from the model and the machine.
struct Limits {
    threads: usize,
    maxconn: usize,
    maxpipes: usize,
}

fn limits(model: &Model, listeners: usize) -> Limits {
    let g = &model.global;
    let threads = g
        .nbthread
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let wanted_fds = g.ulimit_n.unwrap_or_else(|| {
        let m = u64::from(g.maxconn.unwrap_or(4_096));
        let pipes = u64::from(g.maxpipes.unwrap_or(g.maxconn.unwrap_or(4_096) / 4));
        m * 2 + pipes * 2 + listeners as u64 + FD_RESERVE
    });
    let have = match g.ulimit_n {
        // `ulimit-n` sets the limit exactly, lower or higher, as HAProxy does.
        Some(n) => set_nofile(n),
        None => socket::raise_nofile(wanted_fds).unwrap_or_else(|_| socket::nofile_limit()),
    };
    if have < wanted_fds {
        log::warn!(
            "the file-descriptor limit is {have}, below the {wanted_fds} that maxconn needs: \
             raise it (ulimit -n) or lower maxconn"
        );
    }
    let fd_maxconn = ((have.saturating_sub(FD_RESERVE + listeners as u64)) / 3).max(1) as usize;
    let maxconn = match g.maxconn {
        Some(m) => m as usize,
        None => fd_maxconn.min(4_096 * threads.max(1)),
    };
    let maxpipes = g.maxpipes.map_or(maxconn / 4, |p| p as usize);
    Limits {
        threads,
        maxconn,
        maxpipes,
    }
}

/// Sets RLIMIT_NOFILE's soft limit to `n` (raising the hard limit if needed and allowed);
/// returns the resulting soft limit.
fn set_nofile(n: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(n, |(_, h)| h);
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, n, hard.max(n)) {
        log::warn!("ulimit-n {n}: {e}");
        let _ = socket::raise_nofile(n);
    }
    socket::nofile_limit()
}

pub(crate) fn listen_opts(
    model: &Model,
    f: &Frontend,
    b: &crate::config::model::Bind,
    maxconn: usize,
) -> ListenOpts {
    ListenOpts {
        reuseport: !model.global.noreuseport,
        backlog: b
            .backlog
            .or(f.backlog)
            .or(f.maxconn)
            .unwrap_or(maxconn.min(u32::MAX as usize) as u32),
        v6only: if b.v6only {
            Some(true)
        } else if b.v4v6 {
            Some(false)
        } else {
            None
        },
        interface: b.interface.clone(),
        defer_accept: b.defer_accept,
        tfo: b.tfo,
        mss: b.mss,
        transparent: b.transparent,
    }
}

/// Binds every listening socket: `threads` per address with SO_REUSEPORT (one each), or one
/// shared socket cloned for every worker with `noreuseport`.
fn bind_all(
    model: &Model,
    threads: usize,
    maxconn: usize,
    binder: &mut dyn Binder,
) -> Result<Vec<Vec<Listener>>, String> {
    let mut per_worker: Vec<Vec<Listener>> = (0..threads).map(|_| Vec::new()).collect();
    for f in model
        .frontends
        .iter()
        .filter(|f| f.enabled && f.mode == Mode::Tcp)
    {
        for b in &f.binds {
            let opts = listen_opts(model, f, b, maxconn);
            for addr in &b.addrs {
                let err = |e: std::io::Error| {
                    format!("{}: frontend '{}': cannot bind {addr}: {e}", b.span, f.name)
                };
                let mut shared: Option<std::net::TcpListener> = None;
                for (nth, w) in per_worker.iter_mut().enumerate() {
                    let sock = if opts.reuseport {
                        binder.tcp(*addr, &opts, nth).map_err(err)?
                    } else {
                        match &shared {
                            Some(s) => s.try_clone().map_err(err)?,
                            None => {
                                let s = binder.tcp(*addr, &opts, 0).map_err(err)?;
                                shared = Some(s.try_clone().map_err(err)?);
                                s
                            }
                        }
                    };
                    // Accepted sockets inherit these on Linux: no setsockopt per connection.
                    // Both ways: a socket kept from the previous worker may have had another.
                    let opts = socket2::SockRef::from(&sock);
                    opts.set_nodelay(true).map_err(err)?;
                    opts.set_keepalive(f.client.tcpka).map_err(err)?;
                    w.push(Listener::new(sock, f.id, b.accept_proxy).map_err(err)?);
                }
            }
        }
    }
    Ok(per_worker)
}

/// Applies `chroot`, `group`/`gid` and `user`/`uid`, once everything is bound.
pub fn drop_privileges(model: &Model) -> Result<(), String> {
    use nix::unistd::{chroot, setgid, setgroups, setuid, Gid, Group, Uid, User};
    let g = &model.global;
    let gid = match (&g.group, g.gid) {
        (Some(name), _) => Some(
            Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| format!("unknown group '{name}'"))?
                .gid,
        ),
        (None, Some(id)) => Some(Gid::from_raw(id)),
        _ => None,
    };
    let uid = match (&g.user, g.uid) {
        (Some(name), _) => Some(
            User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| format!("unknown user '{name}'"))?
                .uid,
        ),
        (None, Some(id)) => Some(Uid::from_raw(id)),
        _ => None,
    };
    if let Some(dir) = &g.chroot {
        chroot(dir).map_err(|e| format!("chroot {}: {e}", dir.display()))?;
        std::env::set_current_dir("/").map_err(|e| format!("chdir / after chroot: {e}"))?;
    }
    if let Some(gid) = gid {
        setgroups(&[gid]).map_err(|e| format!("setgroups: {e}"))?;
        setgid(gid).map_err(|e| format!("setgid {gid}: {e}"))?;
    }
    if let Some(uid) = uid {
        setuid(uid).map_err(|e| format!("setuid {uid}: {e}"))?;
    }
    Ok(())
}

fn pin_thread(model: &Model, thread: usize) {
    let n = thread as u32 + 1;
    let cpus: Vec<u32> = model
        .global
        .cpu_map
        .iter()
        .filter(|m| m.threads.contains(&n))
        .flat_map(|m| m.cpus.iter().copied())
        .collect();
    if cpus.is_empty() {
        return;
    }
    let mut set = nix::sched::CpuSet::new();
    for c in &cpus {
        if set.set(*c as usize).is_err() {
            log::warn!("cpu-map: CPU {c} is out of range");
        }
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        log::warn!("cpu-map: thread {n}: {e}");
    }
}

struct WorkerHandle {
    tx: Sender<Control>,
    waker: Arc<Waker>,
    thread: JoinHandle<Result<(), String>>,
}

impl WorkerHandle {
    fn send(&self, c: Control) {
        let _ = self.tx.send(c);
        let _ = self.waker.wake();
    }
}

/// The reason a start is refused, from [`readiness`]'s list.
pub fn refusal(errors: &[String]) -> String {
    format!(
        "cannot start: this configuration uses what this build does not do yet:\n  {}",
        errors.join("\n  ")
    )
}

/// Runs the load balancer in this process (no master) until it is stopped.
pub fn run(model: Arc<Model>, cli: &Cli) -> Result<(), String> {
    let errors = readiness(&model, cli);
    if !errors.is_empty() {
        return Err(refusal(&errors));
    }
    if let Err(e) = crate::sys::signal::ignore_sigpipe() {
        log::warn!("ignoring SIGPIPE: {e}");
    }
    let bound = bind(&model, &mut Fresh)?;
    if cli.daemon || model.global.daemon {
        crate::sys::signal::daemonize().map_err(|e| format!("daemonize: {e}"))?;
    }
    let mut signals = Signals::block_and_open().map_err(|e| format!("signals: {e}"))?;
    drop_privileges(&model)?;
    let pidfile = cli.pidfile.clone().or_else(|| model.global.pidfile.clone());
    if let Some(p) = &pidfile {
        std::fs::File::create(p)
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .map_err(|e| format!("pidfile {}: {e}", p.display()))?;
    }
    let result = serve(model, bound, &mut signals, None, || {
        for &pid in &cli.soft_stop_pids {
            if let Err(e) = crate::sys::signal::send_signal(pid, Signal::SIGUSR1) {
                log::warn!("-sf {pid}: {e}");
            }
        }
        for &pid in &cli.hard_stop_pids {
            if let Err(e) = crate::sys::signal::send_signal(pid, Signal::SIGTERM) {
                log::warn!("-st {pid}: {e}");
            }
        }
    });
    // After a reload (-sf) the pidfile names the new process: leave it alone then.
    let ours = std::process::id().to_string();
    if let Some(p) = pidfile
        .as_ref()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.trim() == ours))
    {
        let _ = std::fs::remove_file(p);
    }
    result.map(drop)
}

/// Starts the threads on what [`bind`] prepared (workers, health, admin, logs) and runs them
/// until a signal stops them, or until `master` (a worker process's link to its master)
/// closes. `on_started` runs once every thread is up, after the start line is logged.
/// Privileges are already dropped.
pub fn serve(
    model: Arc<Model>,
    bound: Bound,
    signals: &mut Signals,
    master: Option<&UnixStream>,
    on_started: impl FnOnce(),
) -> Result<Stopped, String> {
    let Bound {
        lim,
        per_worker,
        admin: admin_listeners,
    } = bound;
    let counters = Counters::leak(model.servers.len(), model.backends.len());
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        actconn: AtomicUsize::new(0),
        maxconn: lim.maxconn,
        feconn: model.frontends.iter().map(|_| AtomicU32::new(0)).collect(),
        fe_maxconn: model
            .frontends
            .iter()
            .map(|f| f.maxconn.unwrap_or(0))
            .collect(),
        sess_rate: model
            .frontends
            .iter()
            .map(|f| f.rate_limit_sessions.map(SessionRate::new))
            .collect(),
    }));
    // The stick tables: one store for every worker and the admin thread.
    let tables: &'static crate::stick::Tables =
        Box::leak(Box::new(crate::stick::Tables::from_model(&model)));

    let binds: Vec<String> = model
        .frontends
        .iter()
        .filter(|f| f.enabled && f.mode == Mode::Tcp)
        .flat_map(|f| {
            f.binds
                .iter()
                .flat_map(move |b| b.addrs.iter().map(move |a| format!("{}@{a}", f.name)))
        })
        .collect();
    // Every inbox first, so the health thread and the workers can reach each other.
    let mut inboxes = Vec::with_capacity(lim.threads);
    for _ in 0..lim.threads {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), Token(usize::MAX)).map_err(|e| format!("waker: {e}"))?,
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        inboxes.push((poll, waker, tx, rx));
    }
    let views: health::Views = Arc::new(std::sync::Mutex::new(health::Published::default()));
    let health = if health::needed(&model) || crate::admin::needed(&model) {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), health::WAKER).map_err(|e| format!("waker: {e}"))?,
        );
        let (obs_tx, obs_rx) = crossbeam_channel::unbounded();
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let links = inboxes
            .iter()
            .map(|(_, w, tx, _)| WorkerLink {
                tx: tx.clone(),
                waker: Arc::clone(w),
            })
            .collect();
        let thread = HealthThread::new(HealthSetup {
            model: Arc::clone(&model),
            poll,
            workers: links,
            observations: obs_rx,
            control: ctl_rx,
            views: Arc::clone(&views),
        });
        Some((
            thread,
            ObserveLink {
                tx: obs_tx,
                waker: Arc::clone(&waker),
            },
            ctl_tx,
            waker,
        ))
    } else {
        None
    };
    let observe = health.as_ref().map(|(_, o, _, _)| o.clone());
    // The log thread, when some frontend logs; workers hand it lines without blocking.
    let (log_tx, log_thread) = if model.frontends.iter().any(|f| !f.log.targets.is_empty()) {
        let (tx, rx) = crossbeam_channel::bounded(16_384);
        let m = Arc::clone(&model);
        let t = std::thread::Builder::new()
            .name("sluice-log".to_string())
            .spawn(move || crate::admin::logs::run(m, rx))
            .map_err(|e| format!("spawn log thread: {e}"))?;
        (Some(tx), Some(t))
    } else {
        (None, None)
    };
    let mut workers = Vec::with_capacity(lim.threads);
    for (i, ((poll, waker, tx, rx), listeners)) in inboxes.into_iter().zip(per_worker).enumerate() {
        let setup = WorkerSetup {
            id: i,
            poll,
            model: Arc::clone(&model),
            counters,
            shared,
            listeners,
            control: rx,
            maxpipes: (lim.maxpipes / lim.threads).max(1),
            observe: observe.clone(),
            logs: log_tx.clone(),
            tables,
        };
        let worker = Worker::new(setup)?;
        let m = Arc::clone(&model);
        let thread = std::thread::Builder::new()
            .name(format!("sluice-w{i}"))
            .spawn(move || {
                pin_thread(&m, i);
                worker.run().map_err(|e| format!("worker {i}: {e}"))
            })
            .map_err(|e| format!("spawn worker {i}: {e}"))?;
        workers.push(WorkerHandle { tx, waker, thread });
    }
    let health_link = health
        .as_ref()
        .map(|(_, _, ctl, waker)| (ctl.clone(), Arc::clone(waker)));
    let health = match health {
        Some((thread, _, ctl, waker)) => {
            let handle = std::thread::Builder::new()
                .name("sluice-health".to_string())
                .spawn(move || thread.run())
                .map_err(|e| format!("spawn health thread: {e}"))?;
            Some((handle, ctl, waker))
        }
        None => None,
    };
    // The admin thread: stats sockets and stats/metrics listeners.
    let admin = if admin_listeners.is_empty() {
        None
    } else {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), crate::admin::server::WAKER)
                .map_err(|e| format!("waker: {e}"))?,
        );
        let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
        let sources = crate::admin::collect::Sources {
            model: Arc::clone(&model),
            counters,
            shared,
            views: Arc::clone(&views),
            workers: workers
                .iter()
                .map(|w| WorkerLink {
                    tx: w.tx.clone(),
                    waker: Arc::clone(&w.waker),
                })
                .collect(),
            started: Instant::now(),
            started_wall: std::time::SystemTime::now(),
            nbthread: lim.threads as u32,
            maxsock: socket::nofile_limit(),
            max_pipes: lim.maxpipes as u64,
        };
        let thread = crate::admin::server::AdminThread::new(
            crate::admin::server::AdminSetup {
                poll,
                sources,
                health: health_link.clone(),
                stop: stop_rx,
                tables,
            },
            admin_listeners,
        );
        let handle = std::thread::Builder::new()
            .name("sluice-admin".to_string())
            .spawn(move || thread.run())
            .map_err(|e| format!("spawn admin thread: {e}"))?;
        Some((handle, stop_tx, waker))
    };
    log::info!(
        "sluice {} started: {} worker(s), maxconn {}, binds: {}",
        crate::VERSION,
        lim.threads,
        lim.maxconn,
        if binds.is_empty() {
            "none".to_string()
        } else {
            binds.join(", ")
        }
    );
    on_started();

    drop(log_tx);
    let admin_link = admin
        .as_ref()
        .map(|(_, stop, waker)| (stop.clone(), Arc::clone(waker)));
    let result = supervise(&model, signals, master, workers, admin_link);
    if let Some((handle, stop, waker)) = admin {
        let _ = stop.send(AdminControl::Stop);
        let _ = waker.wake();
        let _ = handle.join();
    }
    if let Some(t) = log_thread {
        // The workers are gone, and their senders with them: the log thread drains and ends.
        let _ = t.join();
    }
    if let Some((handle, ctl, waker)) = health {
        let _ = ctl.send(HealthControl::Stop);
        let _ = waker.wake();
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("health thread: {e}"),
            Err(_) => log::error!("the health thread panicked"),
        }
    }
    let stopped = result?;
    leak_check(&model, counters, shared)?;
    Ok(stopped)
}

/// Once every worker has stopped, every count must be back to zero: a leaked lease or slot
/// is a bug worth failing the exit status for.
fn leak_check(
    model: &Model,
    counters: &'static Counters,
    shared: &'static Shared,
) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let mut leaks = Vec::new();
    for s in &model.servers {
        let n = counters.active(s.id);
        if n != 0 {
            leaks.push(format!(
                "server {}/{}: {n}",
                model.backend(s.backend).name,
                s.name
            ));
        }
    }
    let act = shared.actconn.load(Ordering::Relaxed);
    if act != 0 {
        leaks.push(format!("process: {act}"));
    }
    if leaks.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "connection count leak after stop: {}",
            leaks.join(", ")
        ))
    }
}

/// Waits for signals (and for the master's link to close) and for the workers to finish.
fn supervise(
    model: &Model,
    signals: &mut Signals,
    master: Option<&UnixStream>,
    mut workers: Vec<WorkerHandle>,
    admin: Option<(Sender<AdminControl>, Arc<Waker>)>,
) -> Result<Stopped, String> {
    const SIGNALS: Token = Token(0);
    const MASTER: Token = Token(1);
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    poll.registry()
        .register(signals, SIGNALS, Interest::READABLE)
        .map_err(|e| format!("register signals: {e}"))?;
    if let Some(link) = master {
        poll.registry()
            .register(&mut SourceFd(&link.as_raw_fd()), MASTER, Interest::READABLE)
            .map_err(|e| format!("register the master link: {e}"))?;
    }
    let mut events = Events::with_capacity(16);
    let mut hard_stop_at: Option<Instant> = None;
    let mut failure: Option<String> = None;
    let mut stopped = Stopped::Softly;
    let mut orphaned = false;
    let stop_now = |workers: &[WorkerHandle]| {
        for w in workers {
            w.send(Control::Stop);
        }
    };
    loop {
        let _ = poll.poll(&mut events, Some(Duration::from_millis(100)));
        if let (Some(mut link), false) = (master, orphaned) {
            if events.iter().any(|e| e.token() == MASTER) && master_gone(&mut link) {
                log::warn!("the master process is gone: stopping now");
                orphaned = true;
                stopped = Stopped::Orphaned;
                stop_now(&workers);
            }
        }
        loop {
            match signals.read() {
                Ok(Some(sig @ (Signal::SIGTERM | Signal::SIGINT))) => {
                    log::info!("stopping now (SIGTERM/SIGINT)");
                    stopped = Stopped::Now(sig);
                    stop_now(&workers);
                }
                Ok(Some(Signal::SIGUSR1)) => {
                    log::info!("soft stop (SIGUSR1): closing listeners, finishing connections");
                    for w in &workers {
                        w.send(Control::SoftStop);
                    }
                    if let Some((tx, waker)) = &admin {
                        let _ = tx.send(AdminControl::CloseListeners);
                        let _ = waker.wake();
                    }
                    if let Some(after) = model.global.hard_stop_after {
                        hard_stop_at.get_or_insert(Instant::now() + after);
                    }
                }
                Ok(Some(other)) => log::debug!("ignoring {other}"),
                Ok(None) => break,
                Err(e) => {
                    log::warn!("reading signals: {e}");
                    break;
                }
            }
        }
        if hard_stop_at.is_some_and(|t| Instant::now() >= t) {
            log::warn!("hard-stop-after reached: closing the remaining connections");
            for w in &workers {
                w.send(Control::Stop);
            }
            hard_stop_at = None;
        }
        let mut i = 0;
        while i < workers.len() {
            if workers[i].thread.is_finished() {
                let w = workers.swap_remove(i);
                match w.thread.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        log::error!("{e}");
                        failure.get_or_insert(e);
                    }
                    Err(_) => {
                        failure.get_or_insert_with(|| "a worker panicked".to_string());
                    }
                }
                if failure.is_some() {
                    for w in &workers {
                        w.send(Control::Stop);
                    }
                }
            } else {
                i += 1;
            }
        }
        if workers.is_empty() {
            log::info!("all workers stopped");
            return match failure {
                Some(e) => Err(e),
                None => Ok(stopped),
            };
        }
    }
}

/// Reads what the master's link holds: true once it is closed (the master is gone). The
/// master never writes to its workers, so anything read is ignored.
fn master_gone(link: &mut &UnixStream) -> bool {
    use std::io::Read as _;
    let mut buf = [0u8; 64];
    loop {
        match link.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}
