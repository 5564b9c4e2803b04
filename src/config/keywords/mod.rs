//! The keyword registry: the single source of truth for what sluice understands.
//!
//! Each table (`global.rs`, `proxy.rs`, `server.rs`, `bind.rs`) lists [`KeywordSpec`]s: a name
//! (one or two words: `timeout connect`, `option tcplog`), the sections that accept it, whether
//! sluice supports it, its usage and doc line, and the function that converts its arguments.
//! The dispatcher, `-dK`, the "did you mean" suggestions and haproxy-compat/README.md are all
//! derived from these tables. Words HAProxy knows but the tables do not support come from
//! `haproxy_known.rs` and get "not supported by sluice"; other words are unknown.

pub mod bind;
pub mod global;
pub mod haproxy_known;
pub mod proxy;
pub mod server;
pub mod values;

use super::error::Span;
use super::lexer::Word;

pub use values::Args;

/// The version of the first keyword tables.
pub const SINCE: &str = "0.1.0";

/// Section bits: which sections accept a keyword.
pub mod scope {
    pub const GLOBAL: u8 = 1;
    pub const DEFAULTS: u8 = 2;
    pub const FRONTEND: u8 = 4;
    pub const LISTEN: u8 = 8;
    pub const BACKEND: u8 = 16;
    /// Everywhere a proxy setting may appear.
    pub const PROXY: u8 = DEFAULTS | FRONTEND | LISTEN | BACKEND;
    /// Frontend-side settings (HAProxy's "frontend capability").
    pub const FE: u8 = DEFAULTS | FRONTEND | LISTEN;
    /// Backend-side settings.
    pub const BE: u8 = DEFAULTS | LISTEN | BACKEND;
    /// Only in a proxy, never in defaults.
    pub const FE_ONLY: u8 = FRONTEND | LISTEN;
    pub const BE_ONLY: u8 = LISTEN | BACKEND;
    pub const PROXY_ONLY: u8 = FRONTEND | LISTEN | BACKEND;
}

/// Whether sluice acts on a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Supported, with HAProxy's meaning.
    Yes,
    /// A sluice extension (not HAProxy's).
    Extension,
    /// Known to HAProxy, refused by sluice with this reason.
    No(&'static str),
}

/// What a keyword's parse function returns: Ok, or a message (the dispatcher adds file:line
/// and the keyword).
pub type Parsed = Result<(), String>;

/// One keyword of one table. `T` is what the parse function fills: the global settings, a
/// proxy draft, a server draft or a bind draft.
pub struct KeywordSpec<T: 'static> {
    pub name: &'static str,
    pub scope: u8,
    pub support: Support,
    /// The sluice version that first accepted the keyword.
    pub since: &'static str,
    /// Arguments, as in HAProxy's manual: `<time>`, `[<n>]`.
    pub usage: &'static str,
    pub doc: &'static str,
    /// Converts the arguments; None for unsupported keywords.
    pub parse: Option<fn(&mut T, &mut Args<'_>) -> Parsed>,
}

/// The table-independent view of a keyword, for `-dK` and the support matrix.
#[derive(Debug, Clone)]
pub struct KeywordInfo {
    pub table: &'static str,
    pub name: &'static str,
    pub scope: u8,
    pub support: Support,
    pub since: &'static str,
    pub usage: &'static str,
    pub doc: &'static str,
}

impl<T> KeywordSpec<T> {
    /// HAProxy accepts a leading `no` on options and on `log`.
    pub fn accepts_no(&self) -> bool {
        self.name.starts_with("option ") || self.name == "log"
    }

    fn info(&self, table: &'static str) -> KeywordInfo {
        KeywordInfo {
            table,
            name: self.name,
            scope: self.scope,
            support: self.support,
            since: self.since,
            usage: self.usage,
            doc: self.doc,
        }
    }
}

/// Every keyword of every table, in table order.
pub fn registry() -> Vec<KeywordInfo> {
    let mut out = Vec::new();
    out.extend(global::KEYWORDS.iter().map(|k| k.info("global")));
    out.extend(proxy::KEYWORDS.iter().map(|k| k.info("proxy")));
    out.extend(bind::KEYWORDS.iter().map(|k| k.info("bind")));
    out.extend(server::KEYWORDS.iter().map(|k| k.info("server")));
    out
}

/// Renders a scope as HAProxy's manual does: `global` or the d/f/l/b columns.
pub fn scope_label(scope: u8) -> String {
    if scope & scope::GLOBAL != 0 {
        return "global".to_string();
    }
    [
        (scope::DEFAULTS, "defaults"),
        (scope::FRONTEND, "frontend"),
        (scope::LISTEN, "listen"),
        (scope::BACKEND, "backend"),
    ]
    .iter()
    .filter(|(bit, _)| scope & bit != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// For a family keyword (`option`, `timeout`...), the second words HAProxy knows after it;
/// `["*"]` means any word.
pub type SecondWords = fn(&str) -> Option<&'static [&'static str]>;

/// How a directive's words matched a table.
pub enum Lookup<'t, T: 'static> {
    /// A keyword of the table; `consumed` words name it (1 or 2).
    Found {
        spec: &'t KeywordSpec<T>,
        consumed: usize,
    },
    /// A word HAProxy knows in this position, which sluice does not support.
    NotSupported { name: String },
    /// A removed HAProxy keyword, with HAProxy's explanation.
    Removed { name: String, hint: &'static str },
    /// Unknown; maybe a suggestion.
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
}

/// Why TLS settings are inert in sluice.
const INERT_TLS: &str =
    "ignored: TLS defaults for TLS-terminating binds and client certificates, and sluice terminates no TLS (a 'bind ... ssl' is refused)";
/// Why the TLS defaults of servers are inert when no health check speaks TLS.
const INERT_TLS_SERVER: &str =
    "ignored: TLS defaults for servers, and no health check here speaks TLS (sluice originates TLS only there; with a TLS check this is an error)";
/// Why HTTP settings in a defaults section are inert in sluice.
const INERT_HTTP: &str =
    "ignored: only HTTP proxies use it, and sluice runs tcp-mode proxies (a 'mode http' proxy other than a stats page is refused)";

/// Keywords sluice accepts and ignores with a warning where they are: TLS defaults in
/// `global` and HTTP settings in `defaults`. HAProxy applies them only to TLS binds and HTTP
/// proxies, which sluice refuses, so nothing that runs could use them; refusing them would
/// refuse Debian's stock haproxy.cfg and the usual `defaults` blocks. Elsewhere (in a
/// proxy, where the user means them) they stay errors.
pub const INERT: &[(&str, &[&str], &str)] = &[
    (
        "global",
        &[
            "crt-base",
            "ssl-default-bind-ciphers",
            "ssl-default-bind-ciphersuites",
            "ssl-default-bind-options",
            "ssl-dh-param-file",
            "tune.ssl.default-dh-param",
        ],
        INERT_TLS,
    ),
    ("global", TLS_SERVER_DEFAULTS, INERT_TLS_SERVER),
    (
        "defaults",
        &[
            "errorfile",
            "errorfiles",
            "option forwardfor",
            "option http-buffer-request",
            "option http-ignore-probes",
            "option http-keep-alive",
            "option http-no-delay",
            "option http-pretend-keepalive",
            "option http-server-close",
            "option http-use-proxy-header",
            "option httpclose",
            "option originalto",
            "timeout http-keep-alive",
            "timeout http-request",
            "timeout tarpit",
        ],
        INERT_HTTP,
    ),
];

/// The TLS defaults of servers: HAProxy applies them to TLS health checks too, which sluice
/// speaks with settings of its own; validation refuses them when a check speaks TLS.
pub const TLS_SERVER_DEFAULTS: &[&str] = &[
    "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites",
    "ssl-default-server-options",
];

/// Why `name` is ignored in a `section` section, if it is inert there ([`INERT`]).
pub fn inert(section: &str, name: &str) -> Option<&'static str> {
    INERT
        .iter()
        .find(|(sec, names, _)| *sec == section && names.contains(&name))
        .map(|(_, _, why)| *why)
}

/// Finds the keyword named by `words` in `table`: the longest name first (two words), then one.
/// `families` are first words that always take a second word (`option`, `timeout`), so that an
/// unknown second word is reported as such.
pub fn lookup<'t, T>(
    table: &'t [KeywordSpec<T>],
    words: &[Word],
    known_first: &[&str],
    known_second: SecondWords,
    removed_kind: &str,
) -> Lookup<'t, T> {
    let first = words[0].text.as_str();
    if let Some(second) = words.get(1) {
        let two = format!("{first} {}", second.text);
        if let Some(spec) = table.iter().find(|k| k.name == two) {
            return Lookup::Found { spec, consumed: 2 };
        }
    }
    if let Some(spec) = table.iter().find(|k| k.name == first) {
        return Lookup::Found { spec, consumed: 1 };
    }
    // A family (option, timeout, stats, tcp-request ...): judge the second word.
    let family: Vec<&'static str> = table
        .iter()
        .filter_map(|k| k.name.strip_prefix(first).and_then(|r| r.strip_prefix(' ')))
        .collect();
    if !family.is_empty() {
        let Some(second) = words.get(1) else {
            return Lookup::Unknown {
                name: first.to_string(),
                suggestion: None,
            };
        };
        let second = second.text.as_str();
        let name = format!("{first} {second}");
        if let Some((_, _, hint)) = haproxy_known::REMOVED
            .iter()
            .find(|(k, kind, _)| *k == name && *kind == removed_kind)
        {
            return Lookup::Removed { name, hint };
        }
        if known_second(first).is_some_and(|list| list == ["*"] || list.contains(&second)) {
            return Lookup::NotSupported { name };
        }
        let suggestion = super::error::suggest(
            &name,
            family.iter().map(|f| {
                // Compare whole names so the suggestion reads as the full keyword.
                table
                    .iter()
                    .map(|k| k.name)
                    .find(|n| n.strip_prefix(first).and_then(|r| r.strip_prefix(' ')) == Some(f))
                    .unwrap_or(f)
            }),
        );
        return Lookup::Unknown { name, suggestion };
    }
    if let Some((_, _, hint)) = haproxy_known::REMOVED
        .iter()
        .find(|(k, kind, _)| *k == first && *kind == removed_kind)
    {
        return Lookup::Removed {
            name: first.to_string(),
            hint,
        };
    }
    if known_first.contains(&first) {
        return Lookup::NotSupported {
            name: first.to_string(),
        };
    }
    let names = table
        .iter()
        .map(|k| k.name.split(' ').next().unwrap_or(k.name));
    Lookup::Unknown {
        name: first.to_string(),
        suggestion: super::error::suggest(first, names),
    }
}

/// Applies a sequence of options (`server` and `bind` lines) from `table`: each option pulls
/// its own values from `a`. `what` names the option kind in messages ("server", "bind").
pub fn apply_options<T>(
    table: &[KeywordSpec<T>],
    known: &[&str],
    what: &str,
    target: &mut T,
    a: &mut Args<'_>,
) -> Parsed {
    while let Some(opt) = a.word() {
        match table.iter().find(|k| k.name == opt) {
            Some(KeywordSpec { parse: Some(f), .. }) => f(target, a)?,
            Some(spec) => {
                let why = match spec.support {
                    Support::No(why) => format!(": {why}"),
                    _ => String::new(),
                };
                return Err(format!(
                    "{what} option '{opt}' is not supported by sluice{why}"
                ));
            }
            None if known.contains(&opt) => {
                return Err(format!("{what} option '{opt}' is not supported by sluice"));
            }
            None => {
                let hint = super::error::did_you_mean(opt, table.iter().map(|k| k.name));
                return Err(format!("unknown {what} option '{opt}'{hint}"));
            }
        }
    }
    Ok(())
}

/// A directive ready for a parse function: the words after the keyword name.
pub fn args_for<'a>(span: &'a Span, words: &'a [Word], consumed: usize) -> Args<'a> {
    Args::new(span, &words[consumed..])
}

/// haproxy-compat/README.md, generated from the registry: the support matrix and the
/// documented differences from HAProxy. A test keeps the committed file equal to this.
pub fn support_matrix() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    s.push_str(
        "# HAProxy compatibility\n\n\
         <!-- Generated from the keyword registry (src/config/keywords/): do not edit by hand.\n     \
         Regenerate with `SLUICE_BLESS=1 cargo test support_matrix`. -->\n\n\
         sluice reads HAProxy 2.6's configuration language for TCP mode. A keyword listed as\n\
         *supported* has HAProxy's meaning and defaults. A keyword HAProxy knows but sluice does\n\
         not act on is refused with `file:line: '<kw>' is not supported by sluice`, never\n\
         silently ignored; a word HAProxy does not know either is an unknown keyword, with a\n\
         \"did you mean\" when one is close. `sluice -dK` prints the same registry.\n\n\
         - `valid/`: tcp-mode configurations that real HAProxy 2.6 accepts (a test runs\n  \
         `haproxy -c` on each) and that `sluice -c` must accept.\n\
         - `invalid/`: configurations `sluice -c` rejects; each `.expected` file holds the exact\n  \
         error lines sluice prints.\n\n",
    );
    s.push_str(
        "## sluice extensions\n\n\
         These never change the meaning of an HAProxy word; HAProxy rejects them.\n\n\
         | where | extension | meaning |\n|---|---|---|\n\
         | `balance` | `leasttime` | least response time: peak-EWMA of connect time x active connections |\n\
         | `hash-type` | `maglev` | Maglev lookup table: even spread, minimal disruption |\n\n",
    );
    s.push_str(
        "## Deliberate differences from HAProxy 2.6\n\n\
         | input | HAProxy 2.6.12 | sluice |\n|---|---|---|\n\
         | `maxconn 10k` (size suffix on a count) | silently reads 10 | error: not a valid number |\n\
         | `tune.bufsize 32k` | reads 32 and crashes | 32768 (size units accepted on sizes) |\n\
         | `stats socket ... uid <name>` | reads 0: the socket goes to root | error: a numeric id (names go with `user`/`group`) |\n\
         | `option forwardfor` and other HTTP options in a tcp-mode proxy | warning, ignored | error: not supported |\n\
         | HTTP options in `defaults`, TLS defaults in `global` (see below) | used by HTTP proxies and TLS binds only | warning, ignored (sluice has neither) |\n\
         | keyword of the other side (`balance` in a frontend) | warning, ignored | warning, ignored (same) |\n\
         | ACL used before its `acl` line | error | accepted |\n\
         | `$VAR` outside quotes | kept literally, except in addresses | same: `${VAR}` expands in addresses (bind, server, log) and inside double quotes |\n\
         | `version_atleast()` in `.if` | HAProxy's version | 2.6.0, the language sluice speaks |\n\
         | `feature()` in `.if` | HAProxy's build options | always false |\n\
         | splicing without any `option splice-*` | off | on for bulk transfers (a direction switches to splice once a read fills a buffer) |\n\
         | log dates | local time | UTC (the syslog tag stays `haproxy`, so parsers match) |\n\
         | `req.ssl_sni` with a name that is not valid UTF-8 | the raw bytes | no value (the condition fails) |\n\
         | leasttime estimates | (no leasttime in HAProxy) | one estimate per server, shared by every worker |\n\
         | `maxqueue` of a server a `stick` rule sends a connection to, at its `maxconn` | compared with that server's queue | compared with the backend's queue (stricter) |\n\
         | `master-worker`, `-W`, `-Ws`: reload (SIGUSR2) | the master re-executes itself, then takes the old worker's sockets (`-x sockpair@`) | the master forks the new worker and never re-executes: a new binary takes effect on restart, not on reload; the master keeps every listening socket (and stats socket) and hands the same ones to the new worker, so none is closed with connections waiting |\n\
         | reload whose new listener's port another process holds | pauses the current worker's listeners, then `Loading failure!` and resumes them | `Loading failure!`; the current worker's listeners are never paused |\n\
         | `-Ws` at start | `RELOADING=1`, then `READY=1\\nMAINPID=<pid>` | `READY=1\\nMAINPID=<pid>` (a reload sends `RELOADING=1` once, not twice) |\n\
         | a worker's end on SIGTERM / SIGINT | killed by the signal (the master reports 143 / 130) | exits with 143 / 130 once its threads are stopped (the master reports the same) |\n\
         | `-x <socket>` | listening sockets from the old process's stats socket | `sluice -c` accepts it; running refuses to start, naming it (master-worker reloads need no `-x`) |\n\
         | `-S <socket>` (master CLI) | supported | refused: not supported (Debian's unit passes it in `EXTRAOPTS`) |\n\
         | TLS health checks: protocol versions | what OpenSSL allows | TLS 1.2 and 1.3 (rustls) |\n\
         | TLS health checks: certificate names (`verify required` with an SNI or `verifyhost`) | subjectAltName DNS names, then the subject's CN | subjectAltName only (DNS and address entries): a CN-only certificate fails |\n\
         | TLS health checks: an X.509 v1 certificate, or a CA certificate (CA:TRUE) signed by a `ca-file` CA, as the server's own | accepted | handshake failure (webpki refuses them; a certificate of `ca-file` itself, such as a self-signed one, is trusted as is, as OpenSSL trusts it) |\n\
         | TLS health checks: session reuse | resumed (`ssl-reuse`) | a full handshake every check: the certificate is verified each time |\n\
         | `check-sni <address>` | sent as SNI | error: TLS sends host names only |\n\
         | `ssl-default-server-*` in `global` | applied to TLS servers and checks | warning, ignored; an error when a health check speaks TLS |\n\
         | `stats realm HAProxy Statistics` (unescaped space), words after `stats auth <user>:<passwd>` | the first word, the rest ignored | error: the realm is one word (escape its spaces or quote it) |\n\
         | a tcp-mode frontend whose backend is a stats backend (`mode http`, no servers) | upgrades the connection to HTTP, serves the page | error: only a `mode http` frontend reaches a stats backend |\n\
         | `use_backend <stats backend> if <cond>`, or a log-format `use_backend` name, in a `mode http` frontend | routes each request | error: a `mode http` frontend sends every request to one stats backend, named in the configuration |\n\
         | `tcp-request connection`, `session` and `content` rules in a `mode http` proxy (stats listener, stats backend) | applied | error: the admin thread, which serves the page, runs no tcp-request rules |\n\
         | `bind ... accept-proxy` or `maxconn` on a stats listener | applied | error: the stats page reads no PROXY header and keeps no per-bind count (the other bind options apply) |\n\
         | a stats listener's `maxconn`, `timeout client` and logging, as inherited from `defaults` | applied to the page's connections | not applied: the admin thread serves the page with its own limits |\n\
         | `stats show-desc` without text | the global `description` | warning, ignored (sluice has no global `description`) |\n\
         | `stats auth` password with a NUL byte in the decoded credentials | compared up to the NUL | compared in full |\n\n",
    );
    s.push_str(
        "## Accepted and ignored, with a warning\n\n\
         Inert in sluice: HAProxy applies them only to TLS binds, TLS servers and HTTP proxies, \
         which sluice refuses (TLS health checks aside: with one, the server TLS defaults are \
         errors). Anywhere else they are errors.\n\n| section | keyword | why |\n|---|---|---|\n",
    );
    for (section, names, why) in INERT {
        for name in *names {
            let _ = writeln!(
                s,
                "| {section} | `{name}` | {} |",
                why.trim_start_matches("ignored: ")
            );
        }
    }
    s.push('\n');
    let tables = [
        ("global", "Global section"),
        (
            "proxy",
            "Proxy sections (defaults, frontend, listen, backend)",
        ),
        ("bind", "Bind options"),
        ("server", "Server and default-server options"),
    ];
    let all = registry();
    for (table, title) in tables {
        let _ = write!(
            s,
            "## {title}\n\n| keyword | arguments | sections | status | since | what it does |\n|---|---|---|---|---|---|\n"
        );
        for k in all.iter().filter(|k| k.table == table) {
            let status = match k.support {
                Support::Yes => "supported".to_string(),
                Support::Extension => "extension".to_string(),
                Support::No(_) => "not supported".to_string(),
            };
            let usage = if k.usage.is_empty() {
                String::new()
            } else {
                format!("`{}`", k.usage.replace('|', "\\|"))
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} | {} |",
                k.name,
                usage,
                scope_label(k.scope),
                status,
                if matches!(k.support, Support::No(_)) {
                    "-"
                } else {
                    k.since
                },
                k.doc.replace('|', "\\|")
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## Converters\n\n\
         In ACLs (`req.ssl_sni,lower -m end .example.com`) and in log-format `use_backend` \
         names (`use_backend %[req.ssl_sni,lower,map(/etc/haproxy/sni.map,web)]`): {}. A map \
         file holds `<key> <value>` lines; its values are strings. A `use_backend` name that \
         names no enabled tcp backend sends the connection to `default_backend`, as in \
         HAProxy.\n",
        crate::config::acl::CONVERTERS
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "## Everything else\n\n\
         Every other keyword of HAProxy 2.6 ({} global keywords, {} proxy keywords, {} options, \
         {} bind options, {} server options, {} sample fetches, {} converters, {} section kinds) \
         is refused as not supported by sluice; the census is in \
         `src/config/keywords/haproxy_known.rs`.",
        haproxy_known::GLOBAL.len(),
        haproxy_known::PROXY.len(),
        haproxy_known::PROXY_OPTIONS.len(),
        haproxy_known::BIND_OPTIONS.len(),
        haproxy_known::SERVER_OPTIONS.len(),
        haproxy_known::FETCHES.len(),
        haproxy_known::CONVERTERS.len(),
        haproxy_known::SECTIONS.len(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_names_are_unique_per_table() {
        let mut seen = HashSet::new();
        for k in registry() {
            assert!(
                seen.insert((k.table, k.name)),
                "duplicate keyword {} in {}",
                k.name,
                k.table
            );
            assert!(!k.doc.is_empty(), "keyword {} has no doc", k.name);
        }
    }

    #[test]
    fn every_supported_keyword_has_a_parser() {
        fn check<T>(t: &[KeywordSpec<T>]) {
            for k in t {
                let refused = matches!(k.support, Support::No(_));
                assert_eq!(k.parse.is_none(), refused, "keyword {}", k.name);
            }
        }
        check(global::KEYWORDS);
        check(proxy::KEYWORDS);
        check(bind::KEYWORDS);
        check(server::KEYWORDS);
    }

    #[test]
    fn scope_labels() {
        assert_eq!(scope_label(scope::GLOBAL), "global");
        assert_eq!(scope_label(scope::BE), "defaults,listen,backend");
    }
}
