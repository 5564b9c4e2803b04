//! Master-worker mode (`-W`, `-Ws`, `master-worker`), as HAProxy's management guide describes
//! it: a master process that forwards no traffic and runs one worker process, the
//! single-process sluice of [`crate::supervisor`] (worker threads, health, admin).
//!
//! - Workers are forked from the master, which never starts a thread (fork beside threads is
//!   unsafe; [`crate::sys::process::fork_worker`] checks). The master binds every listening
//!   socket before the fork and keeps a duplicate ([`sockets`]), so a reload hands the same
//!   sockets to the new worker and no connection is refused.
//! - Each worker has a socketpair link to the master: it writes `ready` once its listeners are
//!   bound and its threads started; the master closing its end (the master died) stops it.
//! - SIGUSR2 or SIGHUP: reload. The master reads the configuration again; if it is invalid,
//!   or its sockets cannot be bound, or the new worker does not get ready (it exits, or
//!   [`START_LIMIT`] passes), the reload fails and the current worker serves on unchanged.
//!   Otherwise the old worker gets SIGUSR1 (soft stop, bounded by `hard-stop-after`) once the
//!   new one is ready.
//! - SIGTERM, SIGINT, SIGUSR1: sent on to every worker; the master leaves when all have.
//! - A current worker that ends with a failure (not 0, 130 or 143) makes the master stop the
//!   others and leave with that code (`exit-on-failure`), unless `master-worker
//!   no-exit-on-failure`; the log lines are HAProxy 2.6's.
//! - `-Ws` tells systemd through [`notify`].

pub mod notify;
pub mod sockets;

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::cli::Cli;
use crate::config::{self, LoadOptions, Model};
use crate::supervisor::{self, Bound, Stopped};
use crate::sys::process::{self, Forked, Reap, Reaped};
use crate::sys::signal::{self, Signal, Signals};
use notify::Notify;
use sockets::Sockets;

/// How long a new worker may take to get ready (listeners bound, threads started) before
/// the master kills it and the start or reload fails.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// What a worker writes on its link once it is ready.
const READY: &[u8] = b"ready\n";

const SIGNALS: Token = Token(usize::MAX);

/// True when this start runs a master (`-W`, `-Ws` or `master-worker`).
pub fn wanted(model: &Model, cli: &Cli) -> bool {
    model.global.master_worker || cli.master_worker
}

/// Runs the master until its last worker has exited; returns the exit code (HAProxy's:
/// 0, or the code of the current worker that failed).
pub fn run(model: Arc<Model>, cli: &Cli) -> Result<u8, String> {
    let errors = supervisor::readiness(&model, cli);
    if !errors.is_empty() {
        return Err(supervisor::refusal(&errors));
    }
    // What the master was started with stays open in its workers too (as HAProxy's); only
    // the master's own descriptors are closed there.
    let inherited = process::open_fds().map_err(|e| e.to_string())?;
    if let Err(e) = signal::ignore_sigpipe() {
        log::warn!("ignoring SIGPIPE: {e}");
    }
    let (bound, sockets) = Sockets::default().bind(&model)?;
    if cli.daemon || model.global.daemon {
        signal::daemonize().map_err(|e| format!("daemonize: {e}"))?;
    }
    let mut signals =
        Signals::block_and_open_with(&[Signal::SIGCHLD]).map_err(|e| format!("signals: {e}"))?;
    let pidfile = cli.pidfile.clone().or_else(|| model.global.pidfile.clone());
    if let Some(p) = &pidfile {
        std::fs::File::create(p)
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .map_err(|e| format!("pidfile {}: {e}", p.display()))?;
    }
    let notify = if cli.systemd {
        match Notify::from_env() {
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                log::warn!("{e}: -Ws runs as -W");
                None
            }
            None => None,
        }
    } else {
        None
    };
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| format!("register signals: {e}"))?;
    let first = spawn(&poll, &model, bound, &inherited)?;
    let mut master = Master {
        cli,
        inherited,
        poll,
        model,
        sockets,
        current: Some(first),
        starting: None,
        leaving: Vec::new(),
        stopping: false,
        exit_code: None,
        reload_again: false,
        notify,
    };
    let code = master.run(&mut signals);
    let ours = std::process::id().to_string();
    if let Some(p) = pidfile
        .as_ref()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.trim() == ours))
    {
        let _ = std::fs::remove_file(p);
    }
    Ok(code)
}

/// A worker process as the master sees it.
struct Worker {
    pid: i32,
    /// The master's end of the socketpair; closing it stops the worker.
    link: UnixStream,
    ready: bool,
    /// Killed if not ready by then; `None` once ready (or killed).
    deadline: Option<Instant>,
}

/// A reload's new worker, and what becomes current with it.
struct Starting {
    worker: Worker,
    model: Arc<Model>,
    sockets: Sockets,
}

struct Master<'a> {
    cli: &'a Cli,
    /// Descriptors the master was started with: its workers keep them.
    inherited: Vec<RawFd>,
    poll: Poll,
    /// The current worker's configuration and sockets.
    model: Arc<Model>,
    sockets: Sockets,
    /// The worker serving the current configuration (or starting with it, at first).
    current: Option<Worker>,
    /// A reload's worker, until it is ready.
    starting: Option<Starting>,
    /// Old workers finishing their connections; their links stay open until they exit.
    leaving: Vec<Worker>,
    /// Stopping: no reload any more, leave when the last worker has.
    stopping: bool,
    /// HAProxy's rule: the first failure code of a current worker (not 0 nor 143).
    exit_code: Option<i32>,
    /// A reload was asked while one was under way: run it once that one is done.
    reload_again: bool,
    notify: Option<Notify>,
}

impl Master<'_> {
    fn run(&mut self, signals: &mut Signals) -> u8 {
        let mut events = Events::with_capacity(16);
        loop {
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(Duration::from_millis(100)))
            {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::warn!("poll: {e}");
                }
            }
            for pid in events
                .iter()
                .filter(|e| e.token() != SIGNALS)
                .map(|e| e.token().0 as i32)
            {
                self.on_link(pid);
            }
            loop {
                match signals.read() {
                    Ok(Some(Signal::SIGUSR2 | Signal::SIGHUP)) => self.reload(),
                    Ok(Some(sig @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGUSR1))) => {
                        self.stop(sig)
                    }
                    Ok(Some(Signal::SIGCHLD)) => {}
                    Ok(Some(other)) => log::debug!("ignoring {other}"),
                    Ok(None) => break,
                    Err(e) => {
                        log::warn!("reading signals: {e}");
                        break;
                    }
                }
            }
            self.check_deadlines();
            // Reap on every turn: SIGCHLDs coalesce, waitpid does not miss any.
            loop {
                match process::reap() {
                    Ok(Reap::Exited(r)) => self.on_exit(r),
                    Ok(Reap::Running) => break,
                    Ok(Reap::NoChild) => {
                        let code = self.exit_code.filter(|&c| c > 0).unwrap_or(0);
                        log::warn!("All workers exited. Exiting... ({code})");
                        return u8::try_from(code).unwrap_or(u8::MAX);
                    }
                    Err(e) => {
                        log::error!("{e}");
                        break;
                    }
                }
            }
        }
    }

    /// The link of worker `pid` is readable: it is ready, or it closed its end.
    fn on_link(&mut self, pid: i32) {
        let Some(w) = self.worker_mut(pid) else {
            return;
        };
        let mut buf = [0u8; 64];
        let mut ready = false;
        loop {
            match w.link.read(&mut buf) {
                // Closed: the worker is exiting and reaping reports it. Edge-triggered, the
                // event comes once; the registration goes with the descriptor.
                Ok(0) => break,
                Ok(n) => ready |= buf[..n].contains(&b'\n'),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if ready && !w.ready {
            w.ready = true;
            w.deadline = None;
            self.on_ready(pid);
        }
    }

    fn worker_mut(&mut self, pid: i32) -> Option<&mut Worker> {
        if let Some(w) = self.current.as_mut().filter(|w| w.pid == pid) {
            return Some(w);
        }
        if let Some(s) = self.starting.as_mut().filter(|s| s.worker.pid == pid) {
            return Some(&mut s.worker);
        }
        self.leaving.iter_mut().find(|w| w.pid == pid)
    }

    fn on_ready(&mut self, pid: i32) {
        log::info!("Loading success.");
        if self.current.as_ref().is_some_and(|w| w.pid == pid) {
            // The first worker: apply -sf / -st as a plain start would.
            for &old in &self.cli.soft_stop_pids {
                if let Err(e) = signal::send_signal(old, Signal::SIGUSR1) {
                    log::warn!("-sf {old}: {e}");
                }
            }
            for &old in &self.cli.hard_stop_pids {
                if let Err(e) = signal::send_signal(old, Signal::SIGTERM) {
                    log::warn!("-st {old}: {e}");
                }
            }
        } else if let Some(new) = self.starting.take() {
            debug_assert_eq!(new.worker.pid, pid);
            if let Some(old) = self.current.replace(new.worker) {
                if let Err(e) = signal::send_signal(old.pid, Signal::SIGUSR1) {
                    log::warn!("soft stop of the former worker: {e}");
                }
                self.leaving.push(old);
            }
            self.model = new.model;
            self.sockets = new.sockets;
        }
        if let Some(n) = &self.notify {
            n.ready();
        }
        self.reload_if_asked();
    }

    /// SIGUSR2 / SIGHUP: read the configuration again and start a worker with it.
    fn reload(&mut self) {
        if self.stopping {
            log::info!("stopping: reload ignored");
            return;
        }
        if self.starting.is_some() || self.current.as_ref().is_some_and(|w| !w.ready) {
            log::info!("a worker is still starting: the reload will follow it");
            self.reload_again = true;
            return;
        }
        log::info!("Reloading sluice");
        if let Some(n) = &self.notify {
            n.send("RELOADING=1");
        }
        match self.prepare() {
            Ok(starting) => self.starting = Some(starting),
            Err(lines) => {
                for line in lines.lines() {
                    log::error!("{line}");
                }
                self.reload_failed();
            }
        }
    }

    fn prepare(&mut self) -> Result<Starting, String> {
        let opts = LoadOptions {
            ignore_resolve_errors: self.cli.ignore_resolve_errors,
        };
        let (model, diags) = config::load(&self.cli.files, &opts).map_err(|diags| {
            diags
                .items
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        for d in &diags.items {
            log::warn!("{d}");
        }
        let errors = supervisor::readiness(&model, self.cli);
        if !errors.is_empty() {
            return Err(supervisor::refusal(&errors));
        }
        let (bound, sockets) = self.sockets.bind(&model)?;
        let worker = spawn(&self.poll, &model, bound, &self.inherited)?;
        Ok(Starting {
            worker,
            model,
            sockets,
        })
    }

    /// The current worker keeps serving; systemd hears it is ready again, as HAProxy says.
    fn reload_failed(&mut self) {
        log::warn!("Loading failure!");
        if let Some(n) = &self.notify {
            n.ready();
        }
        self.reload_if_asked();
    }

    fn reload_if_asked(&mut self) {
        if std::mem::take(&mut self.reload_again) {
            self.reload();
        }
    }

    /// SIGTERM, SIGINT (hard stop) or SIGUSR1 (soft stop): passed to every worker.
    fn stop(&mut self, sig: Signal) {
        log::warn!("Exiting Master process...");
        if !self.stopping {
            if let Some(n) = &self.notify {
                n.send("STOPPING=1");
            }
        }
        self.halt();
        self.signal_all(sig);
    }

    /// No reload any more, and the listening sockets close here: once the workers have
    /// closed theirs too, connections are refused instead of waiting for nobody.
    fn halt(&mut self) {
        self.stopping = true;
        self.reload_again = false;
        self.sockets = Sockets::default();
        if let Some(s) = &mut self.starting {
            s.sockets = Sockets::default();
        }
    }

    /// Every worker: current, starting, leaving.
    fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.current
            .iter()
            .chain(self.starting.iter().map(|s| &s.worker))
            .chain(&self.leaving)
    }

    fn signal_all(&self, sig: Signal) {
        for pid in self.workers().map(|w| w.pid) {
            if let Err(e) = signal::send_signal(pid, sig) {
                log::warn!("{e}");
            }
        }
    }

    /// A worker that is not ready in time is killed; its exit is reported as any other.
    fn check_deadlines(&mut self) {
        let now = Instant::now();
        // Leaving workers were ready: they have no deadline.
        let late = self
            .workers()
            .filter(|w| w.deadline.is_some_and(|d| d <= now))
            .map(|w| w.pid)
            .collect::<Vec<_>>();
        for pid in late {
            log::error!(
                "New worker ({pid}) not ready after {}s: killing it",
                START_LIMIT.as_secs()
            );
            let _ = signal::send_signal(pid, Signal::SIGKILL);
            if let Some(w) = self.worker_mut(pid) {
                w.deadline = None;
            }
        }
    }

    fn on_exit(&mut self, r: Reaped) {
        let Reaped { pid, code } = r;
        let text = process::status_text(code);
        if self.current.as_ref().is_some_and(|w| w.pid == pid) {
            self.current = None;
            log::error!("Current worker ({pid}) exited with code {code} ({text})");
            if self.starting.is_none() {
                // Nobody accepts on the kept sockets any more: close them, so that clients
                // are refused rather than left waiting (a later reload binds again).
                self.sockets = Sockets::default();
            }
            if code != 0 && code != 130 && code != 143 && !self.model.global.no_exit_on_failure {
                log::error!("exit-on-failure: killing every processes with SIGTERM");
                self.halt();
                self.signal_all(Signal::SIGTERM);
            }
            // 0 and SIGTERM (143) are normal ends; SIGINT (130) and the rest are reported.
            if self.exit_code.is_none() && code != 0 && code != 143 {
                self.exit_code = Some(code);
            }
        } else if self.starting.as_ref().is_some_and(|s| s.worker.pid == pid) {
            self.starting = None;
            if self.stopping {
                log::warn!("Former worker ({pid}) exited with code {code} ({text})");
            } else {
                log::error!(
                    "New worker ({pid}) exited with code {code} ({text}) before it was ready"
                );
                self.reload_failed();
            }
        } else if let Some(i) = self.leaving.iter().position(|w| w.pid == pid) {
            self.leaving.swap_remove(i);
            log::warn!("Former worker ({pid}) exited with code {code} ({text})");
        } else {
            log::warn!("Process {pid} exited with code {code} ({text})");
        }
    }
}

/// Forks a worker process that serves `bound` with `model`; returns it once forked (not yet
/// ready).
fn spawn(
    poll: &Poll,
    model: &Arc<Model>,
    bound: Bound,
    inherited: &[RawFd],
) -> Result<Worker, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // Nothing of the master's buffered output may be written twice.
    let _ = std::io::stdout().flush();
    match process::fork_worker().map_err(|e| format!("cannot start a worker: {e}"))? {
        Forked::Child => {
            let mut keep = bound.fds();
            keep.push(theirs.as_raw_fd());
            keep.extend_from_slice(inherited);
            let code = match process::close_fds_except(&keep) {
                Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker(Arc::clone(model), bound, theirs)
                }))
                .unwrap_or(70),
                Err(e) => {
                    log::error!("worker: {e}");
                    1
                }
            };
            // Never back into the master's frames: their objects own descriptors the
            // worker has closed.
            std::process::exit(code)
        }
        Forked::Parent(pid) => {
            drop(theirs);
            drop(bound);
            ours.set_nonblocking(true)
                .map_err(|e| format!("worker link: {e}"))?;
            poll.registry()
                .register(
                    &mut SourceFd(&ours.as_raw_fd()),
                    Token(pid as usize),
                    Interest::READABLE,
                )
                .map_err(|e| format!("register the worker link: {e}"))?;
            log::info!("New worker ({pid}) forked");
            Ok(Worker {
                pid,
                link: ours,
                ready: false,
                deadline: Some(Instant::now() + START_LIMIT),
            })
        }
    }
}

/// The worker process, after the fork: serves until stopped; returns its exit code (0 after
/// a soft stop, 128 + the signal after a hard one, as HAProxy's workers, 1 on an error).
fn worker(model: Arc<Model>, bound: Bound, link: UnixStream) -> i32 {
    if let Err(e) = signal::unblock(&[Signal::SIGCHLD]) {
        log::warn!("{e}");
    }
    let mut signals = match Signals::block_and_open() {
        Ok(s) => s,
        Err(e) => {
            log::error!("signals: {e}");
            return 1;
        }
    };
    if let Err(e) = supervisor::drop_privileges(&model) {
        log::error!("{e}");
        return 1;
    }
    if let Err(e) = link.set_nonblocking(true) {
        log::error!("master link: {e}");
        return 1;
    }
    let served = supervisor::serve(model, bound, &mut signals, Some(&link), || {
        if let Err(e) = (&link).write_all(READY) {
            log::error!("telling the master this worker is ready: {e}");
        }
    });
    match served {
        Ok(Stopped::Softly | Stopped::Orphaned) => 0,
        Ok(Stopped::Now(sig)) => 128 + sig as i32,
        Err(e) => {
            log::error!("{e}");
            1
        }
    }
}
