//! Keywords of `defaults`, `frontend`, `backend` and `listen` (configuration.txt §4), and the
//! [`ProxyDraft`] they fill. A draft is cloned from its defaults section and then each line
//! of the proxy is applied in order, which is exactly HAProxy's inheritance. Conditions, ACLs
//! and rules are kept as words here: `validate.rs` compiles them once every name is known.

use std::time::Duration;

use super::bind::parse_bind;
use super::global::parse_log_target;
use super::server::{parse_server_options, ServerDraft};
use super::values::{
    parse_alpn, parse_hex, parse_size, parse_sni, parse_time_unit, parse_u32_in, split_call, Args,
};
use super::{scope::*, KeywordSpec, Parsed, Support, SINCE};
use crate::config::error::Span;
use crate::config::lexer::Word;
use crate::config::model::{
    Balance, Bind, CheckConnect, CheckKind, ExpectPattern, HashFunction, HashKey, HashMethod,
    HashType, HttpExpect, HttpExpectKind, LogTarget, Mode, ShowNode, SockOpts, SpliceOpts,
    StatsUser, StickTable, StoreItem, TableType, TcpCheckRule,
};

/// A `stick` line: what it does, and its words after the keyword (`<pattern> [table <t>]
/// [if|unless <cond>]`, the pattern checked), resolved by validation.
#[derive(Debug, Clone)]
pub struct StickLine {
    pub keyword: &'static str,
    pub matches: bool,
    pub stores: bool,
    pub line: RawLine,
}

/// A directive kept as words until validation (ACLs, rules, conditions).
#[derive(Debug, Clone)]
pub struct RawLine {
    pub span: Span,
    pub words: Vec<Word>,
}

#[derive(Debug, Clone)]
pub enum LogSpec {
    Global(Span),
    Target(LogTarget),
}

#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
    pub queue: Option<Duration>,
    pub check: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub tcplog: bool,
    /// `option httplog` seen here: falls back to tcplog with a warning in tcp mode.
    pub httplog: Option<Span>,
    pub dontlognull: bool,
    pub log_health_checks: bool,
    pub allbackups: bool,
    pub abortonclose: bool,
    pub splice: SpliceOpts,
    pub client: SockOpts,
    pub server: SockOpts,
}

#[derive(Debug, Clone, Default)]
pub struct StatsDraft {
    pub enable: bool,
    pub uri: Option<String>,
    pub refresh: Option<Duration>,
    pub admin: Option<RawLine>,
    pub prometheus: Option<RawLine>,
    /// `stats auth` accounts in order; a repeated user keeps its first password.
    pub users: Vec<StatsUser>,
    pub realm: Option<String>,
    pub hide_version: bool,
    pub show_legends: bool,
    pub show_node: Option<ShowNode>,
    pub show_desc: Option<String>,
    /// Copied from a defaults section: the proxy's first `stats` line starts over (HAProxy
    /// detaches a proxy from the defaults' stats settings as soon as it writes its own).
    pub inherited: bool,
    /// First line of any `stats`/`http-request` keyword, for error messages.
    pub span: Option<Span>,
}

/// Everything a proxy section says, before names are resolved.
#[derive(Debug, Clone)]
pub struct ProxyDraft {
    pub mode: Mode,
    pub mode_span: Option<Span>,
    pub enabled: bool,
    pub description: Option<String>,
    pub uid: Option<(u32, Span)>,
    pub binds: Vec<Bind>,
    /// A `bind` line was written, even if it failed to parse (avoids a cascade of errors).
    pub bind_seen: bool,
    pub maxconn: Option<u32>,
    pub backlog: Option<u32>,
    pub rate_limit_sessions: Option<u32>,
    pub fullconn: Option<u32>,
    pub retries: u32,
    pub redispatch: Option<i32>,
    pub balance: Balance,
    pub balance_span: Option<Span>,
    pub hash_type: HashType,
    pub hash_balance_factor: u32,
    pub timeouts: Timeouts,
    pub options: Options,
    pub check: CheckKind,
    /// tcp-check rules; inherited rules are replaced by the first rule of the proxy itself.
    pub tcp_check_rules: Vec<TcpCheckRule>,
    pub tcp_check_inherited: bool,
    /// `http-check` rules (and the request of `option httpchk`) in HAProxy's order; like
    /// tcp-check rules, inherited ones are replaced by the first rule of the proxy itself.
    pub http_rules: Vec<(Span, HttpRuleDraft)>,
    pub http_inherited: bool,
    pub logs: Vec<LogSpec>,
    pub log_format: Option<(String, Span)>,
    pub acls: Vec<RawLine>,
    pub use_backend: Vec<RawLine>,
    pub use_server: Vec<RawLine>,
    pub default_backend: Option<(String, Span)>,
    pub tcp_request_connection: Vec<RawLine>,
    pub tcp_request_session: Vec<RawLine>,
    pub tcp_request_content: Vec<RawLine>,
    pub inspect_delay: Option<Duration>,
    pub stick_table: Option<StickTable>,
    pub sticking: Vec<StickLine>,
    pub default_server: ServerDraft,
    pub servers: Vec<ServerDraft>,
    pub stats: StatsDraft,
}

impl Default for ProxyDraft {
    fn default() -> ProxyDraft {
        ProxyDraft {
            mode: Mode::Tcp,
            mode_span: None,
            enabled: true,
            description: None,
            uid: None,
            binds: Vec::new(),
            bind_seen: false,
            maxconn: None,
            backlog: None,
            rate_limit_sessions: None,
            fullconn: None,
            retries: 3,
            redispatch: None,
            balance: Balance::RoundRobin,
            balance_span: None,
            hash_type: HashType::default(),
            hash_balance_factor: 0,
            timeouts: Timeouts::default(),
            options: Options::default(),
            check: CheckKind::Connect,
            tcp_check_rules: Vec::new(),
            tcp_check_inherited: false,
            http_rules: Vec::new(),
            http_inherited: false,
            logs: Vec::new(),
            log_format: None,
            acls: Vec::new(),
            use_backend: Vec::new(),
            use_server: Vec::new(),
            default_backend: None,
            tcp_request_connection: Vec::new(),
            tcp_request_session: Vec::new(),
            tcp_request_content: Vec::new(),
            inspect_delay: None,
            stick_table: None,
            sticking: Vec::new(),
            default_server: ServerDraft::default(),
            servers: Vec::new(),
            stats: StatsDraft::default(),
        }
    }
}

impl ProxyDraft {
    /// The draft a proxy starts from when it inherits this defaults section: what HAProxy
    /// copies from a defaults proxy.
    pub fn inherited(&self) -> ProxyDraft {
        let mut d = self.clone();
        d.tcp_check_inherited = !d.tcp_check_rules.is_empty();
        d.http_inherited = !d.http_rules.is_empty();
        d
    }

    /// The draft a frontend, listen or backend section starts from: [`Self::inherited`],
    /// and its first `stats` line replaces the inherited stats settings instead of adding
    /// to them (a defaults section inheriting from another one adds to them).
    pub fn inherited_by_proxy(&self) -> ProxyDraft {
        let mut d = self.inherited();
        d.stats.inherited = true;
        d
    }

    /// The stats settings a `stats` line changes: the proxy's own, detached from the
    /// defaults' on its first `stats` line as HAProxy does (`http-request use-service` is
    /// not a `stats` line and stays).
    fn own_stats(&mut self) -> &mut StatsDraft {
        if self.stats.inherited {
            let prometheus = self.stats.prometheus.take();
            self.stats = StatsDraft {
                span: prometheus.as_ref().map(|l| l.span.clone()),
                prometheus,
                ..StatsDraft::default()
            };
        }
        &mut self.stats
    }

    /// [`Self::own_stats`] for a line that also turns the stats page on, as every `stats`
    /// line does in HAProxy.
    fn stats_on(&mut self, span: &Span) -> &mut StatsDraft {
        let st = self.own_stats();
        st.enable = true;
        st.span.get_or_insert(span.clone());
        st
    }
}

macro_rules! kw {
    ($name:expr, $scope:expr, $usage:expr, $doc:expr, $f:expr) => {
        KeywordSpec {
            name: $name,
            scope: $scope,
            support: Support::Yes,
            since: SINCE,
            usage: $usage,
            doc: $doc,
            parse: Some($f),
        }
    };
}

/// An `option` that sets one flag, and accepts `no option`.
macro_rules! flag_option {
    ($name:expr, $scope:expr, $doc:expr, |$d:ident| $field:expr) => {
        KeywordSpec {
            name: $name,
            scope: $scope,
            support: Support::Yes,
            since: SINCE,
            usage: "",
            doc: $doc,
            parse: Some(|$d: &mut ProxyDraft, a: &mut Args<'_>| {
                let v = a.flag()?;
                $field = v;
                Ok(())
            }),
        }
    };
}

macro_rules! timeout {
    ($name:expr, $scope:expr, $doc:expr, $field:ident) => {
        kw!($name, $scope, "<time>", $doc, |d, a| {
            let t = a.time("<timeout>")?;
            a.done()?;
            d.timeouts.$field = (!t.is_zero()).then_some(t);
            Ok(())
        })
    };
}

/// A keyword HAProxy has that sluice refuses with a specific reason.
macro_rules! refused {
    ($name:expr, $scope:expr, $why:expr) => {
        KeywordSpec {
            name: $name,
            scope: $scope,
            support: Support::No($why),
            since: SINCE,
            usage: "",
            doc: $why,
            parse: None,
        }
    };
}

pub static KEYWORDS: &[KeywordSpec<ProxyDraft>] = &[
    kw!(
        "mode",
        PROXY,
        "tcp|http",
        "tcp: forward bytes; http: only for a stats/metrics listener, a stats backend, or a frontend in front of one",
        |d, a| {
            d.mode = match a.expect("'tcp' or 'http'")? {
            "tcp" => Mode::Tcp,
            "http" => Mode::Http,
            "health" => return Err("'mode health' was removed from HAProxy; use 'monitor-uri' in HAProxy or a stats listener in sluice".to_string()),
            m => return Err(format!("unknown mode '{m}' (tcp, http)")),
        };
            d.mode_span = Some(a.span.clone());
            a.done()
        }
    ),
    kw!(
        "bind",
        FE_ONLY,
        "<addr>:<port>[-<port>][,...] [options]",
        "listen on these addresses",
        |d, a| {
            d.bind_seen = true;
            d.binds.push(parse_bind(a)?);
            Ok(())
        }
    ),
    kw!(
        "default_backend",
        FE,
        "<backend>",
        "the backend used when no use_backend rule matches",
        |d, a| {
            let name = a.expect("a backend name")?;
            d.default_backend = Some((name.to_string(), a.span.clone()));
            a.done()
        }
    ),
    kw!(
        "use_backend",
        FE_ONLY,
        "<backend> [if|unless <cond>]",
        "switch to a backend when the condition matches",
        |d, a| push_line(&mut d.use_backend, a, "expects a backend name")
    ),
    kw!(
        "use-server",
        BE_ONLY,
        "<server> if|unless <cond>",
        "send the connection to a server of this backend when the condition matches",
        |d, a| {
            let words = a.rest();
            let Some(name) = words.first() else {
                return Err("expects a server name".to_string());
            };
            if name.text.starts_with("if") || name.text.starts_with("unless") {
                return Err("expects a server name".to_string());
            }
            if !matches!(
                words.get(1).map(|w| w.text.as_str()),
                Some("if" | "unless")
            ) {
                return Err(
                    "requires either 'if' or 'unless' followed by a condition".to_string(),
                );
            }
            d.use_server.push(RawLine {
                span: a.span.clone(),
                words: words.to_vec(),
            });
            Ok(())
        }
    ),
    kw!(
        "acl",
        PROXY_ONLY,
        "<name> <fetch> [flags] [<pattern>...]",
        "name a condition on a sample fetch",
        |d, a| {
            let words = a.rest();
            if words.len() < 2 {
                return Err("expects an ACL name and a fetch".to_string());
            }
            d.acls.push(RawLine {
                span: a.span.clone(),
                words: words.to_vec(),
            });
            Ok(())
        }
    ),
    kw!(
        "server",
        BE_ONLY,
        "<name> <addr>[:port] [options]",
        "a server of this backend",
        |d, a| {
            let name = a.expect("<name> and <address> as arguments")?;
            if let Some(c) = crate::config::ast::invalid_name_char(name) {
                return Err(format!(
                    "character '{c}' is not permitted in server name '{name}'"
                ));
            }
            let addr = a.expect("<address> as an argument")?;
            let mut s = d.default_server.clone();
            s.span = a.span.clone();
            s.name = name.to_string();
            s.addr = addr.to_string();
            parse_server_options(&mut s, a)?;
            d.servers.push(s);
            Ok(())
        }
    ),
    kw!(
        "default-server",
        BE,
        "[options]",
        "defaults for the following server lines",
        |d, a| {
            let mut s = d.default_server.clone();
            parse_server_options(&mut s, a)?;
            d.default_server = s;
            Ok(())
        }
    ),
    kw!(
        "balance",
        BE,
        "<algorithm> [<args>]",
        "the load-balancing algorithm (default roundrobin)",
        |d, a| {
            let alg = a.expect("an algorithm")?;
            d.balance = if alg == "hash" {
                parse_balance_hash(a.expect("a sample expression after 'hash'")?)?
            } else {
                parse_balance(alg)?
            };
            d.balance_span = Some(a.span.clone());
            a.done()
        }
    ),
    kw!(
        "hash-type",
        BE,
        "map-based|consistent|maglev [<function>] [avalanche]",
        "how hash-based algorithms map keys to servers",
        |d, a| {
            let method = match a.expect("'map-based' or 'consistent'")? {
            "map-based" => HashMethod::MapBased,
            "consistent" => HashMethod::Consistent,
            "maglev" => HashMethod::Maglev,
            m => return Err(format!("only supports 'consistent', 'map-based' and the sluice extension 'maglev', not '{m}'")),
        };
            // "consistent hash uses sdbm and avalanche if no hash function is specified".
            let mut ht = HashType {
                method,
                avalanche: method == HashMethod::Consistent,
                ..HashType::default()
            };
            if let Some(f) = a.word() {
                ht.avalanche = false;
                ht.function = match f {
                "sdbm" => HashFunction::Sdbm,
                "djb2" => HashFunction::Djb2,
                "wt6" => HashFunction::Wt6,
                "crc32" => HashFunction::Crc32,
                "none" => HashFunction::None,
                f => return Err(format!("only supports 'sdbm', 'djb2', 'crc32', 'wt6' or 'none' hash functions, not '{f}'")),
            };
                if let Some(m) = a.word() {
                    if m != "avalanche" {
                        return Err(format!(
                            "only supports 'avalanche' as a modifier, not '{m}'"
                        ));
                    }
                    ht.avalanche = true;
                }
            }
            d.hash_type = ht;
            a.done()
        }
    ),
    kw!(
        "hash-balance-factor",
        BE,
        "<percent>",
        "bounded load for consistent hashing (0 or >= 100)",
        |d, a| {
            let f = a.u32_in("<factor>", 0, 65_535)?;
            if f != 0 && f < 100 {
                return Err(format!("must be 0 or at least 100, not {f}"));
            }
            d.hash_balance_factor = f;
            a.done()
        }
    ),
    kw!(
        "maxconn",
        FE,
        "<n>",
        "maximum concurrent connections of this frontend",
        |d, a| {
            d.maxconn = Some(a.u32_in("<maxconn>", 0, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "backlog",
        FE,
        "<n>",
        "listen backlog of the binds (default: maxconn)",
        |d, a| {
            d.backlog = Some(a.u32_in("<backlog>", 1, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "fullconn",
        BE,
        "<n>",
        "backend load at which servers reach their maxconn (dynamic maxconn)",
        |d, a| {
            d.fullconn = Some(a.u32_in("<fullconn>", 1, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "retries",
        BE,
        "<n>",
        "connection attempts after a failed connect (default 3)",
        |d, a| {
            d.retries = a.u32_in("<retries>", 0, 1_000)?;
            a.done()
        }
    ),
    kw!(
        "rate-limit sessions",
        FE,
        "<rate>",
        "maximum new sessions per second on this frontend",
        |d, a| {
            d.rate_limit_sessions = Some(a.u32_in("<rate>", 0, i32::MAX as u32)?);
            a.done()
        }
    ),
    kw!(
        "log",
        PROXY,
        "global | <target> [len <n>] [format <f>] <facility> [<level> [<min>]]",
        "where this proxy logs",
        |d, a| {
            if a.negated {
                a.done()?;
                d.logs.clear();
                return Ok(());
            }
            if a.peek() == Some("global") {
                a.word();
                a.done()?;
                d.logs.push(LogSpec::Global(a.span.clone()));
                return Ok(());
            }
            d.logs.push(LogSpec::Target(parse_log_target(a)?));
            Ok(())
        }
    ),
    kw!(
        "log-format",
        PROXY,
        "<string>",
        "the format of this proxy's log lines",
        |d, a| {
            let f = a.expect("a format string")?;
            a.done()
                .map_err(|e| format!("{e} (quote the format if it contains spaces)"))?;
            d.log_format = Some((f.to_string(), a.span.clone()));
            Ok(())
        }
    ),
    kw!(
        "disabled",
        PROXY,
        "",
        "declare the proxy but do not start it",
        |d, a| {
            a.done()?;
            d.enabled = false;
            Ok(())
        }
    ),
    kw!(
        "enabled",
        PROXY,
        "",
        "undo 'disabled' inherited from defaults",
        |d, a| {
            a.done()?;
            d.enabled = true;
            Ok(())
        }
    ),
    kw!(
        "id",
        PROXY_ONLY,
        "<number>",
        "the numeric id of the proxy in stats",
        |d, a| {
            d.uid = Some((a.u32_in("<id>", 1, i32::MAX as u32)?, a.span.clone()));
            a.done()
        }
    ),
    kw!(
        "description",
        PROXY,
        "<text>...",
        "a description shown in stats",
        |d, a| {
            let words: Vec<&str> = a.rest().iter().map(|w| w.text.as_str()).collect();
            if words.is_empty() {
                return Err("expects a string argument".to_string());
            }
            d.description = Some(words.join(" "));
            Ok(())
        }
    ),
    kw!(
        "stick-table",
        PROXY_ONLY,
        "type ip|ipv6 size <n> [expire <t>] [store <items>]",
        "per-source counters for tracking rules",
        |d, a| {
            d.stick_table = Some(parse_stick_table(a)?);
            Ok(())
        }
    ),
    kw!(
        "tcp-request connection",
        FE_ONLY,
        "<action> [if|unless <cond>]",
        "rules applied when a connection is accepted",
        |d, a| push_line(&mut d.tcp_request_connection, a, "expects an action")
    ),
    kw!(
        "tcp-request session",
        FE_ONLY,
        "<action> [if|unless <cond>]",
        "rules applied once the session exists (after the PROXY header, if any)",
        |d, a| push_line(&mut d.tcp_request_session, a, "expects an action")
    ),
    kw!(
        "tcp-request content",
        PROXY_ONLY,
        "<action> [if|unless <cond>]",
        "rules applied on the first bytes of the request",
        |d, a| push_line(&mut d.tcp_request_content, a, "expects an action")
    ),
    kw!(
        "tcp-request inspect-delay",
        PROXY,
        "<time>",
        "how long content rules may wait for data",
        |d, a| {
            d.inspect_delay = Some(a.time("<time>")?);
            a.done()
        }
    ),
    kw!(
        "tcp-check connect",
        BE,
        "[port <p>] [send-proxy] [ssl] [sni <name>] [alpn <list>]",
        "health-check step: open the connection (TLS with 'ssl')",
        |d, a| {
            let mut c = CheckConnect::default();
            while let Some(w) = a.word() {
                match w {
                    "port" => {
                        c.port = Some(super::values::parse_port(a.expect("a port after 'port'")?)?)
                    }
                    "send-proxy" => c.send_proxy = true,
                    "ssl" | "sni" | "alpn" => connect_tls_option(&mut c, w, a)?,
                    "default" | "addr" | "proto" | "via-socks4" | "linger" | "comment"
                    | "send-proxy-v2" => {
                        return Err(format!(
                            "'tcp-check connect {w}' is not supported by sluice"
                        ))
                    }
                    o => {
                        return Err(format!(
                            "unknown 'tcp-check connect' option '{o}' (port, send-proxy, ssl, sni, alpn)"
                        ))
                    }
                }
            }
            warn_tls_without_ssl(&c, a);
            push_tcp_check(d, TcpCheckRule::Connect(c));
            Ok(())
        }
    ),
    kw!(
        "tcp-check send",
        BE,
        "<string>",
        "health-check step: send a string",
        |d, a| {
            let s = a.expect("a string")?;
            a.done()?;
            push_tcp_check(
                d,
                TcpCheckRule::Send(s.chars().map(|c| c as u32 as u8).collect()),
            );
            Ok(())
        }
    ),
    kw!(
        "tcp-check send-binary",
        BE,
        "<hex>",
        "health-check step: send bytes given in hex",
        |d, a| {
            let s = parse_hex(a.expect("a hex string")?)?;
            a.done()?;
            push_tcp_check(d, TcpCheckRule::Send(s));
            Ok(())
        }
    ),
    kw!(
        "tcp-check expect",
        BE,
        "[!] string|rstring|binary <pattern>",
        "health-check step: expect a reply",
        |d, a| {
            let mut negate = false;
            let mut kind = a.expect("a match type")?;
            if kind == "!" {
                negate = true;
                kind = a.expect("a match type after '!'")?;
            }
            let pat = a.expect("a pattern")?;
            let pattern = match kind {
                "string" => ExpectPattern::String(pat.chars().map(|c| c as u32 as u8).collect()),
                "rstring" => {
                    regex::Regex::new(pat).map_err(|e| format!("invalid regex '{pat}': {e}"))?;
                    ExpectPattern::Rstring(pat.to_string())
                }
                "binary" => ExpectPattern::Binary(parse_hex(pat)?),
                "rbinary" | "string-lf" | "binary-lf" | "status" | "rstatus" | "header"
                | "fhdr" => {
                    return Err(format!(
                        "'tcp-check expect {kind}' is not supported by sluice"
                    ))
                }
                k => {
                    return Err(format!(
                        "unknown match type '{k}' (string, rstring, binary)"
                    ))
                }
            };
            a.done()?;
            push_tcp_check(d, TcpCheckRule::Expect { negate, pattern });
            Ok(())
        }
    ),
    kw!(
        "tcp-check comment",
        BE,
        "<text>",
        "a comment reported when the next step fails",
        |d, a| {
            let c = a.expect("a comment")?;
            a.done()?;
            push_tcp_check(d, TcpCheckRule::Comment(c.to_string()));
            Ok(())
        }
    ),
    kw!(
        "http-check send",
        BE,
        "[meth <m>] [uri <uri>] [ver <v>] [hdr <name> <value>]* [body <string>] [comment <msg>]",
        "health-check step: the HTTP request (merged with option httpchk's)",
        |d, a| {
            let mut send = SendDraft::default();
            let mut comment = None;
            while let Some(w) = a.word() {
                match w {
                    "meth" => send.method = Some(a.expect("a method after 'meth'")?.to_string()),
                    "uri" => send.uri = Some(a.expect("a URI after 'uri'")?.to_string()),
                    "ver" => send.version = Some(a.expect("a version after 'ver'")?.to_string()),
                    "hdr" => {
                        let (name, value) = match (a.word(), a.word()) {
                            (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => (n, v),
                            _ => return Err("'hdr' expects <name> and <value> as arguments".into()),
                        };
                        let value = plain_log_format(value).ok_or_else(|| {
                            format!(
                                "'hdr {name}': the value '{value}' is a log-format string, which \
                                 sluice does not evaluate in checks (write '%%' for a literal '%')"
                            )
                        })?;
                        if name.eq_ignore_ascii_case("host") {
                            if let Some((_, v)) = send
                                .headers
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                            {
                                return Err(format!(
                                    "'host' header already defined (previous value is '{v}')"
                                ));
                            }
                        }
                        send.headers.push((name.to_string(), value));
                    }
                    "body" => {
                        let b = a.expect("a string after 'body'")?;
                        send.body = Some(b.chars().map(|c| c as u32 as u8).collect());
                    }
                    "comment" => comment = Some(a.expect("a message after 'comment'")?),
                    "uri-lf" | "body-lf" => {
                        return Err(format!(
                            "'{w}' (a log-format string evaluated at each check) is not \
                             supported by sluice; use '{}' with a fixed value",
                            &w[..w.len() - 3]
                        ))
                    }
                    o => {
                        return Err(format!(
                            "unknown option '{o}' (meth, uri, ver, hdr, body, comment)"
                        ))
                    }
                }
            }
            if let Some(c) = comment {
                push_http_rule(d, a.span, HttpRuleDraft::Comment(c.to_string()))?;
            }
            push_http_rule(d, a.span, HttpRuleDraft::Send(send))
        }
    ),
    kw!(
        "http-check connect",
        BE,
        "[port <p>] [addr <ip>] [send-proxy] [linger] [default] [ssl] [sni <name>] [alpn <list>] [comment <msg>]",
        "health-check step: open the connection (another port or address; TLS with 'ssl')",
        |d, a| {
            let mut c = CheckConnect::default();
            let mut comment = None;
            while let Some(w) = a.word() {
                match w {
                    "port" => {
                        c.port = Some(super::values::parse_port(a.expect("a port after 'port'")?)?)
                    }
                    "addr" => {
                        let ip = a.expect("an address after 'addr'")?;
                        c.addr = Some(ip.parse().map_err(|_| {
                            format!("'addr' expects an IP address (sluice takes no name or port here), not '{ip}'")
                        })?);
                    }
                    "send-proxy" => c.send_proxy = true,
                    "linger" => c.linger = true,
                    "default" => c.default = true,
                    "comment" => comment = Some(a.expect("a message after 'comment'")?),
                    "ssl" | "sni" | "alpn" => connect_tls_option(&mut c, w, a)?,
                    "proto" => {
                        return Err(
                            "'proto' is not supported by sluice: its HTTP checks speak HTTP/1.x"
                                .to_string(),
                        )
                    }
                    "via-socks4" | "send-proxy-v2" | "check-send-proxy" => {
                        return Err(format!(
                            "'http-check connect {w}' is not supported by sluice"
                        ))
                    }
                    o => {
                        return Err(format!(
                        "unknown option '{o}' (port, addr, send-proxy, linger, default, ssl, sni, alpn, comment)"
                    ))
                    }
                }
            }
            if c.alpn.iter().any(|p| p == "h2") {
                return Err(H2_ALPN.to_string());
            }
            warn_tls_without_ssl(&c, a);
            if let Some(m) = comment {
                push_http_rule(d, a.span, HttpRuleDraft::Comment(m.to_string()))?;
            }
            push_http_rule(d, a.span, HttpRuleDraft::Connect(c))
        }
    ),
    kw!(
        "http-check comment",
        BE,
        "<text>",
        "a comment reported when the next http-check step fails",
        |d, a| {
            let c = a.expect("a comment")?;
            a.done()?;
            push_http_rule(d, a.span, HttpRuleDraft::Comment(c.to_string()))
        }
    ),
    kw!(
        "http-check expect",
        BE,
        "[!] status|rstatus|string <pattern>",
        "the reply an httpchk check expects",
        |d, a| {
            let mut negate = false;
            let mut kind = a.expect("a match type")?;
            if kind == "!" {
                negate = true;
                kind = a.expect("a match type after '!'")?;
            }
            let pat = a.expect("a pattern")?;
            let kind = match kind {
                "status" => HttpExpectKind::Status(parse_status_list(pat)?),
                "rstatus" => {
                    regex::Regex::new(pat).map_err(|e| format!("invalid regex '{pat}': {e}"))?;
                    HttpExpectKind::Rstatus(pat.to_string())
                }
                "string" => HttpExpectKind::String(pat.to_string()),
                k => {
                    return Err(format!(
                    "'http-check expect {k}' is not supported by sluice (status, rstatus, string)"
                ))
                }
            };
            a.done()?;
            push_http_rule(
                d,
                a.span,
                HttpRuleDraft::Expect(HttpExpect { negate, kind }),
            )
        }
    ),
    kw!(
        "stats enable",
        PROXY,
        "",
        "serve the stats page (mode http listener or stats backend)",
        |d, a| {
            a.done()?;
            d.stats_on(a.span);
            Ok(())
        }
    ),
    kw!(
        "stats uri",
        PROXY,
        "<prefix>",
        "the stats page path (default /haproxy?stats)",
        |d, a| {
            let uri = a.expect("a URI prefix")?.to_string();
            a.done()?;
            d.stats_on(a.span).uri = Some(uri);
            Ok(())
        }
    ),
    kw!(
        "stats refresh",
        PROXY,
        "<time>",
        "the stats page's automatic refresh interval (seconds by default)",
        |d, a| {
            // HAProxy reads this delay in seconds (TIME_UNIT_S), unlike most times.
            let t = parse_time_unit(a.expect("<time>")?, 1_000_000)?;
            a.done()?;
            d.stats_on(a.span).refresh = Some(t);
            Ok(())
        }
    ),
    kw!(
        "stats admin",
        PROXY_ONLY,
        "if|unless <cond>",
        "allow admin actions from the stats page (after 'stats auth', when set)",
        |d, a| {
            let words = a.rest();
            if !matches!(
                words.first().map(|w| w.text.as_str()),
                Some("if" | "unless")
            ) {
                return Err("requires a condition: 'stats admin if <cond>'".to_string());
            }
            d.stats_on(a.span).admin = Some(RawLine {
                span: a.span.clone(),
                words: words.to_vec(),
            });
            Ok(())
        }
    ),
    kw!(
        "stats auth",
        PROXY,
        "<user>:<passwd>",
        "only these accounts see the stats page (HTTP Basic authentication; repeat the line for more)",
        |d, a| {
            let account = a.expect("a user:password account")?;
            a.done()?;
            let (name, password) = match account.split_once(':') {
                Some((n, p)) => (n, p),
                None => {
                    a.warnings.push(format!(
                        "'{account}' has no ':': user '{account}' gets an empty password"
                    ));
                    (account, "")
                }
            };
            let st = d.stats_on(a.span);
            if st.users.iter().any(|u| u.name == name) {
                a.warnings
                    .push(format!("ignoring duplicated user '{name}' (the first line wins)"));
            } else {
                st.users.push(StatsUser {
                    name: name.to_string(),
                    password: password.to_string(),
                });
            }
            Ok(())
        }
    ),
    kw!(
        "stats realm",
        PROXY,
        "<realm>",
        "the realm 'stats auth' names to the browser (default \"HAProxy Statistics\")",
        |d, a| {
            let realm = a.expect("a realm name")?.to_string();
            if let Some(w) = a.peek() {
                return Err(format!(
                    "unexpected argument '{w}': the realm is one word; escape its spaces \
                     ('HAProxy\\ Statistics') or quote it"
                ));
            }
            d.stats_on(a.span).realm = Some(realm);
            Ok(())
        }
    ),
    kw!(
        "stats hide-version",
        PROXY,
        "",
        "the stats page does not show the version",
        |d, a| {
            a.done()?;
            d.stats_on(a.span).hide_version = true;
            Ok(())
        }
    ),
    kw!(
        "stats show-legends",
        PROXY,
        "",
        "the stats page shows each proxy's capabilities, mode and id and each server's address and id",
        |d, a| {
            a.done()?;
            d.stats_on(a.span).show_legends = true;
            Ok(())
        }
    ),
    kw!(
        "stats show-node",
        PROXY,
        "[<name>]",
        "the stats page shows this node name (default: the host name)",
        |d, a| {
            let node = match a.word() {
                None => ShowNode::HostName,
                Some(n) => {
                    let valid = n
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
                    if !valid {
                        return Err(format!(
                            "invalid node name '{n}': use digits (0-9), letters (A-Z, a-z), \
                             '-', '_' or '.'"
                        ));
                    }
                    ShowNode::Named(n.to_string())
                }
            };
            a.done()?;
            d.stats_on(a.span).show_node = Some(node);
            Ok(())
        }
    ),
    kw!(
        "stats show-desc",
        PROXY,
        "[<description>...]",
        "the stats page shows this description",
        |d, a| {
            let words = a.rest();
            if words.is_empty() {
                // HAProxy would show the global 'description', which sluice does not read.
                a.warnings.push(
                    "requires a description here ('description' in the global section is \
                     not supported by sluice); ignored"
                        .to_string(),
                );
                d.own_stats();
                return Ok(());
            }
            let text = words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            d.stats_on(a.span).show_desc = Some(text);
            Ok(())
        }
    ),
    kw!(
        "http-request use-service",
        PROXY_ONLY,
        "prometheus-exporter [if|unless <cond>]",
        "serve Prometheus metrics (mode http listener)",
        |d, a| {
            match a.expect("a service name")? {
                "prometheus-exporter" => {}
                s => {
                    return Err(format!(
                        "service '{s}' is not supported by sluice (prometheus-exporter)"
                    ))
                }
            }
            let words = a.rest();
            d.stats.prometheus = Some(RawLine {
                span: a.span.clone(),
                words: words.to_vec(),
            });
            d.stats.span.get_or_insert(a.span.clone());
            Ok(())
        }
    ),
    timeout!(
        "timeout connect",
        BE,
        "maximum time to connect to a server",
        connect
    ),
    timeout!(
        "timeout client",
        FE,
        "maximum inactivity of the client side",
        client
    ),
    timeout!(
        "timeout server",
        BE,
        "maximum inactivity of the server side",
        server
    ),
    timeout!(
        "timeout tunnel",
        BE,
        "maximum inactivity once both sides are connected",
        tunnel
    ),
    timeout!(
        "timeout client-fin",
        FE,
        "inactivity timeout on a half-closed client side",
        client_fin
    ),
    timeout!(
        "timeout server-fin",
        BE,
        "inactivity timeout on a half-closed server side",
        server_fin
    ),
    timeout!("timeout queue", BE, "maximum time in a server queue", queue),
    timeout!(
        "timeout check",
        BE,
        "extra read timeout of health checks",
        check
    ),
    kw!(
        "option tcplog",
        PROXY,
        "",
        "log one line per connection in HAProxy's tcplog format",
        |d, a| {
            d.options.tcplog = a.flag()?;
            // The last of tcplog and httplog sets the log format, as in HAProxy.
            if d.options.tcplog {
                d.options.httplog = None;
            }
            Ok(())
        }
    ),
    kw!(
        "option httplog",
        PROXY,
        "",
        "in tcp mode: falls back to 'option tcplog' with a warning, as HAProxy does",
        |d, a| {
            let on = a.flag()?;
            d.options.httplog = on.then(|| a.span.clone());
            Ok(())
        }
    ),
    flag_option!(
        "option dontlognull",
        PROXY,
        "do not log connections that carried no data",
        |d| d.options.dontlognull
    ),
    flag_option!(
        "option log-health-checks",
        BE,
        "log every health check status change",
        |d| d.options.log_health_checks
    ),
    kw!(
        "option redispatch",
        BE,
        "[<interval>]",
        "retry on another server after a failed connect",
        |d, a| {
            if a.negated {
                a.done()?;
                d.redispatch = None;
                return Ok(());
            }
            let interval = match a.word() {
                None => -1,
                Some(n) => n
                    .parse::<i32>()
                    .map_err(|_| format!("invalid interval '{n}'"))?,
            };
            a.done()?;
            d.redispatch = (interval != 0).then_some(interval);
            Ok(())
        }
    ),
    kw!(
        "option splice-auto",
        PROXY,
        "",
        "splice both directions (sluice splices both by default)",
        |d, a| {
            d.options.splice.auto = a.flag()?;
            d.options.splice.explicit = true;
            Ok(())
        }
    ),
    kw!(
        "option splice-request",
        PROXY,
        "",
        "splice client-to-server data",
        |d, a| {
            d.options.splice.request = a.flag()?;
            d.options.splice.explicit = true;
            Ok(())
        }
    ),
    kw!(
        "option splice-response",
        PROXY,
        "",
        "splice server-to-client data",
        |d, a| {
            d.options.splice.response = a.flag()?;
            d.options.splice.explicit = true;
            Ok(())
        }
    ),
    kw!(
        "option tcpka",
        PROXY,
        "",
        "TCP keep-alive on both sides",
        |d, a| {
            let v = a.flag()?;
            d.options.client.tcpka = v;
            d.options.server.tcpka = v;
            Ok(())
        }
    ),
    flag_option!(
        "option clitcpka",
        FE,
        "TCP keep-alive on the client side",
        |d| d.options.client.tcpka
    ),
    flag_option!(
        "option srvtcpka",
        BE,
        "TCP keep-alive on the server side",
        |d| d.options.server.tcpka
    ),
    flag_option!(
        "option allbackups",
        BE,
        "use every backup server at once, not only the first",
        |d| d.options.allbackups
    ),
    kw!(
        "option nolinger",
        PROXY,
        "",
        "close with a reset instead of lingering",
        |d, a| {
            let v = a.flag()?;
            d.options.client.nolinger = v;
            d.options.server.nolinger = v;
            Ok(())
        }
    ),
    flag_option!(
        "option abortonclose",
        BE,
        "drop a queued connection whose client has gone",
        |d| d.options.abortonclose
    ),
    flag_option!(
        "option tcp-smart-accept",
        FE,
        "delayed ACK on accept (TCP_DEFER_ACCEPT-like)",
        |d| d.options.client.smart
    ),
    flag_option!(
        "option tcp-smart-connect",
        BE,
        "send the first data with the ACK of the connect",
        |d| d.options.server.smart
    ),
    kw!(
        "option tcp-check",
        BE,
        "",
        "health checks run the tcp-check rules",
        |d, a| {
            a.done()?;
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::TcpCheck(Vec::new())
            };
            Ok(())
        }
    ),
    kw!(
        "option httpchk",
        BE,
        "[<method>] [<uri>] [<version>]",
        "health checks send an HTTP request",
        |d, a| {
            let words: Vec<&str> = a.rest().iter().map(|w| w.text.as_str()).collect();
            let mut send = SendDraft {
                from_option: true,
                ..SendDraft::default()
            };
            match words.as_slice() {
                [] => {}
                [uri] => send.uri = Some(uri.to_string()),
                [m, uri] => {
                    send.method = Some(m.to_string());
                    send.uri = Some(uri.to_string());
                }
                [m, uri, v] => {
                    send.method = Some(m.to_string());
                    send.uri = Some(uri.to_string());
                    let (version, headers, body) = split_httpchk_version(v);
                    send.version = Some(version);
                    send.headers = headers;
                    send.body = body;
                }
                _ => return Err("expects at most <method> <uri> <version>".to_string()),
            }
            if a.negated {
                d.check = CheckKind::Connect;
                return Ok(());
            }
            d.check = CheckKind::HttpChk(Vec::new());
            push_http_rule(d, a.span, HttpRuleDraft::Send(send))
        }
    ),
    kw!(
        "option mysql-check",
        BE,
        "[user <name> [post-41|pre-41]]",
        "health checks log in to MySQL/MariaDB",
        |d, a| {
            let mut user = None;
            let mut post_41 = false;
            if let Some(w) = a.word() {
                if w != "user" {
                    return Err(format!("only supports 'user', not '{w}'"));
                }
                user = Some(a.expect("a user name after 'user'")?.to_string());
                // With a user, HAProxy sends post-4.1 packets unless told pre-41.
                post_41 = true;
                match a.word() {
                    None | Some("post-41") => {}
                    Some("pre-41") => post_41 = false,
                    Some(o) => {
                        return Err(format!(
                            "only supports 'post-41' or 'pre-41' after the user, not '{o}'"
                        ))
                    }
                }
            }
            a.done()?;
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::Mysql { user, post_41 }
            };
            Ok(())
        }
    ),
    kw!(
        "option redis-check",
        BE,
        "",
        "health checks expect +PONG from Redis",
        |d, a| {
            a.done()?;
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::Redis
            };
            Ok(())
        }
    ),
    kw!(
        "option pgsql-check",
        BE,
        "user <name>",
        "health checks start a PostgreSQL session",
        |d, a| {
            if a.negated {
                a.done()?;
                d.check = CheckKind::Connect;
                return Ok(());
            }
            if a.expect("'user <username>'")? != "user" {
                return Err("expects 'user <username>'".to_string());
            }
            let user = a.expect("a user name after 'user'")?.to_string();
            a.done()?;
            d.check = CheckKind::Pgsql { user };
            Ok(())
        }
    ),
    kw!(
        "option ssl-hello-chk",
        BE,
        "",
        "health checks send a TLS ClientHello",
        |d, a| {
            a.done()?;
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::SslHello
            };
            Ok(())
        }
    ),
    refused!(
        "option forwardfor",
        PROXY,
        "needs HTTP mode, which sluice does not proxy"
    ),
    refused!(
        "option http-server-close",
        PROXY,
        "needs HTTP mode, which sluice does not proxy"
    ),
    refused!(
        "option http-keep-alive",
        PROXY,
        "needs HTTP mode, which sluice does not proxy"
    ),
    refused!(
        "option httpclose",
        PROXY,
        "needs HTTP mode, which sluice does not proxy"
    ),
    kw!(
        "option ldap-check",
        BE,
        "",
        "health checks make an anonymous LDAPv3 bind",
        |d, a| {
            a.done()?;
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::Ldap
            };
            Ok(())
        }
    ),
    kw!(
        "option smtpchk",
        BE,
        "[EHLO|HELO <domain>]",
        "health checks expect an SMTP greeting and a reply to HELO",
        |d, a| {
            let words: Vec<String> = a.rest().iter().map(|w| w.text.clone()).collect();
            if words.len() > 2 {
                return Err(format!(
                    "cannot handle unexpected argument '{}'",
                    words[2]
                ));
            }
            // HAProxy: anything but 'EHLO <domain>' or 'HELO <domain>' means the default.
            let command = match words.as_slice() {
                [verb, domain] if verb == "EHLO" || verb == "HELO" => format!("{verb} {domain}"),
                _ => "HELO localhost".to_string(),
            };
            d.check = if a.negated {
                CheckKind::Connect
            } else {
                CheckKind::Smtp { command }
            };
            Ok(())
        }
    ),
    refused!(
        "option external-check",
        BE,
        "external checks run programs; sluice does not"
    ),
    refused!("server-template", BE_ONLY, "declare the servers one by one"),
    refused!(
        "cookie",
        BE,
        "HTTP cookies need HTTP mode, which sluice does not proxy"
    ),
    kw!(
        "stick on",
        BE_ONLY,
        "src|dst [table <t>] [if|unless <cond>]",
        "persistence: send a key's connections to the server stored for it, store the server otherwise",
        |d, a| push_stick(d, a, true, true)
    ),
    kw!(
        "stick match",
        BE_ONLY,
        "src|dst [table <t>] [if|unless <cond>]",
        "persistence: send a key's connections to the server a stick table holds for it",
        |d, a| push_stick(d, a, true, false)
    ),
    kw!(
        "stick store-request",
        BE_ONLY,
        "src|dst [table <t>] [if|unless <cond>]",
        "persistence: store the server a connection went to under its key",
        |d, a| push_stick(d, a, false, true)
    ),
    refused!(
        "stick store-response",
        BE_ONLY,
        "sluice stores when the server is connected: use 'stick store-request' (or 'stick on')"
    ),
];

/// Keeps the rest of the line (it must not be empty) for validate.rs to compile.
fn push_line(lines: &mut Vec<RawLine>, a: &mut Args<'_>, missing: &str) -> Parsed {
    let words = a.rest();
    if words.is_empty() {
        return Err(missing.to_string());
    }
    lines.push(RawLine {
        span: a.span.clone(),
        words: words.to_vec(),
    });
    Ok(())
}

/// `stick on|match|store-request <pattern> [table <t>] [if|unless <cond>]`: the pattern must
/// be an address sluice can read at layer 4.
fn push_stick(d: &mut ProxyDraft, a: &mut Args<'_>, matches: bool, stores: bool) -> Parsed {
    let keyword = match (matches, stores) {
        (true, true) => "stick on",
        (true, false) => "stick match",
        _ => "stick store-request",
    };
    let words = a.rest();
    let Some(pattern) = words.first() else {
        return Err("missing fetch method".to_string());
    };
    match pattern.text.as_str() {
        "src" | "dst" => {}
        "if" | "unless" | "table" => return Err("missing fetch method".to_string()),
        p => return Err(format!("sluice sticks on 'src' or 'dst' only, not '{p}'")),
    }
    if words.get(1).is_some_and(|w| w.text == "table") && words.len() < 3 {
        return Err("missing table name after 'table'".to_string());
    }
    d.sticking.push(StickLine {
        keyword,
        matches,
        stores,
        line: RawLine {
            span: a.span.clone(),
            words: words.to_vec(),
        },
    });
    Ok(())
}

/// Why an HTTP check may not offer h2: HAProxy would speak HTTP/2 once it is negotiated.
pub const H2_ALPN: &str = "sluice's HTTP checks speak HTTP/1.x: offer 'http/1.1', not 'h2' \
     (HAProxy switches the check to HTTP/2 when the server picks h2)";

/// `ssl`, `sni <name>` or `alpn <list>` on a `tcp-check connect` or `http-check connect`.
fn connect_tls_option(c: &mut CheckConnect, w: &str, a: &mut Args<'_>) -> Parsed {
    match w {
        "ssl" => c.ssl = true,
        "sni" => c.sni = Some(parse_sni(a.expect("a host name after 'sni'")?)?),
        _ => c.alpn = parse_alpn(a.expect("a protocol list after 'alpn'")?)?,
    }
    Ok(())
}

/// `sni` and `alpn` apply to TLS connects only: say so when neither `ssl` nor `default` (the
/// server's `check-ssl`) can make this one TLS.
fn warn_tls_without_ssl(c: &CheckConnect, a: &mut Args<'_>) {
    if !c.ssl && !c.default && (c.sni.is_some() || !c.alpn.is_empty()) {
        a.warnings.push(
            "'sni' and 'alpn' apply to TLS connections only: add 'ssl' (or 'default' with \
             the server's 'check-ssl'); ignored here"
                .to_string(),
        );
    }
}

fn push_tcp_check(d: &mut ProxyDraft, rule: TcpCheckRule) {
    if d.tcp_check_inherited {
        d.tcp_check_rules.clear();
        d.tcp_check_inherited = false;
    }
    d.tcp_check_rules.push(rule);
}

/// An `http-check` rule as written. Sends keep unset fields: HAProxy merges the request of
/// `option httpchk` with the first `http-check send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRuleDraft {
    Connect(CheckConnect),
    Send(SendDraft),
    Expect(HttpExpect),
    Comment(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendDraft {
    /// The implicit send of `option httpchk`.
    pub from_option: bool,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl SendDraft {
    /// HAProxy's merge of two sends: every field `newer` sets replaces this one's (the header
    /// list as a whole).
    fn overlay(&mut self, newer: SendDraft) {
        self.method = newer.method.or(self.method.take());
        self.uri = newer.uri.or(self.uri.take());
        self.version = newer.version.or(self.version.take());
        if !newer.headers.is_empty() {
            self.headers = newer.headers;
        }
        self.body = newer.body.or(self.body.take());
    }
}

/// Adds an `http-check` rule the way HAProxy 2.6 does (`tcpcheck_add_http_rule`): the send of
/// `option httpchk` goes first and merges with an explicit send; explicit rules must follow
/// connect -> send -> expect.
fn push_http_rule(d: &mut ProxyDraft, span: &Span, rule: HttpRuleDraft) -> Result<(), String> {
    if d.http_inherited {
        d.http_rules.clear();
        d.http_inherited = false;
    }
    let rules = &mut d.http_rules;
    let is_real = |r: &&(Span, HttpRuleDraft)| !matches!(r.1, HttpRuleDraft::Comment(_));
    match rule {
        HttpRuleDraft::Send(send) if send.from_option => {
            // The first rule, skipping a first connect: the request goes after it.
            let mut real = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| is_real(r))
                .map(|(i, _)| i);
            let (first, at) = match real.next() {
                Some(i) if matches!(rules[i].1, HttpRuleDraft::Connect(_)) => (real.next(), i + 1),
                other => (other, 0),
            };
            match first.map(|i| (i, &mut rules[i].1)) {
                Some((i, HttpRuleDraft::Send(old))) if old.from_option => {
                    rules[i] = (span.clone(), HttpRuleDraft::Send(send))
                }
                Some((_, HttpRuleDraft::Send(old))) => old.overlay(send),
                _ => rules.insert(at, (span.clone(), HttpRuleDraft::Send(send))),
            }
        }
        rule => {
            // The request of `option httpchk` is no rule in HAProxy until the whole proxy is
            // read: the checks below do not see it, and a first connect goes before it.
            let from_opt = |r: &HttpRuleDraft| matches!(r, HttpRuleDraft::Send(s) if s.from_option);
            let step = rules.iter().filter(|r| !from_opt(&r.1)).count() + 1;
            let what = match &rule {
                HttpRuleDraft::Connect(_) => "connect",
                HttpRuleDraft::Send(_) => "send",
                HttpRuleDraft::Expect(_) => "expect",
                HttpRuleDraft::Comment(_) => "comment",
            };
            let last = rules
                .iter()
                .rev()
                .filter(|r| !from_opt(&r.1))
                .find(is_real)
                .map(|r| &r.1);
            let missing = match (last, &rule) {
                (None, _) => None,
                (Some(HttpRuleDraft::Connect(_)), HttpRuleDraft::Send(_)) => None,
                (Some(_), HttpRuleDraft::Send(_)) => Some("connect"),
                (
                    Some(HttpRuleDraft::Send(_) | HttpRuleDraft::Expect(_)),
                    HttpRuleDraft::Expect(_),
                ) => None,
                (Some(_), HttpRuleDraft::Expect(_)) => Some("send"),
                (Some(HttpRuleDraft::Expect(_)), HttpRuleDraft::Connect(_)) => None,
                (Some(_), HttpRuleDraft::Connect(_)) => Some("expect"),
                (Some(_), HttpRuleDraft::Comment(_)) => None,
            };
            if let Some(m) = missing {
                return Err(format!(
                    "unable to add http-check {what} rule at step {step} (missing {m} rule)"
                ));
            }
            let implicit = rules.iter().position(|r| from_opt(&r.1));
            let rule = match (rule, implicit) {
                // The first `http-check send` takes the option's request.
                (HttpRuleDraft::Send(send), Some(i)) => {
                    let (_, HttpRuleDraft::Send(mut merged)) = rules.remove(i) else {
                        unreachable!("from_opt matched a send");
                    };
                    merged.overlay(send);
                    merged.from_option = false;
                    HttpRuleDraft::Send(merged)
                }
                // A first connect: the option's request moves after it (and its comment).
                (HttpRuleDraft::Connect(c), Some(i)) if last.is_none() => {
                    let request = rules.remove(i);
                    rules.push((span.clone(), HttpRuleDraft::Connect(c)));
                    rules.push(request);
                    return Ok(());
                }
                (rule, _) => rule,
            };
            rules.push((span.clone(), rule));
        }
    }
    Ok(())
}

/// `option httpchk`'s version word with HAProxy's deprecated trick of hiding headers and a
/// body after "\r\n": the version, the header lines (name, trimmed value) and the body.
pub fn split_httpchk_version(v: &str) -> (String, Vec<(String, String)>, Option<Vec<u8>>) {
    let (head, body) = match v.split_once("\r\n\r\n") {
        Some((h, b)) => (h, Some(b)),
        None => (v, None),
    };
    let mut lines = head.split("\r\n");
    let version = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .flat_map(|l| l.split('\n'))
        .filter_map(|l| {
            let (n, v) = l.trim_end_matches('\r').split_once(':')?;
            Some((n.to_string(), v.trim_matches([' ', '\t']).to_string()))
        })
        .collect();
    let body = body
        .filter(|b| !b.is_empty())
        .map(|b| b.chars().map(|c| c as u32 as u8).collect());
    (version, headers, body)
}

/// A header value of `http-check send` is a log-format string: "%%" is a literal '%', and
/// any other '%' starts an expression sluice does not evaluate (None).
fn plain_log_format(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '%' && chars.next() != Some('%') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

fn parse_balance(alg: &str) -> Result<Balance, String> {
    let (name, arg) = split_call(alg)?;
    let no_arg = |b: Balance| match arg {
        None => Ok(b),
        Some(_) => Err(format!("'{name}' takes no argument")),
    };
    match name {
        "roundrobin" => no_arg(Balance::RoundRobin),
        "static-rr" => no_arg(Balance::StaticRr),
        "leastconn" => no_arg(Balance::LeastConn),
        "first" => no_arg(Balance::First),
        "source" => no_arg(Balance::Source),
        "leasttime" => no_arg(Balance::LeastTime),
        "random" => {
            let draws = match arg {
                None => 2,
                Some(n) => parse_u32_in(n, 1, 100).map_err(|e| format!("random draws: {e}"))?,
            };
            Ok(Balance::Random { draws })
        }
        "uri" | "url_param" | "hdr" | "rdp-cookie" => Err(format!(
            "'balance {name}' needs HTTP or RDP inspection and is not supported by sluice"
        )),
        other => {
            let names = [
                "roundrobin",
                "static-rr",
                "leastconn",
                "first",
                "source",
                "random",
                "hash",
                "leasttime",
            ];
            let hint = crate::config::error::did_you_mean(other, names);
            Err(format!(
                "unknown algorithm '{other}' (roundrobin, static-rr, leastconn, first, source, \
                 random, hash <expr>, leasttime){hint}"
            ))
        }
    }
}

/// `balance hash <expr>`: the L4 fetches sluice can hash on.
fn parse_balance_hash(expr: &str) -> Result<Balance, String> {
    Ok(match expr {
        // Unlike `balance source`, `hash src` hashes the address bytes with the hash-type's
        // function, as HAProxy does.
        "src" => Balance::Hash(HashKey::Src),
        "dst" => Balance::Hash(HashKey::Dst),
        "src_port" => Balance::Hash(HashKey::SrcPort),
        "dst_port" => Balance::Hash(HashKey::DstPort),
        "req.ssl_sni" | "req_ssl_sni" => Balance::Hash(HashKey::ReqSslSni),
        e => {
            return Err(format!(
                "'balance hash {e}': sluice hashes on src, dst, src_port, dst_port or req.ssl_sni"
            ))
        }
    })
}

fn parse_status_list(s: &str) -> Result<Vec<(u16, u16)>, String> {
    s.split(',')
        .map(|part| {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let p = |x: &str| match x.parse::<u16>() {
                Ok(v) if (100..=599).contains(&v) => Ok(v),
                _ => Err(format!("invalid HTTP status '{x}' (100-599)")),
            };
            let (lo, hi) = (p(lo)?, p(hi)?);
            if lo > hi {
                return Err(format!("invalid status range '{part}'"));
            }
            Ok((lo, hi))
        })
        .collect()
}

fn parse_stick_table(a: &mut Args<'_>) -> Result<StickTable, String> {
    let mut kind = None;
    let mut size = None;
    let mut expire = None;
    let mut store = Vec::new();
    while let Some(w) = a.word() {
        match w {
            "type" => {
                kind = Some(match a.expect("a type after 'type'")? {
                    "ip" => TableType::Ip,
                    "ipv6" => TableType::Ipv6,
                    t @ ("integer" | "string" | "binary") => {
                        return Err(format!(
                            "table type '{t}' is not supported by sluice (ip, ipv6)"
                        ))
                    }
                    t => return Err(format!("unknown table type '{t}' (ip, ipv6)")),
                })
            }
            "size" => size = Some(parse_size(a.expect("a size after 'size'")?)?),
            "expire" => expire = Some(a.time("a time after 'expire'")?),
            "store" => {
                for item in a.expect("data types after 'store'")?.split(',') {
                    store.push(parse_store_item(item)?);
                }
            }
            "nopurge" | "peers" | "srvkey" | "write-to" | "recv-only" => {
                return Err(format!(
                    "stick-table option '{w}' is not supported by sluice"
                ))
            }
            o => {
                return Err(format!(
                    "unknown stick-table argument '{o}' (type, size, expire, store)"
                ))
            }
        }
    }
    let kind = kind.ok_or("missing 'type'")?;
    let size = size.ok_or("missing 'size'")?;
    if size == 0 {
        return Err("'size' must be greater than 0".to_string());
    }
    Ok(StickTable {
        span: a.span.clone(),
        kind,
        size,
        expire,
        store,
    })
}

fn parse_store_item(item: &str) -> Result<StoreItem, String> {
    let (name, period) = split_call(item)?;
    let need_period = |p: Option<&str>| -> Result<Duration, String> {
        let p = p.ok_or_else(|| format!("'{name}' needs a period: '{name}(10s)'"))?;
        super::values::parse_time(p)
    };
    Ok(match name {
        "conn_cur" => StoreItem::ConnCur,
        "conn_cnt" => StoreItem::ConnCnt,
        "conn_rate" => StoreItem::ConnRate(need_period(period)?),
        "sess_cnt" => StoreItem::SessCnt,
        "sess_rate" => StoreItem::SessRate(need_period(period)?),
        "bytes_in_cnt" => StoreItem::BytesInCnt,
        "bytes_out_cnt" => StoreItem::BytesOutCnt,
        "gpc0" => StoreItem::Gpc0,
        "gpc1" => StoreItem::Gpc1,
        "gpc0_rate" => StoreItem::Gpc0Rate(need_period(period)?),
        "gpc1_rate" => StoreItem::Gpc1Rate(need_period(period)?),
        n => {
            return Err(format!(
                "stored data type '{n}' is not supported by sluice (conn_cur, conn_cnt, \
                 conn_rate(<t>), sess_cnt, sess_rate(<t>), bytes_in_cnt, bytes_out_cnt, \
                 gpc0, gpc0_rate(<t>), gpc1, gpc1_rate(<t>))"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_names() {
        assert_eq!(parse_balance("roundrobin"), Ok(Balance::RoundRobin));
        assert_eq!(parse_balance("random"), Ok(Balance::Random { draws: 2 }));
        assert_eq!(parse_balance("random(3)"), Ok(Balance::Random { draws: 3 }));
        assert!(parse_balance("random(0)").is_err());
        assert!(parse_balance("leastconn(2)").is_err());
        assert!(parse_balance("uri").unwrap_err().contains("not supported"));
        assert!(parse_balance("roundrobn")
            .unwrap_err()
            .ends_with("did you mean 'roundrobin'?"));
    }

    #[test]
    fn status_lists() {
        assert_eq!(parse_status_list("200"), Ok(vec![(200, 200)]));
        assert_eq!(
            parse_status_list("200-299,301"),
            Ok(vec![(200, 299), (301, 301)])
        );
        assert!(parse_status_list("99").is_err());
        assert!(parse_status_list("300-200").is_err());
    }

    #[test]
    fn store_items() {
        assert_eq!(parse_store_item("conn_cur"), Ok(StoreItem::ConnCur));
        assert_eq!(
            parse_store_item("conn_rate(10s)"),
            Ok(StoreItem::ConnRate(Duration::from_secs(10)))
        );
        assert!(parse_store_item("conn_rate").is_err());
        assert_eq!(parse_store_item("gpc1"), Ok(StoreItem::Gpc1));
        assert_eq!(
            parse_store_item("gpc0_rate(1m)"),
            Ok(StoreItem::Gpc0Rate(Duration::from_secs(60)))
        );
        assert!(parse_store_item("gpc0_rate").is_err());
        assert!(parse_store_item("gpt0")
            .unwrap_err()
            .contains("not supported"));
    }

    // --- http-check -----------------------------------------------------------------------

    use crate::config::model::{HttpCheckRule, HttpRequest};

    /// The check of backend `be` and every diagnostic, for `lines` in it (after `defs` in a
    /// defaults section).
    fn httpchk_of(defs: &str, lines: &str) -> (Option<CheckKind>, Vec<String>) {
        let text =
            format!("defaults\n{defs}\nbackend be\n{lines}\n    server s1 127.0.0.1:8000 check\n");
        let mut ast = crate::config::ast::Ast::default();
        let mut diags = crate::config::error::Diags::default();
        let env: std::collections::HashMap<String, String> = Default::default();
        crate::config::parse_text("t.cfg", &text, &env, &mut ast, &mut diags);
        let (model, more) = crate::config::validate::build(&ast, &Default::default());
        diags.extend(more);
        let shown = diags.items.iter().map(ToString::to_string).collect();
        let check = model.map(|m| m.backend_by_name("be").unwrap().check.clone());
        (check, shown)
    }

    fn send(m: &str, u: &str, v: &str, headers: &[(&str, &str)], body: &str) -> HttpCheckRule {
        HttpCheckRule::Send(HttpRequest {
            method: m.into(),
            uri: u.into(),
            version: v.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn status(code: u16) -> HttpCheckRule {
        HttpCheckRule::Expect(HttpExpect {
            negate: false,
            kind: HttpExpectKind::Status(vec![(code, code)]),
        })
    }

    fn tls_connect() -> HttpCheckRule {
        HttpCheckRule::Connect(CheckConnect {
            ssl: true,
            ..CheckConnect::default()
        })
    }

    #[test]
    fn http_check_send_merges_with_option_httpchk_as_haproxy_does() {
        // Each case was run through HAProxy 2.6.12 (see protocol.rs for the bytes it sent).
        let cases: &[(&str, &str, Vec<HttpCheckRule>)] = &[
            (
                "",
                "option httpchk\nhttp-check send meth GET uri /primary ver HTTP/1.1 hdr Host db.local\nhttp-check expect status 200",
                vec![send("GET", "/primary", "HTTP/1.1", &[("Host", "db.local")], ""), status(200)],
            ),
            // Bare option: HAProxy's defaults.
            ("", "option httpchk\nhttp-check send", vec![send("OPTIONS", "/", "HTTP/1.0", &[], "")]),
            // The explicit send, written after the option, wins field by field.
            (
                "",
                "option httpchk POST /opt HTTP/1.1\nhttp-check send uri /primary",
                vec![send("POST", "/primary", "HTTP/1.1", &[], "")],
            ),
            // Written before it, the option's fields win; its headers replace the send's.
            (
                "",
                "http-check send uri /primary\noption httpchk POST /opt HTTP/1.1",
                vec![send("POST", "/opt", "HTTP/1.1", &[], "")],
            ),
            (
                "",
                "http-check send uri /x hdr Host a\noption httpchk",
                vec![send("OPTIONS", "/x", "HTTP/1.0", &[("Host", "a")], "")],
            ),
            (
                "",
                "http-check send uri /x ver HTTP/1.1 hdr Host a body zz\noption httpchk GET /opt HTTP/1.0",
                vec![send("GET", "/opt", "HTTP/1.0", &[("Host", "a")], "zz")],
            ),
            (
                "",
                "option httpchk GET /opt HTTP/1.1\\r\\nHost:\\ old\nhttp-check send hdr X-A b",
                vec![send("GET", "/opt", "HTTP/1.1", &[("X-A", "b")], "")],
            ),
            (
                "",
                "option httpchk GET /opt HTTP/1.1\\r\\nHost:\\ old\nhttp-check send uri /new",
                vec![send("GET", "/new", "HTTP/1.1", &[("Host", "old")], "")],
            ),
            // Own rules replace the inherited ones, the option's request included.
            (
                "    option httpchk GET /d\n    http-check send hdr Host d",
                "http-check send uri /b",
                vec![send("OPTIONS", "/b", "HTTP/1.0", &[], "")],
            ),
            (
                "    option httpchk GET /d\n    http-check expect status 201",
                "option httpchk GET /health",
                vec![send("GET", "/health", "HTTP/1.0", &[], "")],
            ),
            (
                "    option httpchk GET /d\n    http-check send hdr Host d",
                "mode tcp",
                vec![send("GET", "/d", "HTTP/1.0", &[("Host", "d")], "")],
            ),
            // A comment is kept in place; a connect leads.
            (
                "",
                "option httpchk\nhttp-check connect port 8008 linger comment c1\nhttp-check send meth GET uri /p comment c2\nhttp-check expect status 200",
                vec![
                    HttpCheckRule::Comment("c1".into()),
                    HttpCheckRule::Connect(CheckConnect {
                        port: Some(8008),
                        linger: true,
                        ..CheckConnect::default()
                    }),
                    HttpCheckRule::Comment("c2".into()),
                    send("GET", "/p", "HTTP/1.0", &[], ""),
                    status(200),
                ],
            ),
            // Two sequences.
            (
                "",
                "option httpchk\nhttp-check connect\nhttp-check send uri /a\nhttp-check expect status 200\nhttp-check connect addr 127.0.0.2 port 9 send-proxy default\nhttp-check send uri /b\nhttp-check expect status 204\nhttp-check expect status 200-299",
                vec![
                    HttpCheckRule::Connect(CheckConnect::default()),
                    send("OPTIONS", "/a", "HTTP/1.0", &[], ""),
                    status(200),
                    HttpCheckRule::Connect(CheckConnect {
                        port: Some(9),
                        addr: Some("127.0.0.2".parse().unwrap()),
                        send_proxy: true,
                        default: true,
                        ..CheckConnect::default()
                    }),
                    send("OPTIONS", "/b", "HTTP/1.0", &[], ""),
                    status(204),
                    HttpCheckRule::Expect(HttpExpect {
                        negate: false,
                        kind: HttpExpectKind::Status(vec![(200, 299)]),
                    }),
                ],
            ),
            // A first connect and no send: the option's request goes after the connect,
            // whichever is written first (HAProxy sent GET /a and GET /b after the TLS
            // handshake); the first send still takes it.
            (
                "    default-server verify none",
                "option httpchk GET /a\nhttp-check connect ssl",
                vec![tls_connect(), send("GET", "/a", "HTTP/1.0", &[], "")],
            ),
            (
                "    default-server verify none",
                "http-check connect ssl\noption httpchk GET /b",
                vec![tls_connect(), send("GET", "/b", "HTTP/1.0", &[], "")],
            ),
            (
                "    default-server verify none",
                "option httpchk GET /d HTTP/1.1\nhttp-check comment tls\nhttp-check connect ssl\nhttp-check send hdr Host x.test",
                vec![
                    HttpCheckRule::Comment("tls".into()),
                    tls_connect(),
                    send("GET", "/d", "HTTP/1.1", &[("Host", "x.test")], ""),
                ],
            ),
        ];
        for (defs, lines, want) in cases {
            let (check, diags) = httpchk_of(defs, lines);
            assert_eq!(
                check,
                Some(CheckKind::HttpChk(want.clone())),
                "{lines}: {diags:?}"
            );
        }
    }

    #[test]
    fn http_check_refusals_and_warnings() {
        let error = |lines: &str| {
            let (check, diags) = httpchk_of("", lines);
            assert!(check.is_none(), "{lines} was accepted");
            diags.join("\n")
        };
        // HAProxy's own refusals.
        let e = error("option httpchk\nhttp-check send meth GET uri /p\nhttp-check send uri /q");
        assert!(e.contains("t.cfg:6: 'http-check send': unable to add http-check send rule at step 2 (missing connect rule)"), "{e}");
        let e = error("option httpchk\nhttp-check connect port 1\nhttp-check expect status 200");
        assert!(
            e.contains("unable to add http-check expect rule at step 2 (missing send rule)"),
            "{e}"
        );
        let e = error("option httpchk\nhttp-check send uri /a\nhttp-check connect");
        assert!(
            e.contains("unable to add http-check connect rule at step 2 (missing expect rule)"),
            "{e}"
        );
        let e = error("option httpchk\nhttp-check send uri /a\nhttp-check expect status 200\nhttp-check connect\nhttp-check send uri /b");
        assert!(e.contains("first step MUST also be a 'connect'"), "{e}");
        let e = error("option httpchk\nhttp-check send hdr Host a hdr host b");
        assert!(
            e.contains("'host' header already defined (previous value is 'a')"),
            "{e}"
        );
        let e = error("option httpchk\nhttp-check send hdr X-Empty \"\"");
        assert!(
            e.contains("'hdr' expects <name> and <value> as arguments"),
            "{e}"
        );
        // sluice's: what it cannot do exactly.
        let e = error("option httpchk\nhttp-check send uri-lf /%[src]");
        assert!(e.contains("'uri-lf' (a log-format string"), "{e}");
        let e = error("option httpchk\nhttp-check send body-lf x");
        assert!(e.contains("use 'body' with a fixed value"), "{e}");
        let e = error("option httpchk\nhttp-check send hdr X-A %[src]");
        assert!(e.contains("log-format"), "{e}");
        let e = error("option httpchk\nhttp-check connect proto h2");
        assert!(e.contains("HTTP/1.x"), "{e}");
        let e = error("option httpchk\nhttp-check connect ssl alpn h2,http/1.1");
        assert!(e.contains("offer 'http/1.1', not 'h2'"), "{e}");
        let e = error("option httpchk\nhttp-check connect ssl sni 10.0.0.1");
        assert!(e.contains("host names only"), "{e}");
        let e = error("option httpchk\nhttp-check connect via-socks4");
        assert!(
            e.contains("'http-check connect via-socks4' is not supported by sluice"),
            "{e}"
        );
        let e = error("option httpchk\nhttp-check connect addr db.local");
        assert!(e.contains("'addr' expects an IP address"), "{e}");
        // "%%" is a literal '%'.
        let (check, _) = httpchk_of("", "option httpchk\nhttp-check send hdr X-A a%%b");
        assert_eq!(
            check,
            Some(CheckKind::HttpChk(vec![send(
                "OPTIONS",
                "/",
                "HTTP/1.0",
                &[("X-A", "a%b")],
                ""
            )]))
        );
        // Rules without the option are ignored, as HAProxy warns.
        let (check, diags) = httpchk_of("", "http-check send uri /p");
        assert_eq!(check, Some(CheckKind::Connect));
        assert!(
            diags.iter().any(|d| d.contains(
                "uses http-check rules without 'option httpchk', so the rules are ignored"
            )),
            "{diags:?}"
        );
        // An own expect after an inherited option: HAProxy sends nothing; sluice says so.
        let (check, diags) =
            httpchk_of("    option httpchk GET /d", "http-check expect status 200");
        assert_eq!(check, Some(CheckKind::HttpChk(vec![status(200)])));
        assert!(
            diags
                .iter()
                .any(|d| d.contains("no request is sent before this expect")),
            "{diags:?}"
        );
    }
}
