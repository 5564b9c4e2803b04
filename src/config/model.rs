//! The immutable, typed model of a configuration: what the runtime acts on. Built once by
//! `validate.rs`, shared as `Arc<Model>`. Names are resolved to ids ([`FrontendId`],
//! [`BackendId`], [`ServerId`]); every value carries HAProxy's default when the file is silent.
//! A `listen` section appears as one frontend and one backend of the same name.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::Span;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(
    /// Index into [`Model::frontends`].
    FrontendId
);
id_type!(
    /// Index into [`Model::backends`].
    BackendId
);
id_type!(
    /// Index into [`Model::servers`] (one flat array for all backends).
    ServerId
);

#[derive(Debug, Clone)]
pub struct Model {
    pub global: Global,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    pub servers: Vec<Server>,
}

impl Model {
    pub fn frontend(&self, id: FrontendId) -> &Frontend {
        &self.frontends[id.index()]
    }
    pub fn backend(&self, id: BackendId) -> &Backend {
        &self.backends[id.index()]
    }
    pub fn server(&self, id: ServerId) -> &Server {
        &self.servers[id.index()]
    }
    pub fn backend_by_name(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.name == name)
    }
    pub fn frontend_by_name(&self, name: &str) -> Option<&Frontend> {
        self.frontends.iter().find(|f| f.name == name)
    }
}

// ---------------------------------------------------------------------------------------------
// global

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub daemon: bool,
    pub master_worker: bool,
    /// `master-worker no-exit-on-failure`: a current worker dying does not stop the others.
    pub no_exit_on_failure: bool,
    /// Worker threads; None means one per online CPU.
    pub nbthread: Option<u32>,
    /// None: derived from the file-descriptor limit at start, as HAProxy does.
    pub maxconn: Option<u32>,
    pub ulimit_n: Option<u64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub chroot: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub logs: Vec<LogTarget>,
    pub stats_sockets: Vec<StatsSocket>,
    pub stats_timeout: Duration,
    pub hard_stop_after: Option<Duration>,
    pub nosplice: bool,
    pub maxpipes: Option<u32>,
    pub pipesize: Option<u32>,
    pub bufsize: u32,
    /// Random spread of check intervals, in percent (0-50).
    pub spread_checks: u32,
    pub noreuseport: bool,
    pub cpu_map: Vec<CpuMap>,
    /// `ca-base`: where a relative `ca-file` is looked for.
    pub ca_base: Option<PathBuf>,
    /// `ssl-server-verify`: true (required, the default) makes `verify required` the default
    /// of TLS health checks.
    pub ssl_server_verify: bool,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            daemon: false,
            master_worker: false,
            no_exit_on_failure: false,
            nbthread: None,
            maxconn: None,
            ulimit_n: None,
            uid: None,
            gid: None,
            user: None,
            group: None,
            chroot: None,
            pidfile: None,
            logs: Vec::new(),
            stats_sockets: Vec::new(),
            stats_timeout: Duration::from_secs(10),
            hard_stop_after: None,
            nosplice: false,
            maxpipes: None,
            pipesize: None,
            bufsize: 16_384,
            spread_checks: 0,
            noreuseport: false,
            cpu_map: Vec::new(),
            ca_base: None,
            ssl_server_verify: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMap {
    /// Thread numbers (1-based) as written: `1-4`, `all`, `odd`, `even` expanded.
    pub threads: Vec<u32>,
    pub cpus: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsSocketAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    User,
    Operator,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    pub span: Span,
    pub addr: StatsSocketAddr,
    /// Unix socket permission bits (`mode 660`).
    pub mode: Option<u32>,
    /// Unix socket owner and group (`uid`/`user`, `gid`/`group`).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub level: AccessLevel,
    pub expose_fd_listeners: bool,
}

// ---------------------------------------------------------------------------------------------
// logs

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Udp(SocketAddr),
    Unix(PathBuf),
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Rfc3164,
    Rfc5424,
    Short,
    Raw,
    Iso,
    Timed,
    Priority,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub dest: LogDest,
    /// Maximum line length (`len`), default 1024.
    pub maxlen: u32,
    pub format: LogFormat,
    /// Syslog facility number (local0 = 16).
    pub facility: u8,
    /// Most verbose level sent (0 emerg .. 7 debug).
    pub level: u8,
    /// Least verbose level sent.
    pub minlevel: u8,
}

/// A log-format string, split into literals and `%` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    Literal(String),
    /// `%ci`, `%{+Q}o` flags are kept in `flags`.
    Var {
        name: String,
        flags: Vec<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// proxies

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Frontend,
    Backend,
    Listen,
}

/// `mode`: tcp for everything sluice forwards; http only for a stats/metrics listener, a
/// stats backend, and a frontend in front of one (all served by the admin thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Http,
}

/// Which directions use splice(2). sluice splices both directions by default (unlike
/// HAProxy, whose default is no splicing); once a proxy says any `option splice-*`, only the
/// directions it names are spliced. Global `nosplice` turns it all off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpliceOpts {
    pub auto: bool,
    pub request: bool,
    pub response: bool,
    /// Some `option splice-*` line was written (set or unset).
    pub explicit: bool,
}

impl SpliceOpts {
    /// (client to server, server to client).
    pub fn directions(&self) -> (bool, bool) {
        if self.explicit {
            (self.auto || self.request, self.auto || self.response)
        } else {
            (true, true)
        }
    }
}

/// TCP keep-alive and linger options, shared by frontends (client side) and backends
/// (server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockOpts {
    pub tcpka: bool,
    pub nolinger: bool,
    pub smart: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    pub id: FrontendId,
    pub name: String,
    /// Numeric id shown in stats (`id` keyword, else assigned in file order as HAProxy does).
    pub uid: u32,
    pub kind: ProxyKind,
    pub span: Span,
    pub enabled: bool,
    pub description: Option<String>,
    pub mode: Mode,
    pub binds: Vec<Bind>,
    /// None: the global maxconn.
    pub maxconn: Option<u32>,
    pub backlog: Option<u32>,
    pub rate_limit_sessions: Option<u32>,
    pub timeout_client: Option<Duration>,
    pub timeout_client_fin: Option<Duration>,
    pub inspect_delay: Option<Duration>,
    pub acls: Vec<Acl>,
    /// Judged at accept, on the socket's own addresses (before any PROXY header).
    pub tcp_request_connection: Vec<TcpRule>,
    /// Judged once the session exists: after the PROXY header, on the addresses it gave.
    pub tcp_request_session: Vec<TcpRule>,
    pub tcp_request_content: Vec<TcpRule>,
    pub use_backend: Vec<UseBackend>,
    pub default_backend: Option<BackendId>,
    pub stick_table: Option<StickTable>,
    pub log: ProxyLog,
    pub client: SockOpts,
    pub splice: SpliceOpts,
    /// Set when this is a stats/metrics listener (`mode http`).
    pub stats: Option<StatsPage>,
    /// A `mode http` frontend's stats backend: a serverless `mode http` backend every
    /// request goes to (its `default_backend`, or an unconditional `use_backend`), whose
    /// stats page the frontend serves when its own settings do not answer the request.
    pub stats_backend: Option<BackendId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProxyLog {
    /// Resolved targets (`log global` expanded).
    pub targets: Vec<LogTarget>,
    pub tcplog: bool,
    pub dontlognull: bool,
    pub log_health_checks: bool,
    pub format: Option<Vec<LogItem>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UseBackend {
    pub target: BackendTarget,
    pub cond: Option<Condition>,
}

/// What a `use_backend` or `use-server` rule names: a backend or server of the
/// configuration, or a log-format string (`be_%[req.ssl_sni,lower]`) whose value names one
/// at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<Id> {
    Named(Id),
    Dynamic(Vec<NamePart>),
}

/// Where a `use_backend` rule sends a connection; a dynamic name that is no usable tcp
/// backend sends it to `default_backend` and ends the rules, as in HAProxy.
pub type BackendTarget = Target<BackendId>;

/// `use-server <server> if|unless <cond>`.
#[derive(Debug, Clone, PartialEq)]
pub struct UseServer {
    pub target: ServerTarget,
    pub cond: Condition,
}

/// The server a `use-server` rule names; a dynamic name that is no server of the backend
/// ends the rules, as in HAProxy.
pub type ServerTarget = Target<ServerId>;

/// A piece of a log-format name.
#[derive(Debug, Clone, PartialEq)]
pub enum NamePart {
    Text(String),
    Sample(SampleExpr),
}

/// A fetch and the converters applied to its value, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleExpr {
    pub fetch: Fetch,
    pub convs: Vec<Conv>,
}

/// What a `mode http` proxy serves: HAProxy's `stats` settings of the proxy (its
/// `uri_auth`) and its Prometheus exporter rule. Conditions refer to the ACLs of the proxy
/// the page belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPage {
    pub enabled: bool,
    pub uri: String,
    pub refresh: Option<Duration>,
    pub admin: Option<Condition>,
    /// `http-request use-service prometheus-exporter [if cond]`.
    pub prometheus: Option<Option<Condition>>,
    /// `stats auth`: when not empty, the stats URI answers only requests carrying one of
    /// these accounts (HTTP Basic authentication).
    pub users: Vec<StatsUser>,
    /// `stats realm`, HAProxy's "HAProxy Statistics" by default.
    pub realm: String,
    pub hide_version: bool,
    /// `stats show-legends`.
    pub show_legends: bool,
    /// `stats show-node [name]`; None: the page shows no node name.
    pub show_node: Option<ShowNode>,
    /// `stats show-desc <text>`.
    pub show_desc: Option<String>,
}

/// One `stats auth <user>:<passwd>` account. Its Debug output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct StatsUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for StatsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsUser")
            .field("name", &self.name)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The node name `stats show-node` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowNode {
    /// No name given: the host name (HAProxy's global `node`, which defaults to it).
    HostName,
    Named(String),
}

// ---------------------------------------------------------------------------------------------
// bind

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub span: Span,
    /// One entry per address and port (port ranges and comma lists expanded).
    pub addrs: Vec<SocketAddr>,
    pub accept_proxy: bool,
    pub v4v6: bool,
    pub v6only: bool,
    pub backlog: Option<u32>,
    pub maxconn: Option<u32>,
    pub name: Option<String>,
    pub id: Option<u32>,
    pub interface: Option<String>,
    pub defer_accept: bool,
    pub tfo: bool,
    pub mss: Option<i32>,
    pub transparent: bool,
}

// ---------------------------------------------------------------------------------------------
// backend

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    /// `source` and `hash src`.
    Source,
    /// `hash <expr>` on another L4 fetch.
    Hash(HashKey),
    /// `random[(<draws>)]`, default 2 draws.
    Random {
        draws: u32,
    },
    /// sluice extension: least response time (peak EWMA of connect time x active).
    LeastTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey {
    Src,
    Dst,
    SrcPort,
    DstPort,
    ReqSslSni,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMethod {
    MapBased,
    Consistent,
    /// sluice extension: Maglev lookup table.
    Maglev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFunction {
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashType {
    pub method: HashMethod,
    pub function: HashFunction,
    pub avalanche: bool,
}

impl Default for HashType {
    fn default() -> HashType {
        HashType {
            method: HashMethod::MapBased,
            function: HashFunction::Sdbm,
            avalanche: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub id: BackendId,
    pub name: String,
    pub uid: u32,
    pub kind: ProxyKind,
    pub span: Span,
    pub enabled: bool,
    pub description: Option<String>,
    pub mode: Mode,
    pub balance: Balance,
    pub hash_type: HashType,
    /// `hash-balance-factor` in percent (0 = unbounded).
    pub hash_balance_factor: u32,
    /// Servers in declaration order.
    pub servers: Vec<ServerId>,
    pub fullconn: Option<u32>,
    pub retries: u32,
    /// `option redispatch [<interval>]`: redispatch on every Pth retry (P > 0) or on the
    /// Nth retry before the last (N < 0); HAProxy's default, -1, is the last retry.
    pub redispatch: Option<i32>,
    pub allbackups: bool,
    pub abortonclose: bool,
    pub timeout_connect: Option<Duration>,
    pub timeout_server: Option<Duration>,
    pub timeout_server_fin: Option<Duration>,
    pub timeout_tunnel: Option<Duration>,
    pub timeout_queue: Option<Duration>,
    pub timeout_check: Option<Duration>,
    pub check: CheckKind,
    pub acls: Vec<Acl>,
    pub tcp_request_content: Vec<TcpRule>,
    pub inspect_delay: Option<Duration>,
    pub stick_table: Option<StickTable>,
    /// `stick match`, `stick on`, `stick store-request`, in order.
    pub sticking: Vec<StickRule>,
    /// `use-server` rules, in order.
    pub use_server: Vec<UseServer>,
    pub log: ProxyLog,
    pub server_side: SockOpts,
    pub splice: SpliceOpts,
    /// Set when this is a stats backend (`mode http`, no servers): the page the `mode http`
    /// frontends routing here serve.
    pub stats: Option<StatsPage>,
}

// ---------------------------------------------------------------------------------------------
// server

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// Resolved at load. A port of 0 means "the port the client connected to".
    Resolved(SocketAddr),
    /// A hostname that did not resolve at load, accepted under `-dr`: the server starts in
    /// maintenance.
    Unresolved { host: String, port: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    FastInter,
    FailCheck,
    SuddenDeath,
    MarkDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub port: Option<u16>,
    pub addr: Option<IpAddr>,
    pub inter: Duration,
    pub send: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: ServerId,
    pub backend: BackendId,
    pub name: String,
    /// Numeric id shown in stats (`id` keyword, else position in the backend, from 1).
    pub uid: u32,
    pub span: Span,
    pub addr: ServerAddr,
    /// `port +N`/`-N` maps the client's destination port; None when the port is absolute.
    pub port_offset: Option<i32>,
    pub check: bool,
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    pub check_port: Option<u16>,
    pub check_addr: Option<IpAddr>,
    pub check_send_proxy: bool,
    pub weight: u32,
    pub backup: bool,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub minconn: Option<u32>,
    pub slowstart: Option<Duration>,
    pub send_proxy: Option<ProxyProtocol>,
    pub disabled: bool,
    pub agent: Option<Agent>,
    pub observe_layer4: bool,
    pub error_limit: u32,
    pub on_error: OnError,
    pub on_marked_down_shutdown: bool,
    pub on_marked_up_shutdown_backup: bool,
    /// `check-ssl`, `check-sni`, `check-alpn`.
    pub check_tls: CheckTls,
    /// How a TLS check authenticates this server: `verify`, `ca-file`, `verifyhost` and the
    /// global `ssl-server-verify`. [`Verify::None`] when no check of the server uses TLS.
    pub check_verify: Verify,
}

/// The TLS options of a server's implicit check connect, which `connect default` takes too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckTls {
    /// `check-ssl`: speak TLS.
    pub ssl: bool,
    /// `check-sni`: the SNI to send (none by default).
    pub sni: Option<String>,
    /// `check-alpn`: the ALPN protocols to offer (none by default).
    pub alpn: Vec<String>,
}

/// How a TLS health check judges the server's certificate (HAProxy's `verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// `verify none`: any certificate.
    #[default]
    None,
    /// `verify required`: the chain must lead to a CA of `ca`. The certificate's names are
    /// checked against the SNI sent, else against `host` (`verifyhost`), else not at all.
    Required {
        ca: Arc<CaFile>,
        host: Option<String>,
    },
}

/// A `ca-file`, read once at load (before any chroot) and shared by the servers naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    /// The path as resolved against `ca-base`, for messages.
    pub path: PathBuf,
    /// The CA certificates (DER), each usable as a trust anchor.
    pub certs: Vec<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------------
// health checks

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A plain TCP connect (the default).
    Connect,
    /// `option tcp-check` with its rules (no rule: a connect).
    TcpCheck(Vec<TcpCheckRule>),
    /// `option httpchk` with its `http-check` rules, in HAProxy's order: the request of
    /// `option httpchk` is already merged into the first `http-check send` (or stands alone).
    /// A script ending with a send gets HAProxy's implicit `expect status 200-399` when run.
    HttpChk(Vec<HttpCheckRule>),
    Mysql {
        user: Option<String>,
        post_41: bool,
    },
    Redis,
    Pgsql {
        user: String,
    },
    SslHello,
    /// `option ldap-check`: an anonymous LDAPv3 bind must succeed.
    Ldap,
    /// `option smtpchk [EHLO|HELO <domain>]`: a 2xx greeting, then a 2xx reply to the
    /// command (`HELO localhost` by default).
    Smtp {
        command: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCheckRule {
    /// `tcp-check connect`: the same options as `http-check connect` (sluice's parser takes
    /// fewer of them here).
    Connect(CheckConnect),
    Send(Vec<u8>),
    Expect {
        negate: bool,
        pattern: ExpectPattern,
    },
    Comment(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectPattern {
    String(Vec<u8>),
    /// A regular expression, matched with sluice's small regex engine (`rstring`).
    Rstring(String),
    Binary(Vec<u8>),
}

/// One `http-check` step (HAProxy 2.2+'s connect/send/expect sequences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpCheckRule {
    Connect(CheckConnect),
    Send(HttpRequest),
    Expect(HttpExpect),
    Comment(String),
}

/// `http-check connect` and `tcp-check connect`: where and how a step opens its connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckConnect {
    /// Overrides the server's (check) port.
    pub port: Option<u16>,
    /// Overrides the server's (check) address.
    pub addr: Option<IpAddr>,
    pub send_proxy: bool,
    /// `default`: also apply the server's check options (`check-send-proxy`).
    pub default: bool,
    pub linger: bool,
    /// `ssl`: the connection speaks TLS (with `default`, the server's `check-ssl` does too).
    pub ssl: bool,
    /// `sni <name>`: the SNI of the TLS handshake (with `default`, else `check-sni`).
    pub sni: Option<String>,
    /// `alpn <list>`: the ALPN protocols offered (with `default`, else `check-alpn`).
    pub alpn: Vec<String>,
}

/// An HTTP check request, with HAProxy's defaults already applied (OPTIONS / HTTP/1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub uri: String,
    pub version: String,
    /// Header lines in order, as written (names are lowered when sent).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExpect {
    pub negate: bool,
    pub kind: HttpExpectKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpExpectKind {
    /// `status 200` or `status 200-299,301`.
    Status(Vec<(u16, u16)>),
    Rstatus(String),
    String(String),
}

// ---------------------------------------------------------------------------------------------
// ACLs, conditions, rules

#[derive(Debug, Clone, PartialEq)]
pub struct Acl {
    pub name: String,
    /// Several `acl` lines with the same name are ORed.
    pub terms: Vec<AclTerm>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AclTerm {
    pub span: Span,
    pub fetch: Fetch,
    /// Converters applied to the fetch's value before matching (`req.ssl_sni,lower`).
    pub convs: Vec<Conv>,
    /// The fetch as written, for logs and stats (`src`, `req.ssl_sni`).
    pub fetch_name: String,
    pub method: MatchMethod,
    pub ignore_case: bool,
    pub patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    Src,
    SrcPort,
    Dst,
    DstPort,
    /// `src_conn_rate([<table>])`: None means the proxy's own table.
    SrcConnRate(Option<TableRef>),
    SrcConnCur(Option<TableRef>),
    ScConnRate(u8, Option<TableRef>),
    ScConnCur(u8, Option<TableRef>),
    /// `sc<n>_{get,inc,clr}_gpc<i>` and `sc<n>_gpc<i>_rate`.
    ScGpc {
        slot: u8,
        idx: u8,
        op: GpcOp,
        table: Option<TableRef>,
    },
    /// `src_{get,inc,clr}_gpc<i>` and `src_gpc<i>_rate`.
    SrcGpc {
        idx: u8,
        op: GpcOp,
        table: Option<TableRef>,
    },
    FcRcvdProxy,
    Nbsrv(BackendId),
    BeConn(Option<BackendId>),
    Connslots(Option<BackendId>),
    ReqSslSni,
    ReqSslHelloType,
    /// `req.ssl_ver`, as major * 65536 + minor (patterns like `3.1` are encoded the same way).
    ReqSslVer,
    ReqLen,
    ReqPayload {
        offset: u32,
        len: u32,
    },
    /// The predefined ACLs TRUE and FALSE and `always_true`/`always_false`.
    Always(bool),
    /// `path`: only in a mode http stats/metrics listener.
    Path,
}

/// A converter (configuration.txt §7.3.1) that sluice applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Conv {
    Lower,
    Upper,
    /// `ipmask(<v4 prefix>[,<v6 prefix>])`: keeps the network part of an address.
    Ipmask {
        v4: u8,
        v6: u8,
    },
    /// `map[_<match>](<file>[,<default>])`: the value of the first entry whose key matches
    /// (the longest network for `map_ip`, exact for `map`/`map_str`), else the default.
    Map {
        map: std::sync::Arc<MapFile>,
        default: Option<String>,
    },
}

/// A map file as loaded at start: `<key> <value>` lines.
#[derive(Debug, PartialEq)]
pub struct MapFile {
    pub path: String,
    /// How keys match: Str (exact), Beg, End, Sub, Dir, Dom, Reg, Ip or Int.
    pub method: MatchMethod,
    /// In file order: the key as a pattern, and the value.
    pub entries: Vec<(Pattern, String)>,
    /// `map`/`map_str`: exact keys to the index of their first entry.
    pub exact: std::collections::HashMap<String, usize>,
}

impl Fetch {
    /// Whether the fetch reads the destination address (a getsockname per connection).
    pub fn reads_dst(&self) -> bool {
        matches!(self, Fetch::Dst | Fetch::DstPort)
    }

    /// Whether the fetch reads request bytes (and so may make a rule wait).
    pub fn reads_request(&self) -> bool {
        matches!(
            self,
            Fetch::ReqSslSni
                | Fetch::ReqSslHelloType
                | Fetch::ReqSslVer
                | Fetch::ReqLen
                | Fetch::ReqPayload { .. }
        )
    }
}

/// What a general purpose counter fetch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpcOp {
    /// Reads the counter.
    Get,
    /// Adds one, then reads it (`src_inc_*` creates the entry).
    Inc,
    /// Reads it, then sets it to 0 (`src_clr_*` creates the entry).
    Clr,
    /// Reads its rate.
    Rate,
}

/// A stick table is owned by a proxy; this names which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRef {
    Frontend(FrontendId),
    Backend(BackendId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMethod {
    Found,
    Bool,
    Int,
    Ip,
    Bin,
    Len,
    Str,
    Sub,
    Beg,
    End,
    Dir,
    Dom,
    /// Regular expression, patterns are [`Pattern::Regex`].
    Reg,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// IPv4 or IPv6 network; a plain address is a /32 or /128.
    Net {
        addr: IpAddr,
        prefix: u8,
    },
    /// Integer range, inclusive; `gt 5` is (6, i64::MAX).
    Int(i64, i64),
    Str(String),
    Bin(Vec<u8>),
    /// `-m reg`: a regular expression, checked at load.
    Regex(String),
}

/// `if`/`unless` and a disjunction of conjunctions of (possibly negated) ACLs.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub unless: bool,
    /// OR of ANDs.
    pub any_of: Vec<Vec<CondTerm>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CondTerm {
    pub negate: bool,
    pub acl: AclRef,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AclRef {
    /// Index into the proxy's `acls`.
    Named(usize),
    /// An anonymous `{ ... }` ACL or a predefined one.
    Inline(Box<AclTerm>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpRule {
    pub span: Span,
    pub action: TcpAction,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TcpAction {
    Accept,
    Reject,
    /// `track-sc<n> <key> [table <t>]`; the key is `src` (the only L4 key sluice tracks).
    TrackSc {
        slot: u8,
        table: TableRef,
    },
    ExpectProxyLayer4,
    SilentDrop,
    /// `sc-inc-gpc<idx>(<slot>)`: adds one to a general purpose counter of what stick
    /// counter `slot` tracks.
    IncGpc {
        idx: u8,
        slot: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableType {
    Ip,
    Ipv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreItem {
    ConnCur,
    ConnCnt,
    ConnRate(Duration),
    SessCnt,
    SessRate(Duration),
    BytesInCnt,
    BytesOutCnt,
    /// General purpose counters 0 and 1, and their rates.
    Gpc0,
    Gpc0Rate(Duration),
    Gpc1,
    Gpc1Rate(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickTable {
    pub span: Span,
    pub kind: TableType,
    pub size: u64,
    pub expire: Option<Duration>,
    pub store: Vec<StoreItem>,
}

/// What a `stick` rule reads: the only layer-4 keys sluice sticks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKey {
    Src,
    Dst,
}

/// A `stick` rule of a backend: `stick match` looks the key up (`matches`), `stick
/// store-request` stores the chosen server under it (`stores`), `stick on` does both.
#[derive(Debug, Clone, PartialEq)]
pub struct StickRule {
    pub span: Span,
    pub matches: bool,
    pub stores: bool,
    pub key: StickKey,
    pub table: TableRef,
    pub cond: Option<Condition>,
}
