//! sluice's integration tests: one test binary, one module per area, the real `sluice`
//! binary driven through `common`.

mod common;

mod balancing;
mod cli;
mod compat;
mod content;
mod dataplane;
mod failures;
mod fuzz;
mod health;
mod inheritance;
mod master;
mod monitoring;
mod monitoring_render;
mod persistence;
mod protocol_checks;
mod services;
mod stats_page;
mod tls_checks;
