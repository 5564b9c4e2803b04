//! "Is it alive?": the health thread. It owns its own mio `Poll`, never runs inside the
//! forwarding loops, and probes every server that has `check` (and every `agent-check`) with
//! the script of its backend's check kind (`protocol.rs`), applies rise/fall (`state.rs`),
//! and sends each change of what a worker must know (usable, weight, maxconn) to every
//! worker over its crossbeam channel, waking its poll. Only transitions cross the channels.
//! Workers report connection outcomes for servers with `observe layer4` back to it.
//!
//! Timing is HAProxy's: `inter` when steady, `fastinter` while changing state, `downinter`
//! while down, first checks spread over one interval, `spread-checks` jitter; a check's
//! connect (and its TLS handshake, `tls.rs`) is bounded by `timeout connect` (and `inter`),
//! its reading by `timeout check` if set, else by `inter`.

pub mod protocol;
pub mod state;
pub mod tls;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::model::{BackendId, Model, OnError, Server, ServerAddr, ServerId};
use crate::sys::socket::{self, ConnectOpts};
use crate::worker::timer::{TimerKey, Timers};
use crate::worker::{Control, ServerUpdate};
use protocol::{
    AgentAdmin, AgentHealth, AgentReply, CheckStatus, Report, Script, Step, Transport, Trouble,
    Verdict, CHECK_BUFSIZE,
};
use state::{Admin, Health, Pace, Transition};
use tls::Handshake;

pub const WAKER: Token = Token(usize::MAX);
/// How early a check timer may fire to share a wakeup with others.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// What a worker saw when it connected to a server with `observe layer4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub server: ServerId,
    pub ok: bool,
}

/// Messages to the health thread besides observations.
#[derive(Debug, Clone)]
pub enum HealthControl {
    Stop,
    /// A runtime API request on a server; the reply says what happened (an error text).
    Admin(AdminRequest, Sender<Result<String, String>>),
}

/// What the runtime API may change on a server: the health thread owns server state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    SetAdmin(ServerId, Admin),
    /// Weight in percent of the configured weight (`set weight s 50%`) or absolute.
    SetWeight(ServerId, WeightSpec),
    GetWeight(ServerId),
    SetMaxconn(ServerId, u32),
    ShutdownSessions(ServerId),
    SetHealth(ServerId, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightSpec {
    Absolute(u32),
    Percent(u32),
}

/// What the stats show of a server, published by the health thread.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub up: bool,
    pub admin: Admin,
    /// The health counter and its bounds, for "UP 1/3" statuses.
    pub health: Health,
    pub checked: bool,
    pub weight: u32,
    pub maxconn: Option<u32>,
    pub last_check: Option<crate::admin::snapshot::CheckInfo>,
    pub last_agent: Option<crate::admin::snapshot::CheckInfo>,
    pub chkfail: u64,
    pub chkdown: u64,
    pub last_change: Instant,
    pub down_since: Option<Instant>,
    pub downtime: Duration,
}

/// What the health thread publishes for the stats.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Per server id: its view.
    pub servers: Vec<ServerView>,
    /// Per backend id: how many times it went down, with no server left (HAProxy's
    /// backend `chkdown`).
    pub backend_down: Vec<u64>,
}

/// The published views.
pub type Views = Arc<std::sync::Mutex<Published>>;

/// A worker's inbox, as the health thread reaches it.
#[derive(Clone)]
pub struct WorkerLink {
    pub tx: Sender<Control>,
    pub waker: Arc<Waker>,
}

pub struct HealthSetup {
    pub model: Arc<Model>,
    pub poll: Poll,
    pub workers: Vec<WorkerLink>,
    pub observations: Receiver<Observation>,
    pub control: Receiver<HealthControl>,
    pub views: Views,
}

/// True when the model asks for a health thread.
pub fn needed(model: &Model) -> bool {
    model
        .servers
        .iter()
        .any(|s| s.check || s.agent.is_some() || s.observe_layer4)
}

/// What the health thread knows of one server.
struct ServerRt {
    id: ServerId,
    health: Health,
    admin: Admin,
    /// Agent weight, in percent of the configured weight.
    weight_pct: u32,
    /// Agent `maxconn:N`.
    maxconn: Option<u32>,
    /// Consecutive observed errors (`observe layer4`).
    errors: u32,
    /// `on-error fastinter` in effect until the next state change.
    fast: bool,
    /// What the workers were last told: (usable, weight, maxconn).
    sent: (bool, u32, Option<u32>),
    /// Runtime weight (`set weight`), replacing the configured one.
    weight: u32,
    /// Checks disabled by `disable health`.
    checks_off: bool,
    chkfail: u64,
    chkdown: u64,
    last_change: Instant,
    down_since: Option<Instant>,
    downtime: Duration,
    last_check: Option<crate::admin::snapshot::CheckInfo>,
    last_agent: Option<crate::admin::snapshot::CheckInfo>,
}

impl ServerRt {
    /// The runtime weight scaled by the agent's percentage (before draining).
    fn effective_weight(&self) -> u32 {
        (u64::from(self.weight) * u64::from(self.weight_pct) / 100).min(256) as u32
    }
}

/// One periodic probe: a server's main check or its agent check.
struct Probe {
    server: usize,
    agent: bool,
    script: Arc<Script>,
    /// The TLS connector of each connect that speaks TLS.
    tls: ProbeTls,
    armed: Option<Instant>,
    next: Instant,
    run: Option<Run>,
}

/// The TLS connectors of a probe, built at start: Err holds why one could not be built
/// (config validation prevents it), and such a connect fails as a connect error.
#[derive(Default)]
struct ProbeTls {
    /// The implicit connect's.
    implicit: Option<Result<tls::Connector, String>>,
    /// Each connect step's, by step index.
    steps: Vec<Option<Result<tls::Connector, String>>>,
}

impl ProbeTls {
    fn new(factory: &mut tls::Factory, server: &Server, script: &Script) -> ProbeTls {
        let mut build = |step: Option<&Step>| {
            let params = tls::params(&server.check_tls, step)?;
            let c = factory.connector(&server.check_verify, &params);
            if let Err(e) = &c {
                log::error!(
                    "server {}: TLS health checks cannot start: {e}",
                    server.name
                );
            }
            Some(c)
        };
        ProbeTls {
            implicit: if script.connects_first() {
                None
            } else {
                build(None)
            },
            steps: script.steps.iter().map(|s| build(Some(s))).collect(),
        }
    }

    /// The connector of the connect at step `at` (None: the implicit connect).
    fn at(&self, at: Option<usize>) -> Option<&Result<tls::Connector, String>> {
        match at {
            None => self.implicit.as_ref(),
            Some(i) => self.steps.get(i).and_then(Option::as_ref),
        }
    }
}

/// A probe in progress on one connection.
struct Run {
    sock: Option<TcpStream>,
    /// The TLS session over `sock`, when this connection speaks TLS.
    tls: Option<Box<tls::Session>>,
    phase: Phase,
    step: usize,
    received: Vec<u8>,
    outbox: Vec<u8>,
    eof: bool,
    started: Instant,
    deadline: Instant,
    /// The step running, for failure reports; None during the implicit connect.
    current: Option<usize>,
    /// The report of the last expect that passed.
    last_pass: Option<Report>,
    agent: Option<AgentReply>,
}

impl Run {
    /// Sends the outbox, through the TLS session when the connection has one: Ok(true) once
    /// everything left, Ok(false) when the socket would block.
    fn flush(&mut self) -> io::Result<bool> {
        let tls_pending = self.tls.as_ref().is_some_and(|t| t.wants_write());
        if self.outbox.is_empty() && !tls_pending {
            return Ok(true);
        }
        let Some(sock) = self.sock.as_mut() else {
            return Ok(false);
        };
        loop {
            let written = match self.tls.as_mut() {
                Some(session) if self.outbox.is_empty() => return session.flush(sock),
                Some(session) => session.write(sock, &self.outbox),
                None if self.outbox.is_empty() => return Ok(true),
                None => sock.write(&self.outbox),
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads what the server sent, decrypted when the connection speaks TLS.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(sock) = self.sock.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match self.tls.as_mut() {
            Some(session) => session.read(sock, buf),
            None => sock.read(buf),
        }
    }
}

/// Where a run's connection is: the deadline and the wording of a timeout follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// connect() is in progress: bounded by the connect limit.
    Connecting,
    /// Connected; the TLS handshake is in progress, still bounded by the connect limit.
    Handshake,
    /// Connected (or no connection yet): the script runs, bounded by `timeout check`.
    Open,
}

enum Outcome {
    Pass(Report),
    Fail(Report),
}

pub struct HealthThread {
    poll: Poll,
    model: Arc<Model>,
    workers: Vec<WorkerLink>,
    observations: Receiver<Observation>,
    control: Receiver<HealthControl>,
    servers: Vec<ServerRt>,
    probes: Vec<Probe>,
    timers: Timers,
    seed: u64,
    views: Views,
}

impl HealthThread {
    pub fn new(setup: HealthSetup) -> HealthThread {
        let model = setup.model;
        let now = Instant::now();
        let servers: Vec<ServerRt> = model
            .servers
            .iter()
            .map(|s| {
                let admin = if s.disabled || matches!(s.addr, ServerAddr::Unresolved { .. }) {
                    Admin::Maint
                } else {
                    Admin::Ready
                };
                ServerRt {
                    id: s.id,
                    health: Health::new(s.rise, s.fall),
                    admin,
                    weight_pct: 100,
                    maxconn: s.maxconn,
                    errors: 0,
                    fast: false,
                    sent: (admin == Admin::Ready, s.weight, s.maxconn),
                    weight: s.weight,
                    checks_off: false,
                    chkfail: 0,
                    chkdown: 0,
                    last_change: now,
                    down_since: None,
                    downtime: Duration::ZERO,
                    last_check: None,
                    last_agent: None,
                }
            })
            .collect();
        let mut probes = Vec::new();
        let mut factory = tls::Factory::default();
        for (i, s) in model.servers.iter().enumerate() {
            let kind = &model.backend(s.backend).check;
            if s.check {
                let script = protocol::script(kind);
                probes.push(Probe {
                    server: i,
                    agent: false,
                    tls: ProbeTls::new(&mut factory, s, &script),
                    script: Arc::new(script),
                    armed: None,
                    next: now,
                    run: None,
                });
            }
            if let Some(agent) = &s.agent {
                // Agents speak plain text, as in HAProxy.
                probes.push(Probe {
                    server: i,
                    agent: true,
                    script: Arc::new(protocol::agent_script(agent)),
                    tls: ProbeTls::default(),
                    armed: None,
                    next: now,
                    run: None,
                });
            }
        }
        let mut t = HealthThread {
            poll: setup.poll,
            workers: setup.workers,
            observations: setup.observations,
            control: setup.control,
            servers,
            probes,
            timers: Timers::default(),
            seed: now.elapsed().as_nanos() as u64
                ^ 0x2545_f491_4f6c_dd1d
                ^ u64::from(std::process::id()),
            views: setup.views,
            model,
        };
        t.publish();
        // Spread the first checks over one interval so they never fire all at once.
        let n = t.probes.len().max(1) as u32;
        for k in 0..t.probes.len() {
            let s = &t.model.servers[t.probes[k].server];
            let inter = if t.probes[k].agent {
                s.agent.as_ref().map_or(s.inter, |a| a.inter)
            } else {
                s.inter
            };
            let at = now + inter * (k as u32) / n;
            t.schedule(k, at);
        }
        t
    }

    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = self.timers.next().map(|t| t.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    while let Ok(msg) = self.control.try_recv() {
                        match msg {
                            HealthControl::Stop => return Ok(()),
                            HealthControl::Admin(req, reply) => {
                                let r = self.admin(req, now);
                                let _ = reply.send(r);
                                self.publish();
                            }
                        }
                    }
                    while let Ok(o) = self.observations.try_recv() {
                        self.observe(o, now);
                    }
                    continue;
                }
                let k = ev.token().0;
                if k < self.probes.len() {
                    self.advance(k, ev.is_error(), ev.is_writable(), now);
                }
            }
            // Timers due within the next few milliseconds fire now: spread-out checks would
            // otherwise wake the thread once each (1,000 servers: 1,000 wakeups a second).
            let horizon = now + TIMER_SLACK;
            while let Some((at, key)) = self.timers.pop_due(horizon) {
                let TimerKey::Conn(k) = key else { continue };
                let Some(p) = self.probes.get_mut(k) else {
                    continue;
                };
                if p.armed != Some(at) {
                    continue;
                }
                p.armed = None;
                match &p.run {
                    Some(run) if horizon >= run.deadline => {
                        let trouble = match run.phase {
                            Phase::Connecting => Trouble::ConnectTimeout,
                            Phase::Handshake => Trouble::HandshakeTimeout,
                            Phase::Open => Trouble::Timeout,
                        };
                        let report = p.script.failure(run.current, trouble);
                        self.finish(k, Outcome::Fail(report), now);
                    }
                    Some(run) => {
                        let d = run.deadline;
                        self.timers
                            .arm(TimerKey::Conn(k), d, &mut self.probes[k].armed);
                    }
                    None if horizon >= p.next => self.start(k, now),
                    None => {
                        let n = p.next;
                        self.timers
                            .arm(TimerKey::Conn(k), n, &mut self.probes[k].armed);
                    }
                }
            }
        }
    }

    fn schedule(&mut self, k: usize, at: Instant) {
        self.probes[k].next = at;
        self.timers
            .arm(TimerKey::Conn(k), at, &mut self.probes[k].armed);
    }

    fn rand(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// The next interval for a probe: inter / fastinter / downinter, with spread-checks.
    fn interval(&mut self, k: usize) -> Duration {
        let p = &self.probes[k];
        let s = &self.model.servers[p.server];
        let rt = &self.servers[p.server];
        let base = if p.agent {
            s.agent.as_ref().map_or(s.inter, |a| a.inter)
        } else if rt.fast {
            s.fastinter
        } else {
            match rt.health.pace() {
                Pace::Steady => s.inter,
                Pace::Transitional => s.fastinter,
                Pace::Down => s.downinter,
            }
        };
        let spread = self.model.global.spread_checks;
        if spread == 0 {
            return base;
        }
        // +/- spread% of the interval.
        let span = base.as_micros() as u64 * u64::from(spread) / 100;
        if span == 0 {
            return base;
        }
        let off = self.rand() % (2 * span + 1);
        (base + Duration::from_micros(off)).saturating_sub(Duration::from_micros(span))
    }

    fn target(
        &self,
        k: usize,
        port_override: Option<u16>,
        addr_override: Option<IpAddr>,
    ) -> Option<SocketAddr> {
        let p = &self.probes[k];
        let s = &self.model.servers[p.server];
        let ServerAddr::Resolved(addr) = s.addr else {
            return None;
        };
        if p.agent {
            let a = s.agent.as_ref()?;
            let ip = a.addr.or(s.check_addr).unwrap_or(addr.ip());
            return Some(SocketAddr::new(ip, port_override.or(a.port)?));
        }
        let ip = addr_override.or(s.check_addr).unwrap_or(addr.ip());
        let port = port_override.or(s.check_port).unwrap_or(addr.port());
        (port != 0).then(|| SocketAddr::new(ip, port))
    }

    fn start(&mut self, k: usize, now: Instant) {
        let s = &self.model.servers[self.probes[k].server];
        let rt = &self.servers[self.probes[k].server];
        if rt.admin == Admin::Maint || (rt.checks_off && !self.probes[k].agent) {
            let next = now + self.interval(k);
            self.schedule(k, next);
            return;
        }
        let be = self.model.backend(s.backend);
        let inter = if self.probes[k].agent {
            s.agent.as_ref().map_or(s.inter, |a| a.inter)
        } else {
            s.inter
        };
        // Connect within min(timeout connect, inter) when timeout check is set, else inter.
        let connect_limit = match (be.timeout_check, be.timeout_connect) {
            (Some(_), Some(c)) => c.min(inter),
            _ => inter,
        };
        self.probes[k].run = Some(Run {
            sock: None,
            tls: None,
            phase: Phase::Open,
            step: 0,
            received: Vec::new(),
            outbox: Vec::new(),
            eof: false,
            started: now,
            deadline: now + connect_limit,
            current: None,
            last_pass: None,
            agent: None,
        });
        let deadline = now + connect_limit;
        self.timers
            .arm(TimerKey::Conn(k), deadline, &mut self.probes[k].armed);
        // An implicit connect unless the script starts with its own.
        if !self.probes[k].script.connects_first() {
            let send_proxy = !self.probes[k].agent && s.check_send_proxy;
            if let Err(e) = self.connect(k, None, None, None, send_proxy) {
                let report = self.probes[k]
                    .script
                    .failure(None, Trouble::ConnectError(&e));
                self.finish(k, Outcome::Fail(report), now);
                return;
            }
        }
        self.advance(k, false, false, now);
    }

    /// Opens the probe's connection for the connect at step `at` (None: the implicit
    /// connect), with its TLS session if that connect speaks TLS; the error is the system's
    /// words for it (or why a TLS session could not be made, which config validation
    /// prevents).
    fn connect(
        &mut self,
        k: usize,
        at: Option<usize>,
        port: Option<u16>,
        ip: Option<IpAddr>,
        send_proxy: bool,
    ) -> Result<(), String> {
        let Some(addr) = self.target(k, port, ip) else {
            return Err("no address or port to check".to_string());
        };
        let mut tls = match self.probes[k].tls.at(at) {
            None => None,
            Some(Ok(c)) => Some(Box::new(c.session(addr.ip())?)),
            Some(Err(e)) => return Err(e.clone()),
        };
        let mut sock = socket::connect(
            addr,
            &ConnectOpts {
                nagle: true,
                ..ConnectOpts::default()
            },
        )
        .map_err(|e| os_reason(&e))?;
        self.poll
            .registry()
            .register(&mut sock, Token(k), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| os_reason(&e))?;
        let run = self.probes[k].run.as_mut().expect("running");
        if send_proxy {
            let local = sock.local_addr().unwrap_or(addr);
            let header = protocol::proxy_v1_header(local, addr);
            // Before any TLS byte, when the connection speaks TLS.
            match tls.as_mut() {
                Some(session) => session.preface(header),
                None => run.outbox.extend(header),
            }
        }
        run.tls = tls;
        run.sock = Some(sock);
        run.phase = Phase::Connecting;
        run.eof = false;
        run.received.clear();
        Ok(())
    }

    /// The connection of probe `k` is up (connected, and its TLS handshake done): the script
    /// runs, bounded by `deadline`.
    fn open(&mut self, k: usize, deadline: Instant) {
        let p = &mut self.probes[k];
        let run = p.run.as_mut().expect("running");
        run.phase = Phase::Open;
        run.deadline = deadline;
        self.timers.arm(TimerKey::Conn(k), deadline, &mut p.armed);
    }

    /// Runs the script of probe `k` as far as the sockets allow.
    fn advance(&mut self, k: usize, error_event: bool, writable: bool, now: Instant) {
        let si = self.probes[k].server;
        let read_limit = {
            let srv = &self.model.servers[si];
            self.model
                .backend(srv.backend)
                .timeout_check
                .unwrap_or(srv.inter)
        };
        let script = Arc::clone(&self.probes[k].script);
        let Some(run) = self.probes[k].run.as_mut() else {
            return;
        };
        if run.phase == Phase::Connecting {
            let Some(sock) = run.sock.as_ref() else {
                return;
            };
            // Writable without an error flag: connected, no SO_ERROR or getpeername needed.
            let pending = if error_event {
                socket::take_error(sock.as_fd())
            } else if writable {
                Ok(None)
            } else {
                return;
            };
            match pending {
                // A TLS handshake is still part of connecting: the deadline stays.
                Ok(None) if !error_event && run.tls.is_some() => run.phase = Phase::Handshake,
                Ok(None) if !error_event => self.open(k, now + read_limit),
                Ok(None) => {
                    let report =
                        script.failure(run.current, Trouble::ConnectError("Connection error"));
                    self.finish(k, Outcome::Fail(report), now);
                    return;
                }
                Ok(Some(e)) | Err(e) => {
                    let report = script.failure(run.current, Trouble::ConnectError(&os_reason(&e)));
                    self.finish(k, Outcome::Fail(report), now);
                    return;
                }
            }
        }
        let run = self.probes[k].run.as_mut().expect("running");
        if run.phase == Phase::Handshake {
            let (Some(sock), Some(session)) = (run.sock.as_mut(), run.tls.as_mut()) else {
                return;
            };
            match session.handshake(sock) {
                Handshake::Pending => return,
                Handshake::Failed(words) => {
                    let report = script.failure(run.current, Trouble::Handshake(words));
                    self.finish(k, Outcome::Fail(report), now);
                    return;
                }
                Handshake::Done => self.open(k, now + read_limit),
            }
        }
        loop {
            let run = self.probes[k].run.as_mut().expect("running");
            // Flush pending output first.
            match run.flush() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    let report = script.failure(run.current, Trouble::SocketError(&os_reason(&e)));
                    self.finish(k, Outcome::Fail(report), now);
                    return;
                }
            }
            let Some(step) = script.steps.get(run.step) else {
                let transport = if run.tls.is_some() {
                    Transport::Tls
                } else {
                    Transport::Tcp
                };
                let outcome = match run.agent.take() {
                    Some(reply) => {
                        let report = reply.report();
                        self.apply_agent(k, reply, now);
                        Outcome::Pass(report)
                    }
                    None => Outcome::Pass(script.success(run.last_pass.take(), transport)),
                };
                self.finish(k, outcome, now);
                return;
            };
            match step {
                Step::Comment(_) => run.step += 1,
                Step::Send(bytes) => {
                    run.current = Some(run.step);
                    run.outbox.extend_from_slice(bytes);
                    // HAProxy empties its input buffer at each send (and connect), never
                    // after a passing expect: consecutive expects judge the same bytes.
                    run.received.clear();
                    run.step += 1;
                }
                Step::Connect {
                    port,
                    addr,
                    send_proxy,
                    default,
                    ..
                } => {
                    // `default` applies the server's check options, as the implicit
                    // connect does.
                    let send_proxy =
                        *send_proxy || (*default && self.model.servers[si].check_send_proxy);
                    let (port, addr) = (*port, *addr);
                    let at = run.step;
                    run.current = Some(at);
                    run.step += 1;
                    run.sock = None;
                    if let Err(e) = self.connect(k, Some(at), port, addr, send_proxy) {
                        let at = self.probes[k].run.as_ref().and_then(|r| r.current);
                        let report = script.failure(at, Trouble::ConnectError(&e));
                        self.finish(k, Outcome::Fail(report), now);
                    }
                    return;
                }
                Step::Expect(m) => {
                    run.current = Some(run.step);
                    // Read what is there, then judge.
                    if run.sock.is_none() {
                        return;
                    }
                    let mut buf = [0u8; 4_096];
                    let mut would_block = false;
                    loop {
                        if run.eof || run.received.len() >= CHECK_BUFSIZE {
                            break;
                        }
                        match run.read(&mut buf) {
                            Ok(0) => run.eof = true,
                            Ok(n) => run.received.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                would_block = true;
                                break;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            // An error after data is the end of the data (a reset right
                            // after the last bytes is common); only an error with
                            // nothing received is reported, as HAProxy does.
                            Err(_) if !run.received.is_empty() => run.eof = true,
                            Err(e) => {
                                // A TLS protocol error has no system words: HAProxy reports
                                // it with an empty info.
                                let why = if e.kind() == io::ErrorKind::InvalidData {
                                    log::debug!("TLS health check: {e}");
                                    String::new()
                                } else {
                                    os_reason(&e)
                                };
                                let report =
                                    script.failure(run.current, Trouble::SocketError(&why));
                                self.finish(k, Outcome::Fail(report), now);
                                return;
                            }
                        }
                    }
                    match m.evaluate(&run.received, run.eof) {
                        Verdict::NeedMore if run.eof || !would_block => {
                            // The protocol layer decides at the end of the data; kept as a
                            // guard.
                            let report = Report::new(CheckStatus::L7Rsp, 0, b"");
                            self.finish(k, Outcome::Fail(report), now);
                            return;
                        }
                        Verdict::NeedMore => return,
                        Verdict::Pass(report) => {
                            run.last_pass = Some(report);
                            run.step += 1;
                        }
                        Verdict::Agent(reply) => {
                            run.agent = Some(reply);
                            run.step += 1;
                        }
                        Verdict::Fail(report) => {
                            self.finish(k, Outcome::Fail(report), now);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self, k: usize, outcome: Outcome, now: Instant) {
        let Some(run) = self.probes[k].run.take() else {
            return;
        };
        let took = now.saturating_duration_since(run.started);
        drop(run);
        let si = self.probes[k].server;
        if !self.probes[k].agent {
            let (ok, report) = match outcome {
                Outcome::Pass(r) => (true, r),
                Outcome::Fail(r) => (false, r),
            };
            let reason = report.to_string();
            let before = self.servers[si].health;
            let t = if ok {
                self.servers[si].health.success()
            } else {
                self.servers[si].chkfail += 1;
                self.servers[si].health.failure()
            };
            self.servers[si].last_check = Some(check_info(&report, took));
            let s = &self.model.servers[si];
            let be = self.model.backend(s.backend);
            if be.log.log_health_checks && before != self.servers[si].health {
                log::info!(
                    "Health check for server {}/{} {}, reason: {reason}, check duration: {}ms, status: {}.",
                    be.name,
                    s.name,
                    if ok { "succeeded" } else { "failed" },
                    took.as_millis(),
                    self.servers[si].health.status()
                );
            }
            if let Some(t) = t {
                self.transition(si, t, &reason, took);
            }
        } else {
            let (ok, report) = match outcome {
                Outcome::Pass(r) => (true, r),
                Outcome::Fail(r) => (false, r),
            };
            let reason = report.to_string();
            if !ok {
                // An agent that cannot be reached changes nothing, as in HAProxy.
                log::debug!(
                    "agent check of server {}: {reason}",
                    self.model.servers[si].name
                );
            }
            self.servers[si].last_agent = Some(check_info(&report, took));
        }
        self.publish_one(si);
        let next = now + self.interval(k);
        self.schedule(k, next);
    }

    fn apply_agent(&mut self, k: usize, reply: AgentReply, _now: Instant) {
        let si = self.probes[k].server;
        let mut transition = None;
        {
            let rt = &mut self.servers[si];
            if let Some(p) = reply.weight_percent {
                rt.weight_pct = p.min(256 * 100);
            }
            if let Some(m) = reply.maxconn {
                rt.maxconn = Some(m);
            }
            // Admin words first, then health words, as HAProxy applies them.
            match reply.admin {
                Some(AgentAdmin::Drain) => rt.admin = Admin::Drain,
                Some(AgentAdmin::Maint) => rt.admin = Admin::Maint,
                Some(AgentAdmin::Ready) => rt.admin = Admin::Ready,
                None => {}
            }
            match reply.health {
                Some(AgentHealth::Up) => transition = rt.health.force_up(),
                Some(AgentHealth::Down | AgentHealth::Stopped | AgentHealth::Fail) => {
                    transition = rt.health.force_down()
                }
                None => {}
            }
        }
        match transition {
            Some(t) => {
                let why = reply.report().to_string();
                self.transition(si, t, &why, Duration::ZERO);
            }
            None => self.notify(si, false, false),
        }
    }

    fn observe(&mut self, o: Observation, now: Instant) {
        let Some(si) = self.servers.iter().position(|s| s.id == o.server) else {
            return;
        };
        let s = &self.model.servers[si];
        if !s.observe_layer4 {
            return;
        }
        if o.ok {
            self.servers[si].errors = 0;
            return;
        }
        self.servers[si].errors += 1;
        if self.servers[si].errors < s.error_limit {
            return;
        }
        self.servers[si].errors = 0;
        let reason = "Layer4 connection problem detected on live traffic (observe layer4)";
        let t = match s.on_error {
            OnError::FastInter => {
                self.servers[si].fast = true;
                None
            }
            OnError::FailCheck => self.servers[si].health.failure(),
            OnError::SuddenDeath => {
                self.servers[si].health.sudden_death();
                None
            }
            OnError::MarkDown => self.servers[si].health.force_down(),
        };
        if let Some(t) = t {
            self.transition(si, t, reason, Duration::ZERO);
        }
        // A faster pace applies at once to a waiting check.
        if let Some(k) = self
            .probes
            .iter()
            .position(|p| p.server == si && !p.agent && p.run.is_none())
        {
            let next = now + self.interval(k);
            if next < self.probes[k].next {
                self.schedule(k, next);
            }
        }
    }

    fn transition(&mut self, si: usize, t: Transition, reason: &str, took: Duration) {
        self.servers[si].fast = false;
        let now = Instant::now();
        let rt = &mut self.servers[si];
        rt.last_change = now;
        match t {
            Transition::Down => {
                rt.chkdown += 1;
                rt.down_since = Some(now);
            }
            Transition::Up => {
                if let Some(d) = rt.down_since.take() {
                    rt.downtime += now.saturating_duration_since(d);
                }
            }
        }
        let model = Arc::clone(&self.model);
        let s = &model.servers[si];
        let b = s.backend;
        let before = self.usable_in(b);
        self.notify(si, t == Transition::Down, t == Transition::Up);
        let (active, backup) = self.usable_in(b);
        let be = model.backend(b);
        match t {
            Transition::Down => log::warn!(
                "Server {}/{} is DOWN, reason: {reason}, check duration: {}ms. {active} active and {backup} backup servers left.",
                be.name,
                s.name,
                took.as_millis()
            ),
            Transition::Up => log::warn!(
                "Server {}/{} is UP, reason: {reason}, check duration: {}ms. {active} active and {backup} backup servers online.",
                be.name,
                s.name,
                took.as_millis()
            ),
        }
        if active + backup == 0 && before.0 + before.1 > 0 {
            log::error!("backend {} has no server available!", be.name);
            if let Ok(mut v) = self.views.lock() {
                if v.backend_down.len() <= b.index() {
                    v.backend_down
                        .resize(model.backends.len().max(b.index() + 1), 0);
                }
                v.backend_down[b.index()] += 1;
            }
        }
    }

    /// (active, backup) servers of a backend that may take connections, as the workers were
    /// last told.
    fn usable_in(&self, b: BackendId) -> (usize, usize) {
        let mut n = (0, 0);
        for &sid in &self.model.backend(b).servers {
            let rt = &self.servers[sid.index()];
            if rt.sent.0 {
                if self.model.server(sid).backup {
                    n.1 += 1;
                } else {
                    n.0 += 1;
                }
            }
        }
        n
    }

    fn usable(&self, rt: &ServerRt) -> bool {
        rt.health.is_up() && rt.admin != Admin::Maint
    }

    /// Tells every worker what changed for server `si`, if anything did.
    fn notify(&mut self, si: usize, went_down: bool, went_up: bool) {
        let s: &Server = &self.model.servers[si];
        let rt = &self.servers[si];
        let usable = self.usable(rt);
        let weight = if rt.admin == Admin::Drain {
            0
        } else {
            rt.effective_weight()
        };
        let maxconn = rt.maxconn;
        let now = (usable, weight, maxconn);
        let shutdown_sessions = went_down && s.on_marked_down_shutdown;
        let shutdown_backup_sessions = went_up && s.on_marked_up_shutdown_backup && !s.backup;
        if now == self.servers[si].sent && !shutdown_sessions && !shutdown_backup_sessions {
            return;
        }
        self.servers[si].sent = now;
        let update = ServerUpdate {
            server: s.id,
            usable,
            weight,
            maxconn,
            shutdown_sessions,
            shutdown_backup_sessions,
        };
        for w in &self.workers {
            let _ = w.tx.send(Control::Server(update));
            let _ = w.waker.wake();
        }
    }
}

impl HealthThread {
    /// Applies a runtime API request.
    fn admin(&mut self, req: AdminRequest, now: Instant) -> Result<String, String> {
        let idx = |id: ServerId| id.index();
        match req {
            AdminRequest::SetAdmin(id, admin) => {
                let si = idx(id);
                let was = self.servers[si].admin;
                self.servers[si].admin = admin;
                if was != admin {
                    self.servers[si].last_change = now;
                    let s = &self.model.servers[si];
                    log::warn!(
                        "Server {}/{} is {} (runtime API).",
                        self.model.backend(s.backend).name,
                        s.name,
                        match admin {
                            Admin::Maint => "going into maintenance",
                            Admin::Drain => "entering drain mode",
                            Admin::Ready => "leaving maintenance/drain",
                        }
                    );
                }
                self.notify(si, false, false);
                Ok(String::new())
            }
            AdminRequest::SetWeight(id, w) => {
                let si = idx(id);
                let uweight = self.model.servers[si].weight;
                let weight = match w {
                    WeightSpec::Absolute(n) => n,
                    WeightSpec::Percent(p) => (u64::from(uweight) * u64::from(p) / 100) as u32,
                };
                if weight > 256 {
                    return Err(
                        "Absolute weight can only be between 0 and 256 inclusive.\n".to_string()
                    );
                }
                self.servers[si].weight = weight;
                self.notify(si, false, false);
                Ok(String::new())
            }
            AdminRequest::GetWeight(id) => {
                let si = idx(id);
                let rt = &self.servers[si];
                let eff = rt.effective_weight();
                Ok(format!(
                    "{eff} (initial {})\n",
                    self.model.servers[si].weight
                ))
            }
            AdminRequest::SetMaxconn(id, m) => {
                let si = idx(id);
                self.servers[si].maxconn = (m > 0).then_some(m);
                self.notify(si, false, false);
                Ok(String::new())
            }
            AdminRequest::ShutdownSessions(id) => {
                let si = idx(id);
                let rt = &self.servers[si];
                let update = ServerUpdate {
                    server: id,
                    usable: rt.sent.0,
                    weight: rt.sent.1,
                    maxconn: rt.sent.2,
                    shutdown_sessions: true,
                    shutdown_backup_sessions: false,
                };
                for w in &self.workers {
                    let _ = w.tx.send(Control::Server(update));
                    let _ = w.waker.wake();
                }
                Ok(String::new())
            }
            AdminRequest::SetHealth(id, on) => {
                let si = idx(id);
                if !self.model.servers[si].check {
                    return Err(
                        "Health checks are not configured on this server, cannot enable.\n"
                            .to_string(),
                    );
                }
                self.servers[si].checks_off = !on;
                Ok(String::new())
            }
        }
    }

    /// Publishes every server's state for the stats.
    fn publish(&self) {
        let views: Vec<ServerView> = (0..self.servers.len()).map(|i| self.view(i)).collect();
        if let Ok(mut v) = self.views.lock() {
            v.servers = views;
        }
    }

    /// Publishes one server's state (after its check): O(1), not a copy of every view.
    fn publish_one(&self, i: usize) {
        let view = self.view(i);
        if let Ok(mut v) = self.views.lock() {
            match v.servers.get_mut(i) {
                Some(slot) => *slot = view,
                None => {
                    drop(v);
                    self.publish();
                }
            }
        }
    }

    fn view(&self, i: usize) -> ServerView {
        let rt = &self.servers[i];
        ServerView {
            up: rt.health.is_up(),
            admin: rt.admin,
            health: rt.health,
            checked: self.model.servers[i].check && !rt.checks_off,
            weight: if rt.admin == Admin::Drain {
                0
            } else {
                rt.effective_weight()
            },
            maxconn: rt.maxconn,
            last_check: rt.last_check.clone(),
            last_agent: rt.last_agent.clone(),
            chkfail: rt.chkfail,
            chkdown: rt.chkdown,
            last_change: rt.last_change,
            down_since: rt.down_since,
            downtime: rt.downtime,
        }
    }
}

/// What `show stat` shows of a check, as HAProxy fills it: the status code (L4OK, L6RSP,
/// L7STS...) in `check_status`, its words ("Layer6 invalid response") in `check_desc`, and
/// the report's info ("SSL handshake failure", "Connection refused", the HTTP reason) in
/// `last_chk`.
fn check_info(report: &Report, took: Duration) -> crate::admin::snapshot::CheckInfo {
    crate::admin::snapshot::CheckInfo {
        status: report.status.tag().to_string(),
        code: report.status.shows_code().then_some(report.code as _),
        duration_ms: Some(took.as_millis() as u64),
        desc: report.status.description().to_string(),
        output: String::from_utf8_lossy(&report.info).into_owned(),
        // rise, fall and health are filled from the server's view when a snapshot is taken.
        ..Default::default()
    }
}

/// An OS error as HAProxy words it ("Connection refused"), without Rust's "(os error N)".
pub(crate) fn os_reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_stat_splits_the_description_from_the_info() {
        let r = Report::new(CheckStatus::L4Con, 0, b"Connection refused");
        let c = check_info(&r, Duration::from_millis(3));
        assert_eq!(
            (c.status.as_str(), c.desc.as_str(), c.output.as_str()),
            ("L4CON", "Layer4 connection problem", "Connection refused")
        );
        assert_eq!((c.code, c.duration_ms), (None, Some(3)));
        let r = Report::new(CheckStatus::L7Sts, 500, b"Internal Server Error");
        let c = check_info(&r, Duration::ZERO);
        assert_eq!(c.desc, "Layer7 wrong status");
        assert_eq!(c.output, "Internal Server Error");
        assert_eq!(c.code, Some(500));
        let c = check_info(&Report::new(CheckStatus::L7Ok, 200, b""), Duration::ZERO);
        assert_eq!(
            (c.desc.as_str(), c.output.as_str()),
            ("Layer7 check passed", "")
        );
    }
}
