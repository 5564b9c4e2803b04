//! One proxied connection: the client side, the server side once chosen, the two flows
//! between them, and the phase it is in. The transitions (see doc/lifecycle.md):
//!
//! ```text
//! accepted [--PROXY header--> ProxyHeader] [--inspect-delay--> Inspect] --rules, backend-->
//! accepted --pick--> Connecting --writable, SO_ERROR=0--> Forwarding --both FINs--> closed
//!    |                 |  refused/timeout: retry same server, redispatch per `option redispatch`
//!    |                 '--> retries exhausted ------------------------------------> closed
//!    '--all servers full--> Queued --slot freed--> Connecting   (timeout queue -> closed)
//! ```
//!
//! Counts are RAII: the [`ConnLease`] on the server and the [`Slot`] on the global and
//! frontend counts are released when the connection is dropped, whatever the path.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::forward::{Flow, Side};
use crate::balance::{ConnLease, QueueTicket};
use crate::config::model::{Backend, BackendId, Frontend, FrontendId, ServerId};
use crate::stick::{FreqCtr, Table, Tracker};

/// Counts shared by every worker: process-wide and per-frontend connections.
pub struct Shared {
    pub actconn: AtomicUsize,
    pub maxconn: usize,
    pub feconn: Box<[AtomicU32]>,
    /// Per-frontend limit (0: only the global one).
    pub fe_maxconn: Box<[u32]>,
    /// Per frontend: `rate-limit sessions`, if set.
    pub sess_rate: Box<[Option<SessionRate>]>,
}

/// `rate-limit sessions <n>`: new sessions per second of a frontend, counted by every
/// worker (HAProxy's frequency counter over one second); at the limit the frontend stops
/// accepting, and connections wait in the kernel's backlog until the rate drops.
pub struct SessionRate {
    limit: u32,
    epoch: Instant,
    ctr: Mutex<FreqCtr>,
}

impl SessionRate {
    pub fn new(limit: u32) -> SessionRate {
        SessionRate {
            limit,
            epoch: Instant::now(),
            ctr: Mutex::new(FreqCtr::default()),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The rate has reached the limit.
    pub fn reached(&self, now: Instant) -> bool {
        let ctr = self.ctr.lock().unwrap_or_else(|e| e.into_inner());
        ctr.read(self.ms(now), 1_000) >= self.limit
    }

    /// One more session.
    pub fn count(&self, now: Instant) {
        let ms = self.ms(now);
        let mut ctr = self.ctr.lock().unwrap_or_else(|e| e.into_inner());
        ctr.update(ms, 1_000, 1);
    }
}

impl Shared {
    /// Takes a slot if neither the global nor the frontend limit is reached.
    pub fn try_slot(&'static self, fe: FrontendId) -> Option<Slot> {
        self.actconn
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.maxconn).then_some(n + 1)
            })
            .ok()?;
        let limit = self.fe_maxconn[fe.index()];
        let fe_ok = self.feconn[fe.index()]
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (limit == 0 || n < limit).then_some(n + 1)
            })
            .is_ok();
        if !fe_ok {
            self.actconn.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot { shared: self, fe })
    }

    /// True when `fe` must not accept now: a connection limit is reached, or its session
    /// rate limit.
    pub fn full(&self, fe: FrontendId, now: Instant) -> bool {
        let limit = self.fe_maxconn[fe.index()];
        self.actconn.load(Ordering::Relaxed) >= self.maxconn
            || (limit != 0 && self.feconn[fe.index()].load(Ordering::Relaxed) >= limit)
            || self.sess_rate[fe.index()]
                .as_ref()
                .is_some_and(|r| r.reached(now))
    }
}

/// A connection's place in the global and frontend counts.
pub struct Slot {
    shared: &'static Shared,
    fe: FrontendId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.actconn.fetch_sub(1, Ordering::AcqRel);
        self.shared.feconn[self.fe.index()].fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `accept-proxy`: waiting for the client's PROXY header before routing.
    ProxyHeader,
    /// `tcp-request inspect-delay`: content rules wait for the client's first bytes (read
    /// without consuming them) until they decide or `until` comes; the frontend's rules
    /// while `backend` is None, then the backend's.
    Inspect { until: Instant },
    /// Waiting for a server slot (all servers at maxconn).
    Queued { since: Instant },
    /// Nonblocking connect in progress to the leased server.
    Connecting { since: Instant },
    /// A connect to the leased server failed with an error: the retry on the same server
    /// waits until `until` (HAProxy's turn-around: min(1 s, `timeout connect`)).
    TurnAround { until: Instant },
    /// Both sides connected; bytes flow both ways until both FINs are forwarded.
    Forwarding,
}

/// Why a connection ends; logged and, later, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Done,
    NoBackend,
    NoServer,
    ConnectFailed,
    ConnectTimeout,
    QueueTimeout,
    QueueFull,
    ClientTimeout,
    ServerTimeout,
    ClientReset,
    ServerReset,
    /// A `tcp-request session` or `content` rule rejected the session: closed with a FIN
    /// once what the client sent is read (HAProxy had it in its buffer).
    Denied,
    /// A `tcp-request connection` rule refused the connection at accept: closed with an
    /// RST, as HAProxy does.
    Refused,
    /// `accept-proxy` and no valid PROXY header.
    BadProxyHeader,
    /// `on-marked-down shutdown-sessions` / `on-marked-up shutdown-backup-sessions`.
    ServerShutdown,
    /// A `silent-drop` rule: closed without a FIN or RST reaching the client.
    SilentDrop,
    Stopping,
}

impl CloseReason {
    /// Closes caused by a peer's reset are passed on as a reset to the other peer.
    pub fn is_abort(self) -> bool {
        matches!(self, CloseReason::ClientReset | CloseReason::ServerReset)
    }
}

pub struct Conn {
    pub frontend: FrontendId,
    pub backend: Option<BackendId>,
    pub src: SocketAddr,
    /// The address the client connected to: read (getsockname) only when something needs
    /// it, to spare a syscall per connection.
    dst: Option<SocketAddr>,
    pub client: Side,
    pub server: Option<Side>,
    /// Client to server.
    pub up: Flow,
    /// Server to client.
    pub down: Flow,
    pub phase: Phase,
    pub lease: Option<ConnLease>,
    /// Held while the connection waits in a backend queue.
    pub queue_ticket: Option<QueueTicket>,
    /// Connection attempts made to servers so far.
    pub attempts: u32,
    /// The server address of the current attempt.
    pub target: Option<SocketAddr>,
    pub deadline: Option<Instant>,
    /// The instant of this connection's earliest entry in the timer heap.
    pub armed: Option<Instant>,
    pub accepted: Instant,
    /// Set once the connection is in the worker's requeue list.
    pub requeued: bool,
    /// Counted as a session of its server (established).
    pub srv_counted: bool,
    /// Time spent waiting in a queue, and connecting to the server (for logs).
    pub t_queue: Option<Duration>,
    pub t_connect: Option<Duration>,
    /// Retries made.
    pub retries: u32,
    /// The server a redispatch left, until the next one is chosen: a choice of the same
    /// server counts as a retry, another as a redispatch (HAProxy's counting).
    pub redispatched_from: Option<ServerId>,
    /// The client sent a PROXY header (`fc_rcvd_proxy`).
    pub proxied: bool,
    /// Stick counters tracked by `track-sc0` to `track-sc2`.
    pub sc: [Option<Tracker>; 3],
    /// The TLS server name seen during content inspection (`balance hash req.ssl_sni`).
    pub sni: Option<Box<str>>,
    /// The server a `stick match` rule sent this connection to (HAProxy's SF_DIRECT):
    /// picks lease it instead of balancing, until a redispatch clears it.
    pub direct: Option<ServerId>,
    /// What `stick store-request` rules store once the server is connected: a table and
    /// the key (at most one per table).
    pub stick_store: Vec<(&'static Table, IpAddr)>,
    _slot: Slot,
}

impl Conn {
    pub fn new(
        frontend: FrontendId,
        client: Side,
        src: SocketAddr,
        slot: Slot,
        now: Instant,
    ) -> Conn {
        Conn {
            frontend,
            backend: None,
            src,
            dst: None,
            client,
            server: None,
            up: Flow::new(false),
            down: Flow::new(false),
            phase: Phase::Queued { since: now },
            lease: None,
            queue_ticket: None,
            attempts: 0,
            redispatched_from: None,
            target: None,
            deadline: None,
            armed: None,
            accepted: now,
            requeued: false,
            srv_counted: false,
            t_queue: None,
            t_connect: None,
            retries: 0,
            proxied: false,
            sc: [None, None, None],
            sni: None,
            direct: None,
            stick_store: Vec::new(),
            _slot: slot,
        }
    }

    /// The addresses a PROXY header announced (they replace the socket's).
    pub fn set_addrs(&mut self, src: SocketAddr, dst: SocketAddr) {
        self.src = src;
        self.dst = Some(dst);
    }

    /// The client's destination address (cached after the first call).
    pub fn dst(&mut self) -> SocketAddr {
        if let Some(d) = self.dst {
            return d;
        }
        let d = self.client.sock.local_addr().unwrap_or(self.src);
        self.dst = Some(d);
        d
    }

    pub fn server_id(&self) -> Option<ServerId> {
        self.lease.as_ref().map(ConnLease::server)
    }

    /// When the client side times out while forwarding (`tunnel`: the backend's
    /// `timeout tunnel`), if it can.
    pub fn client_deadline(&self, f: &Frontend, tunnel: Option<Duration>) -> Option<Instant> {
        side_timeout(&self.client, tunnel, f.timeout_client, f.timeout_client_fin)
            .map(|t| self.client.last + t)
    }

    /// When the server side times out while forwarding, if it can.
    pub fn server_deadline(&self, be: &Backend) -> Option<Instant> {
        self.server.as_ref().and_then(|s| {
            side_timeout(
                s,
                be.timeout_tunnel,
                be.timeout_server,
                be.timeout_server_fin,
            )
            .map(|t| s.last + t)
        })
    }

    /// Both directions have forwarded their FIN: nothing more can move.
    pub fn both_finished(&self) -> bool {
        match &self.server {
            Some(s) => self.up.finished(&self.client, s) && self.down.finished(s, &self.client),
            None => false,
        }
    }
}

/// The inactivity limit of one side: `tunnel` once forwarding if set, else the side's own
/// timeout, or its `-fin` variant once that side has sent its FIN.
fn side_timeout(
    side: &Side,
    tunnel: Option<Duration>,
    normal: Option<Duration>,
    fin: Option<Duration>,
) -> Option<Duration> {
    if side.eof {
        fin.or(tunnel).or(normal)
    } else {
        tunnel.or(normal)
    }
}
