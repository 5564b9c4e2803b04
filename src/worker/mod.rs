//! The data plane: one worker thread per core, each with its own mio `Poll`, its own
//! SO_REUSEPORT listening sockets, its own connection slab, pipe pool and timers. Nothing on
//! the per-connection path takes a lock: workers share only atomics (the server counts of
//! `balance::Counters` and the connection counts of [`conn::Shared`]).
//!
//! `Worker::run`: poll -> dispatch by token (control waker, listener, connection side) ->
//! connections that yielded -> due timers, until told to stop. doc/lifecycle.md follows one
//! connection through the code.

pub mod conn;
pub mod forward;
pub mod listener;
pub mod proxy_header;
pub mod rules;
pub mod stats;
pub mod timer;
pub mod tls_hello;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::balance::{self, Algorithm, Counters, Pick, PickCtx, Pool};
use crate::config::model::{BackendId, Model, ProxyKind, ServerAddr, ServerId, TableRef};
use crate::stick::Tables;
use crate::sys::pipe::PipePool;
use crate::sys::socket::{self, ConnectOpts};
use conn::{CloseReason, Conn, Phase, Shared};
use forward::{Buffers, Pumped, Side};
use listener::Listener;
use timer::{TimerKey, Timers};

/// The waker's token; listeners count down from below it, connections count up from 0
/// (two tokens per connection: client, server).
const WAKER: Token = Token(usize::MAX);
const LISTENER_BASE: usize = usize::MAX / 2;
/// Bytes one connection may read per direction before yielding to the others.
const BUDGET: usize = 1024 * 1024;
/// How often paused listeners and queues are looked at again.
const TICK: Duration = Duration::from_millis(50);

/// Messages from the supervisor, the health thread and the admin thread.
#[derive(Debug, Clone)]
pub enum Control {
    /// Close the listeners, finish the established connections, then exit.
    SoftStop,
    /// Close everything now and exit.
    Stop,
    /// What changed for one server (health, agent, admin).
    Server(ServerUpdate),
    /// Send a copy of this worker's counters.
    Snapshot(crossbeam_channel::Sender<stats::StatsCopy>),
    /// Stop or resume accepting on a frontend (runtime API).
    Frontend {
        frontend: crate::config::model::FrontendId,
        enabled: bool,
    },
}

/// The state of a server as workers use it; sent only when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerUpdate {
    pub server: ServerId,
    /// Up and not in maintenance.
    pub usable: bool,
    /// Effective weight (0 while draining).
    pub weight: u32,
    pub maxconn: Option<u32>,
    /// `on-marked-down shutdown-sessions`: close the server's connections now.
    pub shutdown_sessions: bool,
    /// `on-marked-up shutdown-backup-sessions`: close the backend's backup connections now.
    pub shutdown_backup_sessions: bool,
}

/// Where a worker reports connection outcomes for `observe layer4`.
#[derive(Clone)]
pub struct ObserveLink {
    pub tx: crossbeam_channel::Sender<crate::health::Observation>,
    pub waker: Arc<mio::Waker>,
}

/// What a worker is built from.
pub struct WorkerSetup {
    pub id: usize,
    pub poll: Poll,
    pub model: Arc<Model>,
    pub counters: &'static Counters,
    pub shared: &'static Shared,
    pub listeners: Vec<Listener>,
    pub control: Receiver<Control>,
    pub maxpipes: usize,
    /// The health thread's inbox, when some server has `observe layer4`.
    pub observe: Option<ObserveLink>,
    /// The log thread's inbox, when some frontend logs.
    pub logs: Option<crossbeam_channel::Sender<crate::admin::logs::LogLine>>,
    /// The stick tables, shared by every worker and the admin thread.
    pub tables: &'static Tables,
}

/// Connections established to a backend's servers, from every worker.
fn be_conn(model: &Model, counters: &Counters, b: BackendId) -> u32 {
    model
        .backend(b)
        .servers
        .iter()
        .map(|&s| counters.active(s))
        .sum()
}

/// What rules read of the backends, from a worker's fields (not the whole worker, so the
/// worker can still count while rules are evaluated).
struct LbView<'a> {
    model: &'a Model,
    backends: &'a [BackendRt],
    counters: &'static Counters,
}

impl rules::BackendState for LbView<'_> {
    fn nbsrv(&self, b: BackendId) -> u32 {
        self.backends[b.index()].pool.serving().len() as u32
    }
    fn be_conn(&self, b: BackendId) -> u32 {
        be_conn(self.model, self.counters, b)
    }
    fn connslots(&self, b: BackendId) -> i64 {
        let pool = &self.backends[b.index()].pool;
        let mut slots = 0i64;
        for &i in pool.serving() {
            let m = &pool.members[i];
            let (Some(max), Some(maxq)) = (m.maxconn, m.maxqueue.filter(|&q| q > 0)) else {
                return -1;
            };
            let cur = i64::from(self.counters.active(m.id));
            slots += i64::from(max) - cur + i64::from(maxq);
        }
        slots - i64::from(self.counters.queued(b))
    }
}

/// The fetch context of connection `c` (not its stick counters: rules add them).
fn fetch_ctx<'a>(
    c: &Conn,
    dst: SocketAddr,
    view: &'a LbView<'a>,
    req: rules::Req<'a>,
    tables: &'static Tables,
    now: Instant,
) -> rules::FetchCtx<'a> {
    rules::FetchCtx {
        src: c.src,
        dst,
        backends: view,
        proxied: c.proxied,
        backend: c.backend,
        req,
        sc: &[],
        tables: Some(tables),
        table: None,
        now,
    }
}

/// At most this many `stick store-request` keys per connection (HAProxy's `s->store`).
const MAX_STICK_STORES: usize = 8;

/// The server of this backend whose numeric id a stick table holds, if HAProxy would send
/// a connection there: it is running (up, and not in maintenance; a draining server still
/// takes its persistent connections). Backup or not, whatever its weight.
fn persist_target(pool: &Pool, uid: u32) -> Option<ServerId> {
    pool.members
        .iter()
        .find(|m| m.uid == uid && m.usable)
        .map(|m| m.id)
}

/// A server chosen by the balancing algorithm (not by persistence): HAProxy's `lbtot`.
fn count_selection(stats: &mut stats::WorkerStats, b: BackendId, sid: ServerId) {
    stats.be[b.index()].t.lbtot += 1;
    stats.srv[sid.index()].t.lbtot += 1;
}

/// A pick by the backend's algorithm for connection `c`, its address, ports (the
/// destination only when `hash_dst`: it costs a syscall) and SNI as the hash keys.
fn pick_balanced(
    rt: &mut BackendRt,
    c: &mut Conn,
    avoid: Option<ServerId>,
    hash_dst: bool,
    counters: &'static Counters,
) -> Pick {
    let keys = balance::ConnKeys {
        src_port: Some(c.src.port()),
        dst: hash_dst.then(|| c.dst()),
        sni: c.sni.as_deref(),
    };
    let ctx = PickCtx {
        src: Some(c.src.ip()),
        avoid,
    };
    rt.alg.pick_keyed(&rt.pool, &ctx, &keys, counters)
}

/// The frontend rules that run without request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleStage {
    /// `tcp-request connection`: at accept, on the socket's addresses.
    Connection,
    /// `tcp-request session`: once the session exists (after a PROXY header).
    Session,
}

impl RuleStage {
    fn rules(self, f: &crate::config::model::Frontend) -> &[crate::config::model::TcpRule] {
        match self {
            RuleStage::Connection => &f.tcp_request_connection,
            RuleStage::Session => &f.tcp_request_session,
        }
    }
}

/// Where content inspection left a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    /// A rule waits for more request bytes.
    Wait,
    Closed,
    /// Rules passed and the backend is chosen: connect.
    Go,
}

/// One backend as a worker sees it.
struct BackendRt {
    pool: Pool,
    alg: Box<dyn Algorithm>,
    /// Connections of this worker waiting for a server slot, oldest first.
    queue: VecDeque<usize>,
}

pub struct Worker {
    id: usize,
    poll: Poll,
    model: Arc<Model>,
    counters: &'static Counters,
    shared: &'static Shared,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    bufs: Buffers,
    backends: Vec<BackendRt>,
    timers: Timers,
    tick_armed: Option<Instant>,
    /// Connections whose pump yielded: served again before the next blocking poll.
    requeue: Vec<usize>,
    control: Receiver<Control>,
    stopping: bool,
    /// Accepting is paused until then (file descriptors exhausted).
    accept_paused_until: Option<Instant>,
    nosplice: bool,
    observe: Option<ObserveLink>,
    /// Per frontend: a use_backend rule reads the destination address.
    needs_dst: Vec<bool>,
    /// Per backend: its own `tcp-request content` rules read the destination address.
    be_rules_need_dst: Vec<bool>,
    /// Per backend: `balance hash dst|dst_port` reads it.
    needs_dst_keys: Vec<bool>,
    stats: stats::WorkerStats,
    tables: &'static Tables,
    /// Where content inspection looks at a client's first bytes (`tune.bufsize`).
    peek: Vec<u8>,
    logs: Option<crossbeam_channel::Sender<crate::admin::logs::LogLine>>,
    /// Per frontend: the log line format at close (tcplog or log-format), if it logs then.
    log_items: Vec<Option<Vec<crate::config::model::LogItem>>>,
    /// Per server: its name as `stick` rules store it (`server_key`).
    server_names: Vec<Arc<str>>,
}

impl Worker {
    pub fn new(setup: WorkerSetup) -> Result<Worker, String> {
        let model = setup.model;
        let mut backends = Vec::with_capacity(model.backends.len());
        for b in &model.backends {
            let pool = Pool::from_model(&model, b);
            let alg = balance::for_backend(b, &pool)?;
            backends.push(BackendRt {
                pool,
                alg,
                queue: VecDeque::new(),
            });
        }
        let g = &model.global;
        let pipes = PipePool::new(setup.maxpipes, g.pipesize.map(|p| p as usize));
        Ok(Worker {
            id: setup.id,
            poll: setup.poll,
            counters: setup.counters,
            shared: setup.shared,
            listeners: setup.listeners,
            conns: Slab::with_capacity(1_024),
            bufs: Buffers::new(pipes, g.bufsize as usize),
            backends,
            timers: Timers::default(),
            tick_armed: None,
            requeue: Vec::new(),
            control: setup.control,
            stopping: false,
            accept_paused_until: None,
            nosplice: g.nosplice,
            observe: setup.observe,
            stats: stats::WorkerStats::new(&model),
            needs_dst_keys: model
                .backends
                .iter()
                .map(|b| {
                    matches!(
                        b.balance,
                        crate::config::model::Balance::Hash(
                            crate::config::model::HashKey::Dst
                                | crate::config::model::HashKey::DstPort
                        )
                    )
                })
                .collect(),
            logs: setup.logs,
            tables: setup.tables,
            server_names: model
                .servers
                .iter()
                .map(|s| Arc::from(s.name.as_str()))
                .collect(),
            // What HAProxy lets a request buffer hold during inspection: the buffer less
            // its rewrite reserve (tune.maxrewrite: 1024, at most half the buffer).
            peek: vec![0; (g.bufsize - (g.bufsize / 2).min(1_024)) as usize],
            log_items: model
                .frontends
                .iter()
                .map(|f| {
                    let l = &f.log;
                    if l.targets.is_empty() {
                        None
                    } else if let Some(items) = &l.format {
                        Some(items.clone())
                    } else if l.tcplog {
                        Some(crate::admin::logs::tcplog_items())
                    } else {
                        None
                    }
                })
                .collect(),
            needs_dst: model
                .frontends
                .iter()
                .map(|f| {
                    rules::rules_need_dst(&f.tcp_request_connection, &f.acls)
                        || rules::rules_need_dst(&f.tcp_request_session, &f.acls)
                        || rules::rules_need_dst(&f.tcp_request_content, &f.acls)
                        || f.use_backend
                            .iter()
                            .any(|u| rules::use_backend_needs_dst(u, &f.acls))
                })
                .collect(),
            be_rules_need_dst: model
                .backends
                .iter()
                .map(|b| rules::rules_need_dst(&b.tcp_request_content, &b.acls))
                .collect(),
            model,
        })
    }

    /// Runs the event loop until stopped. Returns when a soft stop has drained every
    /// connection or a hard stop was received.
    pub fn run(mut self) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            l.register(self.poll.registry(), Token(LISTENER_BASE - i))?;
        }
        let mut events = Events::with_capacity(1_024);
        loop {
            let now = Instant::now();
            let timeout = if self.requeue.is_empty() {
                self.timers.next().map(|t| t.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {
                        if self.on_control(now) {
                            self.close_all(now);
                            return Ok(());
                        }
                    }
                    Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                        self.accept(LISTENER_BASE - t, now);
                    }
                    Token(t) => self.on_event(t / 2, t % 2 == 1, ev, now),
                }
            }
            for key in std::mem::take(&mut self.requeue) {
                if let Some(c) = self.conns.get_mut(key) {
                    c.requeued = false;
                    self.drive(key, now);
                }
            }
            self.run_timers(now);
            if self.stopping && self.conns.is_empty() {
                log::debug!("worker {}: soft stop complete", self.id);
                return Ok(());
            }
        }
    }

    /// Handles control messages; true means stop now.
    fn on_control(&mut self, now: Instant) -> bool {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Stop => return true,
                Control::SoftStop => {
                    for l in &mut self.listeners {
                        l.close(self.poll.registry());
                    }
                    self.stopping = true;
                    self.arm_tick(now);
                }
                Control::Server(u) => self.on_server_update(u, now),
                Control::Snapshot(reply) => {
                    self.stats.pipes_used = self.bufs.pipes.in_use() as u64;
                    self.stats.pipes_free = self.bufs.pipes.free_len() as u64;
                    let _ = reply.send(self.stats.copy(now));
                }
                Control::Frontend { frontend, enabled } => {
                    for i in 0..self.listeners.len() {
                        if self.listeners[i].frontend != frontend {
                            continue;
                        }
                        self.listeners[i].disabled = !enabled;
                        if enabled {
                            let _ = self.listeners[i]
                                .resume(self.poll.registry(), Token(LISTENER_BASE - i));
                            self.accept(i, now);
                        } else {
                            self.listeners[i].pause(self.poll.registry());
                        }
                    }
                }
            }
        }
        false
    }

    /// Applies a server's new state to its backend's pool and algorithm, and closes
    /// connections when `on-marked-down`/`on-marked-up` ask for it.
    fn on_server_update(&mut self, u: ServerUpdate, now: Instant) {
        let b = self.model.server(u.server).backend;
        let rt = &mut self.backends[b.index()];
        if let Some(m) = rt.pool.member_mut(u.server) {
            m.maxconn = u.maxconn;
        }
        let mut changed = if u.usable {
            rt.pool.server_up(u.server, now)
        } else {
            rt.pool.server_down(u.server, now)
        };
        changed |= rt.pool.set_weight(u.server, u.weight, now);
        if changed {
            rt.alg.rebuild(&rt.pool);
        }
        if rt.pool.next_ramp().is_some() {
            // slowstart: the tick steps the weight up.
            self.arm_tick(now);
        }
        if u.shutdown_sessions || u.shutdown_backup_sessions {
            let model = &self.model;
            let doomed: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.server_id().is_some_and(|s| {
                        (u.shutdown_sessions && s == u.server)
                            || (u.shutdown_backup_sessions
                                && model.server(s).backend == b
                                && model.server(s).backup)
                    })
                })
                .map(|(k, _)| k)
                .collect();
            for k in doomed {
                self.close(k, CloseReason::ServerShutdown, now);
            }
        }
        // A server coming back may take queued connections.
        self.dequeue(b, now);
    }

    fn report(&self, server: ServerId, ok: bool) {
        if let Some(o) = &self.observe {
            if self.model.server(server).observe_layer4 {
                let _ = o.tx.send(crate::health::Observation { server, ok });
                let _ = o.waker.wake();
            }
        }
    }

    fn close_all(&mut self, now: Instant) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k, CloseReason::Stopping, now);
        }
    }

    fn arm_tick(&mut self, now: Instant) {
        self.timers
            .arm(TimerKey::Tick, now + TICK, &mut self.tick_armed);
    }

    // -----------------------------------------------------------------------------------
    // accept

    fn accept(&mut self, li: usize, now: Instant) {
        if self.stopping || self.accept_paused_until.is_some() {
            return;
        }
        let fe = self.listeners[li].frontend;
        loop {
            if self.shared.full(fe, now) {
                // At maxconn: stop polling this listener; the tick resumes it.
                self.listeners[li].pause(self.poll.registry());
                self.arm_tick(now);
                return;
            }
            let (stream, src) = match self.listeners[li].accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    log::warn!(
                        "worker {}: accept: {e}: pausing accepts for 100 ms",
                        self.id
                    );
                    self.pause_all_accepts(now);
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one connection only.
                    log::debug!("worker {}: accept: {e}", self.id);
                    continue;
                }
            };
            let Some(slot) = self.shared.try_slot(fe) else {
                // Another worker took the last slot: refuse this one.
                drop(stream);
                continue;
            };
            // TCP_NODELAY (and keep-alive) come from the listening socket.
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let mut client = Side::new(stream, now);
            if let Err(e) = self.poll.registry().register(
                &mut client.sock,
                Token(key * 2),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("worker {}: register client: {e}", self.id);
                continue;
            }
            entry.insert(Conn::new(fe, client, src, slot, now));
            self.stats.fe[fe.index()].accept(now);
            if !self.connection_rules(key, now) {
                continue;
            }
            if self.listeners[li].accept_proxy || self.expects_proxy(key) {
                // Route once the PROXY header has told who the client is.
                self.conns[key].phase = Phase::ProxyHeader;
                self.update_deadline(key, now);
                continue;
            }
            self.log_connect(key);
            self.route(key, now);
        }
    }

    /// `tcp-request connection expect-proxy layer4 if <cond>`, judged on the socket's
    /// addresses at accept.
    fn expects_proxy(&mut self, key: usize) -> bool {
        let fe = self.conns[key].frontend;
        let f = self.model.frontend(fe);
        if !f
            .tcp_request_connection
            .iter()
            .any(|r| r.action == crate::config::model::TcpAction::ExpectProxyLayer4)
        {
            return false;
        }
        let dst = self.conns[key].dst();
        let c = &self.conns[key];
        let view = self.lb_view();
        let mut ctx = rules::FetchCtx::layer4(c.src, dst, &view);
        ctx.tables = Some(self.tables);
        ctx.table = f.stick_table.as_ref().map(|_| TableRef::Frontend(fe));
        rules::expects_proxy(&f.tcp_request_connection, &f.acls, &ctx)
    }

    /// `accept-proxy`: reads the client's PROXY header (peeking, then consuming exactly the
    /// header), takes the addresses it announces, and routes. A broken header, an EOF or the
    /// client timeout closes the connection.
    fn read_proxy_header(&mut self, key: usize, now: Instant) {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let c = &mut self.conns[key];
        let fd = c.client.sock.as_raw_fd();
        let mut buf = [0u8; proxy_header::MAX_HEADER];
        let n = match recv(fd, &mut buf, MsgFlags::MSG_PEEK) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => return,
            Err(nix::errno::Errno::EINTR) => return,
            Err(e) => {
                log::debug!("worker {}: {}: PROXY header: {e}", self.id, c.src);
                self.close(key, CloseReason::ClientReset, now);
                return;
            }
        };
        if n == 0 {
            self.close(key, CloseReason::BadProxyHeader, now);
            return;
        }
        match proxy_header::parse(&buf[..n]) {
            proxy_header::Received::Incomplete => {
                // The rest raises a new edge when it arrives.
                c.client.readable = false;
            }
            proxy_header::Received::Invalid(why) => {
                log::debug!("worker {}: {}: {why}", self.id, c.src);
                self.stats.fe[c.frontend.index()].t.dreq += 1;
                self.close(key, CloseReason::BadProxyHeader, now);
            }
            proxy_header::Received::Done { len, addrs } => {
                // Consume exactly the header; what follows is the client's data.
                match recv(fd, &mut buf[..len], MsgFlags::empty()) {
                    Ok(got) if got == len => {}
                    _ => {
                        self.close(key, CloseReason::BadProxyHeader, now);
                        return;
                    }
                }
                if let Some((src, dst)) = addrs {
                    c.set_addrs(src, dst);
                }
                c.proxied = true;
                c.phase = Phase::Queued { since: now };
                self.log_connect(key);
                self.route(key, now);
            }
        }
    }

    fn pause_all_accepts(&mut self, now: Instant) {
        for l in &mut self.listeners {
            l.pause(self.poll.registry());
        }
        self.accept_paused_until = Some(now + Duration::from_millis(100));
        self.arm_tick(now);
    }

    // -----------------------------------------------------------------------------------
    // routing and connecting

    /// What rules read of the backends.
    fn lb_view(&self) -> LbView<'_> {
        LbView {
            model: &self.model,
            backends: &self.backends,
            counters: self.counters,
        }
    }

    /// Runs `f` with the model, connection `key`'s fetch context (request bytes `req`, the
    /// rules' own stick table `table`) and its stick counters, which rules may add to. The
    /// model is lent, not cloned: an `Arc` clone per connection would bounce its count
    /// between the cores. The
    /// destination address costs a syscall: it is looked up only when `needs_dst` says
    /// these rules read it.
    fn with_rules_ctx<R>(
        &mut self,
        key: usize,
        req: rules::Req<'_>,
        (table, needs_dst): (Option<TableRef>, bool),
        now: Instant,
        f: impl FnOnce(&Model, &rules::FetchCtx<'_>, &mut [Option<crate::stick::Tracker>; 3]) -> R,
    ) -> R {
        let dst = if needs_dst {
            self.conns[key].dst()
        } else {
            self.conns[key].src
        };
        let mut sc = std::mem::take(&mut self.conns[key].sc);
        let view = self.lb_view();
        let mut ctx = fetch_ctx(&self.conns[key], dst, &view, req, self.tables, now);
        ctx.table = table;
        let r = f(&self.model, &ctx, &mut sc);
        self.conns[key].sc = sc;
        r
    }

    /// A new connection's `tcp-request connection` rules, at accept, on the socket's own
    /// addresses (a PROXY header is not read yet: HAProxy's connection rules never see
    /// it). False when they closed the connection.
    fn connection_rules(&mut self, key: usize, now: Instant) -> bool {
        self.frontend_rules(key, now, RuleStage::Connection)
    }

    /// Runs a frontend's connection or session rules (no request data) for `key`; a
    /// rejection is counted (`dcon`, `dses`) and closes the connection.
    fn frontend_rules(&mut self, key: usize, now: Instant, stage: RuleStage) -> bool {
        let fe = self.conns[key].frontend;
        let f = self.model.frontend(fe);
        if stage.rules(f).is_empty() {
            return true;
        }
        let table = f.stick_table.as_ref().map(|_| TableRef::Frontend(fe));
        let rules_of = (table, self.needs_dst[fe.index()]);
        let outcome = self.with_rules_ctx(key, rules::Req::NONE, rules_of, now, |m, ctx, sc| {
            let f = m.frontend(fe);
            rules::run(stage.rules(f), &f.acls, ctx, sc)
        });
        let reason = match (outcome, stage) {
            (rules::Outcome::Accept, _) => return true,
            (rules::Outcome::SilentDrop, _) => CloseReason::SilentDrop,
            (_, RuleStage::Connection) => CloseReason::Refused,
            (_, RuleStage::Session) => CloseReason::Denied,
        };
        let t = &mut self.stats.fe[fe.index()].t;
        match stage {
            RuleStage::Connection => t.dcon += 1,
            RuleStage::Session => t.dses += 1,
        }
        self.close(key, reason, now);
        false
    }

    /// A connection's session starts (after its PROXY header, if any): `tcp-request
    /// session` rules, then content inspection (or at once, without an inspect-delay), then
    /// the backend.
    fn route(&mut self, key: usize, now: Instant) {
        let fe = self.conns[key].frontend;
        let f = self.model.frontend(fe);
        let inspect = f
            .inspect_delay
            .filter(|d| !d.is_zero() && !f.tcp_request_content.is_empty());
        if !self.frontend_rules(key, now, RuleStage::Session) {
            return;
        }
        let c = &mut self.conns[key];
        // The connection is a session now.
        self.stats.fe[fe.index()].session();
        for t in c.sc.iter().flatten() {
            t.session(now);
        }
        if let Some(r) = &self.shared.sess_rate[fe.index()] {
            r.count(now);
        }
        match inspect {
            Some(d) => {
                c.phase = Phase::Inspect { until: now + d };
                self.update_deadline(key, now);
                self.inspect(key, now);
            }
            None => self.decide(key, 0, true, now),
        }
    }

    /// Content inspection: looks at what the client sent so far, without consuming it (it
    /// is forwarded to the server as it is), and lets the rules decide.
    fn inspect(&mut self, key: usize, now: Instant) {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !matches!(c.phase, Phase::Inspect { .. }) {
            return;
        }
        let fd = c.client.sock.as_raw_fd();
        let (n, eof) = match recv(fd, &mut self.peek, MsgFlags::MSG_PEEK) {
            Ok(n) => (n, n == 0),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => (0, false),
            Err(e) => {
                log::debug!("worker {}: {}: inspecting: {e}", self.id, c.src);
                self.close(key, CloseReason::ClientReset, now);
                return;
            }
        };
        // No more bytes will come into view: the buffer is full or the client is done.
        let data_final = n == self.peek.len() || eof || c.client.rdhup;
        self.decide(key, n, data_final, now);
    }

    /// Runs the content rules on the first `n` peeked bytes, then picks the backend and runs
    /// its own content rules; waits while a rule misses data that may still come.
    fn decide(&mut self, key: usize, n: usize, data_final: bool, now: Instant) {
        let peek = std::mem::take(&mut self.peek);
        let data = &peek[..n];
        let mut step = Decided::Go;
        if self.conns[key].backend.is_none() {
            step = self.frontend_content(key, data, data_final, now);
        }
        if step == Decided::Go {
            step = self.backend_content(key, data, data_final, now);
        }
        if step == Decided::Go {
            self.persistence(key, data, now);
        }
        self.peek = peek;
        match step {
            Decided::Wait => {
                self.update_deadline(key, now);
                // The next bytes raise a new edge.
                self.conns[key].client.readable = false;
            }
            Decided::Closed => {}
            Decided::Go => {
                let c = &mut self.conns[key];
                // Whatever was peeked is still in the socket: the pump reads it first.
                c.client.readable = true;
                c.phase = Phase::Queued { since: now };
                self.start_connect(key, None, now);
            }
        }
    }

    /// Whether rules see the data as final: it cannot grow, or no inspection window is open.
    fn data_complete(&self, key: usize, data_final: bool, now: Instant) -> bool {
        data_final || !matches!(self.conns[key].phase, Phase::Inspect { until } if now < until)
    }

    /// The frontend's `tcp-request content` rules, then its switching rules.
    fn frontend_content(
        &mut self,
        key: usize,
        data: &[u8],
        data_final: bool,
        now: Instant,
    ) -> Decided {
        let fe = self.conns[key].frontend;
        let complete = self.data_complete(key, data_final, now);
        let f = self.model.frontend(fe);
        let table = f.stick_table.as_ref().map(|_| TableRef::Frontend(fe));
        let req = rules::Req { data, complete };
        let rules_of = (table, self.needs_dst[fe.index()]);
        let (outcome, chosen) = self.with_rules_ctx(key, req, rules_of, now, |m, ctx, sc| {
            let f = m.frontend(fe);
            let outcome = rules::run(&f.tcp_request_content, &f.acls, ctx, sc);
            // Switching rules judge the data as final, as HAProxy does.
            let ctx = rules::FetchCtx {
                sc: &sc[..],
                req: rules::Req {
                    data,
                    complete: true,
                },
                ..*ctx
            };
            // The first rule whose condition holds decides; a dynamic name that names no
            // usable backend falls to default_backend, as in HAProxy.
            let chosen = (outcome == rules::Outcome::Accept).then(|| {
                f.use_backend
                    .iter()
                    .find(|u| {
                        u.cond
                            .as_ref()
                            .map_or(true, |cond| rules::eval(cond, &f.acls, &ctx))
                    })
                    .and_then(|u| rules::target(&u.target, m, &ctx))
                    .or(f.default_backend)
            });
            (outcome, chosen)
        });
        let reason = match (outcome, chosen) {
            (rules::Outcome::Wait, _) => return Decided::Wait,
            (rules::Outcome::Accept, Some(Some(b))) => {
                self.assign_backend(key, b, data, now);
                return Decided::Go;
            }
            (rules::Outcome::Accept, _) => CloseReason::NoBackend,
            (rules::Outcome::Reject, _) => CloseReason::Denied,
            (rules::Outcome::SilentDrop, _) => CloseReason::SilentDrop,
        };
        if reason != CloseReason::NoBackend {
            self.stats.fe[fe.index()].t.dreq += 1;
        }
        self.close(key, reason, now);
        Decided::Closed
    }

    /// The session goes to backend `b`: counted there, splice chosen, the SNI kept if the
    /// backend hashes it, and the backend's own inspection window opened if it has one.
    fn assign_backend(&mut self, key: usize, b: BackendId, data: &[u8], now: Instant) {
        let f = self.model.frontend(self.conns[key].frontend);
        let be = self.model.backend(b);
        let (fe_up, fe_down) = f.splice.directions();
        let (be_up, be_down) = be.splice.directions();
        self.stats.be[b.index()].open(now);
        let c = &mut self.conns[key];
        c.backend = Some(b);
        c.up.splice = !self.nosplice && fe_up && be_up;
        c.down.splice = !self.nosplice && fe_down && be_down;
        if self.backends[b.index()].alg.needs_sni() {
            if let tls_hello::Fetched::Value(name) = tls_hello::sni(data, true) {
                c.sni = Some(name.into());
            }
        }
        let delay = be.inspect_delay.filter(|d| !d.is_zero());
        if be.kind == ProxyKind::Backend && !be.tcp_request_content.is_empty() {
            c.phase = match delay {
                Some(d) => Phase::Inspect { until: now + d },
                None => Phase::Queued { since: now },
            };
        }
    }

    /// A backend's own `tcp-request content` rules (not a `listen` section's: those ran
    /// as the frontend's).
    fn backend_content(
        &mut self,
        key: usize,
        data: &[u8],
        data_final: bool,
        now: Instant,
    ) -> Decided {
        let Some(b) = self.conns[key].backend else {
            return Decided::Closed;
        };
        let be = self.model.backend(b);
        if be.kind != ProxyKind::Backend || be.tcp_request_content.is_empty() {
            return Decided::Go;
        }
        let delay = be.inspect_delay.unwrap_or_default();
        let complete = self.data_complete(key, data_final, now);
        let table = be.stick_table.as_ref().map(|_| TableRef::Backend(b));
        let req = rules::Req { data, complete };
        let rules_of = (table, self.be_rules_need_dst[b.index()]);
        let outcome = self.with_rules_ctx(key, req, rules_of, now, |m, ctx, sc| {
            let be = m.backend(b);
            rules::run(&be.tcp_request_content, &be.acls, ctx, sc)
        });
        let reason = match outcome {
            rules::Outcome::Accept => return Decided::Go,
            rules::Outcome::Wait => {
                if !matches!(self.conns[key].phase, Phase::Inspect { .. }) {
                    // Reached from a frontend that did not inspect: open the window now.
                    self.conns[key].phase = Phase::Inspect { until: now + delay };
                }
                return Decided::Wait;
            }
            rules::Outcome::Reject => CloseReason::Denied,
            rules::Outcome::SilentDrop => CloseReason::SilentDrop,
        };
        self.stats.be[b.index()].t.dreq += 1;
        self.close(key, reason, now);
        Decided::Closed
    }

    /// The backend's `use-server` rules, then its `stick match|on|store-request` rules,
    /// once the backend is known and before the first pick (HAProxy's
    /// `process_server_rules` and `process_sticking_rules`). The first `use-server` rule
    /// whose condition holds and whose server is not down (a weight of 0 is fine) sends the
    /// connection there, see [`conn::Conn::direct`], and `stick match` is then skipped.
    /// Sticking rules: in order, a rule whose
    /// condition passes and whose key fits its table looks the key up (`match`: the first
    /// entry naming a running server of this backend sends the connection there, see
    /// [`conn::Conn::direct`]; every found entry is touched) and notes the key to store
    /// (`store-request`: the first rule per table, stored once the server is connected, in
    /// [`Worker::established`]).
    fn persistence(&mut self, key: usize, data: &[u8], now: Instant) {
        let Some(b) = self.conns[key].backend else {
            return;
        };
        let model = &self.model;
        let be = model.backend(b);
        if be.sticking.is_empty() && be.use_server.is_empty() {
            return;
        }
        let dst = self.conns[key].dst();
        let src = self.conns[key].src;
        let sc = std::mem::take(&mut self.conns[key].sc);
        let view = self.lb_view();
        let req = rules::Req {
            data,
            complete: true,
        };
        let mut ctx = fetch_ctx(&self.conns[key], dst, &view, req, self.tables, now);
        ctx.sc = &sc;
        ctx.table = be.stick_table.as_ref().map(|_| TableRef::Backend(b));
        let pool = &self.backends[b.index()].pool;
        let mut direct = None;
        for u in &be.use_server {
            if !rules::eval(&u.cond, &be.acls, &ctx) {
                continue;
            }
            let named = |name: &str| {
                be.servers
                    .iter()
                    .copied()
                    .find(|&s| model.server(s).name == name)
            };
            // A name that is no server of the backend ends the rules, as in HAProxy.
            let Some(sid) = rules::resolve(&u.target, &ctx, named) else {
                break;
            };
            // A server that is down is passed over for the next rule.
            if pool.members.iter().any(|m| m.id == sid && m.usable) {
                direct = Some(sid);
                break;
            }
        }
        let by_rule = direct.is_some();
        let mut stores: Vec<(&'static crate::stick::Table, std::net::IpAddr)> = Vec::new();
        for r in &be.sticking {
            let Some(table) = self.tables.get(r.table) else {
                continue;
            };
            if r.stores && stores.iter().any(|(t, _)| std::ptr::eq(*t, table)) {
                continue;
            }
            if let Some(cond) = &r.cond {
                if !rules::eval(cond, &be.acls, &ctx) {
                    continue;
                }
            }
            let k = match r.key {
                crate::config::model::StickKey::Src => src.ip(),
                crate::config::model::StickKey::Dst => dst.ip(),
            };
            if !table.fits(k) {
                continue;
            }
            if r.matches && !by_rule {
                if let Some(uid) = table.stick_match(k, now) {
                    if direct.is_none() {
                        direct = persist_target(pool, uid);
                    }
                }
            }
            if r.stores && stores.len() < MAX_STICK_STORES {
                stores.push((table, k));
            }
        }
        let c = &mut self.conns[key];
        c.sc = sc;
        c.direct = direct;
        c.stick_store = stores;
    }

    /// Picks a server (avoiding `avoid` if possible) and connects, or queues, or closes. A
    /// connection a `stick` rule sent to a server leases that server, or queues for it
    /// (HAProxy's server queue; beyond the server's `maxqueue` it is balanced anew with
    /// `option redispatch`, else refused).
    fn start_connect(&mut self, key: usize, avoid: Option<ServerId>, now: Instant) {
        let c = &mut self.conns[key];
        let Some(b) = c.backend else { return };
        let rt = &mut self.backends[b.index()];
        let mut queue_limit = rt.pool.queue_limit();
        let direct = c
            .direct
            .and_then(|sid| rt.pool.members.iter().find(|m| m.id == sid && m.usable));
        let balanced = direct.is_none();
        let pick = match direct {
            Some(m) => {
                queue_limit = m.maxqueue;
                match self.counters.try_lease(m.id, m.maxconn) {
                    Some(lease) => Pick::Leased(lease),
                    None => Pick::Full,
                }
            }
            None => {
                c.direct = None;
                let hash_dst = self.needs_dst_keys[b.index()];
                pick_balanced(rt, c, avoid, hash_dst, self.counters)
            }
        };
        match pick {
            Pick::Leased(lease) => {
                let sid = lease.server();
                if balanced {
                    count_selection(&mut self.stats, b, sid);
                }
                c.lease = Some(lease);
                self.count_reassignment(key, sid);
                self.connect(key, now);
            }
            Pick::Full => {
                if c.queue_ticket.is_none() {
                    match self.counters.try_queue(b, queue_limit) {
                        Some(t) => {
                            c.queue_ticket = Some(t);
                            self.stats.be[b.index()].enqueue();
                        }
                        None if c.direct.is_some()
                            && self.model.backend(b).redispatch.is_some() =>
                        {
                            c.direct = None;
                            self.start_connect(key, avoid, now);
                            return;
                        }
                        None => {
                            self.close(key, CloseReason::QueueFull, now);
                            return;
                        }
                    }
                    c.phase = Phase::Queued { since: now };
                    rt.queue.push_back(key);
                }
                self.arm_tick(now);
                self.update_deadline(key, now);
            }
            Pick::NoServer => self.close(key, CloseReason::NoServer, now),
        }
    }

    /// Opens a nonblocking connection to the leased server.
    fn connect(&mut self, key: usize, now: Instant) {
        let c = &mut self.conns[key];
        let Some(sid) = c.server_id() else { return };
        self.stats.srv[sid.index()].session();
        let s = self.model.server(sid);
        let be = self.model.backend(s.backend);
        let addr = match &s.addr {
            ServerAddr::Resolved(a) => {
                let port = match (a.port(), s.port_offset) {
                    (_, Some(off)) => (i32::from(c.dst().port()) + off).clamp(1, 65_535) as u16,
                    (0, None) => c.dst().port(),
                    (p, None) => p,
                };
                SocketAddr::new(a.ip(), port)
            }
            ServerAddr::Unresolved { .. } => {
                self.connect_failed(key, true, now);
                return;
            }
        };
        c.attempts += 1;
        c.target = Some(addr);
        c.phase = Phase::Connecting { since: now };
        let opts = ConnectOpts {
            keepalive: be.server_side.tcpka,
            nolinger: false,
            source: None,
            nagle: false,
        };
        match socket::connect(addr, &opts) {
            Ok(stream) => {
                let mut side = Side::new(stream, now);
                if let Err(e) = self.poll.registry().register(
                    &mut side.sock,
                    Token(key * 2 + 1),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    log::warn!("worker {}: register server: {e}", self.id);
                    self.connect_failed(key, true, now);
                    return;
                }
                c.server = Some(side);
                self.update_deadline(key, now);
            }
            Err(e) => {
                log::debug!("worker {}: connect {addr}: {e}", self.id);
                self.connect_failed(key, true, now);
            }
        }
    }

    /// A connect was refused, failed (`error`) or timed out: retry, on the same server or
    /// another one, or give up, as HAProxy 2.6 does (`back_handle_st_cer` and
    /// `stream_choose_redispatch`). With `option redispatch` a retry goes back to the
    /// balancing when the server is down, when the redispatch interval says so, or at once
    /// when the connection has no persistence, the backend more than one active server and a
    /// non-hashing algorithm; otherwise it retries the same server, after a turn-around of
    /// min(1 s, `timeout connect`) when the connect failed with an error. A connection error
    /// counts once, when the retries are spent.
    fn connect_failed(&mut self, key: usize, error: bool, now: Instant) {
        let failed = self.conns[key].server_id();
        if let Some(sid) = failed {
            self.report(sid, false);
            let b = self.model.server(sid).backend;
            self.backends[b.index()].alg.failed(sid);
        }
        let c = &mut self.conns[key];
        if let Some(mut s) = c.server.take() {
            let _ = self.poll.registry().deregister(&mut s.sock);
        }
        let Some(b) = c.backend else { return };
        let be = self.model.backend(b);
        if c.attempts > be.retries {
            self.stats.be[b.index()].t.econ += 1;
            if let Some(sid) = failed {
                self.stats.srv[sid.index()].t.econ += 1;
            }
            self.close(key, CloseReason::ConnectFailed, now);
            return;
        }
        // The retry about to be made is retry number `attempts` (1-based).
        let n = i64::from(c.attempts);
        let pool = &self.backends[b.index()].pool;
        let down = failed.is_some_and(|sid| !pool.members.iter().any(|m| m.id == sid && m.usable));
        let interval = match be.redispatch {
            Some(p) if p > 0 => n % i64::from(p) == 0,
            Some(p) if p < 0 => {
                let every = i64::from(be.retries) + 1 + i64::from(p);
                every > 0 && n % every == 0
            }
            _ => false,
        };
        let active = pool
            .members
            .iter()
            .filter(|m| m.usable && !m.backup)
            .count();
        let hashing = matches!(
            be.balance,
            crate::config::model::Balance::Source | crate::config::model::Balance::Hash(_)
        );
        let spread = c.direct.is_none() && active > 1 && !hashing;
        let redispatch = be.redispatch.is_some() && (down || interval || spread);
        c.retries += 1;
        if redispatch {
            // Counted as a retry or a redispatch once the next server is chosen.
            c.redispatched_from = failed;
            let failed = c.lease.take().map(|l| l.server());
            // A redispatch ignores persistence, as HAProxy's clears SF_DIRECT.
            c.direct = None;
            self.start_connect(key, failed, now);
            return;
        }
        self.stats.be[b.index()].t.wretr += 1;
        if let Some(sid) = failed {
            self.stats.srv[sid.index()].t.wretr += 1;
        }
        if error {
            let wait = be
                .timeout_connect
                .map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1)));
            c.phase = Phase::TurnAround { until: now + wait };
            self.update_deadline(key, now);
        } else {
            self.connect(key, now);
        }
    }

    /// A server was chosen for `key` after a redispatch: the same one counts as a retry,
    /// another as a redispatch, on the server left and the backend.
    fn count_reassignment(&mut self, key: usize, chosen: ServerId) {
        let Some(prev) = self
            .conns
            .get_mut(key)
            .and_then(|c| c.redispatched_from.take())
        else {
            return;
        };
        let b = self.model.server(prev).backend;
        let (be, srv) = (b.index(), prev.index());
        if chosen == prev {
            self.stats.be[be].t.wretr += 1;
            self.stats.srv[srv].t.wretr += 1;
        } else {
            self.stats.be[be].t.wredis += 1;
            self.stats.srv[srv].t.wredis += 1;
        }
    }

    // -----------------------------------------------------------------------------------
    // events

    fn on_event(&mut self, key: usize, server_side: bool, ev: &mio::event::Event, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let side = if server_side {
            match c.server.as_mut() {
                Some(s) => s,
                None => return,
            }
        } else {
            &mut c.client
        };
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            side.readable = true;
        }
        if ev.is_read_closed() || ev.is_error() {
            side.rdhup = true;
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            side.writable = true;
        }
        if !server_side && c.phase == Phase::ProxyHeader {
            self.read_proxy_header(key, now);
            return;
        }
        if !server_side && matches!(c.phase, Phase::Inspect { .. }) {
            self.inspect(key, now);
            return;
        }
        if server_side && matches!(c.phase, Phase::Connecting { .. }) {
            let s = c.server.as_ref().expect("server side exists");
            if !(s.writable || ev.is_error()) {
                return;
            }
            // Writable without an error flag: the connect completed; no SO_ERROR syscall.
            let pending = if ev.is_error() || ev.is_write_closed() {
                socket::take_error(s.sock.as_fd())
            } else {
                Ok(None)
            };
            match pending {
                Ok(None) if !ev.is_error() => self.established(key, now),
                Ok(None) => {
                    // An error event with no pending error: check the peer address.
                    if s.sock.peer_addr().is_err() {
                        self.connect_failed(key, true, now);
                        return;
                    }
                    self.established(key, now);
                }
                Ok(Some(e)) | Err(e) => {
                    log::debug!("worker {}: connect {:?}: {e}", self.id, c.target);
                    self.connect_failed(key, true, now);
                    return;
                }
            }
        }
        self.drive(key, now);
    }

    /// A direction failed: the side that failed is the source on a read error, the other
    /// one on a write error; close with that side's reset.
    fn pump_failed(
        &mut self,
        key: usize,
        dir: &str,
        e: &forward::PumpError,
        source: CloseReason,
        now: Instant,
    ) {
        let reason = match (e, source) {
            (forward::PumpError::Read(_), r) => r,
            (forward::PumpError::Write(_), CloseReason::ClientReset) => CloseReason::ServerReset,
            (forward::PumpError::Write(_), _) => CloseReason::ClientReset,
        };
        log::debug!("worker {}: {dir} {e}", self.id);
        self.close(key, reason, now);
    }

    /// The server accepted: count it and start forwarding.
    fn established(&mut self, key: usize, now: Instant) {
        let c = &mut self.conns[key];
        if let Phase::Connecting { since } = c.phase {
            c.t_connect = Some(now.saturating_duration_since(since));
        }
        c.phase = Phase::Forwarding;
        let (Some(sid), Some(b)) = (c.server_id(), c.backend) else {
            return;
        };
        // send-proxy: the PROXY header goes first, ahead of the client's bytes.
        if let Some(v) = self.model.server(sid).send_proxy {
            let (src, dst) = (c.src, c.dst());
            let header = match v {
                crate::config::model::ProxyProtocol::V1 => proxy_header::v1(src, dst),
                crate::config::model::ProxyProtocol::V2 => proxy_header::v2(src, dst),
            };
            c.up.preload(&header, &mut self.bufs);
        }
        c.srv_counted = true;
        if !c.stick_store.is_empty() {
            // HAProxy's process_store_rules: the server is known, store it.
            let server = (self.model.server(sid).uid, &self.server_names[sid.index()]);
            for (table, k) in std::mem::take(&mut c.stick_store) {
                table.stick_store(k, server, now);
            }
        }
        let ct = c.t_connect.map_or(0, |d| d.as_millis() as u64);
        if let Some(t) = c.t_connect {
            self.backends[b.index()].alg.connected(sid, t);
        }
        let srv = &mut self.stats.srv[sid.index()];
        srv.begin(now);
        srv.t.ctime_sum_ms += ct;
        self.stats.be[b.index()].t.ctime_sum_ms += ct;
        self.report(sid, true);
    }

    /// Moves bytes both ways, then closes, requeues or re-arms the timer as needed.
    fn drive(&mut self, key: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.phase != Phase::Forwarding {
            return;
        }
        let Some(server) = c.server.as_mut() else {
            return;
        };
        let mut budget = BUDGET;
        let up =
            c.up.pump(&mut c.client, server, &mut self.bufs, &mut budget, now);
        let up = match up {
            Ok(p) => p,
            Err(e) => {
                return self.pump_failed(key, "client->server", &e, CloseReason::ClientReset, now)
            }
        };
        let mut budget = BUDGET;
        let down = c
            .down
            .pump(server, &mut c.client, &mut self.bufs, &mut budget, now);
        let down = match down {
            Ok(p) => p,
            Err(e) => {
                return self.pump_failed(key, "server->client", &e, CloseReason::ServerReset, now)
            }
        };
        if c.both_finished() {
            self.close(key, CloseReason::Done, now);
            return;
        }
        if (up == Pumped::Yielded || down == Pumped::Yielded) && !c.requeued {
            c.requeued = true;
            self.requeue.push(key);
        }
        self.update_deadline(key, now);
    }

    // -----------------------------------------------------------------------------------
    // timers

    fn update_deadline(&mut self, key: usize, _now: Instant) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let f = self.model.frontend(c.frontend);
        if c.phase == Phase::ProxyHeader {
            // The header must come within the client timeout (HAProxy's rule), 5 s without one.
            let d = c.accepted + f.timeout_client.unwrap_or(Duration::from_secs(5));
            c.deadline = Some(d);
            self.timers.arm(TimerKey::Conn(key), d, &mut c.armed);
            return;
        }
        if let Phase::Inspect { until } = c.phase {
            // The rules decide at `until` at the latest; a silent client times out before.
            let d = f
                .timeout_client
                .map_or(until, |t| until.min(c.client.last + t));
            c.deadline = Some(d);
            self.timers.arm(TimerKey::Conn(key), d, &mut c.armed);
            return;
        }
        let Some(b) = c.backend else { return };
        let be = self.model.backend(b);
        let deadline = match c.phase {
            Phase::ProxyHeader | Phase::Inspect { .. } => None,
            Phase::Queued { since } => be.timeout_queue.or(be.timeout_connect).map(|t| since + t),
            Phase::Connecting { since } => be.timeout_connect.map(|t| since + t),
            Phase::TurnAround { until } => Some(until),
            Phase::Forwarding => {
                let cl = c.client_deadline(f, be.timeout_tunnel);
                let sv = c.server_deadline(be);
                match (cl, sv) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        };
        c.deadline = deadline;
        if let Some(d) = deadline {
            self.timers.arm(TimerKey::Conn(key), d, &mut c.armed);
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Tick => {
                    if self.tick_armed == Some(at) {
                        self.tick_armed = None;
                        self.on_tick(now);
                    }
                }
                TimerKey::Conn(k) => {
                    let Some(c) = self.conns.get_mut(k) else {
                        continue;
                    };
                    if c.armed != Some(at) {
                        continue;
                    }
                    c.armed = None;
                    match c.deadline {
                        Some(d) if d <= now => self.on_timeout(k, now),
                        Some(d) => self.timers.arm(TimerKey::Conn(k), d, &mut c.armed),
                        None => {}
                    }
                }
            }
        }
    }

    fn on_timeout(&mut self, key: usize, now: Instant) {
        let c = &self.conns[key];
        match c.phase {
            Phase::ProxyHeader => self.close(key, CloseReason::BadProxyHeader, now),
            Phase::Inspect { until } if now >= until => self.inspect(key, now),
            Phase::Inspect { .. } => self.close(key, CloseReason::ClientTimeout, now),
            Phase::Queued { .. } => self.close(key, CloseReason::QueueTimeout, now),
            Phase::Connecting { .. } => {
                log::debug!("worker {}: connect {:?}: timeout", self.id, c.target);
                self.connect_failed(key, false, now);
            }
            Phase::TurnAround { .. } => self.connect(key, now),
            Phase::Forwarding => {
                let f = self.model.frontend(c.frontend);
                let tunnel = c.backend.and_then(|b| self.model.backend(b).timeout_tunnel);
                let client_expired = c.client_deadline(f, tunnel).is_some_and(|d| d <= now);
                let reason = if client_expired {
                    CloseReason::ClientTimeout
                } else {
                    CloseReason::ServerTimeout
                };
                self.close(key, reason, now);
            }
        }
    }

    /// Periodic work while something waits: paused listeners and queued connections.
    fn on_tick(&mut self, now: Instant) {
        let mut again = false;
        if let Some(until) = self.accept_paused_until {
            if now >= until {
                self.accept_paused_until = None;
            } else {
                again = true;
            }
        }
        if self.accept_paused_until.is_none() && !self.stopping {
            for i in 0..self.listeners.len() {
                if !self.listeners[i].is_paused() {
                    continue;
                }
                if self.shared.full(self.listeners[i].frontend, now) {
                    again = true;
                    continue;
                }
                if let Err(e) =
                    self.listeners[i].resume(self.poll.registry(), Token(LISTENER_BASE - i))
                {
                    log::warn!("worker {}: resume listener: {e}", self.id);
                    again = true;
                    continue;
                }
                // Edge-triggered: drain whatever arrived while paused.
                self.accept(i, now);
            }
        }
        for b in 0..self.backends.len() {
            let rt = &mut self.backends[b];
            if rt.pool.next_ramp().is_some_and(|t| t <= now) && rt.pool.ramp(now) {
                rt.alg.rebuild(&rt.pool);
            }
            if rt.pool.next_ramp().is_some() {
                again = true;
            }
            self.dequeue(BackendId(b as u32), now);
            if !self.backends[b].queue.is_empty() {
                again = true;
            }
        }
        if again || self.stopping {
            self.arm_tick(now);
        }
    }

    /// Gives freed server slots to queued connections of `b`, oldest first. A connection
    /// a `stick` rule sent to a server waits for that server only (the others go on past
    /// it); if the server went down it waits on, or with `option redispatch` is balanced.
    fn dequeue(&mut self, b: BackendId, now: Instant) {
        let mut i = 0;
        let mut balanced_full = false;
        while let Some(&key) = self.backends[b.index()].queue.get(i) {
            let waiting = self
                .conns
                .get(key)
                .is_some_and(|c| c.backend == Some(b) && matches!(c.phase, Phase::Queued { .. }));
            if !waiting {
                self.backends[b.index()].queue.remove(i);
                continue;
            }
            let redispatch = self.model.backend(b).redispatch.is_some();
            let hash_dst = self.needs_dst_keys[b.index()];
            let rt = &mut self.backends[b.index()];
            let c = &mut self.conns[key];
            let direct = c
                .direct
                .map(|sid| rt.pool.members.iter().find(|m| m.id == sid));
            let mut balanced = false;
            let pick = match direct {
                Some(Some(m)) if m.usable => match self.counters.try_lease(m.id, m.maxconn) {
                    Some(lease) => Pick::Leased(lease),
                    None => {
                        i += 1;
                        continue;
                    }
                },
                Some(_) if !redispatch => {
                    i += 1;
                    continue;
                }
                _ if balanced_full => {
                    c.direct = None;
                    i += 1;
                    continue;
                }
                _ => {
                    c.direct = None;
                    balanced = true;
                    pick_balanced(rt, c, None, hash_dst, self.counters)
                }
            };
            match pick {
                Pick::Leased(lease) => {
                    let sid = lease.server();
                    if balanced {
                        count_selection(&mut self.stats, b, sid);
                    }
                    self.backends[b.index()].queue.remove(i);
                    // Connecting may close connections and serve this queue again:
                    // look at it from the start afterwards.
                    i = 0;
                    let c = &mut self.conns[key];
                    c.lease = Some(lease);
                    c.queue_ticket = None;
                    if let Phase::Queued { since } = c.phase {
                        c.t_queue = Some(now.saturating_duration_since(since));
                    }
                    self.stats.be[b.index()].dequeue();
                    self.count_reassignment(key, sid);
                    self.connect(key, now);
                }
                Pick::Full => {
                    balanced_full = true;
                    i += 1;
                }
                Pick::NoServer => {
                    rt.queue.remove(i);
                    i = 0;
                    self.close(key, CloseReason::NoServer, now);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // close

    fn send_log(&mut self, frontend: usize, text: String) {
        let Some(tx) = &self.logs else { return };
        let line = crate::admin::logs::LogLine {
            frontend,
            level: 6,
            text,
        };
        if tx.try_send(line).is_err() {
            self.stats.dropped_logs += 1;
        }
    }

    /// Without tcplog or log-format, HAProxy logs a line when a connection arrives.
    fn log_connect(&mut self, key: usize) {
        let fe = self.conns[key].frontend;
        let f = self.model.frontend(fe);
        if f.log.targets.is_empty() || self.log_items[fe.index()].is_some() {
            return;
        }
        let dst = self.conns[key].dst();
        let text = format!(
            "Connect from {} to {dst} ({}/TCP)",
            self.conns[key].src, f.name
        );
        self.send_log(fe.index(), text);
    }

    /// The tcplog (or log-format) line of a closing connection.
    fn log_close(&mut self, c: &mut Conn, reason: CloseReason, now: Instant) {
        let fe = c.frontend.index();
        let Some(items) = self.log_items[fe].as_ref() else {
            return;
        };
        let f = self.model.frontend(c.frontend);
        if f.log.dontlognull && c.up.bytes == 0 {
            return;
        }
        use std::sync::atomic::Ordering;
        let be = c.backend.map(|b| self.model.backend(b));
        let sid = c.server_id();
        let srv = sid.map(|s| self.model.server(s));
        let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
        let termination = match reason {
            CloseReason::Done => *b"--",
            CloseReason::ClientReset => *b"CD",
            CloseReason::ServerReset => *b"SD",
            CloseReason::ClientTimeout => *b"cD",
            CloseReason::ServerTimeout => *b"sD",
            CloseReason::ConnectTimeout => *b"sC",
            CloseReason::ConnectFailed | CloseReason::NoServer => *b"SC",
            CloseReason::QueueTimeout | CloseReason::QueueFull => *b"sQ",
            CloseReason::NoBackend
            | CloseReason::Denied
            | CloseReason::Refused
            | CloseReason::BadProxyHeader => *b"PR",
            CloseReason::ServerShutdown | CloseReason::Stopping => *b"KD",
            CloseReason::SilentDrop => *b"PR",
        };
        let frontend_addr = Some(c.dst());
        let ctx = crate::admin::logs::LogCtx {
            client: c.src,
            frontend_addr,
            accept_date: std::time::SystemTime::now() - now.saturating_duration_since(c.accepted),
            frontend: &f.name,
            backend: be.map_or(f.name.as_str(), |b| b.name.as_str()),
            server: srv
                .filter(|_| c.srv_counted || c.attempts > 0)
                .map_or("<NOSRV>", |s| s.name.as_str()),
            server_addr: c.target,
            tw: if c.backend.is_some() {
                ms(Some(c.t_queue.unwrap_or_default()))
            } else {
                -1
            },
            tc: ms(c.t_connect),
            tt: now.saturating_duration_since(c.accepted).as_millis() as i64,
            bytes_out: c.down.bytes,
            bytes_in: c.up.bytes,
            termination,
            actconn: self.shared.actconn.load(Ordering::Relaxed) as u64,
            feconn: u64::from(self.shared.feconn[fe].load(Ordering::Relaxed)),
            beconn: c
                .backend
                .map_or(0, |b| u64::from(be_conn(&self.model, self.counters, b))),
            srv_conn: sid.map_or(0, |s| u64::from(self.counters.active(s))),
            retries: c.retries,
            srv_queue: 0,
            backend_queue: c.backend.map_or(0, |b| u64::from(self.counters.queued(b))),
        };
        let text = crate::admin::logs::format_line(items, &ctx);
        self.send_log(fe, text);
    }

    /// Counts what a closing connection did.
    fn account_close(&mut self, c: &Conn, reason: CloseReason, now: Instant) {
        let (bin, bout) = (c.up.bytes, c.down.bytes);
        let total = now.saturating_duration_since(c.accepted).as_millis() as u64;
        let fe = &mut self.stats.fe[c.frontend.index()];
        fe.close();
        fe.t.bin += bin;
        fe.t.bout += bout;
        let (cli_abrt, srv_abrt) = (
            u64::from(reason == CloseReason::ClientReset),
            u64::from(reason == CloseReason::ServerReset),
        );
        // The same counts for the backend and the server.
        let end = |x: &mut stats::Counted| {
            x.close();
            x.t.bin += bin;
            x.t.bout += bout;
            x.t.ttime_sum_ms += total;
            x.t.cli_abrt += cli_abrt;
            x.t.srv_abrt += srv_abrt;
            x.t.eresp += srv_abrt;
        };
        if let Some(b) = c.backend {
            let be = &mut self.stats.be[b.index()];
            end(be);
            if c.queue_ticket.is_some() {
                be.dequeue();
            }
        }
        if let (true, Some(sid)) = (c.srv_counted, c.server_id()) {
            end(&mut self.stats.srv[sid.index()]);
        }
    }

    /// Closes both sides and releases everything the connection holds.
    fn close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(mut c) = self.conns.try_remove(key) else {
            return;
        };
        let f = self.model.frontend(c.frontend);
        let be = c.backend.map(|b| self.model.backend(b));
        if reason == CloseReason::SilentDrop {
            if let Err(e) = socket::silent_drop(c.client.sock.as_fd()) {
                log::debug!("worker {}: {}: silent-drop: {e}", self.id, c.src);
            }
        } else if reason.is_abort() || reason == CloseReason::Refused || f.client.nolinger {
            let _ = socket::set_linger_zero(c.client.sock.as_fd());
        } else if reason == CloseReason::Denied {
            // HAProxy had read what the client sent before refusing it: the client gets a
            // FIN, not the RST that closing over unread bytes would send.
            socket::drain(c.client.sock.as_fd(), self.peek.len().max(16_384));
        }
        for t in c.sc.iter().flatten() {
            t.add_bytes(c.up.bytes, c.down.bytes);
        }
        if let Some(s) = c.server.as_mut() {
            if reason.is_abort() || be.is_some_and(|b| b.server_side.nolinger) {
                let _ = socket::set_linger_zero(s.sock.as_fd());
            }
        }
        // Closing a socket removes it from epoll: no deregister syscall needed.
        c.up.release(&mut self.bufs);
        c.down.release(&mut self.bufs);
        log::debug!(
            "worker {}: {} closed: {:?} after {:?}, {} bytes up, {} down",
            self.id,
            c.src,
            reason,
            now.saturating_duration_since(c.accepted),
            c.up.bytes,
            c.down.bytes
        );
        self.account_close(&c, reason, now);
        self.log_close(&mut c, reason, now);
        let freed = c.lease.is_some();
        let backend = c.backend;
        drop(c);
        if let (true, Some(b)) = (freed, backend) {
            if !self.backends[b.index()].queue.is_empty() {
                self.dequeue(b, now);
            }
        }
    }
}
