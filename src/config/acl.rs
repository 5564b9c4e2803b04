//! ACLs and conditions (configuration.txt §7) for tcp mode: sample fetches, match flags
//! (`-i`, `-f <file>`, `-m <method>`, `--`), patterns (IPv4/IPv6 networks, integers and
//! ranges with operators, strings, hex, regular expressions), and `if|unless` conditions with
//! `!`, implicit AND, `||` and anonymous `{ ... }` ACLs. Called by `validate.rs`, which knows
//! every backend and stick table by then.

use std::collections::HashMap;

use super::error::Span;
use super::keywords::values::{parse_hex, parse_net, split_call_args};
use super::lexer::Word;
use super::model::{
    Acl, AclRef, AclTerm, BackendId, CondTerm, Condition, Conv, Fetch, GpcOp, MapFile, MatchMethod,
    Mode, NamePart, Pattern, SampleExpr, TableRef,
};

/// What ACL compilation may refer to.
pub struct AclCtx<'a> {
    pub backends: &'a HashMap<String, BackendId>,
    /// Proxies that declare a stick-table, by name.
    pub tables: &'a HashMap<String, TableRef>,
    /// This proxy's own stick table, if it declares one.
    pub own_table: Option<TableRef>,
    pub mode: Mode,
    /// This proxy's own backend side, for `be_conn`/`connslots` without argument.
    pub own_backend: Option<BackendId>,
}

/// The converters sluice applies (see `parse_conv`).
pub const CONVERTERS: &[&str] = &[
    "lower", "upper", "ipmask", "map", "map_str", "map_beg", "map_sub", "map_dir", "map_dom",
    "map_end", "map_reg", "map_ip", "map_int",
];

/// Fetches known to HAProxy that sluice does not implement give this rather than "unknown".
fn unsupported_fetch(name: &str) -> bool {
    use super::keywords::haproxy_known::{ACL_KEYWORDS, FETCHES};
    FETCHES.contains(&name) || ACL_KEYWORDS.contains(&name)
}

/// Every fetch a condition uses, with the fetch as written (named ACLs resolved).
pub fn cond_fetch_names<'a>(cond: &'a Condition, acls: &'a [Acl]) -> Vec<(&'a Fetch, &'a str)> {
    let mut out = Vec::new();
    for term in cond.any_of.iter().flatten() {
        match &term.acl {
            AclRef::Inline(t) => out.push((&t.fetch, t.fetch_name.as_str())),
            AclRef::Named(i) => out.extend(
                acls[*i]
                    .terms
                    .iter()
                    .map(|t| (&t.fetch, t.fetch_name.as_str())),
            ),
        }
    }
    out
}

/// Parses one `acl <name> <fetch> [flags] [patterns]` line (words after `acl`).
pub fn compile_acl_line(
    words: &[Word],
    span: &Span,
    ctx: &AclCtx<'_>,
) -> Result<(String, AclTerm), String> {
    let name = &words[0].text;
    if let Some(c) = super::ast::invalid_name_char(name) {
        return Err(format!(
            "character '{c}' is not permitted in ACL name '{name}'"
        ));
    }
    let term = compile_term(&words[1..], span, ctx)?;
    Ok((name.clone(), term))
}

/// Parses `<fetch> [flags] [patterns]`.
pub fn compile_term(words: &[Word], span: &Span, ctx: &AclCtx<'_>) -> Result<AclTerm, String> {
    let fetch_text = words
        .first()
        .map(|w| w.text.as_str())
        .ok_or("expects a sample fetch")?;
    let (SampleExpr { fetch, convs }, default_method) = parse_sample(fetch_text, ctx)?;
    let mut method = default_method;
    let mut ignore_case = false;
    let mut files = Vec::new();
    let mut i = 1;
    while let Some(w) = words.get(i) {
        let w = w.text.as_str();
        if !w.starts_with('-') || w.len() < 2 || w.as_bytes()[1].is_ascii_digit() {
            break;
        }
        i += 1;
        match w {
            "--" => break,
            "-i" => ignore_case = true,
            "-f" => {
                let f = words.get(i).ok_or("'-f' expects a file name")?;
                files.push(f.text.clone());
                i += 1;
            }
            "-m" => {
                let m = words.get(i).ok_or("'-m' expects a match method")?;
                method = parse_method(&m.text)?;
                i += 1;
            }
            "-n" | "-M" | "-u" => return Err(format!("ACL flag '{w}' is not supported by sluice")),
            f => {
                return Err(format!(
                    "unknown ACL flag '{f}' (-i, -f <file>, -m <method>, --)"
                ))
            }
        }
    }
    check_method(default_method == MatchMethod::Ip, fetch_text, method)?;
    let mut texts: Vec<String> = words[i..].iter().map(|w| w.text.clone()).collect();
    for f in &files {
        let body = read_pattern_file(f)?;
        texts.extend(
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let patterns = parse_patterns(&texts, method, &fetch)?;
    if matches!(method, MatchMethod::Found | MatchMethod::Bool) && !patterns.is_empty() {
        return Err(format!(
            "match method '{}' takes no pattern",
            method_name(method)
        ));
    }
    Ok(AclTerm {
        span: span.clone(),
        fetch,
        convs,
        fetch_name: fetch_text.to_string(),
        method,
        ignore_case,
        patterns,
    })
}

/// Pattern files are regular files of bounded size (never a device or a FIFO).
fn read_pattern_file(f: &str) -> Result<String, String> {
    const MAX: u64 = 64 << 20;
    let meta =
        std::fs::metadata(f).map_err(|e| format!("failed to open pattern file '{f}': {e}"))?;
    if !meta.is_file() {
        return Err(format!("pattern file '{f}' is not a regular file"));
    }
    if meta.len() > MAX {
        return Err(format!("pattern file '{f}' is larger than 64 MiB"));
    }
    let bytes = std::fs::read(f).map_err(|e| format!("failed to open pattern file '{f}': {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `get_gpc0`, `inc_gpc1`, `clr_gpc0`, `gpc1_rate`...: the counter and the operation.
fn gpc_fetch(rest: &str) -> Option<(u8, GpcOp)> {
    let (op, idx) = match rest.split_once("_gpc") {
        Some(("get", i)) => (GpcOp::Get, i),
        Some(("inc", i)) => (GpcOp::Inc, i),
        Some(("clr", i)) => (GpcOp::Clr, i),
        _ => (
            GpcOp::Rate,
            rest.strip_prefix("gpc")?.strip_suffix("_rate")?,
        ),
    };
    match idx {
        "0" => Some((0, op)),
        "1" => Some((1, op)),
        _ => None,
    }
}

/// Splits `fetch(args),conv(args),conv` at the commas outside parentheses.
fn split_sample(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses `<fetch>[,<converter>...]`: the expression, and the match method its value
/// takes by default (`ip` for an address, `str` for a string, ...).
pub fn parse_sample(s: &str, ctx: &AclCtx<'_>) -> Result<(SampleExpr, MatchMethod), String> {
    let parts = split_sample(s);
    let (fetch, mut method) = parse_fetch(parts[0], ctx)?;
    let mut convs = Vec::new();
    for c in &parts[1..] {
        let (conv, out) = parse_conv(c, method)?;
        convs.push(conv);
        method = out;
    }
    Ok((SampleExpr { fetch, convs }, method))
}

/// Parses one converter applied to a value whose default match method is `input`; returns
/// it and the default match method of its output.
fn parse_conv(s: &str, input: MatchMethod) -> Result<(Conv, MatchMethod), String> {
    use MatchMethod as M;
    let (name, args) = split_call_args(s)?;
    let stringy = !matches!(input, M::Bool | M::Found);
    let need = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "converter '{name}' expects {what}, not the {} value before it",
                method_name(input)
            ))
        }
    };
    let no_args = |c: Conv, out| {
        if args.is_empty() {
            Ok((c, out))
        } else {
            Err(format!("converter '{name}' takes no argument"))
        }
    };
    match name {
        "lower" | "upper" => {
            need(stringy, "a string")?;
            no_args(
                if name == "lower" {
                    Conv::Lower
                } else {
                    Conv::Upper
                },
                M::Str,
            )
        }
        "ipmask" => {
            need(matches!(input, M::Ip | M::Str), "an address")?;
            let prefix = |t: &str, max: u8| -> Result<u8, String> {
                match t.parse::<u8>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => match t.parse::<std::net::Ipv4Addr>() {
                        Ok(m)
                            if max == 32
                                && u32::from(m).leading_ones() == u32::from(m).count_ones() =>
                        {
                            Ok(u32::from(m).count_ones() as u8)
                        }
                        _ => Err(format!("invalid mask '{t}' in converter 'ipmask'")),
                    },
                }
            };
            let (v4, v6) = match args.as_slice() {
                [a] => (prefix(a, 32)?, 128),
                [a, b] => (prefix(a, 32)?, prefix(b, 128)?),
                _ => return Err("converter 'ipmask' expects (<mask4>[,<mask6>])".to_string()),
            };
            Ok((Conv::Ipmask { v4, v6 }, M::Ip))
        }
        n if n == "map" || n.starts_with("map_") => {
            let method = match n.strip_prefix("map").unwrap_or("") {
                "" | "_str" => M::Str,
                "_beg" => M::Beg,
                "_end" => M::End,
                "_sub" => M::Sub,
                "_dir" => M::Dir,
                "_dom" => M::Dom,
                "_reg" => M::Reg,
                "_ip" => M::Ip,
                "_int" => M::Int,
                _ => {
                    return Err(format!(
                        "converter '{n}' is not supported by sluice (supported: {})",
                        CONVERTERS.join(", ")
                    ))
                }
            };
            need(
                match method {
                    M::Ip => matches!(input, M::Ip | M::Str),
                    M::Int => matches!(input, M::Int | M::Str),
                    _ => stringy,
                },
                "a value it can look up",
            )?;
            let (file, default) = match args.as_slice() {
                [f] => (*f, None),
                [f, d] => (*f, Some(d.to_string())),
                _ => return Err(format!("converter '{n}' expects (<map file>[,<default>])")),
            };
            let map = load_map(file, method)?;
            Ok((
                Conv::Map {
                    map: std::sync::Arc::new(map),
                    default,
                },
                M::Str,
            ))
        }
        n if super::keywords::haproxy_known::CONVERTERS.contains(&n) => Err(format!(
            "converter '{n}' is not supported by sluice (supported: {})",
            CONVERTERS.join(", ")
        )),
        n => Err(format!("unknown converter '{n}'")),
    }
}

/// Loads a map file: one `<key> <value>` per line (the value is the rest of the line),
/// blank lines and `#` comments skipped, keys parsed as `method` patterns.
fn load_map(path: &str, method: MatchMethod) -> Result<MapFile, String> {
    let body = read_pattern_file(path)?;
    let mut map = MapFile {
        path: path.to_string(),
        method,
        entries: Vec::new(),
        exact: HashMap::new(),
    };
    for (n, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once([' ', '\t']) {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        let at = |e: String| format!("map file '{path}' line {}: {e}", n + 1);
        let pattern = parse_patterns(&[key.to_string()], method, &Fetch::Always(true))
            .map_err(at)?
            .pop()
            .ok_or_else(|| at(format!("invalid key '{key}'")))?;
        if method == MatchMethod::Str {
            map.exact
                .entry(key.to_string())
                .or_insert(map.entries.len());
        }
        map.entries.push((pattern, value.to_string()));
    }
    Ok(map)
}

/// Parses a `use_backend` name: plain text, or a log-format string with `%[<sample>]`
/// parts (None when it has none: a plain name).
pub fn parse_name_format(s: &str, ctx: &AclCtx<'_>) -> Result<Option<Vec<NamePart>>, String> {
    if !s.contains("%[") {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("%[") {
        if i > 0 {
            parts.push(NamePart::Text(rest[..i].to_string()));
        }
        let expr = &rest[i + 2..];
        let end = expr
            .find(']')
            .ok_or_else(|| format!("missing ']' after '%[' in '{s}'"))?;
        let (sample, _) = parse_sample(&expr[..end], ctx)?;
        parts.push(NamePart::Sample(sample));
        rest = &expr[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(NamePart::Text(rest.to_string()));
    }
    Ok(Some(parts))
}

fn parse_fetch(s: &str, ctx: &AclCtx<'_>) -> Result<(Fetch, MatchMethod), String> {
    use MatchMethod as M;
    let (name, args) = split_call_args(s)?;
    let no_args = |f: Fetch, m: M| {
        if args.is_empty() {
            Ok((f, m))
        } else {
            Err(format!("fetch '{name}' takes no argument"))
        }
    };
    let table = |args: &[&str]| -> Result<Option<TableRef>, String> {
        match args {
            [] => Ok(None),
            [t] => ctx
                .tables
                .get(*t)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("no stick-table named '{t}' for fetch '{name}'")),
            _ => Err(format!("fetch '{name}' takes at most one table argument")),
        }
    };
    let backend = |args: &[&str], required: bool| -> Result<Option<BackendId>, String> {
        match args {
            [] if required => Err(format!("fetch '{name}' expects a backend name")),
            [] => Ok(ctx.own_backend),
            [b] => ctx
                .backends
                .get(*b)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("no such backend '{b}' in fetch '{name}'")),
            _ => Err(format!("fetch '{name}' takes at most one backend argument")),
        }
    };
    let sc = |n: &str| -> Option<u8> {
        n.strip_prefix("sc")
            .and_then(|r| r.parse::<u8>().ok())
            .filter(|&v| v <= 2)
    };
    let r = match name {
        "src" => no_args(Fetch::Src, M::Ip)?,
        "dst" => no_args(Fetch::Dst, M::Ip)?,
        "src_port" => no_args(Fetch::SrcPort, M::Int)?,
        "dst_port" => no_args(Fetch::DstPort, M::Int)?,
        "src_conn_rate" => (Fetch::SrcConnRate(table(&args)?), M::Int),
        "src_conn_cur" => (Fetch::SrcConnCur(table(&args)?), M::Int),
        "fc_rcvd_proxy" => no_args(Fetch::FcRcvdProxy, M::Bool)?,
        "nbsrv" => (
            Fetch::Nbsrv(backend(&args, true)?.expect("required backend")),
            M::Int,
        ),
        "be_conn" => (Fetch::BeConn(backend(&args, false)?), M::Int),
        "connslots" => (Fetch::Connslots(backend(&args, false)?), M::Int),
        "req.ssl_sni" | "req_ssl_sni" => no_args(Fetch::ReqSslSni, M::Str)?,
        "req.ssl_hello_type" | "req_ssl_hello_type" => no_args(Fetch::ReqSslHelloType, M::Int)?,
        "req.ssl_ver" | "req_ssl_ver" => no_args(Fetch::ReqSslVer, M::Int)?,
        "req.len" | "req_len" => no_args(Fetch::ReqLen, M::Int)?,
        "req.payload" | "payload" => {
            let [off, len] = args.as_slice() else {
                return Err(format!("fetch '{name}' expects (<offset>,<length>)"));
            };
            let n = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("invalid number '{v}' in '{s}'"))
            };
            let (offset, len) = (n(off)?, n(len)?);
            if len == 0 || len > 16_384 {
                return Err(format!("length in '{s}' must be 1-16384"));
            }
            (Fetch::ReqPayload { offset, len }, M::Bin)
        }
        "always_true" => no_args(Fetch::Always(true), M::Bool)?,
        "always_false" => no_args(Fetch::Always(false), M::Bool)?,
        "path" if ctx.mode == Mode::Http => no_args(Fetch::Path, M::Str)?,
        "path" => {
            return Err("fetch 'path' needs mode http (only a stats/metrics listener)".to_string())
        }
        n if n
            .get(..4)
            .and_then(|p| p.strip_suffix('_'))
            .and_then(sc)
            .is_some() =>
        {
            let slot = n.get(..3).and_then(sc).unwrap_or(0);
            match n.get(4..).unwrap_or("") {
                "conn_rate" => (Fetch::ScConnRate(slot, table(&args)?), M::Int),
                "conn_cur" => (Fetch::ScConnCur(slot, table(&args)?), M::Int),
                rest => match gpc_fetch(rest) {
                    Some((idx, op)) => (
                        Fetch::ScGpc {
                            slot,
                            idx,
                            op,
                            table: table(&args)?,
                        },
                        M::Int,
                    ),
                    None => return Err(format!("fetch '{n}' is not supported by sluice")),
                },
            }
        }
        n if n.strip_prefix("src_").and_then(gpc_fetch).is_some() => {
            let (idx, op) = n
                .strip_prefix("src_")
                .and_then(gpc_fetch)
                .unwrap_or((0, GpcOp::Get));
            (
                Fetch::SrcGpc {
                    idx,
                    op,
                    table: table(&args)?,
                },
                M::Int,
            )
        }
        n if unsupported_fetch(n) => {
            return Err(format!("fetch '{n}' is not supported by sluice"));
        }
        n => return Err(format!("unknown fetch method '{n}'")),
    };
    Ok(r)
}

fn parse_method(m: &str) -> Result<MatchMethod, String> {
    use MatchMethod as M;
    Ok(match m {
        "found" => M::Found,
        "bool" => M::Bool,
        "int" => M::Int,
        "ip" => M::Ip,
        "bin" => M::Bin,
        "len" => M::Len,
        "str" => M::Str,
        "sub" => M::Sub,
        "beg" => M::Beg,
        "end" => M::End,
        "dir" => M::Dir,
        "dom" => M::Dom,
        "reg" => M::Reg,
        other => return Err(format!("unknown match method '{other}'")),
    })
}

fn method_name(m: MatchMethod) -> &'static str {
    use MatchMethod as M;
    match m {
        M::Found => "found",
        M::Bool => "bool",
        M::Int => "int",
        M::Ip => "ip",
        M::Bin => "bin",
        M::Len => "len",
        M::Str => "str",
        M::Sub => "sub",
        M::Beg => "beg",
        M::End => "end",
        M::Dir => "dir",
        M::Dom => "dom",
        M::Reg => "reg",
    }
}

fn check_method(addr: bool, name: &str, m: MatchMethod) -> Result<(), String> {
    if m == MatchMethod::Ip && !addr {
        return Err(format!(
            "match method 'ip' does not apply to fetch '{name}', which is not an address"
        ));
    }
    Ok(())
}

fn parse_patterns(texts: &[String], m: MatchMethod, fetch: &Fetch) -> Result<Vec<Pattern>, String> {
    use MatchMethod as M;
    let mut out = Vec::new();
    let mut i = 0;
    while i < texts.len() {
        let t = texts[i].as_str();
        i += 1;
        out.push(match m {
            M::Found | M::Bool => return Err("this match method takes no pattern".to_string()),
            M::Ip => {
                let (addr, prefix) = parse_net(t)?;
                Pattern::Net { addr, prefix }
            }
            M::Int | M::Len => {
                let ver = matches!(fetch, Fetch::ReqSslVer);
                let op = match t {
                    "eq" | "ge" | "gt" | "le" | "lt" => {
                        let v = texts
                            .get(i)
                            .ok_or_else(|| format!("operator '{t}' expects a value"))?;
                        i += 1;
                        Some((t, parse_int(v, ver)?))
                    }
                    _ => None,
                };
                match op {
                    Some(("eq", v)) => Pattern::Int(v, v),
                    Some(("ge", v)) => Pattern::Int(v, i64::MAX),
                    Some(("gt", v)) => Pattern::Int(v.saturating_add(1), i64::MAX),
                    Some(("le", v)) => Pattern::Int(i64::MIN, v),
                    Some((_, v)) => Pattern::Int(i64::MIN, v.saturating_sub(1)),
                    None => match t.split_once(':') {
                        Some((a, b)) => {
                            let lo = if a.is_empty() {
                                i64::MIN
                            } else {
                                parse_int(a, ver)?
                            };
                            let hi = if b.is_empty() {
                                i64::MAX
                            } else {
                                parse_int(b, ver)?
                            };
                            if lo > hi {
                                return Err(format!("invalid range '{t}'"));
                            }
                            Pattern::Int(lo, hi)
                        }
                        None => {
                            let v = parse_int(t, ver)?;
                            Pattern::Int(v, v)
                        }
                    },
                }
            }
            M::Bin => Pattern::Bin(parse_hex(t)?),
            M::Str | M::Sub | M::Beg | M::End | M::Dir | M::Dom => Pattern::Str(t.to_string()),
            M::Reg => {
                regex::Regex::new(t).map_err(|e| format!("invalid regex '{t}': {e}"))?;
                Pattern::Regex(t.to_string())
            }
        });
    }
    Ok(out)
}

fn parse_int(s: &str, version: bool) -> Result<i64, String> {
    if version {
        if let Some((maj, min)) = s.split_once('.') {
            let p = |x: &str| {
                x.parse::<i64>()
                    .map_err(|_| format!("invalid version '{s}'"))
            };
            return Ok(p(maj)? * 65_536 + p(min)?);
        }
    }
    s.parse::<i64>()
        .map_err(|_| format!("'{s}' is not a valid integer"))
}

/// The predefined ACLs sluice knows (configuration.txt §7.4).
fn predefined(name: &str, span: &Span) -> Option<AclTerm> {
    let term = |fetch: Fetch, method, fetch_name: &str, patterns| AclTerm {
        span: span.clone(),
        fetch,
        convs: Vec::new(),
        fetch_name: fetch_name.to_string(),
        method,
        ignore_case: false,
        patterns,
    };
    Some(match name {
        "TRUE" => term(
            Fetch::Always(true),
            MatchMethod::Bool,
            "always_true",
            vec![],
        ),
        "FALSE" => term(
            Fetch::Always(false),
            MatchMethod::Bool,
            "always_false",
            vec![],
        ),
        "LOCALHOST" => term(
            Fetch::Src,
            MatchMethod::Ip,
            "src",
            vec![
                Pattern::Net {
                    addr: "127.0.0.0".parse().expect("literal"),
                    prefix: 8,
                },
                Pattern::Net {
                    addr: "::1".parse().expect("literal"),
                    prefix: 128,
                },
            ],
        ),
        "REQ_CONTENT" => term(
            Fetch::ReqLen,
            MatchMethod::Int,
            "req.len",
            vec![Pattern::Int(1, i64::MAX)],
        ),
        _ => return None,
    })
}

/// Compiles `if|unless <cond>` (the words starting at `if`/`unless`). `acls` are the proxy's
/// named ACLs.
pub fn compile_condition(
    words: &[Word],
    span: &Span,
    acls: &[Acl],
    ctx: &AclCtx<'_>,
) -> Result<Condition, String> {
    let unless = match words.first().map(|w| w.text.as_str()) {
        Some("if") => false,
        Some("unless") => true,
        Some(w) => return Err(format!("expects 'if' or 'unless', not '{w}'")),
        None => return Err("expects 'if' or 'unless'".to_string()),
    };
    let mut any_of = vec![Vec::new()];
    let mut i = 1;
    let mut negate = false;
    while i < words.len() {
        let w = words[i].text.as_str();
        i += 1;
        match w {
            "||" | "or" => {
                if negate || any_of.last().is_some_and(Vec::is_empty) {
                    return Err("'||' must be placed between two conditions".to_string());
                }
                any_of.push(Vec::new());
            }
            "!" => negate = !negate,
            "{" => {
                let close = words[i..]
                    .iter()
                    .position(|w| w.text == "}")
                    .ok_or("missing '}' to close the anonymous ACL")?;
                let term = compile_term(&words[i..i + close], span, ctx)?;
                i += close + 1;
                push_term(&mut any_of, &mut negate, AclRef::Inline(Box::new(term)));
            }
            "}" => return Err("unexpected '}'".to_string()),
            _ => {
                let (neg, name) = match w.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, w),
                };
                if neg {
                    negate = !negate;
                }
                let acl = match acls.iter().position(|a| a.name == name) {
                    Some(idx) => AclRef::Named(idx),
                    None => match predefined(name, span) {
                        Some(t) => AclRef::Inline(Box::new(t)),
                        None => {
                            let hint = super::error::did_you_mean(
                                name,
                                acls.iter().map(|a| a.name.as_str()),
                            );
                            return Err(format!("no such ACL : '{name}'{hint}"));
                        }
                    },
                };
                push_term(&mut any_of, &mut negate, acl);
            }
        }
    }
    if negate || any_of.iter().any(Vec::is_empty) {
        return Err("incomplete condition after 'if'/'unless'".to_string());
    }
    Ok(Condition { unless, any_of })
}

/// A rule's optional tail: no words is no condition, anything else is `if|unless <cond>`.
pub fn compile_optional_condition(
    words: &[Word],
    span: &Span,
    acls: &[Acl],
    ctx: &AclCtx<'_>,
) -> Result<Option<Condition>, String> {
    if words.is_empty() {
        return Ok(None);
    }
    compile_condition(words, span, acls, ctx).map(Some)
}

fn push_term(any_of: &mut [Vec<CondTerm>], negate: &mut bool, acl: AclRef) {
    if let Some(last) = any_of.last_mut() {
        last.push(CondTerm {
            negate: *negate,
            acl,
        });
    }
    *negate = false;
}

/// Collects the proxy's `acl` lines into named ACLs (same name = OR of terms).
pub fn merge_acls(defs: Vec<(String, AclTerm)>) -> Vec<Acl> {
    let mut out: Vec<Acl> = Vec::new();
    for (name, term) in defs {
        match out.iter_mut().find(|a| a.name == name) {
            Some(a) => a.terms.push(term),
            None => out.push(Acl {
                name,
                terms: vec![term],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ws(s: &str) -> Vec<Word> {
        let span = Span::new(&Arc::from("a.cfg"), 1);
        s.split_whitespace()
            .map(|t| Word {
                text: t.to_string(),
                span: span.clone(),
            })
            .collect()
    }

    fn with_ctx<R>(f: impl FnOnce(&AclCtx<'_>) -> R) -> R {
        let backends: HashMap<String, BackendId> = [("be1".to_string(), BackendId(0))].into();
        let tables: HashMap<String, TableRef> =
            [("fe".to_string(), TableRef::Backend(BackendId(0)))].into();
        let ctx = AclCtx {
            backends: &backends,
            tables: &tables,
            own_table: None,
            mode: Mode::Tcp,
            own_backend: None,
        };
        f(&ctx)
    }

    fn term(s: &str) -> Result<AclTerm, String> {
        let span = Span::new(&Arc::from("a.cfg"), 1);
        with_ctx(|c| compile_term(&ws(s), &span, c))
    }

    #[test]
    fn converters_parse_and_set_the_match_method() {
        assert_eq!(
            split_sample("req.ssl_sni,lower,map(/a,b),ipmask(24,64)"),
            ["req.ssl_sni", "lower", "map(/a,b)", "ipmask(24,64)"]
        );
        let t = term("req.ssl_sni,lower -m end .example.com").unwrap();
        assert_eq!(t.fetch, Fetch::ReqSslSni);
        assert_eq!(t.convs, [Conv::Lower]);
        assert_eq!(t.method, MatchMethod::End);
        // An address through a string converter matches as a string by default.
        let t = term("src,upper 10.0.0.1").unwrap();
        assert_eq!(t.method, MatchMethod::Str);
        let t = term("src,ipmask(255.255.255.0) 10.1.2.0/24").unwrap();
        assert_eq!(t.convs, [Conv::Ipmask { v4: 24, v6: 128 }]);
        assert_eq!(t.method, MatchMethod::Ip);
        assert_eq!(
            term("src,ipmask(16,48) ::/0").unwrap().convs,
            [Conv::Ipmask { v4: 16, v6: 48 }]
        );
        for (bad, why) in [
            ("src,frob x", "unknown converter 'frob'"),
            ("src,sha1 x", "converter 'sha1' is not supported"),
            (
                "src,map_str_int(/x) x",
                "converter 'map_str_int' is not supported",
            ),
            ("src,lower(1) x", "converter 'lower' takes no argument"),
            ("src,ipmask(33) x", "invalid mask '33'"),
            ("src,ipmask(255.0.255.0) x", "invalid mask"),
            ("dst_port,ipmask(8) x", "expects an address"),
            ("fc_rcvd_proxy,lower x", "expects a string"),
            (
                "req.ssl_sni,map(/nonexistent/map) x",
                "failed to open pattern file",
            ),
            ("req.ssl_sni,map() x", "expects (<map file>[,<default>])"),
            (
                "req.ssl_sni,lower -m ip 10.0.0.1",
                "match method 'ip' does not apply",
            ),
        ] {
            let e = term(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn map_files_load_keys_by_match_method() {
        let dir = std::env::temp_dir().join(format!("sluice-map-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("m.map");
        std::fs::write(
            &f,
            "# comment\n\n  a.example.com   be_a  \nb.example.com\tbe b\na.example.com dup\nlone\n",
        )
        .unwrap();
        let m = load_map(f.to_str().unwrap(), MatchMethod::Str).unwrap();
        let values: Vec<&str> = m.entries.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["be_a", "be b", "dup", ""]);
        // The first of duplicate keys wins, as HAProxy's lookup returns it.
        assert_eq!(m.exact["a.example.com"], 0);
        std::fs::write(&f, "10.0.0.0/8 x\nnot-an-address y\n").unwrap();
        let e = load_map(f.to_str().unwrap(), MatchMethod::Ip).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        std::fs::write(&f, "(unclosed z\n").unwrap();
        assert!(load_map(f.to_str().unwrap(), MatchMethod::Reg).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn use_backend_names_with_samples() {
        let parse = |s: &str| with_ctx(|c| parse_name_format(s, c));
        assert_eq!(parse("plain").unwrap(), None);
        let parts = parse("be_%[req.ssl_sni,lower]_x").unwrap().unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], NamePart::Text("be_".into()));
        assert!(matches!(&parts[1], NamePart::Sample(e) if e.convs == [Conv::Lower]));
        assert_eq!(parts[2], NamePart::Text("_x".into()));
        assert!(parse("be_%[src").unwrap_err().contains("missing ']'"));
        assert!(parse("%[nosuch]").unwrap_err().contains("unknown fetch"));
    }

    #[test]
    fn fetches_and_patterns() {
        let t = term("src 10.0.0.0/8 192.168.1.1 ::1").unwrap();
        assert_eq!(t.fetch, Fetch::Src);
        assert_eq!(t.patterns.len(), 3);
        let t = term("sc0_conn_rate gt 20").unwrap();
        assert_eq!(t.fetch, Fetch::ScConnRate(0, None));
        assert_eq!(t.patterns, [Pattern::Int(21, i64::MAX)]);
        let t = term("dst_port 80:90 443").unwrap();
        assert_eq!(t.patterns, [Pattern::Int(80, 90), Pattern::Int(443, 443)]);
        let t = term("req.ssl_sni -i -m end .example.com").unwrap();
        assert!(t.ignore_case);
        assert_eq!(t.method, MatchMethod::End);
        let t = term("req.payload(0,3) -m bin 474554").unwrap();
        assert_eq!(t.patterns, [Pattern::Bin(b"GET".to_vec())]);
        let t = term("req.ssl_ver ge 3.1").unwrap();
        assert_eq!(t.patterns, [Pattern::Int(3 * 65_536 + 1, i64::MAX)]);
        assert_eq!(
            term("nbsrv(be1) lt 1").unwrap().fetch,
            Fetch::Nbsrv(BackendId(0))
        );
        assert_eq!(term("fc_rcvd_proxy").unwrap().method, MatchMethod::Bool);
        assert!(matches!(
            term("req.ssl_sni -m reg ^a.*b$").unwrap().patterns[0],
            Pattern::Regex(_)
        ));
        assert_eq!(
            term("src_conn_cur(fe) ge 5").unwrap().fetch,
            Fetch::SrcConnCur(Some(TableRef::Backend(BackendId(0))))
        );
    }

    #[test]
    fn fetch_errors() {
        assert_eq!(
            term("nbsrv(nope)").unwrap_err(),
            "no such backend 'nope' in fetch 'nbsrv'"
        );
        assert_eq!(
            term("srcx 1.2.3.4").unwrap_err(),
            "unknown fetch method 'srcx'"
        );
        assert!(term("src 1.2.3.4/40").is_err());
        assert!(term("src -m foo x").is_err());
        assert!(term("dst_port -m ip 1.2.3.4").is_err());
        assert!(term("src_port abc").is_err());
        assert!(term("fc_rcvd_proxy 1").is_err());
        assert!(term("path /x").unwrap_err().contains("mode http"));
        assert!(term("req.ssl_sni -m reg (").is_err());
        assert!(term("src -f /nonexistent/file.lst")
            .unwrap_err()
            .contains("failed to open"));
        assert!(term("src_conn_cur(nope)").is_err());
    }

    #[test]
    fn conditions() {
        let span = Span::new(&Arc::from("a.cfg"), 1);
        let acls = vec![
            Acl {
                name: "a".into(),
                terms: vec![term("src 1.1.1.1").unwrap()],
            },
            Acl {
                name: "b".into(),
                terms: vec![term("dst_port 80").unwrap()],
            },
        ];
        with_ctx(|c| {
            let cond =
                compile_condition(&ws("if a !b || { src 10.0.0.0/8 } TRUE"), &span, &acls, c)
                    .unwrap();
            assert!(!cond.unless);
            assert_eq!(cond.any_of.len(), 2);
            assert_eq!(cond.any_of[0].len(), 2);
            assert!(!cond.any_of[0][0].negate);
            assert!(cond.any_of[0][1].negate);
            assert_eq!(cond.any_of[1].len(), 2);
            let cond = compile_condition(&ws("unless ! a"), &span, &acls, c).unwrap();
            assert!(cond.unless && cond.any_of[0][0].negate);
            assert_eq!(
                compile_condition(&ws("if c"), &span, &acls, c).unwrap_err(),
                "no such ACL : 'c'"
            );
            assert!(compile_condition(&ws("if a ||"), &span, &acls, c).is_err());
            assert!(compile_condition(&ws("if || a"), &span, &acls, c).is_err());
            assert!(compile_condition(&ws("if { src 1.1.1.1"), &span, &acls, c).is_err());
            assert!(compile_condition(&ws("when a"), &span, &acls, c).is_err());
            assert!(compile_condition(&ws("if"), &span, &acls, c).is_err());
        });
    }
}
