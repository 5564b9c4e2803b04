//! The operating-system boundary: the only module that says `unsafe` or calls `libc` directly.
//! Everything above it sees safe, typed wrappers with one RAII owner per file descriptor:
//! [`pipe`] (pipe2, splice, F_SETPIPE_SZ, a per-worker pipe pool), [`socket`] (listener and
//! server-side socket setup, socket options, RLIMIT_NOFILE), [`signal`] (signalfd, SIGPIPE,
//! daemonizing, signalling an old process) and [`process`] (forking and reaping the worker
//! processes of master-worker mode). Each `unsafe` block here is minimal and preceded by
//! a `// SAFETY:` comment; nix and socket2 safe wrappers are preferred wherever they exist.

pub mod pipe;
pub mod process;
pub mod signal;
pub mod socket;

/// An OS error with the step that failed in front ("fork: Resource temporarily
/// unavailable"), kind kept.
pub(crate) fn context(
    e: impl Into<std::io::Error>,
    step: impl std::fmt::Display,
) -> std::io::Error {
    let e = e.into();
    std::io::Error::new(e.kind(), format!("{step}: {e}"))
}
