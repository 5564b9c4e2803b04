//! Evaluating `tcp-request` rules and `use_backend` conditions, with HAProxy's three-valued
//! logic: a condition passes, fails, or misses (it reads request bytes that have not come
//! yet and more may come: the rule then waits, within `tcp-request inspect-delay`).
//!
//! Fetches: the addresses and ports, `nbsrv`, `be_conn`, `connslots`, `fc_rcvd_proxy`, the
//! request bytes (`req.len`, `req.payload`, and the TLS ClientHello's `req.ssl_hello_type`,
//! `req.ssl_ver` and `req.ssl_sni`, see [`tls_hello`]) and the stick counters (`sc<n>_*`,
//! `src_*`). Matching: integers, addresses, strings (`str`, `beg`, `end`, `sub`, `dir`, `dom`,
//! `reg`, `len`, with `-i`), binary, `found` and booleans. Rules act in order: `accept` and
//! `reject` end the list, `track-sc<n>` starts tracking (once per slot) and goes on,
//! `silent-drop` ends the connection without a word to the client.
//!
//! [`tls_hello`]: super::tls_hello

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::tls_hello::{self, Fetched};
use crate::config::model::{
    Acl, AclRef, AclTerm, BackendId, BackendTarget, Condition, Conv, Fetch, GpcOp, MapFile,
    MatchMethod, Mode, Model, NamePart, Pattern, SampleExpr, TableRef, Target, TcpAction, TcpRule,
    UseBackend,
};
use crate::stick::{Counts, Tables, Tracker};

/// The state of the backends that `nbsrv`, `be_conn` and `connslots` read.
pub trait BackendState {
    /// Usable servers of a backend.
    fn nbsrv(&self, b: BackendId) -> u32;
    /// Established connections of a backend (all workers).
    fn be_conn(&self, b: BackendId) -> u32;
    /// Connection slots left (room under each usable server's maxconn plus room in its
    /// queue), or -1 when a usable server has no maxconn or no maxqueue, as HAProxy says.
    fn connslots(&self, b: BackendId) -> i64 {
        let _ = b;
        -1
    }
}

/// For callers without backends (the stats listener): both fetches read 0.
pub struct NoBackends;

impl BackendState for NoBackends {
    fn nbsrv(&self, _: BackendId) -> u32 {
        0
    }
    fn be_conn(&self, _: BackendId) -> u32 {
        0
    }
}

/// The request bytes received so far, and whether more may come.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    pub data: &'a [u8],
    /// No more bytes will be considered: inspection is over (or was never asked for).
    pub complete: bool,
}

impl Req<'_> {
    /// No inspection: nothing received, nothing to wait for.
    pub const NONE: Req<'static> = Req {
        data: &[],
        complete: true,
    };
}

/// What the fetches read.
#[derive(Clone, Copy)]
pub struct FetchCtx<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub backends: &'a dyn BackendState,
    /// A PROXY header was received (`fc_rcvd_proxy`).
    pub proxied: bool,
    /// The backend whose rules these are (`be_conn` and `connslots` without argument).
    pub backend: Option<BackendId>,
    pub req: Req<'a>,
    /// The stick counters this connection tracks (`sc0` to `sc2`).
    pub sc: &'a [Option<Tracker>],
    pub tables: Option<&'static Tables>,
    /// The table of the proxy whose rules these are (`src_*` without a table argument).
    pub table: Option<TableRef>,
    pub now: Instant,
}

impl<'a> FetchCtx<'a> {
    /// A context with the addresses only: no request data, no counters.
    pub fn layer4(src: SocketAddr, dst: SocketAddr, backends: &'a dyn BackendState) -> Self {
        FetchCtx {
            src,
            dst,
            backends,
            proxied: false,
            backend: None,
            req: Req::NONE,
            sc: &[],
            tables: None,
            table: None,
            now: Instant::now(),
        }
    }
}

/// HAProxy's ACL result, with its bit encoding: AND is `&`, OR is `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fail = 0,
    Miss = 1,
    Pass = 3,
}

impl Verdict {
    fn from_bits(b: u8) -> Verdict {
        match b {
            0 => Verdict::Fail,
            3 => Verdict::Pass,
            _ => Verdict::Miss,
        }
    }
    fn and(self, o: Verdict) -> Verdict {
        Verdict::from_bits(self as u8 & o as u8)
    }
    fn or(self, o: Verdict) -> Verdict {
        Verdict::from_bits(self as u8 | o as u8)
    }
    fn not(self) -> Verdict {
        match self {
            Verdict::Fail => Verdict::Pass,
            Verdict::Pass => Verdict::Fail,
            Verdict::Miss => Verdict::Miss,
        }
    }
}

/// Fetches this evaluator implements (all the model has, but `path`, which only a stats
/// listener reads).
pub fn supported_fetch(f: &Fetch) -> bool {
    !matches!(f, Fetch::Path)
}

/// Why a `tcp-request` rule cannot run in this build, if it cannot.
pub fn unsupported_rule(r: &TcpRule, acls: &[Acl]) -> Option<String> {
    let cond = r.cond.as_ref()?;
    cond_fetches(cond, acls)
        .into_iter()
        .find(|f| !supported_fetch(f))
        .map(|f| format!("a 'tcp-request' condition on {f:?}"))
}

/// What a list of rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An `accept` matched, or no `accept`/`reject` did.
    Accept,
    Reject,
    SilentDrop,
    /// A condition needs request bytes that may still come.
    Wait,
}

/// Runs `rules` in order, as HAProxy's tcp-request evaluation: the first matching
/// accept/reject/silent-drop decides; a matching `track-sc<n>` tracks the client address in
/// its table (unless slot n already tracks something) and goes on; a condition that misses
/// stops the run with [`Outcome::Wait`] (run again when more bytes came). `expect-proxy`
/// rules are judged by [`expects_proxy`] at accept.
pub fn run(
    rules: &[TcpRule],
    acls: &[Acl],
    base: &FetchCtx<'_>,
    sc: &mut [Option<Tracker>; 3],
) -> Outcome {
    for r in rules {
        if r.action == TcpAction::ExpectProxyLayer4 {
            continue;
        }
        if let Some(cond) = &r.cond {
            let ctx = FetchCtx { sc, ..*base };
            match verdict(cond, acls, &ctx) {
                Verdict::Miss => return Outcome::Wait,
                v => {
                    if (v == Verdict::Pass) == cond.unless {
                        continue;
                    }
                }
            }
        }
        match r.action {
            TcpAction::Accept => return Outcome::Accept,
            TcpAction::Reject => return Outcome::Reject,
            TcpAction::SilentDrop => return Outcome::SilentDrop,
            TcpAction::ExpectProxyLayer4 => {}
            TcpAction::IncGpc { idx, slot } => {
                if let Some(t) = &sc[usize::from(slot.min(2))] {
                    t.gpc(usize::from(idx), GpcOp::Inc, base.now);
                }
            }
            TcpAction::TrackSc { slot, table } => {
                let slot = &mut sc[usize::from(slot.min(2))];
                if slot.is_none() {
                    *slot = base
                        .tables
                        .and_then(|t| t.get(table))
                        .and_then(|t| t.track(base.src.ip(), base.now));
                }
            }
        }
    }
    Outcome::Accept
}

/// Whether a matching `expect-proxy layer4` rule comes before the first matching accept
/// or reject: then the connection must start with a PROXY header.
pub fn expects_proxy(rules: &[TcpRule], acls: &[Acl], ctx: &FetchCtx<'_>) -> bool {
    for r in rules {
        if r.cond.as_ref().map_or(true, |c| eval(c, acls, ctx)) {
            match r.action {
                TcpAction::ExpectProxyLayer4 => return true,
                TcpAction::Accept | TcpAction::Reject | TcpAction::SilentDrop => return false,
                TcpAction::TrackSc { .. } | TcpAction::IncGpc { .. } => {}
            }
        }
    }
    false
}

/// Whether any of these rules reads the destination address.
pub fn rules_need_dst(rules: &[TcpRule], acls: &[Acl]) -> bool {
    rules
        .iter()
        .filter_map(|r| r.cond.as_ref())
        .any(|c| cond_needs_dst(c, acls))
}

/// Whether a condition reads the destination address.
pub fn cond_needs_dst(cond: &Condition, acls: &[Acl]) -> bool {
    cond_fetches(cond, acls).iter().any(|f| f.reads_dst())
}

/// Whether a `use_backend` rule (its condition or its log-format name) reads the
/// destination address.
pub fn use_backend_needs_dst(u: &UseBackend, acls: &[Acl]) -> bool {
    use_backend_fetches(u, acls).iter().any(|f| f.reads_dst())
}

/// Every fetch a `use_backend` rule uses: its condition's and its name's.
pub fn use_backend_fetches<'a>(u: &'a UseBackend, acls: &'a [Acl]) -> Vec<&'a Fetch> {
    let mut out = u
        .cond
        .as_ref()
        .map(|c| cond_fetches(c, acls))
        .unwrap_or_default();
    if let Target::Dynamic(parts) = &u.target {
        out.extend(parts.iter().filter_map(|p| match p {
            NamePart::Sample(e) => Some(&e.fetch),
            NamePart::Text(_) => None,
        }));
    }
    out
}

/// Every fetch a condition uses (named ACLs resolved through `acls`).
pub fn cond_fetches<'a>(cond: &'a Condition, acls: &'a [Acl]) -> Vec<&'a Fetch> {
    crate::config::acl::cond_fetch_names(cond, acls)
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

/// A condition as a yes or no, misses counting as no, as HAProxy judges `use_backend`
/// (with the request data final).
pub fn eval(cond: &Condition, acls: &[Acl], ctx: &FetchCtx<'_>) -> bool {
    (verdict(cond, acls, ctx) == Verdict::Pass) != cond.unless
}

/// A condition's verdict before `if`/`unless` is applied: OR of ANDs of (negated) ACLs,
/// each ACL the OR of its terms.
pub fn verdict(cond: &Condition, acls: &[Acl], ctx: &FetchCtx<'_>) -> Verdict {
    let mut any = Verdict::Fail;
    for all in &cond.any_of {
        let mut suite = Verdict::Pass;
        for t in all {
            let v = match &t.acl {
                AclRef::Inline(term) => term_verdict(term, ctx),
                AclRef::Named(i) => acls[*i]
                    .terms
                    .iter()
                    .fold(Verdict::Fail, |v, term| v.or(term_verdict(term, ctx))),
            };
            suite = suite.and(if t.negate { v.not() } else { v });
            if suite == Verdict::Fail {
                break;
            }
        }
        any = any.or(suite);
        if any == Verdict::Pass {
            break;
        }
    }
    any
}

enum Sample<'a> {
    Ip(IpAddr),
    Int(i64),
    Bool(bool),
    Str(Cow<'a, str>),
    Bin(&'a [u8]),
}

impl<'a> Sample<'a> {
    /// The value cast to a string, as HAProxy casts for string converters and log-format.
    fn text(self) -> Cow<'a, str> {
        match self {
            Sample::Str(s) => s,
            Sample::Ip(ip) => Cow::Owned(ip.to_string()),
            Sample::Int(n) => Cow::Owned(n.to_string()),
            Sample::Bool(b) => Cow::Borrowed(if b { "1" } else { "0" }),
            Sample::Bin(b) => String::from_utf8_lossy(b),
        }
    }

    /// The value cast to an address (a string is parsed).
    fn ip(&self) -> Option<IpAddr> {
        match self {
            Sample::Ip(ip) => Some(*ip),
            Sample::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value cast to an integer (a string is parsed).
    fn int(&self) -> Option<i64> {
        match self {
            Sample::Int(n) => Some(*n),
            Sample::Bool(b) => Some(i64::from(*b)),
            Sample::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Applies one converter; None when the value cannot be converted (the sample is then
/// absent, as in HAProxy).
fn convert<'a>(sample: Sample<'a>, conv: &Conv) -> Option<Sample<'a>> {
    match conv {
        Conv::Lower => Some(Sample::Str(Cow::Owned(sample.text().to_ascii_lowercase()))),
        Conv::Upper => Some(Sample::Str(Cow::Owned(sample.text().to_ascii_uppercase()))),
        Conv::Ipmask { v4, v6 } => Some(Sample::Ip(match sample.ip()? {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*v4)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*v6)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        })),
        Conv::Map { map, default } => map_lookup(map, sample)
            .or(default.as_deref())
            .map(|v| Sample::Str(Cow::Owned(v.to_string()))),
    }
}

/// The value of the entry of `map` that `key` matches: the first in file order, the longest
/// network for `map_ip`, the exact key for `map_str`.
fn map_lookup<'m>(map: &'m MapFile, key: Sample<'_>) -> Option<&'m str> {
    let value = |i: usize| map.entries.get(i).map(|(_, v)| v.as_str());
    match map.method {
        MatchMethod::Str => map.exact.get(key.text().as_ref()).and_then(|&i| value(i)),
        MatchMethod::Ip => {
            let ip = key.ip()?;
            map.entries
                .iter()
                .filter(|(p, _)| net_contains(p, ip))
                .max_by_key(|(p, _)| match p {
                    Pattern::Net { prefix, .. } => *prefix,
                    _ => 0,
                })
                .map(|(_, v)| v.as_str())
        }
        MatchMethod::Int => {
            let n = key.int()?;
            map.entries
                .iter()
                .find(|(p, _)| matches!(p, Pattern::Int(lo, hi) if (*lo..=*hi).contains(&n)))
                .map(|(_, v)| v.as_str())
        }
        method => {
            let text = key.text();
            map.entries
                .iter()
                .find(|(p, _)| str_match(method, false, p, text.as_bytes()))
                .map(|(_, v)| v.as_str())
        }
    }
}

/// A fetch's value with its converters applied.
fn fetch_expr<'a>(f: &Fetch, convs: &[Conv], ctx: &FetchCtx<'a>) -> Got<'a> {
    let mut got = fetch(f, ctx);
    for c in convs {
        got.sample = got.sample.and_then(|s| convert(s, c));
    }
    got
}

/// What a `use_backend`/`use-server` target names for this connection: its id, or for a
/// log-format name the one `find` gives for the string it evaluates to.
pub fn resolve<Id: Copy>(
    t: &Target<Id>,
    ctx: &FetchCtx<'_>,
    find: impl FnOnce(&str) -> Option<Id>,
) -> Option<Id> {
    match t {
        Target::Named(id) => Some(*id),
        Target::Dynamic(parts) => find(&format_name(parts, ctx)),
    }
}

/// The backend a `use_backend` rule names: its backend, or for a log-format name the tcp
/// backend whose name the string evaluates to (None: no such usable backend).
pub fn target(t: &BackendTarget, model: &Model, ctx: &FetchCtx<'_>) -> Option<BackendId> {
    resolve(t, ctx, |name| {
        model
            .backend_by_name(name)
            .filter(|b| b.enabled && b.mode == Mode::Tcp)
            .map(|b| b.id)
    })
}

/// Evaluates a log-format name; an absent sample reads `-`, as in HAProxy's log-format.
pub fn format_name(parts: &[NamePart], ctx: &FetchCtx<'_>) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            NamePart::Text(t) => out.push_str(t),
            NamePart::Sample(SampleExpr { fetch, convs }) => {
                match fetch_expr(fetch, convs, ctx).sample {
                    Some(s) => out.push_str(&s.text()),
                    None => out.push('-'),
                }
            }
        }
    }
    out
}

/// A fetch's value, or None with whether more bytes could bring it.
struct Got<'a> {
    sample: Option<Sample<'a>>,
    /// HAProxy's SMP_F_MAY_CHANGE: a later look may differ.
    may_change: bool,
}

impl<'a> Got<'a> {
    fn value(s: Sample<'a>) -> Got<'a> {
        Got {
            sample: Some(s),
            may_change: false,
        }
    }
    fn none() -> Got<'a> {
        Got {
            sample: None,
            may_change: false,
        }
    }
    fn tls<T>(f: Fetched<T>, wrap: impl FnOnce(T) -> Sample<'a>) -> Got<'a> {
        match f {
            Fetched::Value(v) => Got::value(wrap(v)),
            Fetched::Absent => Got::none(),
            Fetched::NeedMore => Got {
                sample: None,
                may_change: true,
            },
        }
    }
}

fn fetch<'a>(f: &Fetch, ctx: &FetchCtx<'a>) -> Got<'a> {
    let req = ctx.req;
    let this = |b: Option<BackendId>| b.or(ctx.backend);
    match f {
        Fetch::Src => Got::value(Sample::Ip(ctx.src.ip())),
        Fetch::Dst => Got::value(Sample::Ip(ctx.dst.ip())),
        Fetch::SrcPort => Got::value(Sample::Int(i64::from(ctx.src.port()))),
        Fetch::DstPort => Got::value(Sample::Int(i64::from(ctx.dst.port()))),
        Fetch::Nbsrv(b) => Got::value(Sample::Int(i64::from(ctx.backends.nbsrv(*b)))),
        Fetch::BeConn(b) => match this(*b) {
            Some(b) => Got::value(Sample::Int(i64::from(ctx.backends.be_conn(b)))),
            None => Got::none(),
        },
        Fetch::Connslots(b) => match this(*b) {
            Some(b) => Got::value(Sample::Int(ctx.backends.connslots(b))),
            None => Got::none(),
        },
        Fetch::Always(v) => Got::value(Sample::Bool(*v)),
        Fetch::FcRcvdProxy => Got::value(Sample::Bool(ctx.proxied)),
        Fetch::ReqLen => Got {
            sample: Some(Sample::Int(req.data.len() as i64)),
            may_change: !req.complete,
        },
        Fetch::ReqPayload { offset, len } => {
            let (start, len) = (*offset as usize, *len as usize);
            // A length of 0 means "to the end of the data", as in HAProxy.
            let end = if len == 0 {
                req.data.len()
            } else {
                start.saturating_add(len)
            };
            match req.data.get(start..end) {
                Some(b) => Got::value(Sample::Bin(b)),
                None => Got {
                    sample: None,
                    may_change: !req.complete,
                },
            }
        }
        Fetch::ReqSslHelloType => {
            Got::tls(tls_hello::hello_type(req.data, req.complete), Sample::Int)
        }
        Fetch::ReqSslVer => Got::tls(tls_hello::ssl_ver(req.data, req.complete), Sample::Int),
        Fetch::ReqSslSni => Got::tls(tls_hello::sni(req.data, req.complete), |s| {
            Sample::Str(Cow::Borrowed(s))
        }),
        Fetch::ScConnCur(n, t) => sc_count(ctx, *n, *t, |c| c.conn_cur.map(i64::from)),
        Fetch::ScConnRate(n, t) => sc_count(ctx, *n, *t, |c| c.conn_rate.map(i64::from)),
        Fetch::SrcConnCur(t) => src_count(ctx, *t, |c| c.conn_cur.map(i64::from)),
        Fetch::SrcConnRate(t) => src_count(ctx, *t, |c| c.conn_rate.map(i64::from)),
        Fetch::ScGpc {
            slot,
            idx,
            op,
            table,
        } => {
            let idx = usize::from(*idx);
            let v = match table {
                Some(t) => ctx
                    .tables
                    .and_then(|ts| ts.get(*t))
                    .and_then(|t| t.gpc(ctx.src.ip(), idx, *op, false, ctx.now)),
                None => ctx
                    .sc
                    .get(usize::from(*slot))
                    .and_then(Option::as_ref)
                    .and_then(|tr| tr.gpc(idx, *op, ctx.now)),
            };
            v.map_or_else(Got::none, |v| Got::value(Sample::Int(i64::from(v))))
        }
        Fetch::SrcGpc { idx, op, table } => {
            let idx = usize::from(*idx);
            let Some(t) = table
                .or(ctx.table)
                .and_then(|t| ctx.tables.and_then(|ts| ts.get(t)))
            else {
                return Got::none();
            };
            match t.gpc(ctx.src.ip(), idx, *op, true, ctx.now) {
                Some(v) => Got::value(Sample::Int(i64::from(v))),
                // An address not in the table reads 0, as for the other src_* fetches.
                None if matches!(op, GpcOp::Get | GpcOp::Rate)
                    && t.lookup(ctx.src.ip(), ctx.now).is_none() =>
                {
                    Got::value(Sample::Int(0))
                }
                None => Got::none(),
            }
        }
        Fetch::Path => Got::none(),
    }
}

/// `sc<n>_*`: from what slot n tracks (its own table, or `table` if named and different:
/// then the client address is looked up there, as HAProxy does).
fn sc_count<'a>(
    ctx: &FetchCtx<'a>,
    n: u8,
    table: Option<TableRef>,
    read: impl Fn(&Counts) -> Option<i64>,
) -> Got<'a> {
    let counts = match table {
        Some(t) => ctx
            .tables
            .and_then(|ts| ts.get(t))
            .and_then(|t| t.lookup(ctx.src.ip(), ctx.now)),
        None => ctx
            .sc
            .get(usize::from(n))
            .and_then(Option::as_ref)
            .map(|tr| tr.counts(ctx.now)),
    };
    match counts.as_ref().and_then(read) {
        Some(v) => Got::value(Sample::Int(v)),
        None => Got::none(),
    }
}

/// `src_*([table])`: the client address looked up in the table (the proxy's own if none is
/// named). An address not in the table counts 0.
fn src_count<'a>(
    ctx: &FetchCtx<'a>,
    table: Option<TableRef>,
    read: impl Fn(&Counts) -> Option<i64>,
) -> Got<'a> {
    let Some(t) = table
        .or(ctx.table)
        .and_then(|t| ctx.tables.and_then(|ts| ts.get(t)))
    else {
        return Got::none();
    };
    match t.lookup(ctx.src.ip(), ctx.now) {
        Some(c) => read(&c).map_or_else(Got::none, |v| Got::value(Sample::Int(v))),
        None => Got::value(Sample::Int(0)),
    }
}

fn term_verdict(t: &AclTerm, ctx: &FetchCtx<'_>) -> Verdict {
    let got = fetch_expr(&t.fetch, &t.convs, ctx);
    let miss = got.may_change && !ctx.req.complete;
    let Some(sample) = got.sample else {
        return if miss { Verdict::Miss } else { Verdict::Fail };
    };
    if matches(t, &sample) {
        Verdict::Pass
    } else if miss {
        Verdict::Miss
    } else {
        Verdict::Fail
    }
}

fn matches(t: &AclTerm, sample: &Sample<'_>) -> bool {
    match (t.method, sample) {
        (MatchMethod::Found, _) => true,
        (MatchMethod::Bool, Sample::Bool(b)) => *b,
        (MatchMethod::Bool, Sample::Int(n)) => *n != 0,
        (_, Sample::Bool(b)) => *b,
        (_, Sample::Ip(ip)) => t.patterns.iter().any(|p| net_contains(p, *ip)),
        (MatchMethod::Len, Sample::Str(s)) => int_in(t, s.len() as i64),
        (MatchMethod::Len, Sample::Bin(b)) => int_in(t, b.len() as i64),
        (_, Sample::Int(n)) => int_in(t, *n),
        (_, Sample::Str(s)) => t.patterns.iter().any(|p| str_matches(t, p, s.as_bytes())),
        (_, Sample::Bin(b)) => t.patterns.iter().any(|p| str_matches(t, p, b)),
    }
}

fn int_in(t: &AclTerm, n: i64) -> bool {
    t.patterns
        .iter()
        .any(|p| matches!(p, Pattern::Int(lo, hi) if (*lo..=*hi).contains(&n)))
}

/// String and binary matching, by the term's method, with `-i` folding ASCII case.
fn str_matches(t: &AclTerm, p: &Pattern, s: &[u8]) -> bool {
    str_match(t.method, t.ignore_case, p, s)
}

/// String and binary matching by `method`, `ignore_case` folding ASCII case.
fn str_match(method: MatchMethod, ignore_case: bool, p: &Pattern, s: &[u8]) -> bool {
    let eq = |a: &[u8], b: &[u8]| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let pat: &[u8] = match p {
        Pattern::Str(p) => p.as_bytes(),
        Pattern::Bin(b) => b,
        Pattern::Regex(r) => {
            return std::str::from_utf8(s).is_ok_and(|s| regex_matches(r, ignore_case, s));
        }
        _ => return false,
    };
    match method {
        MatchMethod::Beg => s.len() >= pat.len() && eq(&s[..pat.len()], pat),
        MatchMethod::End => s.len() >= pat.len() && eq(&s[s.len() - pat.len()..], pat),
        MatchMethod::Sub => pat.is_empty() || s.windows(pat.len()).any(|w| eq(w, pat)),
        // `dir`: slash-delimited parts; `dom`: dot-delimited parts (HAProxy's rules).
        MatchMethod::Dir => delimited(s, pat, b'/', &eq),
        MatchMethod::Dom => delimited(s, pat, b'.', &eq),
        _ => eq(s, pat),
    }
}

/// `pat` occurs in `s` with `sep` (or an end) on both sides.
fn delimited(s: &[u8], pat: &[u8], sep: u8, eq: &dyn Fn(&[u8], &[u8]) -> bool) -> bool {
    if pat.is_empty() || s.len() < pat.len() {
        return false;
    }
    (0..=s.len() - pat.len()).any(|i| {
        let before = i == 0 || s[i - 1] == sep;
        let after = i + pat.len() == s.len() || s[i + pat.len()] == sep;
        before && after && eq(&s[i..i + pat.len()], pat)
    })
}

type RegexCache = [HashMap<String, Option<regex::Regex>>; 2];

thread_local! {
    /// Compiled `-m reg` patterns, per thread, without and with `-i` (patterns were
    /// checked at load).
    static REGEXES: RefCell<RegexCache> = RefCell::new(Default::default());
}

fn regex_matches(pattern: &str, ignore_case: bool, s: &str) -> bool {
    REGEXES.with(|cache| {
        let map = &mut cache.borrow_mut()[usize::from(ignore_case)];
        if !map.contains_key(pattern) {
            let re = regex::RegexBuilder::new(pattern)
                .case_insensitive(ignore_case)
                .build()
                .ok();
            map.insert(pattern.to_string(), re);
        }
        map.get(pattern)
            .and_then(Option::as_ref)
            .is_some_and(|re| re.is_match(s))
    })
}

/// An address in a network; IPv4-mapped IPv6 addresses match IPv4 networks.
fn net_contains(p: &Pattern, ip: IpAddr) -> bool {
    let Pattern::Net { addr, prefix } = p else {
        return false;
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
            u32::from(*n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
            u128::from(*n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CondTerm;
    use crate::config::Span;
    use std::sync::Arc;

    fn term(fetch: Fetch, method: MatchMethod, patterns: Vec<Pattern>) -> AclTerm {
        AclTerm {
            span: Span::new(&Arc::from("t"), 1),
            fetch,
            convs: Vec::new(),
            fetch_name: String::new(),
            method,
            ignore_case: false,
            patterns,
        }
    }

    fn ctx_eval(cond: &Condition, src: &str) -> bool {
        struct Fixed;
        impl BackendState for Fixed {
            fn nbsrv(&self, _: BackendId) -> u32 {
                2
            }
            fn be_conn(&self, _: BackendId) -> u32 {
                7
            }
        }
        let ctx = FetchCtx::layer4(
            src.parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
            &Fixed,
        );
        eval(cond, &[], &ctx)
    }

    fn cond(unless: bool, terms: Vec<(bool, AclTerm)>) -> Condition {
        Condition {
            unless,
            any_of: vec![terms
                .into_iter()
                .map(|(negate, t)| CondTerm {
                    negate,
                    acl: AclRef::Inline(Box::new(t)),
                })
                .collect()],
        }
    }

    #[test]
    fn networks_ports_and_negation() {
        let lan = term(
            Fetch::Src,
            MatchMethod::Ip,
            vec![Pattern::Net {
                addr: "192.168.0.0".parse().unwrap(),
                prefix: 16,
            }],
        );
        let https = term(
            Fetch::DstPort,
            MatchMethod::Int,
            vec![Pattern::Int(443, 443)],
        );
        let c = cond(false, vec![(false, lan.clone()), (false, https)]);
        assert!(ctx_eval(&c, "192.168.3.4:5000"));
        assert!(ctx_eval(&c, "[::ffff:192.168.3.4]:5000"));
        assert!(!ctx_eval(&c, "10.1.1.1:5000"));
        let c = cond(true, vec![(false, lan.clone())]);
        assert!(ctx_eval(&c, "10.1.1.1:5000"));
        let c = cond(false, vec![(true, lan)]);
        assert!(!ctx_eval(&c, "192.168.3.4:5000"));
    }

    #[test]
    fn backend_state_fetches() {
        let c = cond(
            false,
            vec![(
                false,
                term(
                    Fetch::Nbsrv(BackendId(0)),
                    MatchMethod::Int,
                    vec![Pattern::Int(i64::MIN, 0)],
                ),
            )],
        );
        assert!(!ctx_eval(&c, "1.1.1.1:1"));
        let c = cond(
            false,
            vec![(
                false,
                term(
                    Fetch::BeConn(Some(BackendId(0))),
                    MatchMethod::Int,
                    vec![Pattern::Int(5, i64::MAX)],
                ),
            )],
        );
        assert!(ctx_eval(&c, "1.1.1.1:1"));
    }

    #[test]
    fn v6_networks() {
        let t = term(
            Fetch::Src,
            MatchMethod::Ip,
            vec![Pattern::Net {
                addr: "2001:db8::".parse().unwrap(),
                prefix: 32,
            }],
        );
        let c = cond(false, vec![(false, t)]);
        assert!(ctx_eval(&c, "[2001:db8::5]:1"));
        assert!(!ctx_eval(&c, "[2001:db9::5]:1"));
        assert!(!ctx_eval(&c, "1.2.3.4:1"));
    }

    fn verdict_on(cond: &Condition, data: &[u8], complete: bool) -> Verdict {
        let mut ctx = FetchCtx::layer4(
            "1.1.1.1:1".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
            &NoBackends,
        );
        ctx.req = Req { data, complete };
        verdict(cond, &[], &ctx)
    }

    fn str_term(fetch: Fetch, method: MatchMethod, ignore_case: bool, pats: &[&str]) -> AclTerm {
        AclTerm {
            ignore_case,
            ..term(
                fetch,
                method,
                pats.iter().map(|p| Pattern::Str(p.to_string())).collect(),
            )
        }
    }

    #[test]
    fn request_length_waits_until_enough_or_final() {
        let len3 = term(
            Fetch::ReqLen,
            MatchMethod::Int,
            vec![Pattern::Int(3, i64::MAX)],
        );
        let c = cond(false, vec![(false, len3.clone())]);
        assert_eq!(verdict_on(&c, b"ab", false), Verdict::Miss);
        assert_eq!(verdict_on(&c, b"abc", false), Verdict::Pass);
        assert_eq!(verdict_on(&c, b"ab", true), Verdict::Fail);
        // A miss stays a miss under negation, and an AND with a failure fails.
        let neg = cond(false, vec![(true, len3.clone())]);
        assert_eq!(verdict_on(&neg, b"ab", false), Verdict::Miss);
        let and_fail = cond(
            false,
            vec![
                (false, len3),
                (false, term(Fetch::Always(false), MatchMethod::Bool, vec![])),
            ],
        );
        assert_eq!(verdict_on(&and_fail, b"ab", false), Verdict::Fail);
    }

    #[test]
    fn payload_bytes_match_binary_patterns() {
        let ssh = term(
            Fetch::ReqPayload { offset: 0, len: 3 },
            MatchMethod::Bin,
            vec![Pattern::Bin(b"SSH".to_vec())],
        );
        let c = cond(false, vec![(false, ssh)]);
        assert_eq!(verdict_on(&c, b"SS", false), Verdict::Miss);
        assert_eq!(verdict_on(&c, b"SSH-2.0-x", false), Verdict::Pass);
        assert_eq!(verdict_on(&c, b"GET / HTTP/1.1", false), Verdict::Fail);
        assert_eq!(verdict_on(&c, b"SS", true), Verdict::Fail);
    }

    fn map(method: MatchMethod, entries: &[(Pattern, &str)]) -> Conv {
        let exact = entries
            .iter()
            .enumerate()
            .filter_map(|(i, (p, _))| match p {
                Pattern::Str(k) => Some((k.clone(), i)),
                _ => None,
            })
            .rev()
            .collect();
        Conv::Map {
            map: Arc::new(MapFile {
                path: "m".into(),
                method,
                entries: entries
                    .iter()
                    .map(|(p, v)| (p.clone(), v.to_string()))
                    .collect(),
                exact,
            }),
            default: None,
        }
    }

    fn text(s: Option<Sample<'_>>) -> Option<String> {
        s.map(|s| s.text().into_owned())
    }

    #[test]
    fn converters_follow_haproxy() {
        let str = |v: &'static str| Sample::Str(Cow::Borrowed(v));
        assert_eq!(
            text(convert(str("Api.Example.COM"), &Conv::Lower)),
            Some("api.example.com".into())
        );
        assert_eq!(
            text(convert(str("ab-1"), &Conv::Upper)),
            Some("AB-1".into())
        );
        // String converters cast addresses and integers to text first.
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            text(convert(Sample::Ip(ip), &Conv::Upper)),
            Some("10.1.2.3".into())
        );
        let mask = Conv::Ipmask { v4: 24, v6: 64 };
        assert_eq!(
            text(convert(Sample::Ip(ip), &mask)),
            Some("10.1.2.0".into())
        );
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            text(convert(Sample::Ip(v6), &mask)),
            Some("2001:db8:1:2::".into())
        );
        assert_eq!(
            text(convert(str("10.9.9.9"), &mask)),
            Some("10.9.9.0".into())
        );
        assert!(convert(str("not an address"), &mask).is_none());

        let s = |k: &str| Pattern::Str(k.into());
        let exact = map(
            MatchMethod::Str,
            &[(s("a"), "first"), (s("b"), "b"), (s("a"), "dup")],
        );
        assert_eq!(text(convert(str("a"), &exact)), Some("first".into()));
        assert_eq!(
            text(convert(str("A"), &exact)),
            None,
            "map_str is case-sensitive"
        );
        // Ordered methods: the first matching entry in file order.
        let beg = map(MatchMethod::Beg, &[(s("ab"), "1"), (s("abc"), "2")]);
        assert_eq!(text(convert(str("abcd"), &beg)), Some("1".into()));
        let end = map(MatchMethod::End, &[(s(".org"), "org"), (s(".com"), "com")]);
        assert_eq!(
            text(convert(str("x.example.com"), &end)),
            Some("com".into())
        );
        let dom = map(MatchMethod::Dom, &[(s("example"), "dom")]);
        assert_eq!(
            text(convert(str("www.example.com"), &dom)),
            Some("dom".into())
        );
        assert_eq!(text(convert(str("www.examples.com"), &dom)), None);
        let reg = map(
            MatchMethod::Reg,
            &[(Pattern::Regex("^db[0-9]+$".into()), "db")],
        );
        assert_eq!(text(convert(str("db12"), &reg)), Some("db".into()));
        let int = map(MatchMethod::Int, &[(Pattern::Int(1000, 1999), "k")]);
        assert_eq!(text(convert(Sample::Int(1500), &int)), Some("k".into()));
        assert_eq!(text(convert(str("1999"), &int)), Some("k".into()));
        // map_ip: the longest network, whatever the order.
        let net = |a: &str, prefix| Pattern::Net {
            addr: a.parse().unwrap(),
            prefix,
        };
        let ipmap = map(
            MatchMethod::Ip,
            &[
                (net("10.0.0.0", 8), "wide"),
                (net("10.1.0.0", 16), "narrow"),
            ],
        );
        assert_eq!(text(convert(Sample::Ip(ip), &ipmap)), Some("narrow".into()));
        assert_eq!(
            text(convert(Sample::Ip("10.2.0.1".parse().unwrap()), &ipmap)),
            Some("wide".into())
        );
        // No entry: the default if there is one, else no value.
        let Conv::Map { map: m, .. } = &exact else {
            unreachable!()
        };
        let with_default = Conv::Map {
            map: Arc::clone(m),
            default: Some("dflt".into()),
        };
        assert_eq!(
            text(convert(str("zzz"), &with_default)),
            Some("dflt".into())
        );
        assert_eq!(text(convert(str("zzz"), &exact)), None);
    }

    #[test]
    fn log_format_names_read_dash_for_a_missing_sample() {
        let ctx = FetchCtx::layer4(
            "192.0.2.7:1234".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
            &NoBackends,
        );
        let parts = [
            NamePart::Text("be_".into()),
            NamePart::Sample(SampleExpr {
                fetch: Fetch::Src,
                convs: vec![Conv::Ipmask { v4: 24, v6: 64 }],
            }),
            NamePart::Text("_".into()),
            NamePart::Sample(SampleExpr {
                fetch: Fetch::ReqSslSni,
                convs: vec![Conv::Lower],
            }),
        ];
        assert_eq!(format_name(&parts, &ctx), "be_192.0.2.0_-");
    }

    #[test]
    fn string_methods_follow_haproxy() {
        let s = |m, i, pats: &[&str], v: &str| {
            let t = str_term(Fetch::Always(true), m, i, pats);
            matches(&t, &Sample::Str(v.into()))
        };
        assert!(s(
            MatchMethod::Str,
            true,
            &["API.example.com"],
            "api.example.com"
        ));
        assert!(!s(
            MatchMethod::Str,
            false,
            &["API.example.com"],
            "api.example.com"
        ));
        assert!(s(MatchMethod::Beg, false, &["staff."], "staff.example.com"));
        assert!(s(
            MatchMethod::End,
            true,
            &[".GIT.example.com"],
            "a.git.example.com"
        ));
        assert!(!s(
            MatchMethod::End,
            false,
            &[".git.example.com"],
            "git.example.com"
        ));
        assert!(s(MatchMethod::Sub, false, &["mple"], "example.com"));
        assert!(s(MatchMethod::Dom, false, &["example"], "www.example.com"));
        assert!(s(
            MatchMethod::Dom,
            false,
            &["example.com"],
            "www.example.com"
        ));
        assert!(!s(MatchMethod::Dom, false, &["ample"], "www.example.com"));
        assert!(s(MatchMethod::Dir, false, &["img"], "/static/img/a.png"));
        assert!(!s(MatchMethod::Dir, false, &["im"], "/static/img/a.png"));
        let re = |i, pat: &str, v: &str| {
            let t = AclTerm {
                ignore_case: i,
                ..term(
                    Fetch::Always(true),
                    MatchMethod::Reg,
                    vec![Pattern::Regex(pat.into())],
                )
            };
            matches(&t, &Sample::Str(v.into()))
        };
        assert!(re(true, r"^(scan|probe)[0-9]*\.", "PROBE7.example.com"));
        assert!(!re(false, r"^(scan|probe)[0-9]*\.", "PROBE7.example.com"));
        let len = term(
            Fetch::Always(true),
            MatchMethod::Len,
            vec![Pattern::Int(0, 3)],
        );
        assert!(matches(&len, &Sample::Str("abc".into())));
        assert!(!matches(&len, &Sample::Str("abcd".into())));
    }
}
