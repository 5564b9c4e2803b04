//! "What is going on?": the admin thread (stats socket, runtime API, metrics, stats page)
//! and the snapshot it serves.

pub mod auth;
pub mod collect;
pub mod command;
pub mod logs;
pub mod page;
pub mod prometheus;
pub mod render;
pub mod server;
pub mod show;
pub mod snapshot;
pub mod table;

use crate::config::model::{Mode, Model};

/// True when the model asks for an admin thread: a stats socket or a stats/metrics listener.
pub fn needed(model: &Model) -> bool {
    !model.global.stats_sockets.is_empty()
        || model
            .frontends
            .iter()
            .any(|f| f.enabled && f.mode == Mode::Http)
}
