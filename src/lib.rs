//! sluice: a Layer-4 TCP load balancer for Linux that reads HAProxy's configuration language.
//!
//! ```text
//! haproxy.cfg --lexer--> AST --keywords--> validate --> Arc<Model>      (-c stops here)
//!                                                           |
//!           supervisor spawns: workers (1 per core) + health thread + admin thread
//!  worker: accept -> balance::pick(ctx{src, avoid}) -> connect -> forward (splice) -> close
//! ```
//!
//! - [`config`]: text -> AST -> immutable typed model; no sockets, threads or clocks.
//! - [`cli`]: the command line, HAProxy's flags where they overlap.
//! - [`balance`]: which server: one algorithm per file, shared lock-free counters.
//! - [`health`]: the health thread: checks, rise/fall, state sent to the workers; the only
//!   TLS sluice speaks (rustls, for `check-ssl` and `connect ssl` checks), never on the data
//!   path.
//! - [`stick`]: stick tables, the per-address counters shared by every worker.
//! - [`worker`]: the data plane: one mio event loop per core, splice forwarding.
//! - [`supervisor`]: boot, signals, soft and hard stop; the only code that knows every thread.
//! - [`master`]: master-worker mode: a master process that reloads by starting a new worker
//!   process; the only code that knows every process.
//! - [`sys`]: the only place with `unsafe` and libc: pipes and splice, sockets, signals.

#![deny(unsafe_code)]

pub mod admin;
pub mod balance;
pub mod cli;
pub mod config;
pub mod health;
pub mod master;
pub mod stick;
pub mod supervisor;
#[allow(unsafe_code)]
pub mod sys;
pub mod worker;

/// The version printed by `-v`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

use std::sync::Arc;

/// Runs the load balancer on a validated model until it is told to stop: in this process,
/// or as the master of a worker process (`-W`, `-Ws`, `master-worker`). Returns the exit
/// code (a master passes on its failed worker's, as HAProxy does).
pub fn run(model: Arc<config::Model>, cli: &cli::Cli) -> Result<u8, String> {
    if master::wanted(&model, cli) {
        master::run(model, cli)
    } else {
        supervisor::run(model, cli).map(|()| 0)
    }
}
