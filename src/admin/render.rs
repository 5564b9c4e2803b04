//! What the admin thread renders, in one place: the stats socket's `show` outputs
//! ([`super::show`]), the Prometheus exporter ([`super::prometheus`]) and the stats page
//! with its HTTP routing ([`super::page`]). All are pure functions of a [`Snapshot`].
//!
//! [`Snapshot`]: super::snapshot::Snapshot

pub use super::page::{content_length, handle_http, stats_page, Response, Site};
pub use super::prometheus::prometheus;
pub use super::show::{
    server_status_text, show_info, show_info_as, show_servers_state, show_stat, show_stat_csv,
    show_stat_json, show_stat_typed, uptime_text, CSV_HEADER, SERVERS_STATE_HEADER,
};
