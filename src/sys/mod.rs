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
