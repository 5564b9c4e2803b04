//! The stats rows and the stats socket's `show` outputs, as HAProxy 2.6 prints them:
//! `show stat` (CSV, typed, JSON), `show info` (plain, typed, JSON) and `show servers state`
//! (format version 1).
//!
//! One table, `FIELDS`, holds HAProxy's stats fields in their fixed order with their types
//! and typed-output tags (captured from a real HAProxy 2.6.12). Every snapshot object
//! becomes a `StatRow` of values in that order; the CSV, typed and JSON outputs, the
//! Prometheus exporter and the stats page all read those rows, so they cannot disagree.
//! Fields sluice does not know stay empty, as HAProxy leaves inapplicable ones empty; fields
//! that are zero by construction in a TCP load balancer (HTTP, compression, SSL, h1/h2
//! counters) print the zero HAProxy prints for a `mode tcp` proxy.
//!
//! Every output ends with a newline and contains no empty line: the admin thread appends
//! the empty line that ends a command's answer (or "\n> " in prompt mode).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::command::{parse_ref, reply, ObjRef, OutputFormat, StatFilter};
use super::snapshot::{
    BackendRow, CheckInfo, FrontendRow, Info, ServerRow, ServerStatus, Snapshot, Traffic,
};

/// HAProxy 2.6.12's `show stat` header line, as captured from the real program
/// (tcp proxies; the fields after "-" are the ssl, h2 and h1 stats modules).
pub const CSV_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n";

/// `show stat` in CSV: the header, then per proxy its FRONTEND row, its servers and its
/// BACKEND row (a `listen` section gives all three). Proxies come by id, which is
/// configuration order unless `id` keywords say otherwise (HAProxy keeps configuration
/// order even then).
pub fn show_stat_csv(s: &Snapshot) -> String {
    render_stat(&stat_rows(s, &StatFilter::default()), OutputFormat::Plain)
}

/// `show stat [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint]`; HAProxy's
/// "No such proxy." when the proxy selector names none.
pub fn show_stat(s: &Snapshot, format: OutputFormat, filter: &StatFilter) -> String {
    match resolve_filter(s, filter) {
        Ok(filter) => render_stat(&stat_rows(s, &filter), format),
        Err(e) => e,
    }
}

/// `show stat typed`: one line per non-empty field (management.txt §9.2).
pub fn show_stat_typed(s: &Snapshot) -> String {
    render_stat(&stat_rows(s, &StatFilter::default()), OutputFormat::Typed)
}

/// `show stat json`: HAProxy's JSON array of objects, each an array of fields.
pub fn show_stat_json(s: &Snapshot) -> String {
    render_stat(&stat_rows(s, &StatFilter::default()), OutputFormat::Json)
}

/// `show info`: HAProxy's "Name: value" lines, for the fields sluice has, in HAProxy's
/// order and with its names.
pub fn show_info(i: &Info) -> String {
    render_info(i, OutputFormat::Plain)
}

/// `show info`, `show info typed` or `show info json`.
pub fn show_info_as(i: &Info, format: OutputFormat) -> String {
    render_info(i, format)
}

/// `show servers state [<backend>]`, format version 1. The backend is a name or `#<id>`;
/// an unknown one gets HAProxy's "Can't find backend." reply.
pub fn show_servers_state(s: &Snapshot, backend: Option<&str>) -> String {
    let only = match backend {
        None => None,
        Some(b) => match find_backend(s, b) {
            Some(iid) => Some(iid),
            None => return reply::CANT_FIND_BACKEND.to_string(),
        },
    };
    let mut out = String::from(SERVERS_STATE_HEADER);
    for sv in &s.servers {
        if only.is_some_and(|iid| iid != sv.iid) {
            continue;
        }
        servers_state_line(&mut out, sv);
    }
    out
}

/// The two first lines of `show servers state`.
pub const SERVERS_STATE_HEADER: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n";

/// A server's status as `show stat` and the stats page print it ("UP", "DOWN 1/2",
/// "no check" ...).
pub fn server_status_text(st: ServerStatus) -> String {
    match st {
        ServerStatus::Up => "UP".to_string(),
        ServerStatus::Down => "DOWN".to_string(),
        ServerStatus::GoingDown { step, of } => format!("UP {step}/{of}"),
        ServerStatus::GoingUp { step, of } => format!("DOWN {step}/{of}"),
        ServerStatus::Maint => "MAINT".to_string(),
        ServerStatus::Drain => "DRAIN".to_string(),
        ServerStatus::NoCheck => "no check".to_string(),
    }
}

/// HAProxy's uptime format: "0d 0h00m33s".
pub fn uptime_text(d: Duration) -> String {
    let t = d.as_secs();
    format!(
        "{}d {}h{:02}m{:02}s",
        t / 86_400,
        t % 86_400 / 3_600,
        t % 3_600 / 60,
        t % 60
    )
}

// ---------------------------------------------------------------------------------------------
// the field table

/// The value type HAProxy announces in typed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    U32,
    U64,
    S32,
    Str,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::S32 => "s32",
            Ty::Str => "str",
        }
    }
}

/// One HAProxy stats field: its name, type and typed-output tags (origin, nature, scope)
/// per object kind; "" where HAProxy never fills the field for that kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSpec {
    pub name: &'static str,
    pub ty: Ty,
    pub tags: [&'static str; 3],
}

const fn f(
    name: &'static str,
    ty: Ty,
    fe: &'static str,
    be: &'static str,
    sv: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        tags: [fe, be, sv],
    }
}

/// The number of fields, modules included; the CSV header has one more column, "-",
/// between the static fields and the modules.
pub(crate) const N_FIELDS: usize = 127;
/// Position of the first stats-module field (ssl_sess); "-" precedes it in the CSV.
const FIRST_MODULE_FIELD: usize = Fld::SslSess as usize;

const FIELDS: [FieldSpec; N_FIELDS] = [
    f("pxname", Ty::Str, "KNS", "KNS", "KNS"),
    f("svname", Ty::Str, "KNS", "KNS", "KNS"),
    f("qcur", Ty::U32, "", "MGP", "MGP"),
    f("qmax", Ty::U32, "", "MMP", "MMP"),
    f("scur", Ty::U32, "MGP", "MGP", "MGP"),
    f("smax", Ty::U32, "MMP", "MMP", "MMP"),
    f("slim", Ty::U32, "CLP", "CLP", "CLP"),
    f("stot", Ty::U64, "MCP", "MCP", "MCP"),
    f("bin", Ty::U64, "MCP", "MCP", "MCP"),
    f("bout", Ty::U64, "MCP", "MCP", "MCP"),
    f("dreq", Ty::U64, "MCP", "MCP", ""),
    f("dresp", Ty::U64, "MCP", "MCP", "MCP"),
    f("ereq", Ty::U64, "MCP", "", ""),
    f("econ", Ty::U64, "", "MCP", "MCP"),
    f("eresp", Ty::U64, "", "MCP", "MCP"),
    f("wretr", Ty::U64, "", "MCP", "MCP"),
    f("wredis", Ty::U64, "", "MCP", "MCP"),
    f("status", Ty::Str, "SGP", "SGP", "SGP"),
    f("weight", Ty::U32, "", "MaP", "MaP"),
    f("act", Ty::U32, "", "MGP", "SGP"),
    f("bck", Ty::U32, "", "MGP", "SGP"),
    f("chkfail", Ty::U64, "", "", "MCP"),
    f("chkdown", Ty::U64, "", "MCP", "MCP"),
    f("lastchg", Ty::U32, "", "MAP", "MAP"),
    f("downtime", Ty::U32, "", "MCP", "MCP"),
    f("qlimit", Ty::U32, "", "", "CGS"),
    f("pid", Ty::U32, "KGP", "KGP", "KGP"),
    f("iid", Ty::U32, "KGS", "KGS", "KGS"),
    f("sid", Ty::U32, "KGS", "KGS", "KGS"),
    f("throttle", Ty::U32, "", "", "MaP"),
    f("lbtot", Ty::U64, "", "MCP", "MCP"),
    f("tracked", Ty::Str, "", "", "CNS"),
    f("type", Ty::U32, "CGS", "CGS", "CGS"),
    f("rate", Ty::U32, "MRP", "MGP", "MRP"),
    f("rate_lim", Ty::U32, "CLP", "", ""),
    f("rate_max", Ty::U32, "MMP", "MGP", "MMP"),
    f("check_status", Ty::Str, "", "", "MOP"),
    f("check_code", Ty::U32, "", "", "MOP"),
    f("check_duration", Ty::U64, "", "", "MDP"),
    f("hrsp_1xx", Ty::U64, "MCP", "", ""),
    f("hrsp_2xx", Ty::U64, "MCP", "", ""),
    f("hrsp_3xx", Ty::U64, "MCP", "", ""),
    f("hrsp_4xx", Ty::U64, "MCP", "", ""),
    f("hrsp_5xx", Ty::U64, "MCP", "", ""),
    f("hrsp_other", Ty::U64, "MCP", "", ""),
    f("hanafail", Ty::U64, "", "", "MCP"),
    f("req_rate", Ty::U32, "MRP", "", ""),
    f("req_rate_max", Ty::U32, "MMP", "", ""),
    f("req_tot", Ty::U64, "MCP", "MCP", ""),
    f("cli_abrt", Ty::U64, "", "MCP", "MCP"),
    f("srv_abrt", Ty::U64, "", "MCP", "MCP"),
    f("comp_in", Ty::U64, "MCP", "MCP", ""),
    f("comp_out", Ty::U64, "MCP", "MCP", ""),
    f("comp_byp", Ty::U64, "MCP", "MCP", ""),
    f("comp_rsp", Ty::U64, "MCP", "MCP", ""),
    f("lastsess", Ty::S32, "", "MAP", "MAP"),
    f("last_chk", Ty::Str, "", "", "MOP"),
    f("last_agt", Ty::Str, "", "", "MOP"),
    f("qtime", Ty::U32, "", "MaP", "MaP"),
    f("ctime", Ty::U32, "", "MaP", "MaP"),
    f("rtime", Ty::U32, "", "MaP", "MaP"),
    f("ttime", Ty::U32, "", "MaP", "MaP"),
    f("agent_status", Ty::Str, "", "", "MOP"),
    f("agent_code", Ty::U32, "", "", "MOP"),
    f("agent_duration", Ty::U64, "", "", "MDP"),
    f("check_desc", Ty::Str, "", "", "MOP"),
    f("agent_desc", Ty::Str, "", "", "MOP"),
    f("check_rise", Ty::U32, "", "", "CGS"),
    f("check_fall", Ty::U32, "", "", "CGS"),
    f("check_health", Ty::U32, "", "", "CGS"),
    f("agent_rise", Ty::U32, "", "", "CGS"),
    f("agent_fall", Ty::U32, "", "", "CGS"),
    f("agent_health", Ty::U32, "", "", "CGS"),
    f("addr", Ty::Str, "", "", "CGS"),
    f("cookie", Ty::Str, "", "CNS", "CNS"),
    f("mode", Ty::Str, "CGS", "CGS", "CGS"),
    f("algo", Ty::Str, "", "CGS", ""),
    f("conn_rate", Ty::U32, "MRP", "", ""),
    f("conn_rate_max", Ty::U32, "MMP", "", ""),
    f("conn_tot", Ty::U64, "MCP", "", ""),
    f("intercepted", Ty::U64, "MCP", "", ""),
    f("dcon", Ty::U64, "MCP", "", ""),
    f("dses", Ty::U64, "MCP", "", ""),
    f("wrew", Ty::U64, "MCP", "MCP", "MCP"),
    f("connect", Ty::U64, "", "MCP", "MCP"),
    f("reuse", Ty::U64, "", "MCP", "MCP"),
    f("cache_lookups", Ty::U64, "MCP", "", ""),
    f("cache_hits", Ty::U64, "MCP", "", ""),
    f("srv_icur", Ty::U32, "", "", "MGP"),
    f("src_ilim", Ty::U32, "", "", "MaP"),
    f("qtime_max", Ty::U32, "", "MMP", "MMP"),
    f("ctime_max", Ty::U32, "", "MMP", "MMP"),
    f("rtime_max", Ty::U32, "", "MMP", "MMP"),
    f("ttime_max", Ty::U32, "", "MMP", "MMP"),
    f("eint", Ty::U64, "MCP", "MCP", "MCP"),
    f("idle_conn_cur", Ty::U32, "", "", "MGP"),
    f("safe_conn_cur", Ty::U32, "", "", "MGP"),
    f("used_conn_cur", Ty::U32, "", "", "MGP"),
    f("need_conn_est", Ty::U32, "", "", "MGP"),
    f("uweight", Ty::U32, "", "MaP", "MaP"),
    f("agg_server_status", Ty::U32, "", "MGP", ""),
    f("agg_server_check_status", Ty::U32, "", "MGP", ""),
    f("agg_check_status", Ty::U32, "", "MGP", ""),
    f("ssl_sess", Ty::U64, "MCP", "MCP", "MCP"),
    f("ssl_reused_sess", Ty::U64, "MCP", "MCP", "MCP"),
    f("ssl_failed_handshake", Ty::U64, "MCP", "MCP", "MCP"),
    f("h2_headers_rcvd", Ty::U64, "MCP", "MCP", ""),
    f("h2_data_rcvd", Ty::U64, "MCP", "MCP", ""),
    f("h2_settings_rcvd", Ty::U64, "MCP", "MCP", ""),
    f("h2_rst_stream_rcvd", Ty::U64, "MCP", "MCP", ""),
    f("h2_goaway_rcvd", Ty::U64, "MCP", "MCP", ""),
    f(
        "h2_detected_conn_protocol_errors",
        Ty::U64,
        "MCP",
        "MCP",
        "",
    ),
    f(
        "h2_detected_strm_protocol_errors",
        Ty::U64,
        "MCP",
        "MCP",
        "",
    ),
    f("h2_rst_stream_resp", Ty::U64, "MCP", "MCP", ""),
    f("h2_goaway_resp", Ty::U64, "MCP", "MCP", ""),
    f("h2_open_connections", Ty::U64, "MGP", "MGP", ""),
    f("h2_backend_open_streams", Ty::U64, "MGP", "MGP", ""),
    f("h2_total_connections", Ty::U64, "MCP", "MCP", ""),
    f("h2_backend_total_streams", Ty::U64, "MCP", "MCP", ""),
    f("h1_open_connections", Ty::U64, "MGP", "MGP", ""),
    f("h1_open_streams", Ty::U64, "MGP", "MGP", ""),
    f("h1_total_connections", Ty::U64, "MCP", "MCP", ""),
    f("h1_total_streams", Ty::U64, "MCP", "MCP", ""),
    f("h1_bytes_in", Ty::U64, "MCP", "MCP", ""),
    f("h1_bytes_out", Ty::U64, "MCP", "MCP", ""),
    f("h1_spliced_bytes_in", Ty::U64, "MCP", "MCP", ""),
    f("h1_spliced_bytes_out", Ty::U64, "MCP", "MCP", ""),
];

/// Positions in [`FIELDS`]. Every HAProxy field is listed, sluice fills only some.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Fld {
    Pxname,
    Svname,
    Qcur,
    Qmax,
    Scur,
    Smax,
    Slim,
    Stot,
    Bin,
    Bout,
    Dreq,
    Dresp,
    Ereq,
    Econ,
    Eresp,
    Wretr,
    Wredis,
    Status,
    Weight,
    Act,
    Bck,
    Chkfail,
    Chkdown,
    Lastchg,
    Downtime,
    Qlimit,
    Pid,
    Iid,
    Sid,
    Throttle,
    Lbtot,
    Tracked,
    Type,
    Rate,
    RateLim,
    RateMax,
    CheckStatus,
    CheckCode,
    CheckDuration,
    Hrsp1xx,
    Hrsp2xx,
    Hrsp3xx,
    Hrsp4xx,
    Hrsp5xx,
    HrspOther,
    Hanafail,
    ReqRate,
    ReqRateMax,
    ReqTot,
    CliAbrt,
    SrvAbrt,
    CompIn,
    CompOut,
    CompByp,
    CompRsp,
    Lastsess,
    LastChk,
    LastAgt,
    Qtime,
    Ctime,
    Rtime,
    Ttime,
    AgentStatus,
    AgentCode,
    AgentDuration,
    CheckDesc,
    AgentDesc,
    CheckRise,
    CheckFall,
    CheckHealth,
    AgentRise,
    AgentFall,
    AgentHealth,
    Addr,
    Cookie,
    Mode,
    Algo,
    ConnRate,
    ConnRateMax,
    ConnTot,
    Intercepted,
    Dcon,
    Dses,
    Wrew,
    Connect,
    Reuse,
    CacheLookups,
    CacheHits,
    SrvIcur,
    SrcIlim,
    QtimeMax,
    CtimeMax,
    RtimeMax,
    TtimeMax,
    Eint,
    IdleConnCur,
    SafeConnCur,
    UsedConnCur,
    NeedConnEst,
    Uweight,
    AggServerStatus,
    AggServerCheckStatus,
    AggCheckStatus,
    SslSess,
    SslReusedSess,
    SslFailedHandshake,
    H2HeadersRcvd,
    H2DataRcvd,
    H2SettingsRcvd,
    H2RstStreamRcvd,
    H2GoawayRcvd,
    H2DetectedConnProtocolErrors,
    H2DetectedStrmProtocolErrors,
    H2RstStreamResp,
    H2GoawayResp,
    H2OpenConnections,
    H2BackendOpenStreams,
    H2TotalConnections,
    H2BackendTotalStreams,
    H1OpenConnections,
    H1OpenStreams,
    H1TotalConnections,
    H1TotalStreams,
    H1BytesIn,
    H1BytesOut,
    H1SplicedBytesIn,
    H1SplicedBytesOut,
}

/// The kind of a stats row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Obj {
    Frontend,
    Backend,
    Server,
}

impl Obj {
    fn letter(self) -> char {
        match self {
            Obj::Frontend => 'F',
            Obj::Backend => 'B',
            Obj::Server => 'S',
        }
    }

    fn json_name(self) -> &'static str {
        match self {
            Obj::Frontend => "Frontend",
            Obj::Backend => "Backend",
            Obj::Server => "Server",
        }
    }

    fn tag_index(self) -> usize {
        match self {
            Obj::Frontend => 0,
            Obj::Backend => 1,
            Obj::Server => 2,
        }
    }
}

/// One field's value. `Str("")` differs from `Empty`: typed output prints the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Empty,
    U(u64),
    I(i64),
    S(String),
}

/// The snapshot object a row was built from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    Frontend(&'a FrontendRow),
    Backend(&'a BackendRow),
    Server(&'a ServerRow),
}

/// One line of `show stat`: a frontend, a backend or a server.
#[derive(Debug, Clone)]
pub(crate) struct StatRow<'a> {
    pub obj: Obj,
    pub iid: u32,
    pub sid: u32,
    pub src: Source<'a>,
    pub vals: Vec<Val>,
}

impl StatRow<'_> {
    pub(crate) fn get(&self, f: Fld) -> &Val {
        &self.vals[f as usize]
    }
}

struct Fill {
    vals: Vec<Val>,
}

impl Fill {
    fn new() -> Fill {
        Fill {
            vals: vec![Val::Empty; N_FIELDS],
        }
    }
    fn u(&mut self, f: Fld, v: u64) {
        self.vals[f as usize] = Val::U(v);
    }
    fn i(&mut self, f: Fld, v: i64) {
        self.vals[f as usize] = Val::I(v);
    }
    fn s(&mut self, f: Fld, v: &str) {
        self.vals[f as usize] = Val::S(clean(v));
    }
    fn opt(&mut self, f: Fld, v: Option<u64>) {
        if let Some(v) = v {
            self.u(f, v);
        }
    }
    fn zeros(&mut self, fields: &[Fld]) {
        for f in fields {
            self.u(*f, 0);
        }
    }

    /// A row with the fields every kind fills: names, ids, sessions, bytes, rates, and
    /// the zeros HAProxy prints for every `mode tcp` object.
    fn row(
        obj: Obj,
        pxname: &str,
        svname: &str,
        iid: u32,
        sid: u32,
        t: &Traffic,
        slim: Option<u64>,
    ) -> Fill {
        let mut v = Fill::new();
        v.s(Fld::Pxname, pxname);
        v.s(Fld::Svname, svname);
        v.u(Fld::Scur, t.scur);
        v.u(Fld::Smax, t.smax);
        v.opt(Fld::Slim, slim);
        v.u(Fld::Stot, t.stot);
        v.u(Fld::Bin, t.bin);
        v.u(Fld::Bout, t.bout);
        v.u(Fld::Dresp, 0);
        v.u(Fld::Pid, 1);
        v.u(Fld::Iid, iid.into());
        v.u(Fld::Sid, sid.into());
        // HAProxy's type field: 0 frontend, 1 backend, 2 server.
        v.u(Fld::Type, obj.tag_index() as u64);
        v.u(Fld::Rate, t.rate);
        v.u(Fld::RateMax, t.rate_max);
        v.zeros(&[Fld::Wrew, Fld::Eint]);
        v.zeros(&SSL_FIELDS);
        v
    }

    /// What backends and servers both count about connecting to servers: queue,
    /// connection errors, retries, load-balancing, aborts and times.
    fn server_side(&mut self, t: &Traffic, lastsess: Option<Duration>) {
        self.u(Fld::Qcur, t.qcur);
        self.u(Fld::Qmax, t.qmax);
        self.u(Fld::Econ, t.econ);
        self.u(Fld::Eresp, t.eresp);
        self.u(Fld::Wretr, t.wretr);
        self.u(Fld::Wredis, t.wredis);
        self.u(Fld::Lbtot, t.lbtot);
        self.u(Fld::CliAbrt, t.cli_abrt);
        self.u(Fld::SrvAbrt, t.srv_abrt);
        self.i(Fld::Lastsess, age(lastsess));
        self.u(Fld::Ctime, average(t.ctime_sum_ms, t.stot));
        self.u(Fld::Rtime, 0);
        self.u(
            Fld::Ttime,
            average(t.ttime_sum_ms, t.stot.saturating_sub(t.scur)),
        );
        self.u(Fld::Reuse, 0);
    }
}

/// Text values never carry a line break: the CLI ends an answer with an empty line.
fn clean(v: &str) -> String {
    if v.contains(['\n', '\r']) {
        v.replace(['\n', '\r'], " ")
    } else {
        v.to_string()
    }
}

const SSL_FIELDS: [Fld; 3] = [Fld::SslSess, Fld::SslReusedSess, Fld::SslFailedHandshake];
/// The h1 and h2 stats modules' fields.
const H1H2_FIELDS: [Fld; 21] = [
    Fld::H2HeadersRcvd,
    Fld::H2DataRcvd,
    Fld::H2SettingsRcvd,
    Fld::H2RstStreamRcvd,
    Fld::H2GoawayRcvd,
    Fld::H2DetectedConnProtocolErrors,
    Fld::H2DetectedStrmProtocolErrors,
    Fld::H2RstStreamResp,
    Fld::H2GoawayResp,
    Fld::H2OpenConnections,
    Fld::H2BackendOpenStreams,
    Fld::H2TotalConnections,
    Fld::H2BackendTotalStreams,
    Fld::H1OpenConnections,
    Fld::H1OpenStreams,
    Fld::H1TotalConnections,
    Fld::H1TotalStreams,
    Fld::H1BytesIn,
    Fld::H1BytesOut,
    Fld::H1SplicedBytesIn,
    Fld::H1SplicedBytesOut,
];
const COMP_FIELDS: [Fld; 4] = [Fld::CompIn, Fld::CompOut, Fld::CompByp, Fld::CompRsp];

// ---------------------------------------------------------------------------------------------
// rows

/// Every row of `show stat` that `filter` keeps, in HAProxy's order: proxies by id (which
/// is configuration order unless `id` keywords reorder them), each as FRONTEND, servers,
/// BACKEND. `filter.proxy` must already be resolved to a number (see [`resolve_filter`]).
pub(crate) fn stat_rows<'a>(s: &'a Snapshot, filter: &StatFilter) -> Vec<StatRow<'a>> {
    let want_iid: i64 = match &filter.proxy {
        None => -1,
        Some(p) => atoi(p),
    };
    // The type mask and server id only apply with a proxy selector, as in HAProxy.
    let (types, sid) = if filter.proxy.is_some() {
        (filter.types, filter.sid)
    } else {
        (-1, -1)
    };

    #[derive(Default)]
    struct Proxy<'a> {
        fe: Option<&'a FrontendRow>,
        be: Option<&'a BackendRow>,
        servers: Vec<&'a ServerRow>,
    }
    let mut proxies: BTreeMap<u32, Proxy<'a>> = BTreeMap::new();
    for fe in &s.frontends {
        proxies.entry(fe.iid).or_default().fe.get_or_insert(fe);
    }
    for be in &s.backends {
        proxies.entry(be.iid).or_default().be.get_or_insert(be);
    }
    for sv in &s.servers {
        proxies.entry(sv.iid).or_default().servers.push(sv);
    }

    let mut rows = Vec::new();
    for (iid, px) in &proxies {
        if want_iid != -1 && want_iid != i64::from(*iid) {
            continue;
        }
        if let Some(fe) = px.fe {
            if types & 1 != 0 {
                rows.push(StatRow {
                    obj: Obj::Frontend,
                    iid: *iid,
                    sid: 0,
                    src: Source::Frontend(fe),
                    vals: frontend_vals(fe),
                });
            }
        }
        if types & 4 != 0 {
            for sv in &px.servers {
                if sid != -1 && i64::from(sv.sid) != i64::from(sid) {
                    continue;
                }
                let down = matches!(
                    sv.status,
                    ServerStatus::Down | ServerStatus::GoingUp { .. } | ServerStatus::Maint
                );
                if (filter.up_only && down) || (filter.no_maint && sv.status == ServerStatus::Maint)
                {
                    continue;
                }
                rows.push(StatRow {
                    obj: Obj::Server,
                    iid: *iid,
                    sid: sv.sid,
                    src: Source::Server(sv),
                    vals: server_vals(sv),
                });
            }
        }
        if let Some(be) = px.be {
            if types & 2 != 0 {
                let counts = (filter.up_only || filter.no_maint).then(|| {
                    let up = px.servers.iter().filter(|sv| op_running(sv.status)).count();
                    (up, px.servers.len())
                });
                rows.push(StatRow {
                    obj: Obj::Backend,
                    iid: *iid,
                    sid: 0,
                    src: Source::Backend(be),
                    vals: backend_vals(be, counts),
                });
            }
        }
    }
    rows
}

/// Turns a proxy name in the filter into its id, as HAProxy does (a name first, else a
/// number; 0 or garbage is "No such proxy.").
pub(crate) fn resolve_filter(s: &Snapshot, filter: &StatFilter) -> Result<StatFilter, String> {
    let mut out = filter.clone();
    if let Some(p) = &filter.proxy {
        let by_name = s
            .frontends
            .iter()
            .find(|f| &f.name == p)
            .map(|f| f.iid)
            .or_else(|| s.backends.iter().find(|b| &b.name == p).map(|b| b.iid));
        let iid = match by_name {
            Some(iid) => i64::from(iid),
            None => atoi(p),
        };
        if iid == 0 {
            return Err(reply::NO_SUCH_PROXY.to_string());
        }
        out.proxy = Some(iid.to_string());
    }
    Ok(out)
}

/// C's atoi: optional blanks and sign, then digits; anything else stops it (0 if none).
pub(crate) fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// Whether HAProxy would call the server's operational state running (not stopped).
pub(crate) fn op_running(st: ServerStatus) -> bool {
    matches!(
        st,
        ServerStatus::Up
            | ServerStatus::GoingDown { .. }
            | ServerStatus::Drain
            | ServerStatus::NoCheck
    )
}

fn frontend_vals(fe: &FrontendRow) -> Vec<Val> {
    let t = &fe.traffic;
    let mut v = Fill::row(Obj::Frontend, &fe.name, "FRONTEND", fe.iid, 0, t, fe.slim);
    v.u(Fld::Dreq, t.dreq);
    v.u(Fld::Ereq, 0);
    // HAProxy 2.6 shows a frontend stopped by `disable frontend` as PAUSED.
    v.s(Fld::Status, if fe.enabled { "OPEN" } else { "PAUSED" });
    v.u(Fld::RateLim, fe.rate_lim.unwrap_or(0));
    // A TCP frontend has no HTTP requests nor h1/h2 connections; a stats/metrics listener
    // has some, not counted.
    let tcp = fe.mode != "http";
    if tcp {
        v.zeros(&[Fld::ReqRate, Fld::ReqRateMax, Fld::ReqTot]);
    }
    v.zeros(&COMP_FIELDS);
    v.s(Fld::Mode, fe.mode);
    v.u(Fld::ConnRate, t.rate);
    v.u(Fld::ConnRateMax, t.rate_max);
    v.u(Fld::ConnTot, t.conn_tot);
    v.u(Fld::Dcon, t.dcon);
    v.u(Fld::Dses, t.dses);
    if tcp {
        v.zeros(&H1H2_FIELDS);
    }
    v.vals
}

fn backend_vals(be: &BackendRow, up_counts: Option<(usize, usize)>) -> Vec<Val> {
    let t = &be.traffic;
    let mut v = Fill::row(Obj::Backend, &be.name, "BACKEND", be.iid, 0, t, be.slim);
    v.server_side(t, be.lastsess);
    v.u(Fld::Dreq, t.dreq);
    let mut status = String::from(if be.up { "UP" } else { "DOWN" });
    if let Some((up, all)) = up_counts {
        let _ = write!(status, " ({up}/{all})");
    }
    v.s(Fld::Status, &status);
    v.u(Fld::Weight, be.weight);
    v.u(Fld::Act, be.act);
    v.u(Fld::Bck, be.bck);
    v.u(Fld::Chkdown, be.chkdown);
    v.u(Fld::Lastchg, be.lastchg.as_secs());
    v.u(Fld::Downtime, be.downtime.as_secs());
    v.zeros(&COMP_FIELDS);
    v.s(Fld::Algo, be.algo);
    v.s(Fld::Mode, be.mode);
    v.u(Fld::Uweight, be.uweight);
    v.zeros(&[
        Fld::AggServerStatus,
        Fld::AggServerCheckStatus,
        Fld::AggCheckStatus,
    ]);
    // HAProxy counts its HTTP health checks in a backend's h1 stats; sluice does not
    // count its checks there, so the h1/h2 columns stay empty rather than a false 0.
    v.vals
}

fn server_vals(sv: &ServerRow) -> Vec<Val> {
    let t = &sv.traffic;
    let mut v = Fill::row(
        Obj::Server,
        &sv.backend,
        &sv.name,
        sv.iid,
        sv.sid,
        t,
        sv.slim,
    );
    v.server_side(t, sv.lastsess);
    v.s(Fld::Mode, "tcp");
    v.s(Fld::Status, &server_status_text(sv.status));
    v.u(Fld::Weight, sv.weight.into());
    v.u(Fld::Act, u64::from(!sv.backup));
    v.u(Fld::Bck, u64::from(sv.backup));
    if sv.check.is_some() {
        v.u(Fld::Chkfail, sv.chkfail);
        v.u(Fld::Chkdown, sv.chkdown);
        v.u(Fld::Downtime, sv.downtime.as_secs());
    }
    v.u(Fld::Lastchg, sv.lastchg.as_secs());
    v.opt(Fld::Qlimit, sv.qlimit);
    v.opt(Fld::Throttle, sv.throttle.map(u64::from));
    // Checks are paused in maintenance: HAProxy then hides their results.
    let active = sv.status != ServerStatus::Maint;
    if let Some(c) = sv.check.as_ref().filter(|_| active) {
        v.s(Fld::CheckStatus, &c.status);
        v.opt(Fld::CheckCode, c.code.map(u64::from));
        v.opt(Fld::CheckDuration, c.duration_ms);
        v.s(Fld::LastChk, &c.output);
        v.s(Fld::CheckDesc, &c.desc);
        check_counters(
            &mut v,
            c,
            [Fld::CheckRise, Fld::CheckFall, Fld::CheckHealth],
        );
    }
    if let Some(a) = sv.agent.as_ref().filter(|_| active) {
        v.s(Fld::AgentStatus, &a.status);
        // As HAProxy: a code only for the layer 5-7 results that carry data (0 if none).
        let data = matches!(a.status.as_str(), "L7OK" | "L7OKC" | "L7STS");
        v.opt(Fld::AgentCode, a.code.map(u64::from).or(data.then_some(0)));
        v.opt(Fld::AgentDuration, a.duration_ms);
        v.s(Fld::LastAgt, &a.output);
        v.s(Fld::AgentDesc, &a.desc);
        check_counters(
            &mut v,
            a,
            [Fld::AgentRise, Fld::AgentFall, Fld::AgentHealth],
        );
    }
    v.s(Fld::Addr, &sv.addr);
    v.zeros(&[Fld::SrvIcur, Fld::IdleConnCur, Fld::SafeConnCur]);
    v.u(Fld::UsedConnCur, t.scur);
    v.u(Fld::Uweight, sv.uweight.into());
    v.vals
}

fn check_counters(v: &mut Fill, c: &CheckInfo, f: [Fld; 3]) {
    v.u(f[0], c.rise.into());
    v.u(f[1], c.fall.into());
    v.u(f[2], c.health.into());
}

/// HAProxy's "seconds since", -1 for never.
fn age(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn average(sum: u64, n: u64) -> u64 {
    sum.checked_div(n).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// rendering

fn render_stat(rows: &[StatRow<'_>], format: OutputFormat) -> String {
    match format {
        OutputFormat::Plain => render_csv(rows),
        OutputFormat::Typed => render_typed(rows),
        OutputFormat::Json => render_json(rows),
    }
}

fn render_csv(rows: &[StatRow<'_>]) -> String {
    let mut out = String::with_capacity(CSV_HEADER.len() + rows.len() * 300);
    out.push_str(CSV_HEADER);
    for row in rows {
        for (i, val) in row.vals.iter().enumerate() {
            if i == FIRST_MODULE_FIELD {
                out.push_str("-,");
            }
            match val {
                Val::Empty => {}
                Val::U(n) => {
                    let _ = write!(out, "{n}");
                }
                Val::I(n) => {
                    let _ = write!(out, "{n}");
                }
                Val::S(s) => csv_field(&mut out, s),
            }
            out.push(',');
        }
        out.push('\n');
    }
    out
}

/// HAProxy's CSV quoting: only text holding a comma or a double quote is quoted, and its
/// quotes are doubled.
fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn render_typed(rows: &[StatRow<'_>]) -> String {
    let mut out = String::new();
    for row in rows {
        let ti = row.obj.tag_index();
        for (pos, val) in row.vals.iter().enumerate() {
            if *val == Val::Empty {
                continue;
            }
            let spec = &FIELDS[pos];
            let _ = write!(
                out,
                "{}.{}.{}.{}.{}.1:{}:{}:",
                row.obj.letter(),
                row.iid,
                row.sid,
                pos,
                spec.name,
                tags(spec, ti),
                spec.ty.name()
            );
            typed_value(&mut out, val);
            out.push('\n');
        }
    }
    out
}

fn tags(spec: &FieldSpec, ti: usize) -> &'static str {
    // A field sluice fills where HAProxy's table has no tags for this kind falls back to
    // "MGP" (a per-process gauge metric), the most common triple.
    match spec.tags[ti] {
        "" => "MGP",
        t => t,
    }
}

fn typed_value(out: &mut String, val: &Val) {
    match val {
        Val::Empty => {}
        Val::U(n) => {
            let _ = write!(out, "{n}");
        }
        Val::I(n) => {
            let _ = write!(out, "{n}");
        }
        Val::S(s) => out.push_str(s),
    }
}

fn render_json(rows: &[StatRow<'_>]) -> String {
    let mut out = String::from("[");
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('[');
        let ti = row.obj.tag_index();
        let mut first = true;
        for (pos, val) in row.vals.iter().enumerate() {
            if *val == Val::Empty {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let spec = &FIELDS[pos];
            let _ = write!(
                out,
                "{{\"objType\":\"{}\",\"proxyId\":{},\"id\":{},",
                row.obj.json_name(),
                row.iid,
                row.sid
            );
            json_field(&mut out, pos, spec.name, tags(spec, ti), spec.ty, val);
        }
        out.push(']');
    }
    out.push_str("]\n");
    out
}

/// The part of a JSON stats object from "field" on, closing brace included.
fn json_field(out: &mut String, pos: usize, name: &str, tags: &str, ty: Ty, val: &Val) {
    let t = tags.as_bytes();
    let _ = write!(
        out,
        "\"field\":{{\"pos\":{pos},\"name\":\"{}\"}},\"processNum\":1,\"tags\":{{\"origin\":\"{}\",\"nature\":\"{}\",\"scope\":\"{}\"}},\"value\":{{\"type\":\"{}\",\"value\":",
        json_escape(name),
        tag_word(0, t[0]),
        tag_word(1, t[1]),
        tag_word(2, t[2]),
        ty.name()
    );
    match val {
        Val::Empty => out.push_str("null"),
        Val::U(n) => {
            let _ = write!(out, "{n}");
        }
        Val::I(n) => {
            let _ = write!(out, "{n}");
        }
        Val::S(s) => {
            let _ = write!(out, "\"{}\"", json_escape(s));
        }
    }
    out.push_str("}}");
}

/// The words HAProxy's JSON uses for the typed-output tag letters.
fn tag_word(which: usize, letter: u8) -> &'static str {
    match (which, letter) {
        (0, b'M') => "Metric",
        (0, b'S') => "Status",
        (0, b'K') => "Key",
        (0, b'C') => "Config",
        (0, b'P') => "Product",
        (1, b'A') => "Age",
        (1, b'a') => "Avg",
        (1, b'C') => "Counter",
        (1, b'D') => "Duration",
        (1, b'G') => "Gauge",
        (1, b'L') => "Limit",
        (1, b'M') => "Max",
        (1, b'm') => "Min",
        (1, b'N') => "Name",
        (1, b'O') => "Output",
        (1, b'R') => "Rate",
        (1, b'T') => "Time",
        (2, b'C') => "Cluster",
        (2, b'P') => "Process",
        (2, b'S') => "Service",
        (2, b's') => "System",
        _ => "Unknown",
    }
}

pub(crate) fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// show info

/// One `show info` line: HAProxy's position, name, tags and type, and sluice's value.
struct InfoField {
    pos: usize,
    name: &'static str,
    tags: &'static str,
    ty: Ty,
    val: Val,
}

fn info_fields(i: &Info) -> Vec<InfoField> {
    let u = |n: u64| Val::U(n);
    let s = |t: &str| Val::S(clean(t));
    let mut v = vec![
        (0, "Name", "POS", Ty::Str, s(&i.name)),
        (1, "Version", "POS", Ty::Str, s(&i.version)),
        (
            2,
            "Release_date",
            "POS",
            Ty::Str,
            if i.release_date.is_empty() {
                Val::Empty
            } else {
                s(&i.release_date)
            },
        ),
        (3, "Nbthread", "CGS", Ty::U32, u(i.nbthread.into())),
        (4, "Nbproc", "CGS", Ty::U32, u(1)),
        (5, "Process_num", "KGP", Ty::U32, u(1)),
        (6, "Pid", "SGP", Ty::U32, u(i.pid.into())),
        (7, "Uptime", "MDP", Ty::Str, Val::S(uptime_text(i.uptime))),
        (8, "Uptime_sec", "MDP", Ty::U32, u(i.uptime.as_secs())),
        (9, "Memmax_MB", "CLP", Ty::U32, u(0)),
        (13, "Ulimit-n", "CLP", Ty::U32, u(i.ulimit_n)),
        (14, "Maxsock", "CLP", Ty::U32, u(i.maxsock)),
        (15, "Maxconn", "CLP", Ty::U32, u(i.maxconn)),
        (16, "Hard_maxconn", "CLP", Ty::U32, u(i.maxconn)),
        (17, "CurrConns", "MGP", Ty::U32, u(i.curr_conns)),
        (18, "CumConns", "MCP", Ty::U32, u(i.cum_conns)),
        (23, "Maxpipes", "CLP", Ty::U32, u(i.max_pipes)),
        (24, "PipesUsed", "MGP", Ty::U32, u(i.pipes_used)),
        (25, "PipesFree", "MGP", Ty::U32, u(i.pipes_free)),
        (26, "ConnRate", "MRP", Ty::U32, u(i.conn_rate)),
        (27, "ConnRateLimit", "CLP", Ty::U32, u(0)),
        (28, "MaxConnRate", "MMP", Ty::U32, u(i.max_conn_rate)),
        (29, "SessRate", "MRP", Ty::U32, u(i.sess_rate)),
        (30, "SessRateLimit", "CLP", Ty::U32, u(0)),
        (31, "MaxSessRate", "MRP", Ty::U32, u(i.max_sess_rate)),
        (50, "node", "COS", Ty::Str, s(&i.node)),
        (
            51,
            "description",
            "COS",
            Ty::Str,
            i.description.as_deref().map_or(Val::Empty, s),
        ),
        (52, "Stopping", "MGP", Ty::U32, u(i.stopping.into())),
        (53, "Jobs", "MGP", Ty::U32, u(i.jobs)),
        (55, "Listeners", "MGP", Ty::U32, u(i.listeners)),
        (58, "DroppedLogs", "MGP", Ty::U32, u(i.dropped_logs)),
        (61, "TotalBytesOut", "MGP", Ty::U64, u(i.total_bytes_out)),
        (
            62,
            "TotalSplicdedBytesOut",
            "MGP",
            Ty::U64,
            u(i.spliced_bytes_out),
        ),
        (66, "Build info", "POS", Ty::Str, s(&i.version)),
        (70, "Start_time_sec", "MDP", Ty::U32, u(i.start_time_sec)),
    ];
    v.retain(|f| f.4 != Val::Empty);
    v.into_iter()
        .map(|(pos, name, tags, ty, val)| InfoField {
            pos,
            name,
            tags,
            ty,
            val,
        })
        .collect()
}

fn render_info(i: &Info, format: OutputFormat) -> String {
    let fields = info_fields(i);
    let mut out = String::new();
    match format {
        OutputFormat::Plain => {
            for f in &fields {
                let _ = write!(out, "{}: ", f.name);
                typed_value(&mut out, &f.val);
                out.push('\n');
            }
        }
        OutputFormat::Typed => {
            for f in &fields {
                let _ = write!(out, "{}.{}.1:{}:{}:", f.pos, f.name, f.tags, f.ty.name());
                typed_value(&mut out, &f.val);
                out.push('\n');
            }
        }
        OutputFormat::Json => {
            out.push('[');
            for (n, f) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push('{');
                json_field(&mut out, f.pos, f.name, f.tags, f.ty, &f.val);
            }
            out.push_str("]\n");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// show servers state

fn find_backend(s: &Snapshot, b: &str) -> Option<u32> {
    let found = match parse_ref(b) {
        ObjRef::Id(id) => s.backends.iter().find(|be| i64::from(be.iid) == id),
        ObjRef::Name(name) => s.backends.iter().find(|be| be.name == name),
    };
    found.map(|be| be.iid)
}

/// HAProxy's check status codes (enum healthcheck_status), from the stats names.
pub(crate) fn check_status_code(status: &str) -> u32 {
    match status.trim_start_matches("* ") {
        "UNK" => 0,
        "INI" => 1,
        "HANA" => 4,
        "SOCKERR" => 5,
        "L4OK" => 6,
        "L4TOUT" => 7,
        "L4CON" => 8,
        "L6OK" => 9,
        "L6TOUT" => 10,
        "L6RSP" => 11,
        "L7TOUT" => 12,
        "L7RSP" => 13,
        "L7OK" => 15,
        "L7OKC" => 16,
        "L7STS" => 17,
        "PROCERR" => 18,
        "PROCTOUT" => 19,
        "PROCOK" => 20,
        _ => 0,
    }
}

/// CHK_RES_*: 0 unknown, 2 failed, 3 passed, 4 conditionally passed.
fn check_result(code: u32) -> u32 {
    match code {
        0..=3 => 0,
        6 | 9 | 15 | 20 => 3,
        16 => 4,
        _ => 2,
    }
}

fn split_addr(addr: &str) -> (&str, &str) {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((ip, port)) = rest.split_once("]:") {
            return (ip, port);
        }
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') => (ip, port),
        _ => (addr, "0"),
    }
}

fn servers_state_line(out: &mut String, sv: &ServerRow) {
    let starting = sv.throttle.is_some();
    let op = if op_running(sv.status) {
        if starting {
            1
        } else {
            2
        }
    } else {
        0
    };
    let admin = match sv.status {
        ServerStatus::Maint => 0x01,
        ServerStatus::Drain => 0x08,
        _ => 0,
    };
    let maint = sv.status == ServerStatus::Maint;
    let (chk_status, chk_health, chk_state) = match &sv.check {
        Some(c) => (
            check_status_code(&c.status),
            c.health,
            0x02 | 0x04 | if maint { 0x08 } else { 0 },
        ),
        None => (1, 0, if maint { 0x08 } else { 0 }),
    };
    let agent_state = if sv.agent.is_some() {
        0x10 | 0x02 | 0x04
    } else {
        0
    };
    let (ip, port) = split_addr(&sv.addr);
    let name = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace([' ', '\n', '\r', '\t'], "_")
        }
    };
    let _ = writeln!(
        out,
        "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} 0 0 - {} - 0 0 - - 0",
        sv.iid,
        name(&sv.backend),
        sv.sid,
        name(&sv.name),
        name(ip),
        op,
        admin,
        sv.uweight,
        sv.iweight,
        sv.lastchg.as_secs(),
        chk_status,
        check_result(if sv.check.is_some() { chk_status } else { 0 }),
        chk_health,
        chk_state,
        agent_state,
        atoi(port),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::Traffic;

    #[test]
    fn field_table_matches_the_enum_and_the_header() {
        // Every Fld variant names the field at its position (CamelCase of the name).
        let camel = |n: &str| -> String {
            n.split('_')
                .map(|p| {
                    let mut c = p.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect()
        };
        assert_eq!(format!("{:?}", Fld::Pxname), camel(FIELDS[0].name));
        assert_eq!(
            format!("{:?}", Fld::H1SplicedBytesOut),
            camel(FIELDS[N_FIELDS - 1].name)
        );
        assert_eq!(Fld::H1SplicedBytesOut as usize, N_FIELDS - 1);
        for (f, name) in [
            (Fld::Status, "status"),
            (Fld::Uweight, "uweight"),
            (Fld::SslSess, "ssl_sess"),
            (Fld::SrcIlim, "src_ilim"),
        ] {
            assert_eq!(FIELDS[f as usize].name, name);
        }
        let mut header = String::from("# ");
        for (i, f) in FIELDS.iter().enumerate() {
            if i == FIRST_MODULE_FIELD {
                header.push_str("-,");
            }
            header.push_str(f.name);
            header.push(',');
        }
        header.push('\n');
        assert_eq!(header, CSV_HEADER);
        for f in &FIELDS {
            for t in f.tags {
                assert!(t.is_empty() || t.len() == 3, "{}", f.name);
            }
        }
    }

    #[test]
    fn csv_quoting_and_clean_text() {
        let mut out = String::new();
        csv_field(&mut out, "a,b\"c");
        assert_eq!(out, "\"a,b\"\"c\"");
        assert_eq!(clean("a\nb\r\nc"), "a b  c");
        assert_eq!(json_escape("a\"b\\c\u{1}"), "a\\\"b\\\\c\\u0001");
    }

    #[test]
    fn atoi_is_cs() {
        for (s, n) in [
            ("12", 12),
            ("-1", -1),
            ("  +7x", 7),
            ("x", 0),
            ("", 0),
            ("99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(atoi(s), n, "{s:?}");
        }
    }

    #[test]
    fn uptime_and_status_texts() {
        assert_eq!(uptime_text(Duration::from_secs(33)), "0d 0h00m33s");
        assert_eq!(
            uptime_text(Duration::from_secs(2 * 86_400 + 3 * 3_600 + 4 * 60 + 5)),
            "2d 3h04m05s"
        );
        assert_eq!(
            server_status_text(ServerStatus::GoingDown { step: 2, of: 3 }),
            "UP 2/3"
        );
        assert_eq!(
            server_status_text(ServerStatus::GoingUp { step: 1, of: 2 }),
            "DOWN 1/2"
        );
        assert_eq!(server_status_text(ServerStatus::NoCheck), "no check");
        assert_eq!(split_addr("[::1]:80"), ("::1", "80"));
        assert_eq!(split_addr("10.0.0.1:8080"), ("10.0.0.1", "8080"));
        assert_eq!(split_addr("::1"), ("::1", "0"));
        assert_eq!(check_result(check_status_code("L7OKC")), 4);
        assert_eq!(check_result(check_status_code("* L4CON")), 2);
    }

    fn server(name: &str, status: ServerStatus) -> ServerRow {
        ServerRow {
            backend: "be".into(),
            name: name.into(),
            iid: 3,
            sid: 1,
            traffic: Traffic {
                stot: 4,
                ctime_sum_ms: 10,
                ttime_sum_ms: 300,
                scur: 1,
                ..Traffic::default()
            },
            slim: None,
            qlimit: None,
            status,
            weight: 1,
            uweight: 1,
            iweight: 1,
            backup: false,
            chkfail: 0,
            chkdown: 0,
            lastchg: Duration::from_secs(5),
            downtime: Duration::ZERO,
            check: None,
            agent: None,
            addr: "127.0.0.1:80".into(),
            throttle: None,
            lastsess: None,
        }
    }

    #[test]
    fn averages_and_order() {
        let sv = server("s1", ServerStatus::NoCheck);
        let v = server_vals(&sv);
        assert_eq!(v[Fld::Ctime as usize], Val::U(2));
        assert_eq!(v[Fld::Ttime as usize], Val::U(100));
        assert_eq!(v[Fld::Lastsess as usize], Val::I(-1));
        assert_eq!(v[Fld::Chkfail as usize], Val::Empty);
        // A backend alone, then a listen section with a higher id: ordered by id, each as
        // FRONTEND, servers, BACKEND.
        let be = |name: &str, iid| BackendRow {
            name: name.into(),
            iid,
            traffic: Traffic::default(),
            slim: None,
            up: true,
            weight: 1,
            act: 1,
            bck: 0,
            chkdown: 0,
            lastchg: Duration::ZERO,
            downtime: Duration::ZERO,
            description: None,
            algo: "roundrobin",
            uweight: 1,
            lastsess: None,
            mode: "tcp",
        };
        let fe = FrontendRow {
            name: "li".into(),
            iid: 4,
            traffic: Traffic::default(),
            slim: Some(10),
            rate_lim: None,
            enabled: true,
            description: None,
            mode: "tcp",
        };
        let mut s2 = server("s2", ServerStatus::Up);
        (s2.backend, s2.iid) = ("li".into(), 4);
        let snap = Snapshot {
            info: Info::default(),
            frontends: vec![fe],
            backends: vec![be("li", 4), be("be", 3)],
            servers: vec![sv, s2],
        };
        let order: Vec<String> = show_stat_csv(&snap)
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/"))
            .collect();
        assert_eq!(
            order,
            ["be/s1", "be/BACKEND", "li/FRONTEND", "li/s2", "li/BACKEND"]
        );
    }
}
