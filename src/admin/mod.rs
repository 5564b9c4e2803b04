//! "What is going on?": the admin thread (stats socket, runtime API, metrics, stats page)
//! and the snapshot it serves.

pub mod logs;
pub mod snapshot;
