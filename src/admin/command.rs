//! The runtime API's parser: one line from the stats socket -> the commands it holds, with
//! HAProxy 2.6's splitting rules, access levels and reply texts.
//!
//! A line holds commands separated by `;`; words are separated by spaces or tabs; a
//! backslash makes the next character literal (`\;`, `\ `, `\\`), and quotes mean nothing.
//! Unknown commands get HAProxy's usage message, with its fuzzy "maybe one of the following"
//! suggestions computed the same way (word fingerprints) over the commands sluice supports.
//! HAProxy commands that sluice does not implement get a reply that says so.
//!
//! Framing is the admin thread's: each reply here is a command's output, normally ending
//! with "\n"; the admin thread appends the empty line that ends every answer ("\n", or
//! "\n> " in prompt mode). A few of HAProxy's error texts have no final newline, so
//! their answer has no empty line either; they are kept that way on purpose.

use std::fmt::Write as _;

use crate::config::model::AccessLevel;

// ---------------------------------------------------------------------------------------------
// public API

/// Output flavour of `show stat` and `show info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// CSV for `show stat`, "Name: value" lines for `show info`.
    #[default]
    Plain,
    /// HAProxy's typed format (management.txt §9.2).
    Typed,
    Json,
}

/// What `show stat [{<iid>|<proxy>} <type> <sid>] [up|no-maint]` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFilter {
    /// The proxy selector, as typed: a proxy name, or a number (-1: every proxy). None
    /// without the three selector words; then `types` and `sid` are ignored.
    pub proxy: Option<String>,
    /// Object types as a mask: 1 frontends, 2 backends, 4 servers; -1 all.
    pub types: i32,
    /// Server id inside the proxy; -1 all.
    pub sid: i32,
    /// `up`: leave out servers that are down or in maintenance.
    pub up_only: bool,
    /// `no-maint`: leave out servers in maintenance.
    pub no_maint: bool,
}

impl Default for StatFilter {
    fn default() -> StatFilter {
        StatFilter {
            proxy: None,
            types: -1,
            sid: -1,
            up_only: false,
            no_maint: false,
        }
    }
}

/// `set server <b>/<s> state ready|drain|maint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Ready,
    Drain,
    Maint,
}

/// A weight as given to `set weight`: absolute (0..=256) or a percentage of the initial
/// weight (0..=25_600, the result capped at 256; see [`resolve_weight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Absolute(u32),
    Percent(u32),
}

/// One runtime API command. Backend, server and frontend names are as typed: a name, or
/// `#<id>` (see [`parse_ref`]); the admin thread looks them up and answers
/// [`reply::NO_SUCH_BACKEND`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help [<words>]`: the words filter the list (see [`help_reply`]).
    Help(Vec<String>),
    /// `show info [typed|json]` (`desc` and `float` are accepted and ignored).
    ShowInfo {
        format: OutputFormat,
    },
    /// `show stat [domain proxy] [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint]`.
    ShowStat {
        format: OutputFormat,
        filter: StatFilter,
    },
    /// `show servers state [<backend>]`.
    ShowServersState(Option<String>),
    DisableServer {
        backend: String,
        server: String,
    },
    EnableServer {
        backend: String,
        server: String,
    },
    SetServerState {
        backend: String,
        server: String,
        state: ServerState,
    },
    /// From `set server <b>/<s> weight <w>[%]` and `set weight <b>/<s> <w>[%]`.
    SetServerWeight {
        backend: String,
        server: String,
        weight: Weight,
    },
    GetWeight {
        backend: String,
        server: String,
    },
    /// `set maxconn server <b>/<s> <n>`; 0 means no limit (a negative value, which HAProxy
    /// accepts and which then limits nothing, also gives 0).
    SetMaxconnServer {
        backend: String,
        server: String,
        maxconn: u32,
    },
    ShutdownSessionsServer {
        backend: String,
        server: String,
    },
    DisableHealth {
        backend: String,
        server: String,
    },
    EnableHealth {
        backend: String,
        server: String,
    },
    DisableFrontend(String),
    EnableFrontend(String),
    /// `show table [<table> [<filter>]*]`: the words after `table`, as typed. HAProxy checks
    /// the table, the filters and the level in its own order (see `admin::table`), so
    /// the socket's level travels with the command.
    ShowTable {
        args: Vec<String>,
        level: AccessLevel,
    },
    /// `clear table <table> [<filter>]*`, like [`Command::ShowTable`].
    ClearTable {
        args: Vec<String>,
        level: AccessLevel,
    },
    /// Toggles interactive mode.
    Prompt,
    /// Closes the connection.
    Quit,
}

/// HAProxy's reply texts for the checks the admin thread makes (outputs, before the
/// answer-ending empty line).
pub mod reply {
    pub const PERMISSION_DENIED: &str = "Permission denied\n";
    pub const NO_SUCH_BACKEND: &str = "No such backend.\n";
    pub const NO_SUCH_SERVER: &str = "No such server.\n";
    pub const NO_SUCH_FRONTEND: &str = "No such frontend.\n";
    pub const NO_SUCH_PROXY: &str = "No such proxy.\n";
    pub const CANT_FIND_BACKEND: &str = "Can't find backend.\n";
    pub const FRONTEND_ALREADY_DISABLED: &str = "All sockets are already disabled.\n";
    pub const FRONTEND_ALREADY_ENABLED: &str = "All sockets are already enabled.\n";
    pub const HEALTH_NOT_CONFIGURED: &str =
        "Health check was not configured on this server, cannot enable.\n";
    /// `set weight` to a value other than 0 or the initial weight on a static algorithm
    /// (static-rr, hashes with `hash-type map-based`).
    pub const STATIC_LB_WEIGHT: &str =
        "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n";
}

/// The answer to `get weight`: `"<current> (initial <initial>)"`.
pub fn weight_reply(uweight: u32, iweight: u32) -> String {
    format!("{uweight} (initial {iweight})\n")
}

/// The absolute weight a [`Weight`] gives for a server whose initial weight is `iweight`,
/// as HAProxy computes it (a percentage of the initial weight, capped at 256).
pub fn resolve_weight(w: Weight, iweight: u32) -> u32 {
    match w {
        Weight::Absolute(w) => w,
        Weight::Percent(p) => (u64::from(iweight) * u64::from(p) / 100).min(256) as u32,
    }
}

/// How a command names a proxy or server: `#<id>` or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjRef<'a> {
    Id(i64),
    Name(&'a str),
}

/// Reads a name as HAProxy does: `#<number>` is an id, anything else a name.
pub fn parse_ref(s: &str) -> ObjRef<'_> {
    match s.strip_prefix('#') {
        Some(id) => ObjRef::Id(super::show::atoi(id)),
        None => ObjRef::Name(s),
    }
}

/// The lowest socket level that may run `cmd`. Reading is open to every level; changing
/// anything needs `admin`, as in HAProxy. `show table` and `clear table` are open to every
/// level here: they check for `operator` themselves, after their arguments, as HAProxy does.
pub fn required_level(cmd: &Command) -> AccessLevel {
    match cmd {
        Command::Help(_)
        | Command::ShowInfo { .. }
        | Command::ShowStat { .. }
        | Command::ShowServersState(_)
        | Command::GetWeight { .. }
        | Command::ShowTable { .. }
        | Command::ClearTable { .. }
        | Command::Prompt
        | Command::Quit => AccessLevel::User,
        Command::DisableServer { .. }
        | Command::EnableServer { .. }
        | Command::SetServerState { .. }
        | Command::SetServerWeight { .. }
        | Command::SetMaxconnServer { .. }
        | Command::ShutdownSessionsServer { .. }
        | Command::DisableHealth { .. }
        | Command::EnableHealth { .. }
        | Command::DisableFrontend(_)
        | Command::EnableFrontend(_) => AccessLevel::Admin,
    }
}

/// Splits `line` (without its newline) into commands and parses each one. An `Err` holds
/// the reply to print for that command. Levels are not checked; see [`parse_line_for`].
pub fn parse_line(line: &str) -> Vec<Result<Command, String>> {
    split_commands(line)
        .iter()
        .map(|words| parse_words(words, None))
        .collect()
}

/// [`parse_line`] for a socket at `level`: a command above the level answers
/// [`reply::PERMISSION_DENIED`] whatever its arguments, as in HAProxy.
pub fn parse_line_for(line: &str, level: AccessLevel) -> Vec<Result<Command, String>> {
    split_commands(line)
        .iter()
        .map(|words| parse_words(words, Some(level)))
        .collect()
}

/// HAProxy's `help` output restricted to the commands sluice supports. HAProxy 2.6 lists
/// the same commands at every level (the level is checked when a command runs).
pub fn help_text() -> String {
    usage(&[], true)
}

/// The answer to `help <words>`: the commands starting with those words, or the closest
/// ones.
pub fn help_reply(words: &[String]) -> String {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    usage(&words, true)
}

// ---------------------------------------------------------------------------------------------
// splitting

/// At most this many words per command, like HAProxy's MAX_CLI_ARGS.
const MAX_ARGS: usize = 64;

/// Splits a line into commands (on `;` not escaped) and each command into words (on
/// spaces and tabs not escaped), then removes the escapes.
fn split_commands(line: &str) -> Vec<Vec<String>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // A backslash takes the next character literally; a trailing one vanishes.
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                commands.push(std::mem::take(&mut words));
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    for words in &mut commands {
        words.truncate(MAX_ARGS);
    }
    commands
}

// ---------------------------------------------------------------------------------------------
// the keyword table

/// What a recognised keyword leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Help,
    Prompt,
    Quit,
    ShowInfo,
    ShowStat,
    ShowServersState,
    DisableServer,
    EnableServer,
    SetServer,
    SetWeight,
    GetWeight,
    SetMaxconnServer,
    ShutdownSessionsServer,
    DisableHealth,
    EnableHealth,
    DisableFrontend,
    EnableFrontend,
    ShowTable,
    ClearTable,
}

struct Keyword {
    words: &'static [&'static str],
    /// HAProxy's usage line (keyword column padded to 40); None for help/prompt/quit,
    /// which every usage message appends itself.
    usage: Option<&'static str>,
    level: AccessLevel,
    kind: Kind,
}

const fn kw(
    words: &'static [&'static str],
    usage: Option<&'static str>,
    level: AccessLevel,
    kind: Kind,
) -> Keyword {
    Keyword {
        words,
        usage,
        level,
        kind,
    }
}

use AccessLevel::{Admin, User};

/// The commands sluice supports, with HAProxy 2.6's usage lines ("set server" mentions only
/// what sluice can change).
const KEYWORDS: &[Keyword] = &[
    kw(&["help"], None, User, Kind::Help),
    kw(&["prompt"], None, User, Kind::Prompt),
    kw(&["quit"], None, User, Kind::Quit),
    kw(&["show", "info"], Some("show info [desc|json|typed|float]*      : report information about the running process"), User, Kind::ShowInfo),
    kw(&["show", "stat"], Some("show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server"), User, Kind::ShowStat),
    kw(
        &["show", "servers", "state"],
        Some("show servers state [<backend>]          : dump volatile server information (all or for a single backend)"),
        User,
        Kind::ShowServersState,
    ),
    kw(
        &["show", "table"],
        Some("show table <table> [<filter>]*          : report table usage stats or dump this table's contents (filter: data/key)"),
        User,
        Kind::ShowTable,
    ),
    kw(
        &["clear", "table"],
        Some("clear table <table> [<filter>]*         : remove an entry from a table (filter: data/key)"),
        User,
        Kind::ClearTable,
    ),
    kw(&["get", "weight"], Some("get weight <bk>/<srv>                   : report a server's current weight"), User, Kind::GetWeight),
    kw(
        &["disable", "server"],
        Some("disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)"),
        Admin,
        Kind::DisableServer,
    ),
    kw(
        &["enable", "server"],
        Some("enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)"),
        Admin,
        Kind::EnableServer,
    ),
    kw(&["disable", "health"], Some("disable health                          : disable health checks"), Admin, Kind::DisableHealth),
    kw(&["enable", "health"], Some("enable health                           : enable health checks"), Admin, Kind::EnableHealth),
    kw(
        &["disable", "frontend"],
        Some("disable frontend <frontend>             : temporarily disable specific frontend"),
        Admin,
        Kind::DisableFrontend,
    ),
    kw(&["enable", "frontend"], Some("enable frontend <frontend>              : re-enable specific frontend"), Admin, Kind::EnableFrontend),
    kw(&["set", "server"], Some("set server <bk>/<srv> [opts]            : change a server's state or weight"), Admin, Kind::SetServer),
    kw(
        &["set", "weight"],
        Some("set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)"),
        Admin,
        Kind::SetWeight,
    ),
    kw(
        &["set", "maxconn", "server"],
        Some("set maxconn server <bk>/<srv>           : change a server's maxconn setting"),
        Admin,
        Kind::SetMaxconnServer,
    ),
    kw(
        &["shutdown", "sessions", "server"],
        Some("shutdown sessions server <bk>/<srv>     : kill sessions on a server"),
        Admin,
        Kind::ShutdownSessionsServer,
    ),
];

/// HAProxy 2.6 commands sluice does not implement: recognised so that they get a clear
/// answer instead of a usage message.
const UNSUPPORTED: &[&[&str]] = &[
    &["abort", "ssl"],
    &["add", "acl"],
    &["add", "map"],
    &["add", "server"],
    &["add", "ssl"],
    &["clear", "acl"],
    &["clear", "counters"],
    &["clear", "map"],
    &["commit"],
    &["del", "acl"],
    &["del", "map"],
    &["del", "server"],
    &["del", "ssl"],
    &["disable", "agent"],
    &["disable", "dynamic-cookie"],
    &["enable", "agent"],
    &["enable", "dynamic-cookie"],
    &["experimental-mode"],
    &["expert-mode"],
    &["get", "acl"],
    &["get", "map"],
    &["get", "var"],
    &["new", "ssl"],
    &["operator"],
    &["prepare", "acl"],
    &["prepare", "map"],
    &["set", "dynamic-cookie-key"],
    &["set", "map"],
    &["set", "maxconn", "frontend"],
    &["set", "maxconn", "global"],
    &["set", "profiling"],
    &["set", "rate-limit"],
    &["set", "severity-output"],
    &["set", "ssl"],
    &["set", "table"],
    &["set", "timeout"],
    &["set", "var"],
    &["show", "acl"],
    &["show", "activity"],
    &["show", "backend"],
    &["show", "cache"],
    &["show", "cli"],
    &["show", "env"],
    &["show", "errors"],
    &["show", "events"],
    &["show", "fd"],
    &["show", "libs"],
    &["show", "map"],
    &["show", "peers"],
    &["show", "pools"],
    &["show", "profiling"],
    &["show", "resolvers"],
    &["show", "schema"],
    &["show", "servers", "conn"],
    &["show", "sess"],
    &["show", "ssl"],
    &["show", "startup-logs"],
    &["show", "tasks"],
    &["show", "threads"],
    &["show", "tls-keys"],
    &["show", "trace"],
    &["show", "version"],
    &["shutdown", "frontend"],
    &["shutdown", "session"],
    &["trace"],
    &["user"],
];

fn starts_with(words: &[String], prefix: &[&str]) -> bool {
    words.len() >= prefix.len() && words.iter().zip(prefix).all(|(w, p)| w == p)
}

// ---------------------------------------------------------------------------------------------
// parsing one command

fn parse_words(words: &[String], level: Option<AccessLevel>) -> Result<Command, String> {
    let found = KEYWORDS
        .iter()
        .filter(|k| starts_with(words, k.words))
        .max_by_key(|k| k.words.len());
    let Some(k) = found else {
        if let Some(u) = UNSUPPORTED.iter().find(|u| starts_with(words, u)) {
            return Err(format!("sluice does not support '{}'.\n", u.join(" ")));
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        return Err(usage(&words, false));
    };
    if let Some(level) = level {
        if level < k.level {
            return Err(reply::PERMISSION_DENIED.to_string());
        }
    }
    let args = &words[k.words.len()..];
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let cmd = match k.kind {
        Kind::Help => Command::Help(args.to_vec()),
        Kind::Prompt => Command::Prompt,
        Kind::Quit => Command::Quit,
        Kind::ShowInfo => Command::ShowInfo {
            format: formats(args),
        },
        Kind::ShowStat => parse_show_stat(args)?,
        Kind::ShowServersState => Command::ShowServersState(args.first().cloned()),
        Kind::GetWeight => {
            let (backend, server) = backend_server(arg(0))?;
            Command::GetWeight { backend, server }
        }
        Kind::DisableServer => {
            let (backend, server) = backend_server(arg(0))?;
            Command::DisableServer { backend, server }
        }
        Kind::EnableServer => {
            let (backend, server) = backend_server(arg(0))?;
            Command::EnableServer { backend, server }
        }
        Kind::DisableHealth => {
            let (backend, server) = backend_server(arg(0))?;
            Command::DisableHealth { backend, server }
        }
        Kind::EnableHealth => {
            let (backend, server) = backend_server(arg(0))?;
            Command::EnableHealth { backend, server }
        }
        Kind::ShutdownSessionsServer => {
            let (backend, server) = backend_server(arg(0))?;
            Command::ShutdownSessionsServer { backend, server }
        }
        Kind::DisableFrontend | Kind::EnableFrontend => {
            if arg(0).is_empty() {
                return Err("A frontend name is expected.\n".to_string());
            }
            let name = arg(0).to_string();
            if k.kind == Kind::DisableFrontend {
                Command::DisableFrontend(name)
            } else {
                Command::EnableFrontend(name)
            }
        }
        Kind::SetWeight => {
            let (backend, server) = backend_server(arg(0))?;
            Command::SetServerWeight {
                backend,
                server,
                weight: parse_weight(arg(1))?,
            }
        }
        Kind::SetMaxconnServer => {
            let (backend, server) = backend_server(arg(0))?;
            Command::SetMaxconnServer {
                backend,
                server,
                maxconn: parse_maxconn(arg(1))?,
            }
        }
        Kind::SetServer => parse_set_server(args)?,
        // Without a level (parse_line), everything is allowed.
        Kind::ShowTable => Command::ShowTable {
            args: args.to_vec(),
            level: level.unwrap_or(AccessLevel::Admin),
        },
        Kind::ClearTable => Command::ClearTable {
            args: args.to_vec(),
            level: level.unwrap_or(AccessLevel::Admin),
        },
    };
    Ok(cmd)
}

/// The last of `typed`/`json` wins, as in HAProxy; other words are ignored.
fn formats(args: &[String]) -> OutputFormat {
    let mut format = OutputFormat::Plain;
    for a in args {
        match a.as_str() {
            "typed" => format = OutputFormat::Typed,
            "json" => format = OutputFormat::Json,
            _ => {}
        }
    }
    format
}

fn parse_show_stat(mut args: &[String]) -> Result<Command, String> {
    if args.first().map(String::as_str) == Some("domain") {
        if args.get(1).map(String::as_str) != Some("proxy") {
            return Err("Invalid statistics domain.\n".to_string());
        }
        args = &args[2..];
    }
    let mut filter = StatFilter::default();
    // Three words select a proxy, object types and a server, whatever they look like.
    if args.len() >= 3 {
        filter.proxy = Some(args[0].clone());
        filter.types = clamp_i32(super::show::atoi(&args[1]));
        filter.sid = clamp_i32(super::show::atoi(&args[2]));
        args = &args[3..];
    }
    for a in args {
        match a.as_str() {
            "up" => filter.up_only = true,
            "no-maint" => filter.no_maint = true,
            _ => {}
        }
    }
    Ok(Command::ShowStat {
        format: formats(args),
        filter,
    })
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `<backend>/<server>`, split at the first slash.
fn backend_server(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('/') {
        Some((b, s)) => Ok((b.to_string(), s.to_string())),
        None => Err("Require 'backend/server'.\n".to_string()),
    }
}

const SET_SERVER_USAGE: &str = "usage: set server <backend>/<server> state | weight\n";

/// `set server` options HAProxy has and sluice does not.
const SET_SERVER_UNSUPPORTED: &[&str] = &[
    "addr",
    "agent",
    "agent-addr",
    "agent-port",
    "agent-send",
    "check-addr",
    "check-port",
    "fqdn",
    "health",
    "ssl",
];

fn parse_set_server(args: &[String]) -> Result<Command, String> {
    let (backend, server) = backend_server(args.first().map_or("", String::as_str))?;
    let value = args.get(2).map_or("", String::as_str);
    match args.get(1).map(String::as_str) {
        Some("state") => {
            let state = match value {
                "ready" => ServerState::Ready,
                "drain" => ServerState::Drain,
                "maint" => ServerState::Maint,
                _ => {
                    return Err(
                        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
                            .to_string(),
                    )
                }
            };
            Ok(Command::SetServerState {
                backend,
                server,
                state,
            })
        }
        Some("weight") => Ok(Command::SetServerWeight {
            backend,
            server,
            weight: parse_weight(value)?,
        }),
        Some(opt) if SET_SERVER_UNSUPPORTED.contains(&opt) => Err(format!(
            "sluice does not support 'set server <srv> {opt}'.\n"
        )),
        _ => Err(SET_SERVER_USAGE.to_string()),
    }
}

/// C's strtol on a decimal string: the value (saturated) and the unparsed rest, or None
/// when no digit was found.
fn strtol(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for b in body[..digits].bytes() {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    Some((if neg { -n } else { n }, &body[digits..]))
}

/// HAProxy's server_parse_weight_change_request(), texts included (two of them have no
/// final newline in HAProxy, and keep none here).
fn parse_weight(s: &str) -> Result<Weight, String> {
    if s.is_empty() {
        return Err("Require <weight> or <weight%>.\n".to_string());
    }
    let Some((w, rest)) = strtol(s) else {
        return Err("Empty weight string empty or preceded by garbage".to_string());
    };
    if rest == "%" {
        if w < 0 {
            return Err("Relative weight must be positive.\n".to_string());
        }
        return Ok(Weight::Percent(w.min(25_600) as u32));
    }
    if !(0..=256).contains(&w) {
        return Err("Absolute weight can only be between 0 and 256 inclusive.\n".to_string());
    }
    if !rest.is_empty() {
        return Err("Trailing garbage in weight string".to_string());
    }
    Ok(Weight::Absolute(w as u32))
}

/// HAProxy's server_parse_maxconn_change_request().
fn parse_maxconn(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Err("Require <maxconn>.\n".to_string());
    }
    let Some((v, rest)) = strtol(s) else {
        return Err("maxconn string empty or preceded by garbage".to_string());
    };
    if !rest.is_empty() {
        return Err("Trailing garbage in maxconn string".to_string());
    }
    Ok(v.clamp(0, i64::from(u32::MAX)) as u32)
}

// ---------------------------------------------------------------------------------------------
// usage messages (HAProxy's cli_gen_usage_msg)

/// At most this many words of a command are compared, and this many fuzzy matches kept.
const PREFIX_WORDS: usize = 5;
const MAX_MATCHES: usize = 5;

/// HAProxy's usage message: for `help` (`is_help`) or an unknown command `args`, the
/// commands that share its first words, or the closest ones by word fingerprint, sorted,
/// then help/prompt/quit.
fn usage(args: &[&str], is_help: bool) -> String {
    // How many leading words some keyword matches exactly.
    let mut length = 0;
    for k in KEYWORDS {
        let n = k
            .words
            .iter()
            .zip(args)
            .take(PREFIX_WORDS)
            .take_while(|(w, a)| w == a)
            .count();
        length = length.max(n);
    }
    let mut out = String::new();
    if is_help {
        out.push_str("The following commands are valid at this level:\n");
    } else if length == 0 && args.first().map_or(true, |a| a.is_empty()) {
        out.push_str("Unknown command. Please enter one of the following commands only:\n");
    } else {
        out.push_str("Unknown command, but maybe one of the following ones is a better match:\n");
    }

    let prefix_ok = |k: &Keyword| {
        k.words.len() >= length && k.words[..length].iter().zip(args).all(|(w, a)| w == a)
    };

    // Fuzzy matches on the words after the common prefix, best first, ties in table order.
    let mut matches: Vec<(usize, &Keyword)> = Vec::new();
    if args.get(length).is_some_and(|a| !a.is_empty()) {
        for k in KEYWORDS
            .iter()
            .filter(|k| k.usage.is_some() && prefix_ok(k))
        {
            let rest_args = &args[length..args.len().min(PREFIX_WORDS)];
            let rest_kw = &k.words[length.min(k.words.len())..k.words.len().min(PREFIX_WORDS)];
            let totlen: usize = rest_args.iter().map(|w| w.len()).sum::<usize>()
                + rest_kw.iter().map(|w| w.len()).sum::<usize>();
            let dist = fingerprint_distance(&fingerprint(rest_args), &fingerprint(rest_kw));
            let worst = if matches.len() < MAX_MATCHES {
                usize::MAX
            } else {
                matches[MAX_MATCHES - 1].0
            };
            if dist < 5 * totlen / 2 && dist < worst {
                let at = matches
                    .iter()
                    .position(|(d, _)| *d > dist)
                    .unwrap_or(matches.len());
                matches.insert(at, (dist, k));
                matches.truncate(MAX_MATCHES);
            }
        }
    }

    let mut entries: Vec<&'static str> = Vec::new();
    if let Some(&(best, _)) = matches.first() {
        // Stop at candidates far worse than the best one.
        entries.extend(
            matches
                .iter()
                .take_while(|(d, _)| *d <= 5 * best / 2)
                .filter_map(|(_, k)| k.usage),
        );
    } else {
        entries.extend(
            KEYWORDS
                .iter()
                .filter(|k| prefix_ok(k))
                .filter_map(|k| k.usage),
        );
    }
    entries.sort_unstable();
    for e in entries {
        let _ = writeln!(out, "  {e}");
    }
    out.push_str(
        "  help [<command>]                        : list matching or all commands\n\
         \x20 prompt                                  : toggle interactive mode with prompt\n\
         \x20 quit                                    : disconnect\n",
    );
    out
}

/// HAProxy's word fingerprint: counts of character-class transitions (1..=26 letters,
/// 27 digits, 28 anything else and the word's ends), plus the classes present.
fn fingerprint(words: &[&str]) -> Vec<u8> {
    let mut fp = vec![0u8; 1024];
    for w in words {
        let mut from = 28;
        for c in w.bytes() {
            let to = match c.to_ascii_lowercase() {
                c @ b'a'..=b'z' => usize::from(c - b'a') + 1,
                b'0'..=b'9' => 27,
                _ => 28,
            };
            fp[to] = 1;
            fp[32 * from + to] = fp[32 * from + to].wrapping_add(1);
            from = to;
        }
        fp[32 * from + 28] = fp[32 * from + 28].wrapping_add(1);
    }
    fp
}

fn fingerprint_distance(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .map(|(x, y)| usize::from(x.abs_diff(*y)))
        .sum()
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Command, String> {
        let mut v = parse_line(line);
        assert_eq!(v.len(), 1, "{line:?} gave {v:?}");
        v.remove(0)
    }

    fn bs(b: &str, s: &str) -> (String, String) {
        (b.to_string(), s.to_string())
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(one("help"), Ok(Command::Help(vec![])));
        assert_eq!(
            one("help show stat"),
            Ok(Command::Help(vec!["show".into(), "stat".into()]))
        );
        assert_eq!(one("prompt"), Ok(Command::Prompt));
        assert_eq!(one("quit"), Ok(Command::Quit));
        assert_eq!(
            one("show info"),
            Ok(Command::ShowInfo {
                format: OutputFormat::Plain
            })
        );
        assert_eq!(
            one("show info typed"),
            Ok(Command::ShowInfo {
                format: OutputFormat::Typed
            })
        );
        assert_eq!(
            one("show info json desc"),
            Ok(Command::ShowInfo {
                format: OutputFormat::Json
            })
        );
        assert_eq!(
            one("show stat"),
            Ok(Command::ShowStat {
                format: OutputFormat::Plain,
                filter: StatFilter::default()
            })
        );
        assert_eq!(
            one("show stat typed json"),
            Ok(Command::ShowStat {
                format: OutputFormat::Json,
                filter: StatFilter::default()
            })
        );
        assert_eq!(
            one("show servers state"),
            Ok(Command::ShowServersState(None))
        );
        assert_eq!(
            one("show servers state be_app extra"),
            Ok(Command::ShowServersState(Some("be_app".into())))
        );
        let (backend, server) = bs("be", "s1");
        assert_eq!(
            one("get weight be/s1"),
            Ok(Command::GetWeight {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        assert_eq!(
            one("disable server be/s1"),
            Ok(Command::DisableServer {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        assert_eq!(
            one("enable server be/s1"),
            Ok(Command::EnableServer {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        assert_eq!(
            one("disable health be/s1"),
            Ok(Command::DisableHealth {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        assert_eq!(
            one("enable health be/s1"),
            Ok(Command::EnableHealth {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        assert_eq!(
            one("shutdown sessions server be/s1"),
            Ok(Command::ShutdownSessionsServer {
                backend: backend.clone(),
                server: server.clone()
            })
        );
        for (word, state) in [
            ("ready", ServerState::Ready),
            ("drain", ServerState::Drain),
            ("maint", ServerState::Maint),
        ] {
            assert_eq!(
                one(&format!("set server be/s1 state {word}")),
                Ok(Command::SetServerState {
                    backend: backend.clone(),
                    server: server.clone(),
                    state
                })
            );
        }
        assert_eq!(
            one("set server be/s1 weight 50%"),
            Ok(Command::SetServerWeight {
                backend: backend.clone(),
                server: server.clone(),
                weight: Weight::Percent(50)
            })
        );
        assert_eq!(
            one("set weight be/s1 7"),
            Ok(Command::SetServerWeight {
                backend: backend.clone(),
                server: server.clone(),
                weight: Weight::Absolute(7)
            })
        );
        assert_eq!(
            one("set maxconn server be/s1 20"),
            Ok(Command::SetMaxconnServer {
                backend: backend.clone(),
                server: server.clone(),
                maxconn: 20
            })
        );
        assert_eq!(
            one("disable frontend fe"),
            Ok(Command::DisableFrontend("fe".into()))
        );
        assert_eq!(
            one("enable frontend #2"),
            Ok(Command::EnableFrontend("#2".into()))
        );
    }

    #[test]
    fn show_stat_selectors_follow_haproxy() {
        let Ok(Command::ShowStat { format, filter }) = one("show stat -1 4 -1 typed") else {
            panic!()
        };
        assert_eq!(format, OutputFormat::Typed);
        assert_eq!(
            filter,
            StatFilter {
                proxy: Some("-1".into()),
                types: 4,
                sid: -1,
                up_only: false,
                no_maint: false
            }
        );
        let Ok(Command::ShowStat { filter, .. }) = one("show stat domain proxy be 2 -1 up") else {
            panic!()
        };
        assert_eq!(filter.proxy.as_deref(), Some("be"));
        assert!(filter.up_only);
        // Two words are not a selector: ignored, like unknown flags.
        let Ok(Command::ShowStat { filter, .. }) = one("show stat 3 x") else {
            panic!()
        };
        assert_eq!(filter, StatFilter::default());
        // Three words are one, whatever they look like (HAProxy then finds no proxy "up").
        let Ok(Command::ShowStat { filter, .. }) = one("show stat up typed no-maint") else {
            panic!()
        };
        assert_eq!(filter.proxy.as_deref(), Some("up"));
        assert!(!filter.no_maint);
        assert_eq!(
            one("show stat domain dns"),
            Err("Invalid statistics domain.\n".into())
        );
    }

    #[test]
    fn error_texts_are_haproxys() {
        assert_eq!(
            one("disable server"),
            Err("Require 'backend/server'.\n".into())
        );
        assert_eq!(
            one("get weight be_app"),
            Err("Require 'backend/server'.\n".into())
        );
        assert_eq!(
            one("set server be/s1 state"),
            Err("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into())
        );
        assert_eq!(
            one("set server be/s1 state foo"),
            Err("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into())
        );
        assert_eq!(
            one("set server be/s1 weight"),
            Err("Require <weight> or <weight%>.\n".into())
        );
        assert_eq!(
            one("set server be/s1 weight abc"),
            Err("Empty weight string empty or preceded by garbage".into())
        );
        assert_eq!(
            one("set server be/s1 weight 300"),
            Err("Absolute weight can only be between 0 and 256 inclusive.\n".into())
        );
        assert_eq!(
            one("set weight be/s1 -1"),
            Err("Absolute weight can only be between 0 and 256 inclusive.\n".into())
        );
        assert_eq!(
            one("set weight be/s1 -5%"),
            Err("Relative weight must be positive.\n".into())
        );
        assert_eq!(
            one("set weight be/s1 5abc"),
            Err("Trailing garbage in weight string".into())
        );
        assert_eq!(
            one("set weight be/s1 5%x"),
            Err("Trailing garbage in weight string".into())
        );
        assert_eq!(
            one("set maxconn server be/s1"),
            Err("Require <maxconn>.\n".into())
        );
        assert_eq!(
            one("set maxconn server be/s1 abc"),
            Err("maxconn string empty or preceded by garbage".into())
        );
        assert_eq!(
            one("set maxconn server be/s1 5x"),
            Err("Trailing garbage in maxconn string".into())
        );
        assert_eq!(
            one("disable frontend"),
            Err("A frontend name is expected.\n".into())
        );
        assert_eq!(one("set server be/s1 foo"), Err(SET_SERVER_USAGE.into()));
        assert_eq!(
            one("set server be/s1 fqdn x"),
            Err("sluice does not support 'set server <srv> fqdn'.\n".into())
        );
        assert_eq!(
            one("show sess"),
            Err("sluice does not support 'show sess'.\n".into())
        );
    }

    #[test]
    fn weights_and_maxconn_read_like_strtol() {
        assert_eq!(parse_weight("  +3"), Ok(Weight::Absolute(3)));
        assert_eq!(parse_weight("256"), Ok(Weight::Absolute(256)));
        assert_eq!(parse_weight("0%"), Ok(Weight::Percent(0)));
        assert_eq!(
            parse_weight("99999999999999999999999%"),
            Ok(Weight::Percent(25_600))
        );
        assert_eq!(resolve_weight(Weight::Percent(300), 10), 30);
        assert_eq!(resolve_weight(Weight::Percent(25_600), 200), 256);
        assert_eq!(resolve_weight(Weight::Percent(50), 1), 0);
        assert_eq!(parse_maxconn("-5"), Ok(0));
        assert_eq!(parse_maxconn("99999999999"), Ok(u32::MAX));
        assert_eq!(weight_reply(3, 1), "3 (initial 1)\n");
    }

    #[test]
    fn semicolons_and_backslashes() {
        let v = parse_line("get weight a/b ; get weight c/d");
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            Ok(Command::GetWeight {
                backend: "c".into(),
                server: "d".into()
            })
        );
        // An escaped semicolon stays in the word.
        assert_eq!(
            parse_line(r"get weight a/b\;x"),
            vec![Ok(Command::GetWeight {
                backend: "a".into(),
                server: "b;x".into()
            })]
        );
        // An escaped backslash does not escape the semicolon after it.
        let v = parse_line(r"get weight a/b\\;quit");
        assert_eq!(
            v,
            vec![
                Ok(Command::GetWeight {
                    backend: "a".into(),
                    server: r"b\".into()
                }),
                Ok(Command::Quit)
            ]
        );
        // An escaped space joins words; a trailing backslash vanishes; quotes are plain.
        assert!(
            matches!(&parse_line(r"get\ weight a/b")[0], Err(e) if e.starts_with("Unknown command, but"))
        );
        assert_eq!(
            parse_line(r"get weight a/b\"),
            vec![Ok(Command::GetWeight {
                backend: "a".into(),
                server: "b".into()
            })]
        );
        assert_eq!(
            parse_line(r#"get weight "a/b""#),
            vec![Ok(Command::GetWeight {
                backend: "\"a".into(),
                server: "b\"".into()
            })]
        );
        assert_eq!(
            parse_line("  get \t weight   a/b  \r"),
            vec![Ok(Command::GetWeight {
                backend: "a".into(),
                server: "b".into()
            })]
        );
        // Empty commands get the full usage message, as in HAProxy.
        let v = parse_line("quit;;");
        assert_eq!(v.len(), 3);
        assert!(
            matches!(&v[1], Err(e) if e.starts_with("Unknown command. Please enter one of the following commands only:\n"))
        );
        assert!(
            matches!(&parse_line("")[0], Err(e) if e.starts_with("Unknown command. Please enter"))
        );
    }

    #[test]
    fn levels_are_checked_before_arguments() {
        assert_eq!(
            parse_line_for("disable server", AccessLevel::User),
            vec![Err(reply::PERMISSION_DENIED.to_string())]
        );
        assert_eq!(
            parse_line_for("set weight be/s1 2", AccessLevel::Operator),
            vec![Err(reply::PERMISSION_DENIED.to_string())]
        );
        assert_eq!(
            parse_line_for("get weight be/s1", AccessLevel::User),
            vec![Ok(Command::GetWeight {
                backend: "be".into(),
                server: "s1".into()
            })]
        );
        assert!(parse_line_for("disable frontend fe", AccessLevel::Admin)[0].is_ok());
        for line in [
            "show stat",
            "show info",
            "show servers state",
            "help",
            "prompt",
            "quit",
        ] {
            let cmd = one(line).unwrap();
            assert_eq!(required_level(&cmd), AccessLevel::User, "{line}");
        }
        for line in [
            "disable server b/s",
            "enable server b/s",
            "set server b/s state drain",
            "set weight b/s 1",
            "set maxconn server b/s 1",
            "shutdown sessions server b/s",
            "disable health b/s",
            "enable health b/s",
            "disable frontend f",
            "enable frontend f",
        ] {
            let cmd = one(line).unwrap();
            assert_eq!(required_level(&cmd), AccessLevel::Admin, "{line}");
        }
    }

    #[test]
    fn usage_messages() {
        let help = help_text();
        assert!(help.starts_with(
            "The following commands are valid at this level:\n  clear table <table> "
        ));
        assert!(help.ends_with("  quit                                    : disconnect\n"));
        assert_eq!(help.lines().count(), 1 + 16 + 3);
        // Every usage line keeps HAProxy's 40-column keyword field.
        for line in help.lines().skip(1) {
            assert_eq!(line.as_bytes()[42], b':', "{line}");
        }
        let show = help_reply(&["show".to_string()]);
        assert_eq!(show.lines().filter(|l| l.starts_with("  show ")).count(), 4);
        let e = one("shw stat").unwrap_err();
        assert!(e.starts_with("Unknown command, but maybe one of the following ones is a better match:\n  show stat"), "{e}");
        let e = one("get weigth a/b").unwrap_err();
        assert!(e.contains("  get weight <bk>/<srv>"), "{e}");
        let e = one("enable srv a/b").unwrap_err();
        assert!(e.contains("  enable server "), "{e}");
        // A prefix of a known command lists the commands under it.
        let e = one("disable").unwrap_err();
        assert_eq!(
            e.lines().filter(|l| l.starts_with("  disable ")).count(),
            3,
            "{e}"
        );
        // Far from everything: the least unlikely few (HAProxy lists more, from more
        // commands).
        let e = one("zzzzzzzzzzzzzzzzzzzz").unwrap_err();
        assert!(e.starts_with("Unknown command, but maybe"), "{e}");
        assert!(e.lines().count() <= 1 + 5 + 3, "{e}");
    }

    #[test]
    fn table_commands_carry_their_words_and_the_level() {
        assert_eq!(
            one("show table"),
            Ok(Command::ShowTable {
                args: vec![],
                level: AccessLevel::Admin
            })
        );
        // Open at every level: `admin::table` checks for operator after the arguments.
        assert_eq!(
            parse_line_for("clear table fe key 10.0.0.1", AccessLevel::User),
            vec![Ok(Command::ClearTable {
                args: vec!["fe".into(), "key".into(), "10.0.0.1".into()],
                level: AccessLevel::User
            })]
        );
        assert_eq!(
            parse_line_for("show table fe", AccessLevel::Operator),
            vec![Ok(Command::ShowTable {
                args: vec!["fe".into()],
                level: AccessLevel::Operator
            })]
        );
        let help = help_text();
        assert!(help.contains("\n  clear table <table> [<filter>]*         : remove an entry from a table (filter: data/key)\n"));
        assert!(help.contains("\n  show table <table> [<filter>]*          : report table usage stats or dump this table's contents (filter: data/key)\n"));
    }

    #[test]
    fn refs() {
        assert_eq!(parse_ref("#12"), ObjRef::Id(12));
        assert_eq!(parse_ref("#x"), ObjRef::Id(0));
        assert_eq!(parse_ref("be_app"), ObjRef::Name("be_app"));
    }

    #[test]
    fn random_input_never_panics() {
        // A small xorshift generator: deterministic, no dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 /;\\%#-+\t\"'\r\n\x00\xff";
        let words = [
            "show", "stat", "info", "servers", "state", "set", "server", "weight", "maxconn",
            "disable", "enable", "health", "frontend", "help", "get", "shutdown", "sessions",
            "prompt", "quit", "be/s1", "state", "drain", "-1", "4", "typed",
        ];
        for round in 0..20_000 {
            let mut bytes = Vec::new();
            let len = (x % 40) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if round % 2 == 0 && x % 3 == 0 {
                    bytes.extend_from_slice(words[(x >> 8) as usize % words.len()].as_bytes());
                    bytes.push(b' ');
                } else {
                    bytes.push(alphabet[(x >> 8) as usize % alphabet.len()]);
                }
            }
            let line = String::from_utf8_lossy(&bytes);
            for level in [AccessLevel::User, AccessLevel::Operator, AccessLevel::Admin] {
                for r in parse_line_for(&line, level) {
                    if let Err(e) = r {
                        assert!(
                            !e.contains("\n\n"),
                            "an empty line would end the answer early: {e:?}"
                        );
                    }
                }
            }
        }
    }
}
