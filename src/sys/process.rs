//! Worker processes of master-worker mode: [`fork_worker`] (refused unless the caller is the
//! only thread, the one case where fork is safe in Rust), [`close_fds_except`] for the child's
//! first step, [`reap`] for the master's SIGCHLD handling, and [`status_text`], the words
//! HAProxy's master prints after an exit code.

use std::io;

use super::context;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// Which process returned from [`fork_worker`].
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    /// The master; the worker has this process id.
    Parent(i32),
    /// The worker: it must end with `std::process::exit`, never return into the master's code.
    Child,
}

/// Forks a worker process. Refused (an error, nothing forked) unless the calling process
/// has a single thread: a child forked beside other threads inherits their locks (the
/// allocator's, stdio's) in whatever state they were, which Rust cannot make safe.
pub fn fork_worker() -> io::Result<Forked> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| context(e, "read /proc/self/task"))?
        .count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "fork refused: this process has {threads} threads, a worker can only be forked \
             from a single-threaded master"
        )));
    }
    // SAFETY: the process has one thread (checked just above, and no code of ours starts
    // one between the check and the fork), so the child gets every lock in a consistent
    // state; it runs ordinary Rust code and ends with `exit`, never returning to the caller's
    // frames (see `Forked::Child`).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(context(e, "fork")),
    }
}

/// The file descriptors open in this process.
pub fn open_fds() -> io::Result<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| context(e, "read /proc/self/fd"))?;
    let mut fds: Vec<RawFd> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own descriptor was in the list, and is closed now.
    fds.retain(|&fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok());
    Ok(fds)
}

/// Closes every file descriptor of this process above stderr except `keep`: what a forked
/// worker does first, so that it holds none of the master's descriptors (signalfd, epoll,
/// other workers' links, listening sockets it was not given).
///
/// Only for a freshly forked child: the objects that owned those descriptors still exist in
/// its copy of the master's memory, and must never be used or dropped afterwards.
pub fn close_fds_except(keep: &[RawFd]) -> io::Result<()> {
    for fd in open_fds()? {
        if fd > libc::STDERR_FILENO && !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
    Ok(())
}

/// One child process that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    /// HAProxy's exit code of a worker: its exit status, or 128 + the signal that killed it.
    pub code: i32,
}

/// What [`reap`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reap {
    Exited(Reaped),
    /// Children exist, none has ended.
    Running,
    /// This process has no child left.
    NoChild,
}

/// Collects one ended child without waiting (waitpid(-1, WNOHANG)).
pub fn reap() -> io::Result<Reap> {
    loop {
        let code = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(Reap::Running),
            Ok(WaitStatus::Exited(pid, status)) => (pid, status),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
            // Stopped, continued or traced: not an end.
            Ok(_) => continue,
            Err(Errno::ECHILD) => return Ok(Reap::NoChild),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(context(e, "waitpid")),
        };
        return Ok(Reap::Exited(Reaped {
            pid: code.0.as_raw(),
            code: code.1,
        }));
    }
}

/// The words after an exit code in HAProxy's master log lines: "Exit" below 128, the
/// signal's description (strsignal) above.
pub fn status_text(code: i32) -> String {
    if code < 128 {
        return "Exit".to_string();
    }
    let text = match code - 128 {
        libc::SIGHUP => "Hangup",
        libc::SIGINT => "Interrupt",
        libc::SIGQUIT => "Quit",
        libc::SIGILL => "Illegal instruction",
        libc::SIGTRAP => "Trace/breakpoint trap",
        libc::SIGABRT => "Aborted",
        libc::SIGBUS => "Bus error",
        libc::SIGFPE => "Floating point exception",
        libc::SIGKILL => "Killed",
        libc::SIGUSR1 => "User defined signal 1",
        libc::SIGSEGV => "Segmentation fault",
        libc::SIGUSR2 => "User defined signal 2",
        libc::SIGPIPE => "Broken pipe",
        libc::SIGALRM => "Alarm clock",
        libc::SIGTERM => "Terminated",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "File size limit exceeded",
        libc::SIGSYS => "Bad system call",
        n => return format!("Unknown signal {n}"),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_are_haproxys() {
        assert_eq!(status_text(0), "Exit");
        assert_eq!(status_text(1), "Exit");
        assert_eq!(status_text(137), "Killed");
        assert_eq!(status_text(143), "Terminated");
        assert_eq!(status_text(130), "Interrupt");
        assert_eq!(status_text(139), "Segmentation fault");
    }

    #[test]
    fn fork_is_refused_beside_other_threads() {
        // The test harness runs this test beside its own threads (at least the main one).
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let err = fork_worker().unwrap_err();
        assert!(err.to_string().contains("fork refused"), "{err}");
        drop(tx);
        t.join().unwrap();
    }
}
