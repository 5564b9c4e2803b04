//! Process-level signal plumbing: the supervisor's [`Signals`] (a nonblocking signalfd polled by
//! mio instead of async signal handlers), ignoring SIGPIPE, [`daemonize`] for `-D`, and
//! [`send_signal`] to an old process for `-sf` / `-st` or to a worker process.

use std::io;

use super::context;
use std::os::fd::AsRawFd;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

pub use nix::sys::signal::Signal;

/// The signals the supervisor handles: stop (TERM, INT), HAProxy's soft stop / reload / status
/// (USR1, USR2, HUP) and listener pause / resume (TTOU, TTIN).
pub const HANDLED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGHUP,
    Signal::SIGTTOU,
    Signal::SIGTTIN,
];

/// The [`HANDLED`] signals, delivered through a nonblocking signalfd. Register it with a mio
/// `Poll` (READABLE) and call [`Signals::read`] until it returns `None`.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the [`HANDLED`] signals in the calling thread's mask and opens a nonblocking,
    /// close-on-exec signalfd for them.
    ///
    /// Call it in `main` before any thread is spawned: threads inherit the mask, so none of them
    /// runs a default handler (which would kill the process) and all of these signals stay
    /// pending until read here.
    pub fn block_and_open() -> io::Result<Signals> {
        Signals::block_and_open_with(&[])
    }

    /// [`Signals::block_and_open`] for the [`HANDLED`] signals and `extra` (the master of
    /// master-worker mode adds SIGCHLD).
    pub fn block_and_open_with(extra: &[Signal]) -> io::Result<Signals> {
        let mut mask = SigSet::empty();
        for &signal in HANDLED.iter().chain(extra) {
            mask.add(signal);
        }
        mask.thread_block()
            .map_err(|e| context(e, "pthread_sigmask(SIG_BLOCK)"))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| context(e, "signalfd"))?;
        Ok(Signals { fd })
    }

    /// The next pending signal, or `None` when none is pending (EAGAIN).
    pub fn read(&mut self) -> io::Result<Option<Signal>> {
        loop {
            match self.fd.read_signal() {
                Ok(None) => return Ok(None),
                Ok(Some(info)) => {
                    // Only signals in the mask are delivered, so the conversion cannot fail;
                    // skip anything unexpected rather than fail.
                    let number = libc::c_int::try_from(info.ssi_signo).unwrap_or(0);
                    if let Ok(signal) = Signal::try_from(number) {
                        return Ok(Some(signal));
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(context(e, "read signalfd")),
            }
        }
    }
}

impl Source for Signals {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

/// Unblocks `signals` in the calling thread's mask: what a forked worker does with the
/// signals only its master handles (SIGCHLD), so they keep their default action there.
pub fn unblock(signals: &[Signal]) -> io::Result<()> {
    let mut mask = SigSet::empty();
    for &signal in signals {
        mask.add(signal);
    }
    mask.thread_unblock()
        .map_err(|e| context(e, "pthread_sigmask(SIG_UNBLOCK)"))
}

/// Ignores SIGPIPE process-wide, so a write to a reset socket returns EPIPE instead of killing
/// the process.
pub fn ignore_sigpipe() -> io::Result<()> {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler, so no code of ours can run in signal context.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }
        .map(drop)
        .map_err(|e| context(e, "sigaction(SIGPIPE, SIG_IGN)"))
}

/// Detaches the process from its terminal: fork, setsid, fork again, chdir("/"), and stdin,
/// stdout and stderr onto /dev/null. The original process exits with status 0 once the daemon
/// exists; only the daemon returns from this function (`Ok` or the error of its own setup).
///
/// Must be called before any thread is spawned (only the calling thread survives a fork).
pub fn daemonize() -> io::Result<()> {
    match detach()? {
        Detached::Daemon => Ok(()),
        Detached::Parent => std::process::exit(0),
    }
}

/// Sends `sig` to the process `pid` (kill(2)). `pid` must be positive: 0 and negative values
/// would signal whole process groups, which is never what `-sf` / `-st` mean.
pub fn send_signal(pid: i32, sig: Signal) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("kill {pid}: not a single process id"),
        ));
    }
    nix::sys::signal::kill(Pid::from_raw(pid), sig)
        .map_err(|e| context(e, format_args!("kill {pid} {sig}")))
}

/// Which process returned from [`detach`].
#[derive(Debug, PartialEq, Eq)]
enum Detached {
    /// The original process: the daemon has been started.
    Parent,
    /// The daemon: the grandchild, session leader's child, on /dev/null.
    Daemon,
}

/// The double fork of [`daemonize`], minus the parent's exit, so it can be tested in a child.
fn detach() -> io::Result<Detached> {
    // SAFETY: the caller has no other thread (documented on `daemonize`); the child only makes
    // system calls until it is the daemon or calls `_exit`.
    match unsafe { nix::unistd::fork() }.map_err(|e| context(e, "fork"))? {
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(Detached::Parent),
            Ok(status) => Err(io::Error::other(format!(
                "daemonize: first child ended with {status:?}"
            ))),
            Err(e) => Err(context(e, "waitpid")),
        },
        ForkResult::Child => {
            if nix::unistd::setsid().is_err() {
                exit_now(1);
            }
            // SAFETY: this process has a single thread (it was just forked).
            match unsafe { nix::unistd::fork() } {
                Ok(ForkResult::Parent { .. }) => exit_now(0),
                Err(_) => exit_now(1),
                Ok(ForkResult::Child) => {
                    nix::unistd::chdir("/").map_err(|e| context(e, "chdir /"))?;
                    null_stdio()?;
                    Ok(Detached::Daemon)
                }
            }
        }
    }
}

/// Ends this process at once, without exit handlers or flushing std's buffers (those belong to
/// the parent's copy): what a forked child does instead of returning into the caller.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) only ends the calling process; it reads no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Points stdin, stdout and stderr at /dev/null.
fn null_stdio() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io::Error::new(e.kind(), format!("open /dev/null: {e}")))?;
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // dup2 clears FD_CLOEXEC on the copy, so the standard descriptors survive exec.
        nix::unistd::dup2(null.as_raw_fd(), target).map_err(|e| context(e, "dup2 /dev/null"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::{Duration, Instant};

    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn a_raised_signal_is_read_through_poll() {
        // The mask is per thread: block, raise and read in one fresh thread, so the test
        // harness's threads keep their masks and nothing reaches a default handler.
        std::thread::spawn(|| {
            let mut signals = Signals::block_and_open().unwrap();
            assert_eq!(signals.read().unwrap(), None);
            let mut poll = Poll::new().unwrap();
            let mut events = Events::with_capacity(4);
            poll.registry()
                .register(&mut signals, Token(7), Interest::READABLE)
                .unwrap();
            nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
            nix::sys::signal::raise(Signal::SIGHUP).unwrap();
            let deadline = Instant::now() + DEADLINE;
            let mut got = Vec::new();
            while got.len() < 2 {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .expect("no signal read");
                poll.poll(&mut events, Some(left)).unwrap();
                assert!(events.iter().all(|e| e.token() == Token(7)));
                while let Some(signal) = signals.read().unwrap() {
                    got.push(signal);
                }
            }
            got.sort_by_key(|s| *s as i32);
            assert_eq!(got, [Signal::SIGHUP, Signal::SIGUSR2]);
            assert_eq!(signals.read().unwrap(), None);
            poll.registry().deregister(&mut signals).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sigpipe_is_ignored() {
        ignore_sigpipe().unwrap();
        let current = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: re-installing SIG_IGN to read back the previous disposition runs no code.
        let previous = unsafe { sigaction(Signal::SIGPIPE, &current) }.unwrap();
        assert_eq!(previous.handler(), SigHandler::SigIgn);
    }

    #[test]
    fn send_signal_checks_its_target() {
        assert_eq!(
            send_signal(0, Signal::SIGTERM).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            send_signal(-1, Signal::SIGTERM).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // Signal 0 is not representable as `Signal`; SIGCONT to ourselves is harmless.
        send_signal(std::process::id() as i32, Signal::SIGCONT).unwrap();
        // Pid max on Linux is at most 2^22: this one cannot exist.
        let err = send_signal(i32::MAX, Signal::SIGTERM).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("kill {} SIGTERM: ", i32::MAX)),
            "{err}"
        );
    }

    #[test]
    fn detach_leaves_a_daemon_in_a_new_session_on_dev_null() {
        // Run detach() in a forked child so the test process itself is not daemonized; the
        // daemon reports through a pipe and exits.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        let test_sid = nix::unistd::getsid(None).unwrap();
        // SAFETY: the child only runs detach() and writes a short report before `_exit`; it
        // never returns into the test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Child => {
                drop(read);
                let code = match detach() {
                    Ok(Detached::Parent) => 0,
                    Ok(Detached::Daemon) => {
                        let pid = nix::unistd::getpid();
                        // A new session, of which the daemon is not the leader (so it can never
                        // acquire a controlling terminal again).
                        let sid = nix::unistd::getsid(None).ok();
                        let new_session =
                            sid.is_some() && sid != Some(test_sid) && sid != Some(pid);
                        let root = std::env::current_dir().ok() == Some("/".into());
                        let null =
                            std::fs::read_link("/proc/self/fd/1").ok() == Some("/dev/null".into());
                        let report = [new_session as u8, root as u8, null as u8];
                        let _ = nix::unistd::write(&write, &report);
                        0
                    }
                    Err(_) => 2,
                };
                exit_now(code);
            }
            ForkResult::Parent { child } => {
                drop(write);
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
                // The daemon holds the last write end: read its report until EOF.
                let mut file = std::fs::File::from(read);
                let mut poll = Poll::new().unwrap();
                let mut events = Events::with_capacity(4);
                let fd = file.as_raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)
                    .unwrap();
                let deadline = Instant::now() + DEADLINE;
                let mut report = Vec::new();
                let mut buf = [0; 8];
                loop {
                    match std::io::Read::read(&mut file, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => report.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            let left = deadline
                                .checked_duration_since(Instant::now())
                                .expect("no report");
                            poll.poll(&mut events, Some(left)).unwrap();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                assert_eq!(
                    report,
                    [1, 1, 1],
                    "new session (not leader), cwd /, stdout /dev/null"
                );
            }
        }
    }
}
