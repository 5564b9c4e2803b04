//! The admin thread: its own mio `Poll`, never a worker's. It serves the stats sockets
//! (`stats socket <path>|ipv4@addr:port`, HAProxy's runtime API, one command line per
//! connection or `prompt` mode) and the `mode http` stats/metrics listeners (the stats page,
//! its `;csv`, and the Prometheus exporter), frontends in front of a stats backend included
//! (they serve its page after their own settings). Reads build a snapshot; writes go to the
//! health thread, which owns server state, or to the workers (frontends).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::auth::BasicAuth;
use super::collect::Sources;
use super::command::{self, Command, ObjRef, ServerState, Weight};
use super::page::{self, Look, Site};
use super::render;
use crate::config::model::{
    AccessLevel, Acl, AclRef, Condition, Fetch, FrontendId, MatchMethod, Mode, Model, Pattern,
    ServerId, ShowNode, StatsPage, StatsSocketAddr,
};
use crate::health::state::Admin;
use crate::health::{AdminRequest, HealthControl, WeightSpec};
use crate::stick::Tables;
use crate::worker::Control;

pub const WAKER: Token = Token(usize::MAX);
const LISTENER_BASE: usize = usize::MAX / 2;
/// The most a client may send before its line ends.
const MAX_REQUEST: usize = 64 * 1024;

enum ListenSock {
    Unix(UnixListener),
    Tcp(TcpListener),
}

#[derive(Clone, Copy)]
enum Kind {
    Cli { level: AccessLevel },
    Http { frontend: FrontendId },
}

/// A bound stats socket or stats listener.
pub struct AdminListener {
    sock: ListenSock,
    kind: Kind,
}

impl AdminListener {
    /// The socket's descriptor.
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.sock {
            ListenSock::Unix(s) => s.as_raw_fd(),
            ListenSock::Tcp(s) => s.as_raw_fd(),
        }
    }
}

/// What the supervisor tells the admin thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminControl {
    /// Soft stop: stop accepting (the listeners close), finish the open sessions.
    CloseListeners,
    /// The end: return now.
    Stop,
}

impl ListenSock {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            ListenSock::Unix(s) => s,
            ListenSock::Tcp(s) => s,
        }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
}

struct AdminConn {
    stream: Stream,
    kind: Kind,
    peer: Option<SocketAddr>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    prompt: bool,
    close_when_flushed: bool,
    deadline: Instant,
}

/// What the admin thread needs.
pub struct AdminSetup {
    pub poll: Poll,
    pub sources: Sources,
    pub health: Option<(Sender<HealthControl>, Arc<Waker>)>,
    pub stop: Receiver<AdminControl>,
    /// The stick tables, shared with the workers.
    pub tables: &'static Tables,
}

pub struct AdminThread {
    poll: Poll,
    src: Sources,
    health: Option<(Sender<HealthControl>, Arc<Waker>)>,
    tables: &'static Tables,
    stop: Receiver<AdminControl>,
    listeners: Vec<AdminListener>,
    conns: Slab<AdminConn>,
}

/// Binds every stats socket and stats listener, at start (before privileges are dropped),
/// so a bad address stops the start.
pub fn bind(
    model: &Model,
    binder: &mut dyn crate::supervisor::Binder,
) -> Result<Vec<AdminListener>, String> {
    let mut out = Vec::new();
    for s in &model.global.stats_sockets {
        let kind = Kind::Cli { level: s.level };
        let sock = match &s.addr {
            StatsSocketAddr::Unix(path) => {
                let l = binder
                    .unix(path)
                    .map_err(|e| format!("{}: stats socket {}: {e}", s.span, path.display()))?;
                if let Some(mode) = s.mode {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                        |e| format!("{}: stats socket {}: mode: {e}", s.span, path.display()),
                    )?;
                }
                if s.uid.is_some() || s.gid.is_some() {
                    std::os::unix::fs::chown(path, s.uid, s.gid).map_err(|e| {
                        format!("{}: stats socket {}: owner: {e}", s.span, path.display())
                    })?;
                }
                ListenSock::Unix(UnixListener::from_std(l))
            }
            StatsSocketAddr::Tcp(addr) => {
                let l = binder
                    .tcp(
                        *addr,
                        &crate::sys::socket::ListenOpts {
                            backlog: 128,
                            ..Default::default()
                        },
                        0,
                    )
                    .map_err(|e| format!("{}: stats socket {addr}: {e}", s.span))?;
                ListenSock::Tcp(TcpListener::from_std(l))
            }
        };
        out.push(AdminListener { sock, kind });
    }
    for f in model
        .frontends
        .iter()
        .filter(|f| f.enabled && f.mode == Mode::Http)
    {
        for b in &f.binds {
            // The same socket options as a tcp frontend's bind (SO_REUSEPORT so that a
            // reload with -sf can bind beside the old process, v4v6, v6only, backlog,
            // interface, defer-accept, tfo, mss, transparent); one socket.
            let opts = crate::supervisor::listen_opts(model, f, b, 128);
            for a in &b.addrs {
                let l = binder.tcp(*a, &opts, 0).map_err(|e| {
                    format!(
                        "{}: stats listener '{}': cannot bind {a}: {e}",
                        b.span, f.name
                    )
                })?;
                out.push(AdminListener {
                    sock: ListenSock::Tcp(TcpListener::from_std(l)),
                    kind: Kind::Http { frontend: f.id },
                });
            }
        }
    }
    Ok(out)
}

impl AdminThread {
    pub fn new(setup: AdminSetup, listeners: Vec<AdminListener>) -> AdminThread {
        AdminThread {
            poll: setup.poll,
            src: setup.sources,
            health: setup.health,
            stop: setup.stop,
            tables: setup.tables,
            listeners,
            conns: Slab::new(),
        }
    }

    pub fn run(mut self) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let t = Token(LISTENER_BASE + i);
            self.poll
                .registry()
                .register(l.sock.source(), t, Interest::READABLE)?;
        }
        let mut events = Events::with_capacity(64);
        loop {
            match self
                .poll
                .poll(&mut events, Some(Duration::from_millis(500)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            while let Ok(msg) = self.stop.try_recv() {
                match msg {
                    AdminControl::Stop => return Ok(()),
                    AdminControl::CloseListeners => {
                        for mut l in self.listeners.drain(..) {
                            let _ = self.poll.registry().deregister(l.sock.source());
                        }
                    }
                }
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE, now),
                    Token(k) => self.on_conn(k, now),
                }
            }
            // Idle CLI sessions end after `stats timeout`.
            let expired: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| c.deadline <= now)
                .map(|(k, _)| k)
                .collect();
            for k in expired {
                self.conns.remove(k);
            }
        }
    }

    fn accept(&mut self, li: usize, now: Instant) {
        let timeout = self.src.model.global.stats_timeout;
        if li >= self.listeners.len() {
            // Closed by a soft stop after this event was polled.
            return;
        }
        loop {
            let kind = self.listeners[li].kind;
            let accepted = match &self.listeners[li].sock {
                ListenSock::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
                ListenSock::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Some(a))),
            };
            let (mut stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("admin: accept: {e}");
                    return;
                }
            };
            let entry = self.conns.vacant_entry();
            let t = Token(entry.key());
            let r = self.poll.registry().register(
                stream.source(),
                t,
                Interest::READABLE | Interest::WRITABLE,
            );
            if r.is_err() {
                continue;
            }
            entry.insert(AdminConn {
                stream,
                kind,
                peer,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                prompt: false,
                close_when_flushed: false,
                deadline: now + timeout,
            });
        }
    }

    fn on_conn(&mut self, k: usize, now: Instant) {
        let timeout = self.src.model.global.stats_timeout;
        // Read what is there.
        let mut closed = false;
        {
            let Some(c) = self.conns.get_mut(k) else {
                return;
            };
            let mut buf = [0u8; 4_096];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        c.deadline = now + timeout;
                        if c.inbuf.len() > MAX_REQUEST {
                            c.inbuf.clear();
                            c.outbuf.extend_from_slice(b"Request too long.\n");
                            c.close_when_flushed = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.conns.remove(k);
                        return;
                    }
                }
            }
        }
        let kind = self.conns[k].kind;
        match kind {
            Kind::Cli { level } => self.serve_cli(k, level),
            Kind::Http { frontend } => self.serve_http(k, frontend, closed),
        }
        // Write what is pending.
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        while !c.outbuf.is_empty() {
            match c.stream.write(&c.outbuf) {
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.conns.remove(k);
                    return;
                }
            }
        }
        if c.close_when_flushed || (closed && c.outbuf.is_empty()) {
            self.conns.remove(k);
        }
    }

    fn serve_cli(&mut self, k: usize, level: AccessLevel) {
        loop {
            let c = &mut self.conns[k];
            if c.close_when_flushed {
                return;
            }
            let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') else {
                return;
            };
            let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let mut out = String::new();
            let mut quit = false;
            // HAProxy ends each command's output with an empty line.
            for cmd in command::parse_line_for(&line, level) {
                match cmd {
                    Err(msg) => out.push_str(&msg),
                    Ok(Command::Prompt) => {
                        let c = &mut self.conns[k];
                        c.prompt = !c.prompt;
                        if !c.prompt {
                            quit = true;
                        }
                    }
                    Ok(Command::Quit) => quit = true,
                    Ok(cmd) => out.push_str(&self.execute(cmd)),
                }
                if quit {
                    break;
                }
                out.push('\n');
            }
            let c = &mut self.conns[k];
            c.outbuf.extend_from_slice(out.as_bytes());
            if quit || !c.prompt {
                c.close_when_flushed = true;
                return;
            }
            c.outbuf.extend_from_slice(b"> ");
        }
    }

    /// A server named `<backend>/<server>` (names or `#id`s).
    fn server_id(&self, b: &str, n: &str) -> Result<ServerId, String> {
        let m = &self.src.model;
        let be = match command::parse_ref(b) {
            ObjRef::Id(id) => m.backends.iter().find(|x| i64::from(x.uid) == id),
            ObjRef::Name(name) => m.backend_by_name(name),
        };
        let Some(be) = be else {
            return Err(command::reply::NO_SUCH_BACKEND.to_string());
        };
        be.servers
            .iter()
            .copied()
            .find(|&id| match command::parse_ref(n) {
                ObjRef::Id(x) => i64::from(m.server(id).uid) == x,
                ObjRef::Name(name) => m.server(id).name == name,
            })
            .ok_or_else(|| command::reply::NO_SUCH_SERVER.to_string())
    }

    /// Runs one command (its level already checked) and returns its output.
    fn execute(&mut self, cmd: Command) -> String {
        let enable_frontend = matches!(cmd, Command::EnableFrontend(_));
        let req = |s: &mut Self, r: AdminRequest| -> String {
            match s.ask_health(r) {
                Ok(out) | Err(out) => out,
            }
        };
        let on_server =
            |s: &mut Self, b: &str, n: &str, f: &dyn Fn(ServerId) -> AdminRequest| -> String {
                match s.server_id(b, n) {
                    Ok(id) => req(s, f(id)),
                    Err(e) => e,
                }
            };
        match cmd {
            Command::Help(words) => command::help_reply(&words),
            Command::ShowInfo { format } => render::show_info_as(&self.src.snapshot().info, format),
            Command::ShowStat { format, filter } => {
                render::show_stat(&self.src.snapshot(), format, &filter)
            }
            Command::ShowServersState(backend) => {
                render::show_servers_state(&self.src.snapshot(), backend.as_deref())
            }
            Command::DisableServer { backend, server }
            | Command::SetServerState {
                backend,
                server,
                state: ServerState::Maint,
            } => on_server(self, &backend, &server, &|id| {
                AdminRequest::SetAdmin(id, Admin::Maint)
            }),
            Command::EnableServer { backend, server }
            | Command::SetServerState {
                backend,
                server,
                state: ServerState::Ready,
            } => on_server(self, &backend, &server, &|id| {
                AdminRequest::SetAdmin(id, Admin::Ready)
            }),
            Command::SetServerState {
                backend,
                server,
                state: ServerState::Drain,
            } => on_server(self, &backend, &server, &|id| {
                AdminRequest::SetAdmin(id, Admin::Drain)
            }),
            Command::SetServerWeight {
                backend,
                server,
                weight,
            } => {
                let w = match weight {
                    Weight::Absolute(v) => WeightSpec::Absolute(v),
                    Weight::Percent(p) => WeightSpec::Percent(p),
                };
                on_server(self, &backend, &server, &|id| {
                    AdminRequest::SetWeight(id, w)
                })
            }
            Command::GetWeight { backend, server } => {
                on_server(self, &backend, &server, &AdminRequest::GetWeight)
            }
            Command::SetMaxconnServer {
                backend,
                server,
                maxconn,
            } => on_server(self, &backend, &server, &|id| {
                AdminRequest::SetMaxconn(id, maxconn)
            }),
            Command::ShutdownSessionsServer { backend, server } => {
                on_server(self, &backend, &server, &AdminRequest::ShutdownSessions)
            }
            Command::DisableHealth { backend, server } => {
                on_server(self, &backend, &server, &|id| {
                    AdminRequest::SetHealth(id, false)
                })
            }
            Command::EnableHealth { backend, server } => {
                on_server(self, &backend, &server, &|id| {
                    AdminRequest::SetHealth(id, true)
                })
            }
            Command::DisableFrontend(name) | Command::EnableFrontend(name) => {
                let enabled = enable_frontend;
                let m = &self.src.model;
                let f = match command::parse_ref(&name) {
                    ObjRef::Id(id) => m.frontends.iter().find(|x| i64::from(x.uid) == id),
                    ObjRef::Name(n) => m.frontend_by_name(n),
                };
                let Some(f) = f else {
                    return command::reply::NO_SUCH_FRONTEND.to_string();
                };
                for w in &self.src.workers {
                    let _ = w.tx.send(Control::Frontend {
                        frontend: f.id,
                        enabled,
                    });
                    let _ = w.waker.wake();
                }
                String::new()
            }
            Command::ShowTable { args, level } => {
                super::table::execute(self.tables, false, &args, level, Instant::now())
            }
            Command::ClearTable { args, level } => {
                super::table::execute(self.tables, true, &args, level, Instant::now())
            }
            Command::Prompt | Command::Quit => String::new(),
        }
    }

    fn ask_health(&mut self, r: AdminRequest) -> Result<String, String> {
        let Some((tx, waker)) = &self.health else {
            return Err("Health state is not available.\n".to_string());
        };
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        let _ = tx.send(HealthControl::Admin(r, rtx));
        let _ = waker.wake();
        rrx.recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| Err("The health thread did not answer.\n".to_string()))
    }

    fn serve_http(&mut self, k: usize, fe: FrontendId, closed: bool) {
        let c = &mut self.conns[k];
        if c.close_when_flushed {
            return;
        }
        let Some(end) = find(&c.inbuf, b"\r\n\r\n")
            .map(|e| e + 4)
            .or_else(|| find(&c.inbuf, b"\n\n").map(|e| e + 2))
        else {
            if closed {
                c.close_when_flushed = true;
            }
            return;
        };
        let head = String::from_utf8_lossy(&c.inbuf[..end]).into_owned();
        let want = page::content_length(&head).min(MAX_REQUEST);
        if c.inbuf.len() < end + want && !closed {
            return;
        }
        let body: Vec<u8> = c.inbuf[end..(end + want).min(c.inbuf.len())].to_vec();
        c.inbuf.clear();
        let peer = c.peer;
        let model = Arc::clone(&self.src.model);
        let f = model.frontend(fe);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/");
        // The frontend's own settings answer first, then its stats backend's, as HAProxy
        // runs the frontend's rules and stats URI before the backend's. Each condition
        // reads the ACLs of the proxy it was written in.
        let backend = f
            .stats_backend
            .map(|b| model.backend(b))
            .filter(|b| b.enabled);
        let pages = [
            f.stats.as_ref().map(|st| (st, &f.acls)),
            backend.and_then(|b| b.stats.as_ref().map(|st| (st, &b.acls))),
        ];
        let site = pages
            .into_iter()
            .flatten()
            .find_map(|(st, acls)| site_for(st, acls, target, path, peer))
            .unwrap_or_default();
        let src = &self.src;
        let resp = page::handle_http(&head, &body, &site, || src.snapshot());
        for cmd in resp.commands.clone() {
            let _ = self.execute(cmd);
        }
        let c = &mut self.conns[k];
        c.outbuf.extend_from_slice(&resp.to_bytes());
        c.close_when_flushed = true;
    }
}

/// What one page (a proxy's stats settings) offers for a request: None when neither its
/// stats URI nor its exporter matches.
fn site_for<'a>(
    st: &'a StatsPage,
    acls: &[Acl],
    target: &str,
    path: &'a str,
    peer: Option<SocketAddr>,
) -> Option<Site<'a>> {
    let metrics_path = st.prometheus.as_ref().and_then(|cond| match cond {
        None => Some(path),
        Some(c) => http_cond(c, acls, path, peer).then_some(path),
    });
    let stats_uri =
        Some(st.uri.as_str()).filter(|u| st.enabled && !u.is_empty() && target.starts_with(u));
    if stats_uri.is_none() && metrics_path.is_none() {
        return None;
    }
    Some(Site {
        stats_uri,
        refresh: st.refresh,
        // Evaluated before the credentials, as HAProxy does; a request without them
        // gets the 401 and never reaches the admin form.
        admin: st
            .admin
            .as_ref()
            .is_some_and(|c| http_cond(c, acls, path, peer)),
        metrics_path,
        auth: (!st.users.is_empty()).then_some(BasicAuth {
            realm: &st.realm,
            users: &st.users,
        }),
        look: Look {
            hide_version: st.hide_version,
            legends: st.show_legends,
            node: st.show_node.as_ref().map(|n| match n {
                ShowNode::HostName => None,
                ShowNode::Named(name) => Some(name.as_str()),
            }),
            desc: st.show_desc.as_deref(),
        },
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Conditions of a stats listener: `path` and `src` matches (what such listeners use).
fn http_cond(
    cond: &Condition,
    acls: &[crate::config::model::Acl],
    path: &str,
    peer: Option<SocketAddr>,
) -> bool {
    let term_ok = |t: &crate::config::model::AclTerm| -> bool {
        match &t.fetch {
            Fetch::Path => t.patterns.iter().any(|p| match p {
                Pattern::Str(s) => match t.method {
                    MatchMethod::Beg => path.starts_with(s.as_str()),
                    MatchMethod::End => path.ends_with(s.as_str()),
                    MatchMethod::Sub => path.contains(s.as_str()),
                    MatchMethod::Dir => path.split('/').any(|seg| seg == s),
                    _ => path == s,
                },
                Pattern::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(path)),
                _ => false,
            }),
            Fetch::Src => {
                let Some(peer) = peer else { return false };
                let ctx = crate::worker::rules::FetchCtx::layer4(
                    peer,
                    peer,
                    &crate::worker::rules::NoBackends,
                );
                let single = Condition {
                    unless: false,
                    any_of: vec![vec![crate::config::model::CondTerm {
                        negate: false,
                        acl: AclRef::Inline(Box::new(t.clone())),
                    }]],
                };
                crate::worker::rules::eval(&single, &[], &ctx)
            }
            Fetch::Always(v) => *v,
            _ => false,
        }
    };
    let hit = cond.any_of.iter().any(|all| {
        all.iter().all(|ct| {
            let m = match &ct.acl {
                AclRef::Inline(t) => term_ok(t),
                AclRef::Named(i) => acls[*i].terms.iter().any(term_ok),
            };
            m != ct.negate
        })
    });
    hit != cond.unless
}
