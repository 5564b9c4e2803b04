//! AST -> Model. Applies every directive through the keyword registry, performs HAProxy's
//! defaults inheritance (the last `defaults` section, or the one named by `from`), resolves
//! names to ids, compiles ACLs, conditions and rules, resolves server addresses, assigns
//! stats ids, and makes HAProxy's cross-checks. Every error is collected; the model is only
//! returned when there are none.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::acl::{self, AclCtx};
use super::ast::{Ast, Directive, Section, SectionKind};
use super::error::{Diag, Diags, Span};
use super::keywords::proxy::{LogSpec, ProxyDraft, RawLine, StickLine};
use super::keywords::server::{InitAddr, ServerDraft};
use super::keywords::{self, haproxy_known, lookup, scope, KeywordSpec, Lookup};
use super::model::*;

/// Load-time switches from the command line.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-dr`: a server whose hostname does not resolve starts in maintenance instead of
    /// failing the load.
    pub ignore_resolve_errors: bool,
}

/// Second words HAProxy knows after a family keyword; `*` means any word.
fn proxy_second(first: &str) -> Option<&'static [&'static str]> {
    Some(match first {
        "option" => haproxy_known::PROXY_OPTIONS,
        "timeout" => haproxy_known::PROXY_TIMEOUTS,
        "tcp-check" => &[
            "comment",
            "connect",
            "expect",
            "send",
            "send-binary",
            "send-binary-lf",
            "send-lf",
            "set-var",
            "set-var-fmt",
            "unset-var",
        ],
        "http-check" => &[
            "comment",
            "connect",
            "disable-on-404",
            "expect",
            "send",
            "send-state",
            "set-var",
            "set-var-fmt",
            "unset-var",
        ],
        "stats" => &[
            "admin",
            "auth",
            "bind-process",
            "enable",
            "hide-version",
            "http-request",
            "realm",
            "refresh",
            "scope",
            "show-desc",
            "show-legends",
            "show-modules",
            "show-node",
            "uri",
        ],
        "tcp-request" => &["connection", "content", "inspect-delay", "session"],
        "rate-limit" => &["sessions"],
        _ if haproxy_known::PROXY.contains(&first) => &["*"],
        _ => return None,
    })
}

fn global_second(first: &str) -> Option<&'static [&'static str]> {
    haproxy_known::GLOBAL.contains(&first).then_some(&["*"][..])
}

fn section_bit(kind: SectionKind) -> u8 {
    match kind {
        SectionKind::Global => scope::GLOBAL,
        SectionKind::Defaults => scope::DEFAULTS,
        SectionKind::Frontend => scope::FRONTEND,
        SectionKind::Listen => scope::LISTEN,
        SectionKind::Backend => scope::BACKEND,
    }
}

/// Applies one directive to `target` through `table`. Reports unknown, unsupported and
/// misplaced keywords.
fn apply<T>(
    table: &[KeywordSpec<T>],
    target: &mut T,
    d: &Directive,
    kind: SectionKind,
    proxy_name: Option<&str>,
    diags: &mut Diags,
) {
    let (negated, words) = match d.keyword() {
        "no" if d.words.len() > 1 => (true, &d.words[1..]),
        _ => (false, &d.words[..]),
    };
    let (known_first, second): (&[&str], keywords::SecondWords) = if kind == SectionKind::Global {
        (haproxy_known::GLOBAL, global_second)
    } else {
        (haproxy_known::PROXY, proxy_second)
    };
    let removed_kind = if kind == SectionKind::Global {
        "global"
    } else {
        "proxy"
    };
    match lookup(table, words, known_first, second, removed_kind) {
        Lookup::Found { spec, consumed } => {
            let name = spec.name;
            if negated && !spec.accepts_no() {
                diags.push(Diag::error(
                    &d.span,
                    name,
                    "does not support the 'no' prefix",
                ));
                return;
            }
            let bit = section_bit(kind);
            if spec.scope & bit == 0 {
                let fe = scope::FRONTEND | scope::LISTEN;
                let be = scope::BACKEND | scope::LISTEN;
                let msg = match (kind, proxy_name) {
                    (SectionKind::Frontend, Some(p)) if spec.scope & be != 0 => {
                        diags.push(Diag::warning(
                            &d.span,
                            name,
                            format!("ignored because frontend '{p}' has no backend capability"),
                        ));
                        return;
                    }
                    (SectionKind::Backend, Some(p)) if spec.scope & fe != 0 => {
                        diags.push(Diag::warning(
                            &d.span,
                            name,
                            format!("ignored because backend '{p}' has no frontend capability"),
                        ));
                        return;
                    }
                    _ => format!("not allowed in '{}' section", kind.word()),
                };
                diags.push(Diag::error(&d.span, name, msg));
                return;
            }
            let Some(parse) = spec.parse else {
                if let Some(why) = keywords::inert(kind.word(), name) {
                    diags.push(Diag::warning(&d.span, name, why));
                    return;
                }
                let why = match spec.support {
                    keywords::Support::No(why) => why,
                    _ => "",
                };
                diags.push(Diag::error(
                    &d.span,
                    "",
                    format!("'{name}' is not supported by sluice: {why}"),
                ));
                return;
            };
            let mut args = keywords::args_for(&d.span, words, consumed);
            args.negated = negated;
            let result = parse(target, &mut args);
            for w in std::mem::take(&mut args.warnings) {
                diags.push(Diag::warning(&d.span, name, w));
            }
            if let Err(msg) = result {
                diags.push(Diag::error(&d.span, name, msg));
            }
        }
        Lookup::NotSupported { name } => match keywords::inert(kind.word(), &name) {
            Some(why) => diags.push(Diag::warning(&d.span, &name, why)),
            None => diags.push(Diag::error(
                &d.span,
                "",
                format!("'{name}' is not supported by sluice"),
            )),
        },
        Lookup::Removed { name, hint } => diags.push(Diag::error(&d.span, &name, hint)),
        Lookup::Unknown { name, suggestion } => diags.push(
            Diag::error(
                &d.span,
                &name,
                format!("unknown keyword in '{}' section", kind.word()),
            )
            .with_suggestion(suggestion),
        ),
    }
}

struct ProxySection<'a> {
    section: &'a Section,
    name: String,
    draft: ProxyDraft,
}

/// Builds the model. Returns it with the warnings, or every error found.
pub fn build(ast: &Ast, opts: &LoadOptions) -> (Option<Model>, Diags) {
    let mut diags = Diags::default();
    let mut global = Global::default();
    let mut named_defaults: HashMap<String, ProxyDraft> = HashMap::new();
    let mut last_defaults = ProxyDraft::default();
    let mut proxies: Vec<ProxySection<'_>> = Vec::new();
    // The TLS defaults of servers: inert, unless a health check speaks TLS.
    let mut tls_server_defaults: Vec<&Directive> = Vec::new();

    for s in &ast.sections {
        let base = match &s.from {
            None => None,
            Some(from) => match named_defaults.get(from) {
                Some(d) => Some(d.clone()),
                None => {
                    diags.push(Diag::error(
                        &s.span,
                        s.kind.word(),
                        format!("defaults section '{from}' not found for 'from'"),
                    ));
                    continue;
                }
            },
        };
        match s.kind {
            SectionKind::Global => {
                for d in &s.directives {
                    if keywords::TLS_SERVER_DEFAULTS.contains(&d.keyword()) {
                        tls_server_defaults.push(d);
                        continue;
                    }
                    apply(
                        keywords::global::KEYWORDS,
                        &mut global,
                        d,
                        s.kind,
                        None,
                        &mut diags,
                    );
                }
            }
            SectionKind::Defaults => {
                let mut draft = base.map(|b| b.inherited()).unwrap_or_default();
                for d in &s.directives {
                    apply(
                        keywords::proxy::KEYWORDS,
                        &mut draft,
                        d,
                        s.kind,
                        None,
                        &mut diags,
                    );
                }
                if let Some(name) = &s.name {
                    named_defaults.insert(name.clone(), draft.clone());
                }
                last_defaults = draft;
            }
            _ => {
                let name = s.name.clone().unwrap_or_default();
                let mut draft = base
                    .unwrap_or_else(|| last_defaults.clone())
                    .inherited_by_proxy();
                for d in &s.directives {
                    apply(
                        keywords::proxy::KEYWORDS,
                        &mut draft,
                        d,
                        s.kind,
                        Some(&name),
                        &mut diags,
                    );
                }
                proxies.push(ProxySection {
                    section: s,
                    name,
                    draft,
                });
            }
        }
    }

    check_unique_names(&proxies, &mut diags);
    let model = assemble(global, proxies, opts, &mut diags);
    let tls_checks = model.as_ref().is_some_and(checks_speak_tls);
    for d in tls_server_defaults {
        let kw = d.keyword();
        if tls_checks {
            diags.push(Diag::error(
                &d.span,
                "",
                format!(
                    "'{kw}' is not supported by sluice: it would set the TLS of the health \
                     checks, which use rustls's own settings (TLS 1.2 and 1.3, its safe \
                     cipher suites)"
                ),
            ));
        } else {
            diags.push(Diag::warning(
                &d.span,
                kw,
                keywords::inert("global", kw).unwrap_or_default(),
            ));
        }
    }
    if diags.has_errors() {
        (None, diags)
    } else {
        (model, diags)
    }
}

/// True when some server's health checks speak TLS: its `check-ssl`, or a `connect ssl` in
/// its backend's check rules.
fn checks_speak_tls(model: &Model) -> bool {
    model.servers.iter().any(|s| {
        s.check
            && (s.check_tls.ssl
                || match &model.backend(s.backend).check {
                    CheckKind::TcpCheck(rules) => rules
                        .iter()
                        .any(|r| matches!(r, TcpCheckRule::Connect(c) if c.ssl)),
                    CheckKind::HttpChk(rules) => rules
                        .iter()
                        .any(|r| matches!(r, HttpCheckRule::Connect(c) if c.ssl)),
                    _ => false,
                })
    })
}

fn caps(kind: SectionKind) -> (bool, bool) {
    match kind {
        SectionKind::Frontend => (true, false),
        SectionKind::Backend => (false, true),
        _ => (true, true),
    }
}

fn check_unique_names(proxies: &[ProxySection<'_>], diags: &mut Diags) {
    for (i, p) in proxies.iter().enumerate() {
        let (fe, be) = caps(p.section.kind);
        if let Some(prev) = proxies[..i].iter().find(|q| {
            let (qfe, qbe) = caps(q.section.kind);
            q.name == p.name && ((fe && qfe) || (be && qbe))
        }) {
            diags.push(Diag::error(
                &p.section.span,
                p.section.kind.word(),
                format!(
                    "proxy '{}' has the same name as {} '{}' declared at {}",
                    p.name,
                    prev.section.kind.word(),
                    prev.name,
                    prev.section.span
                ),
            ));
        }
    }
}

/// Assigns numeric ids: explicit ones first, then the lowest free id from 1, in order.
fn assign_uids(explicit: &[Option<(u32, Span)>], what: &str, diags: &mut Diags) -> Vec<u32> {
    let mut taken: HashMap<u32, &Span> = HashMap::new();
    for (n, span) in explicit.iter().flatten() {
        if let Some(prev) = taken.insert(*n, span) {
            diags.push(Diag::error(
                span,
                "id",
                format!("{what} id {n} is already used at {prev}"),
            ));
        }
    }
    let mut auto = std::collections::HashSet::new();
    let mut next = 1;
    explicit
        .iter()
        .map(|e| match e {
            Some((n, _)) => *n,
            None => {
                while taken.contains_key(&next) || auto.contains(&next) {
                    next += 1;
                }
                auto.insert(next);
                next
            }
        })
        .collect()
}

fn assemble(
    global: Global,
    proxies: Vec<ProxySection<'_>>,
    opts: &LoadOptions,
    diags: &mut Diags,
) -> Option<Model> {
    // Ids: backends and frontends in declaration order; one uid per proxy.
    let mut backend_ids: HashMap<String, BackendId> = HashMap::new();
    let mut tables: HashMap<String, TableRef> = HashMap::new();
    let mut fe_count = 0u32;
    let mut be_count = 0u32;
    let mut fe_of = Vec::new();
    let mut be_of = Vec::new();
    for p in &proxies {
        let (fe, be) = caps(p.section.kind);
        fe_of.push(fe.then(|| {
            fe_count += 1;
            FrontendId(fe_count - 1)
        }));
        be_of.push(be.then(|| {
            be_count += 1;
            BackendId(be_count - 1)
        }));
        if let Some(id) = *be_of.last().expect("pushed") {
            backend_ids.entry(p.name.clone()).or_insert(id);
        }
    }
    for (i, p) in proxies.iter().enumerate() {
        if p.draft.stick_table.is_some() {
            let r = match (be_of[i], fe_of[i]) {
                (Some(b), _) => TableRef::Backend(b),
                (None, Some(f)) => TableRef::Frontend(f),
                (None, None) => continue,
            };
            tables.entry(p.name.clone()).or_insert(r);
        }
    }
    let uids = assign_uids(
        &proxies
            .iter()
            .map(|p| p.draft.uid.clone())
            .collect::<Vec<_>>(),
        "proxy",
        diags,
    );

    let stats_backends = check_http_proxies(&proxies, &backend_ids, &be_of, diags);

    let mut frontends = Vec::new();
    let mut backends = Vec::new();
    let mut servers = Vec::new();
    let mut ca_files = CaFiles::new();
    for (i, p) in proxies.iter().enumerate() {
        let d = &p.draft;
        let span = &p.section.span;
        let kind = match p.section.kind {
            SectionKind::Frontend => ProxyKind::Frontend,
            SectionKind::Backend => ProxyKind::Backend,
            _ => ProxyKind::Listen,
        };
        let own_table = d
            .stick_table
            .as_ref()
            .and_then(|_| tables.get(&p.name).copied());
        let ctx = AclCtx {
            backends: &backend_ids,
            tables: &tables,
            own_table,
            mode: d.mode,
            own_backend: be_of[i],
        };
        // ACLs: all lines of the proxy, merged by name.
        let mut defs = Vec::new();
        for line in &d.acls {
            match acl::compile_acl_line(&line.words, &line.span, &ctx) {
                Ok(def) => defs.push(def),
                Err(m) => diags.push(Diag::error(&line.span, "acl", m)),
            }
        }
        let acls = acl::merge_acls(defs);
        let cond = |line: &RawLine, words: &[super::lexer::Word], kw: &str, diags: &mut Diags| {
            match acl::compile_optional_condition(words, &line.span, &acls, &ctx) {
                Ok(c) => c,
                Err(m) => {
                    diags.push(Diag::error(&line.span, kw, m));
                    None
                }
            }
        };
        let rules = |lines: &[RawLine], kw: &str, connection: bool, diags: &mut Diags| {
            lines
                .iter()
                .filter_map(|l| {
                    compile_tcp_rule(l, kw, connection, own_table, &tables, &acls, &ctx, diags)
                })
                .collect::<Vec<_>>()
        };
        let log = build_log(p, fe_of[i].is_some(), &global, diags);
        let stats_listener = d.mode == Mode::Http;
        let stats_page = stats_listener.then(|| {
            let st = &d.stats;
            StatsPage {
                enabled: st.enable,
                uri: st
                    .uri
                    .clone()
                    .unwrap_or_else(|| "/haproxy?stats".to_string()),
                refresh: st.refresh,
                admin: st
                    .admin
                    .as_ref()
                    .and_then(|l| cond(l, &l.words, "stats admin", diags)),
                prometheus: st
                    .prometheus
                    .as_ref()
                    .map(|l| cond(l, &l.words, "http-request use-service", diags)),
                users: st.users.clone(),
                realm: st
                    .realm
                    .clone()
                    .unwrap_or_else(|| "HAProxy Statistics".to_string()),
                hide_version: st.hide_version,
                show_legends: st.show_legends,
                show_node: st.show_node.clone(),
                show_desc: st.show_desc.clone(),
            }
        });
        if !stats_listener && d.enabled {
            let t = &d.timeouts;
            let missing: Vec<&str> = [
                (fe_of[i].is_some() && t.client.is_none(), "'client'"),
                (be_of[i].is_some() && t.connect.is_none(), "'connect'"),
                (be_of[i].is_some() && t.server.is_none(), "'server'"),
            ]
            .iter()
            .filter(|(m, _)| *m)
            .map(|(_, n)| *n)
            .collect();
            if !missing.is_empty() {
                diags.push(missing_timeouts(p, &missing.join(", ")));
            }
        }

        if let Some(fid) = fe_of[i] {
            let mut use_backend = Vec::new();
            for line in &d.use_backend {
                let Some(target) = compile_target(
                    line,
                    "use_backend",
                    &ctx,
                    |name| backend_ids.get(name).copied(),
                    |name| unknown_backend(&line.span, "use_backend", name, &backend_ids),
                    diags,
                ) else {
                    continue;
                };
                if line.words.len() == 1 {
                    use_backend.push(UseBackend { target, cond: None });
                    continue;
                }
                if let Some(c) = cond(line, &line.words[1..], "use_backend", diags) {
                    use_backend.push(UseBackend {
                        target,
                        cond: Some(c),
                    });
                }
            }
            let default_backend = match &d.default_backend {
                Some((name, dspan)) => match backend_ids.get(name) {
                    Some(&b) => Some(b),
                    None => {
                        diags.push(unknown_backend(
                            dspan,
                            "default_backend",
                            name,
                            &backend_ids,
                        ));
                        None
                    }
                },
                // A listen section is its own default backend.
                None => be_of[i],
            };
            let tcp_request_connection = rules(
                &d.tcp_request_connection,
                "tcp-request connection",
                true,
                diags,
            );
            let tcp_request_session =
                rules(&d.tcp_request_session, "tcp-request session", false, diags);
            for r in &tcp_request_session {
                let reads = r.cond.as_ref().and_then(|c| {
                    acl::cond_fetch_names(c, &acls)
                        .into_iter()
                        .find(|(f, _)| f.reads_request())
                });
                if let Some((_, name)) = reads {
                    // HAProxy warns, and the ACL never matches: the same here.
                    diags.push(Diag::warning(
                        &r.span,
                        "tcp-request session",
                        format!(
                            "the condition will never match: '{name}' reads request data, \
                             which a session rule never has (use 'tcp-request content')"
                        ),
                    ));
                }
            }
            let tcp_request_content =
                rules(&d.tcp_request_content, "tcp-request content", false, diags);
            if !d.tcp_request_content.is_empty() && d.inspect_delay.is_none() {
                let needs_data = d.tcp_request_content.iter().any(|l| {
                    l.words
                        .iter()
                        .any(|w| w.text.starts_with("req") || w.text.starts_with("payload"))
                });
                if needs_data {
                    diags.push(Diag::warning(
                        &d.tcp_request_content[0].span,
                        "tcp-request content",
                        format!(
                            "{} '{}': content rules inspect request data but no \
                             'tcp-request inspect-delay' is set: they will only see what the \
                             first packet carried",
                            p.section.kind.word(),
                            p.name
                        ),
                    ));
                }
            }
            if !d.bind_seen && d.enabled {
                if kind == ProxyKind::Frontend {
                    diags.push(Diag::error(
                        span,
                        "frontend",
                        format!(
                            "frontend '{}' has no 'bind' directive. Please declare it as a \
                             backend if this was intended.",
                            p.name
                        ),
                    ));
                } else {
                    diags.push(Diag::warning(
                        span,
                        "listen",
                        format!(
                            "listen '{}' has no 'bind' directive: it accepts no connection",
                            p.name
                        ),
                    ));
                }
            }
            frontends.push(Frontend {
                id: fid,
                name: p.name.clone(),
                uid: uids[i],
                kind,
                span: span.clone(),
                enabled: d.enabled,
                description: d.description.clone(),
                mode: d.mode,
                binds: d.binds.clone(),
                maxconn: d.maxconn,
                backlog: d.backlog,
                rate_limit_sessions: d.rate_limit_sessions,
                timeout_client: d.timeouts.client,
                timeout_client_fin: d.timeouts.client_fin,
                inspect_delay: d.inspect_delay,
                acls: acls.clone(),
                tcp_request_connection,
                tcp_request_session,
                tcp_request_content,
                use_backend,
                default_backend,
                stick_table: d.stick_table.clone(),
                log: log.clone(),
                client: d.options.client,
                splice: d.options.splice,
                stats: stats_page.clone(),
                stats_backend: stats_backends[i],
            });
        }

        if let Some(bid) = be_of[i] {
            let tcp_request_content = if fe_of[i].is_none() {
                rules(&d.tcp_request_content, "tcp-request content", false, diags)
            } else {
                Vec::new()
            };
            let sticking = d
                .sticking
                .iter()
                .filter_map(|l| compile_stick_rule(l, own_table, &tables, &acls, &ctx, diags))
                .collect();
            let check = build_check(p, diags);
            // A tcp-check script that starts with `connect port N` gives checks their port.
            let check_has_port = match &check {
                CheckKind::TcpCheck(rules) => {
                    matches!(
                        rules.first(),
                        Some(TcpCheckRule::Connect(CheckConnect { port: Some(_), .. }))
                    )
                }
                CheckKind::HttpChk(rules) => rules
                    .iter()
                    .find(|r| !matches!(r, HttpCheckRule::Comment(_)))
                    .is_some_and(|r| matches!(r, HttpCheckRule::Connect(c) if c.port.is_some())),
                _ => false,
            };
            // HAProxy: a `connect ssl` rule makes every server of the proxy prepare its TLS.
            let connect_ssl = d.tcp_check_rules.iter().any(|r| {
                matches!(r, TcpCheckRule::Connect(c) if c.ssl)
            }) || d.http_rules.iter().any(|(_, r)| {
                matches!(r, super::keywords::proxy::HttpRuleDraft::Connect(c) if c.ssl)
            });
            let tls_ctx = TlsCtx {
                global: &global,
                connect_ssl,
                http_check: matches!(check, CheckKind::HttpChk(_)),
            };
            let mut ids = Vec::new();
            let suids = assign_uids(
                &d.servers
                    .iter()
                    .map(|s| s.uid.map(|u| (u, s.span.clone())))
                    .collect::<Vec<_>>(),
                "server",
                diags,
            );
            for (k, s) in d.servers.iter().enumerate() {
                if let Some(prev) = d.servers[..k].iter().find(|q| q.name == s.name) {
                    diags.push(Diag::error(
                        &s.span,
                        "server",
                        format!(
                            "backend '{}', another server named '{}' was already defined at line {}, please use distinct names.",
                            p.name, s.name, prev.span.line
                        ),
                    ));
                    continue;
                }
                let sid = ServerId(servers.len() as u32);
                let Some(mut srv) =
                    build_server(s, check_has_port, sid, bid, suids[k], &p.name, opts, diags)
                else {
                    continue;
                };
                let Some((check_tls, verify)) =
                    server_tls(s, &p.name, &tls_ctx, &mut ca_files, diags)
                else {
                    continue;
                };
                (srv.check_tls, srv.check_verify) = (check_tls, verify);
                servers.push(srv);
                ids.push(sid);
            }
            let mut use_server = Vec::new();
            for line in &d.use_server {
                let Some(target) = compile_target(
                    line,
                    "use-server",
                    &ctx,
                    |name| {
                        ids.iter()
                            .copied()
                            .find(|sid| servers[sid.index()].name == name)
                    },
                    |name| {
                        Diag::error(
                            &line.span,
                            "use-server",
                            format!(
                                "proxy '{}' : unable to find server '{name}' referenced in a 'use-server' rule.",
                                p.name
                            ),
                        )
                    },
                    diags,
                ) else {
                    continue;
                };
                if let Some(c) = cond(line, &line.words[1..], "use-server", diags) {
                    use_server.push(UseServer { target, cond: c });
                }
            }
            if d.hash_balance_factor != 0 && d.hash_type.method != HashMethod::Consistent {
                diags.push(Diag::warning(
                    span,
                    "hash-balance-factor",
                    format!(
                        "backend '{}': only applies with 'hash-type consistent'; ignored",
                        p.name
                    ),
                ));
            }
            backends.push(Backend {
                id: bid,
                name: p.name.clone(),
                uid: uids[i],
                kind,
                span: span.clone(),
                enabled: d.enabled,
                description: d.description.clone(),
                mode: d.mode,
                balance: d.balance,
                hash_type: d.hash_type,
                hash_balance_factor: if d.hash_type.method == HashMethod::Consistent {
                    d.hash_balance_factor
                } else {
                    0
                },
                servers: ids,
                fullconn: d.fullconn,
                retries: d.retries,
                redispatch: d.redispatch,
                allbackups: d.options.allbackups,
                abortonclose: d.options.abortonclose,
                timeout_connect: d.timeouts.connect,
                timeout_server: d.timeouts.server,
                timeout_server_fin: d.timeouts.server_fin,
                timeout_tunnel: d.timeouts.tunnel,
                timeout_queue: d.timeouts.queue,
                timeout_check: d.timeouts.check,
                check,
                acls: acls.clone(),
                tcp_request_content,
                inspect_delay: d.inspect_delay,
                stick_table: d.stick_table.clone(),
                sticking,
                use_server,
                log,
                server_side: d.options.server,
                splice: d.options.splice,
                stats: stats_page,
            });
        }
    }
    let model = Model {
        global,
        frontends,
        backends,
        servers,
    };
    Some(model)
}

fn missing_timeouts(p: &ProxySection<'_>, which: &str) -> Diag {
    Diag::warning(
        &p.section.span,
        p.section.kind.word(),
        format!(
            "missing timeouts for {} '{}': set {which} to a non-zero value, or connections \
             may stay open forever",
            p.section.kind.word(),
            p.name
        ),
    )
}

fn unknown_backend(span: &Span, kw: &str, name: &str, ids: &HashMap<String, BackendId>) -> Diag {
    Diag::error(span, kw, format!("unable to find required {kw}: '{name}'"))
        .with_suggestion(super::error::suggest(name, ids.keys().map(String::as_str)))
}

/// Whether a section's settings make it a stats backend: `mode http`, something to serve
/// (`stats enable` or the Prometheus exporter) and no servers.
fn is_stats_backend(d: &ProxyDraft) -> bool {
    d.mode == Mode::Http && (d.stats.enable || d.stats.prometheus.is_some()) && d.servers.is_empty()
}

/// sluice serves `mode http` only as HAProxy's stats page and Prometheus exporter, from the
/// admin thread: a stats/metrics listener (`listen`, or a `frontend` with its own `stats`
/// lines), a stats backend (serverless `mode http` backend), and a `mode http` frontend
/// whose every request goes to a stats backend (`default_backend`, or `use_backend`
/// without a condition), as in Percona's PXC configuration. Everything else in `mode http`
/// is refused, and so is a tcp frontend routing to a stats backend (HAProxy would upgrade
/// the connection to HTTP and serve the page; sluice forwards bytes and cannot), and
/// tcp-request rules in a `mode http` proxy (the admin thread does not run them).
///
/// Returns each proxy's stats backend (for `mode http` frontends routing to one).
fn check_http_proxies(
    proxies: &[ProxySection<'_>],
    backend_ids: &HashMap<String, BackendId>,
    be_of: &[Option<BackendId>],
    diags: &mut Diags,
) -> Vec<Option<BackendId>> {
    let proxy_of = |b: BackendId| be_of.iter().position(|x| *x == Some(b));
    let target = |name: &str| {
        backend_ids
            .get(name)
            .and_then(|&b| proxy_of(b).map(|i| (b, &proxies[i])))
    };
    let mut out = Vec::with_capacity(proxies.len());
    for p in proxies {
        let d = &p.draft;
        let (fe, _) = caps(p.section.kind);
        // The lines that pick a backend: `use_backend <name> [if|unless <cond>]`, then
        // `default_backend <name>`.
        let routes: Vec<(&Span, &str, &str, bool)> = d
            .use_backend
            .iter()
            .filter_map(|l| {
                let name = l.words.first()?.text.as_str();
                Some((&l.span, "use_backend", name, l.words.len() > 1))
            })
            .chain(
                d.default_backend
                    .iter()
                    .map(|(name, span)| (span, "default_backend", name.as_str(), false)),
            )
            .collect();
        if d.mode != Mode::Http {
            // HAProxy's warnings: the stats page and the exporter need HTTP mode.
            let what = match p.section.kind {
                SectionKind::Listen => "proxy",
                k => k.word(),
            };
            if d.stats.enable {
                diags.push(Diag::warning(
                    d.stats.span.as_ref().unwrap_or(&p.section.span),
                    "stats",
                    format!(
                        "'stats' statement ignored for {what} '{}' as it requires HTTP mode",
                        p.name
                    ),
                ));
            }
            if let Some(l) = &d.stats.prometheus {
                diags.push(Diag::warning(
                    &l.span,
                    "http-request use-service",
                    format!(
                        "'http-request' rules ignored for {what} '{}' as they require HTTP mode",
                        p.name
                    ),
                ));
            }
            for (span, kw, name, _) in &routes {
                if let Some((_, q)) = target(name).filter(|(_, q)| is_stats_backend(&q.draft)) {
                    diags.push(Diag::error(
                        span,
                        kw,
                        format!(
                            "backend '{}' is a stats backend ('mode http'): sluice serves it only \
                             behind a 'mode http' frontend, and {} '{}' is in tcp mode",
                            q.name,
                            p.section.kind.word(),
                            p.name
                        ),
                    ));
                }
            }
            out.push(None);
            continue;
        }
        // The admin thread binds these proxies' addresses with the socket options of any
        // bind, but reads no PROXY header and keeps no per-bind connection count: those two
        // options are refused rather than ignored.
        for b in &d.binds {
            let unapplied = [
                (b.accept_proxy, "accept-proxy"),
                (b.maxconn.is_some(), "maxconn"),
            ];
            for (_, opt) in unapplied.iter().filter(|(set, _)| *set) {
                diags.push(Diag::error(
                    &b.span,
                    "bind",
                    format!(
                        "bind option '{opt}' is not supported by sluice on a 'mode http' \
                         proxy ({} '{}'): the stats page takes neither a PROXY header nor a \
                         per-bind connection limit",
                        p.section.kind.word(),
                        p.name
                    ),
                ));
            }
        }
        // The admin thread serves these proxies and runs no tcp-request rules: refused
        // rather than ignored, since they are usually access control.
        for (lines, kw) in [
            (&d.tcp_request_connection, "tcp-request connection"),
            (&d.tcp_request_session, "tcp-request session"),
            (&d.tcp_request_content, "tcp-request content"),
        ] {
            for l in lines {
                diags.push(Diag::error(
                    &l.span,
                    kw,
                    format!(
                        "not supported by sluice in a 'mode http' proxy ({} '{}'): its stats \
                         page and exporter are served without tcp-request rules; restrict them \
                         with the 'bind' address, 'stats auth' or 'stats admin if <cond>'",
                        p.section.kind.word(),
                        p.name
                    ),
                ));
            }
        }
        let mut routed = None;
        let mut not_stats = None;
        if fe {
            for (span, kw, name, conditional) in &routes {
                if *conditional {
                    diags.push(Diag::error(
                        span,
                        kw,
                        "a condition is not supported on 'use_backend' in a 'mode http' \
                         frontend: sluice sends every request of such a frontend to one stats \
                         backend ('default_backend', or 'use_backend' without a condition)",
                    ));
                } else if name.contains("%[") {
                    diags.push(Diag::error(
                        span,
                        kw,
                        "a log-format backend name is not supported in a 'mode http' frontend: \
                         sluice sends every request of such a frontend to one stats backend, \
                         named in the configuration",
                    ));
                }
            }
            // HAProxy takes the first unconditional use_backend, else default_backend.
            if let Some((_, _, name, _)) = routes.iter().find(|r| !r.3 && !r.2.contains("%[")) {
                match target(name) {
                    Some((b, q)) if is_stats_backend(&q.draft) => routed = Some(b),
                    Some((_, q)) => not_stats = Some(q.name.as_str()),
                    // Unknown: reported with the rule.
                    None => {}
                }
            }
        }
        let serves = d.stats.enable || d.stats.prometheus.is_some() || routed.is_some();
        if !serves || !d.servers.is_empty() || not_stats.is_some() {
            let span = d.mode_span.as_ref().unwrap_or(&p.section.span);
            let why = match not_stats {
                Some(b) => format!(" (backend '{b}' is not one)"),
                None => String::new(),
            };
            diags.push(Diag::error(
                span,
                "mode",
                format!(
                    "'mode http' is not supported by sluice for {} '{}': sluice is a TCP load \
                     balancer; 'mode http' is only accepted in a stats/metrics listener (stats \
                     enable, or http-request use-service prometheus-exporter) with no servers, \
                     or in a frontend whose backend is such a stats backend{why}",
                    p.section.kind.word(),
                    p.name
                ),
            ));
        }
        out.push(routed);
    }
    out
}

/// The logging of a proxy. `option httplog` in tcp mode falls back to tcplog with HAProxy's
/// warning, for proxies that log connections (frontend capability) only.
fn build_log(p: &ProxySection<'_>, fe: bool, global: &Global, diags: &mut Diags) -> ProxyLog {
    let d = &p.draft;
    let mut targets = Vec::new();
    for l in &d.logs {
        match l {
            LogSpec::Global(_) => targets.extend(global.logs.iter().cloned()),
            LogSpec::Target(t) => targets.push(t.clone()),
        }
    }
    let mut tcplog = d.options.tcplog;
    if let Some(span) = &d.options.httplog {
        if d.mode == Mode::Tcp && fe {
            let kind = match p.section.kind {
                SectionKind::Frontend => "frontend",
                _ => "proxy",
            };
            diags.push(Diag::warning(
                span,
                "option httplog",
                format!(
                    "not usable with {kind} '{}' (needs 'mode http'); falling back to \
                     'option tcplog'",
                    p.name
                ),
            ));
        }
        tcplog = true;
    }
    let format = d
        .log_format
        .as_ref()
        .and_then(|(f, span)| match super::logformat::parse(f) {
            Ok(items) => Some(items),
            Err(m) => {
                diags.push(Diag::error(span, "log-format", m));
                None
            }
        });
    ProxyLog {
        targets,
        tcplog,
        dontlognull: d.options.dontlognull,
        log_health_checks: d.options.log_health_checks,
        format,
    }
}

fn build_check(p: &ProxySection<'_>, diags: &mut Diags) -> CheckKind {
    let d = &p.draft;
    let any_check = d.servers.iter().any(|s| s.check);
    match &d.check {
        CheckKind::TcpCheck(_) => CheckKind::TcpCheck(d.tcp_check_rules.clone()),
        CheckKind::HttpChk(_) => CheckKind::HttpChk(build_http_rules(p, diags)),
        other => {
            if !d.http_rules.is_empty() && !d.http_inherited {
                diags.push(Diag::warning(
                    &d.http_rules[0].0,
                    "http-check",
                    format!(
                        "{} '{}' uses http-check rules without 'option httpchk', so the rules \
                         are ignored",
                        p.section.kind.word(),
                        p.name
                    ),
                ));
            }
            if !d.tcp_check_rules.is_empty() && any_check && !d.tcp_check_inherited {
                diags.push(Diag::warning(
                    &p.section.span,
                    "tcp-check",
                    format!(
                        "{} '{}': tcp-check rules are ignored without 'option tcp-check'",
                        p.section.kind.word(),
                        p.name
                    ),
                ));
            }
            other.clone()
        }
    }
}

/// The first word of a `use_backend`/`use-server` line as a target: a log-format name, or
/// a plain name `find` resolves (else the `unknown` error). None after an error.
fn compile_target<Id>(
    line: &RawLine,
    kw: &str,
    ctx: &AclCtx<'_>,
    find: impl Fn(&str) -> Option<Id>,
    unknown: impl FnOnce(&str) -> Diag,
    diags: &mut Diags,
) -> Option<Target<Id>> {
    let name = &line.words[0].text;
    match acl::parse_name_format(name, ctx) {
        Ok(Some(parts)) => Some(Target::Dynamic(parts)),
        Ok(None) => {
            let found = find(name).map(Target::Named);
            if found.is_none() {
                diags.push(unknown(name));
            }
            found
        }
        Err(m) => {
            diags.push(Diag::error(&line.span, kw, m));
            None
        }
    }
}

/// A `stick` line: its key, its table (the backend's own, or `table <name>`: any proxy's)
/// and its condition.
fn compile_stick_rule(
    l: &StickLine,
    own_table: Option<TableRef>,
    tables: &HashMap<String, TableRef>,
    acls: &[Acl],
    ctx: &AclCtx<'_>,
    diags: &mut Diags,
) -> Option<StickRule> {
    let line = &l.line;
    let err = |diags: &mut Diags, m: String| {
        diags.push(Diag::error(&line.span, l.keyword, m));
        None
    };
    let key = match line.words[0].text.as_str() {
        "src" => StickKey::Src,
        "dst" => StickKey::Dst,
        p => {
            return err(
                diags,
                format!("sluice sticks on 'src' or 'dst' only, not '{p}'"),
            )
        }
    };
    let (table, used) = if line.words.get(1).is_some_and(|w| w.text == "table") {
        let Some(name) = line.words.get(2).map(|w| w.text.as_str()) else {
            return err(diags, "missing table name after 'table'".to_string());
        };
        match tables.get(name) {
            Some(r) => (*r, 3),
            None => {
                let hint = super::error::did_you_mean(name, tables.keys().map(String::as_str));
                return err(diags, format!("unable to find stick-table '{name}'{hint}"));
            }
        }
    } else {
        match own_table {
            Some(r) => (r, 1),
            None => {
                return err(
                    diags,
                    "no stick-table in this backend; add one or name another proxy's with \
                     'table <proxy>'"
                        .to_string(),
                )
            }
        }
    };
    let rest = &line.words[used..];
    if let Some(w) = rest
        .first()
        .filter(|w| !matches!(w.text.as_str(), "if" | "unless"))
    {
        return err(
            diags,
            format!(
                "unexpected '{}': expects [table <t>] [if|unless <cond>]",
                w.text
            ),
        );
    }
    let cond = match acl::compile_optional_condition(rest, &line.span, acls, ctx) {
        Ok(c) => c,
        Err(m) => return err(diags, m),
    };
    Some(StickRule {
        span: line.span.clone(),
        matches: l.matches,
        stores: l.stores,
        key,
        table,
        cond,
    })
}

/// The `http-check` rules of an httpchk proxy, with HAProxy's defaults filled in
/// (OPTIONS / HTTP/1.0) and its post-parse checks.
fn build_http_rules(p: &ProxySection<'_>, diags: &mut Diags) -> Vec<HttpCheckRule> {
    use super::keywords::proxy::HttpRuleDraft;
    let rules = &p.draft.http_rules;
    let mut real = rules
        .iter()
        .filter(|r| !matches!(r.1, HttpRuleDraft::Comment(_)));
    let first = real.next();
    if let Some((span, _)) = rules
        .iter()
        .find(|r| matches!(r.1, HttpRuleDraft::Connect(_)))
        .filter(|_| !matches!(first, Some((_, HttpRuleDraft::Connect(_)))))
    {
        diags.push(Diag::error(
            span,
            "http-check connect",
            "first step MUST also be a 'connect', optionally preceded by a 'comment', when \
             there is a 'connect' step in the http-check rules",
        ));
    }
    let before_send = rules.iter().find_map(|r| match &r.1 {
        HttpRuleDraft::Send(_) => Some(None),
        HttpRuleDraft::Expect(_) => Some(Some(&r.0)),
        _ => None,
    });
    if let Some(Some(span)) = before_send {
        diags.push(Diag::warning(
            span,
            "http-check expect",
            format!(
                "{} '{}': no request is sent before this expect: the http-check rules of a \
                 proxy replace the inherited ones, the request of 'option httpchk' included \
                 (HAProxy does the same); add 'option httpchk' or 'http-check send' here",
                p.section.kind.word(),
                p.name
            ),
        ));
    }
    rules
        .iter()
        .map(|(_, r)| match r {
            HttpRuleDraft::Connect(c) => HttpCheckRule::Connect(c.clone()),
            HttpRuleDraft::Send(s) => HttpCheckRule::Send(HttpRequest {
                method: s.method.clone().unwrap_or_else(|| "OPTIONS".to_string()),
                uri: s.uri.clone().unwrap_or_else(|| "/".to_string()),
                version: s.version.clone().unwrap_or_else(|| "HTTP/1.0".to_string()),
                headers: s.headers.clone(),
                body: s.body.clone().unwrap_or_default(),
            }),
            HttpRuleDraft::Expect(e) => HttpCheckRule::Expect(e.clone()),
            HttpRuleDraft::Comment(c) => HttpCheckRule::Comment(c.clone()),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn compile_tcp_rule(
    line: &RawLine,
    kw: &str,
    connection: bool,
    own_table: Option<TableRef>,
    tables: &HashMap<String, TableRef>,
    acls: &[Acl],
    ctx: &AclCtx<'_>,
    diags: &mut Diags,
) -> Option<TcpRule> {
    let w: Vec<&str> = line.words.iter().map(|w| w.text.as_str()).collect();
    let err = |diags: &mut Diags, m: String| {
        diags.push(Diag::error(&line.span, kw, m));
        None
    };
    let (action, used) = match w[0] {
        "accept" => (TcpAction::Accept, 1),
        "reject" => (TcpAction::Reject, 1),
        "silent-drop" => (TcpAction::SilentDrop, 1),
        "expect-proxy" if connection => {
            if w.get(1) != Some(&"layer4") {
                return err(diags, "'expect-proxy' expects 'layer4'".to_string());
            }
            (TcpAction::ExpectProxyLayer4, 2)
        }
        a if a.starts_with("sc-inc-gpc0(") || a.starts_with("sc-inc-gpc1(") => {
            let idx = if a.starts_with("sc-inc-gpc0") { 0 } else { 1 };
            let slot = match a
                .split_once('(')
                .and_then(|(_, r)| r.strip_suffix(')'))
                .map(str::parse::<u8>)
            {
                Some(Ok(n)) if n <= 2 => n,
                _ => {
                    return err(
                        diags,
                        format!(
                            "'{a}': expects a stick counter number 0, 1 or 2: 'sc-inc-gpc{idx}(0)'"
                        ),
                    )
                }
            };
            (TcpAction::IncGpc { idx, slot }, 1)
        }
        a if a.starts_with("track-sc") => {
            let slot = match a["track-sc".len()..].parse::<u8>() {
                Ok(n) if n <= 2 => n,
                _ => return err(diags, format!("'{a}': sluice tracks sc0, sc1 and sc2")),
            };
            match w.get(1) {
                Some(&"src") => {}
                Some(k) => return err(diags, format!("'{a} {k}': sluice tracks only 'src'")),
                None => return err(diags, format!("'{a}' expects a key ('src')")),
            }
            let (table, used) = if w.get(2) == Some(&"table") {
                let Some(t) = w.get(3) else {
                    return err(diags, "'table' expects a stick-table name".to_string());
                };
                match tables.get(*t) {
                    Some(r) => (*r, 4),
                    None => return err(diags, format!("no stick-table named '{t}'")),
                }
            } else {
                match own_table {
                    Some(r) => (r, 2),
                    None => {
                        return err(
                            diags,
                            format!("'{a}': no stick-table in this proxy; add one or name it with 'table <proxy>'"),
                        )
                    }
                }
            };
            (TcpAction::TrackSc { slot, table }, used)
        }
        a => {
            let known = [
                "capture",
                "set-var",
                "unset-var",
                "set-mark",
                "set-tos",
                "sc-set-gpt0",
                "set-src",
                "set-src-port",
                "set-dst",
                "set-dst-port",
                "close",
                "send-spoe-group",
                "lua",
                "do-resolve",
                "switch-mode",
                "use-service",
                "set-log-level",
                "set-nice",
                "attach-srv",
                "set-priority-class",
                "set-priority-offset",
                "expect-netscaler-cip",
                "sc-add-gpc",
                "sc-inc-gpc",
                "set-bandwidth-limit",
                "set-fc-mark",
                "set-fc-tos",
            ];
            return err(
                diags,
                if known.iter().any(|k| a.starts_with(k)) || a == "expect-proxy" {
                    format!("action '{a}' is not supported by sluice here")
                } else {
                    format!(
                        "unknown action '{a}' (accept, reject, track-sc0..2, silent-drop, \
                         sc-inc-gpc0(<n>), sc-inc-gpc1(<n>){})",
                        if connection {
                            ", expect-proxy layer4"
                        } else {
                            ""
                        }
                    )
                },
            );
        }
    };
    let cond = match acl::compile_optional_condition(&line.words[used..], &line.span, acls, ctx) {
        Ok(c) => c,
        Err(m) => return err(diags, m),
    };
    Some(TcpRule {
        span: line.span.clone(),
        action,
        cond,
    })
}

/// The `ca-file`s read so far, by resolved path: each is read once, however many servers
/// name it.
type CaFiles = HashMap<PathBuf, Result<(Arc<CaFile>, Vec<String>), String>>;

/// What settling a server's TLS check options needs to know of its surroundings.
struct TlsCtx<'a> {
    global: &'a Global,
    /// A `connect ssl` in the backend's check rules.
    connect_ssl: bool,
    /// The backend checks with `option httpchk`.
    http_check: bool,
}

/// A server's TLS check options, settled as HAProxy 2.6 settles them: `verify` defaults to
/// the global `ssl-server-verify`; `ca-file` is resolved against `ca-base` and read (HAProxy
/// reads it while parsing, so a missing file is an error even where nothing verifies); a
/// server whose checks may speak TLS (its `check-ssl`, or a `connect ssl` in its backend,
/// with or without `check`) and verify required needs a CA. None after an error.
fn server_tls(
    s: &ServerDraft,
    be_name: &str,
    ctx: &TlsCtx<'_>,
    ca_files: &mut CaFiles,
    diags: &mut Diags,
) -> Option<(CheckTls, Verify)> {
    let say = |diags: &mut Diags, error: bool, m: &str| {
        let m = format!("'server {be_name}/{}': {m}", s.name);
        diags.push(if error {
            Diag::error(&s.span, "server", m)
        } else {
            Diag::warning(&s.span, "server", m)
        });
    };
    let ca = match &s.ca_file {
        None => None,
        Some(value) => {
            let path = super::cafile::resolve(value, ctx.global.ca_base.as_deref());
            let loaded = ca_files.entry(path.clone()).or_insert_with(|| {
                super::cafile::load(&path).map(|(ca, warnings)| (Arc::new(ca), warnings))
            });
            match loaded {
                Ok((ca, warnings)) => {
                    for w in warnings.iter() {
                        say(diags, false, w);
                    }
                    Some(Arc::clone(ca))
                }
                Err(e) => {
                    say(diags, true, e);
                    return None;
                }
            }
        }
    };
    if ctx.http_check && s.check_alpn.iter().any(|p| p == "h2") {
        say(
            diags,
            true,
            &format!("'check-alpn': {}", super::keywords::proxy::H2_ALPN),
        );
        return None;
    }
    let check_tls = CheckTls {
        ssl: s.check_ssl,
        sni: s.check_sni.clone(),
        alpn: s.check_alpn.clone(),
    };
    let required = s.verify.unwrap_or(ctx.global.ssl_server_verify);
    if !(required && (s.check_ssl || ctx.connect_ssl)) {
        return Some((check_tls, Verify::None));
    }
    let Some(ca) = ca else {
        // HAProxy's words, then how to verify.
        let why = if ctx.global.ssl_server_verify {
            "verify is enabled by default but no CA file specified. If you're running on a \
             LAN where you're certain to trust the server's certificate, please set an \
             explicit 'verify none' statement on the 'server' line, or use \
             'ssl-server-verify none' in the global section to disable server-side \
             verifications by default."
        } else {
            "verify is enabled but no CA file specified."
        };
        say(
            diags,
            true,
            &format!(
                "{why} To verify the server, name the CA that signed its certificate with \
                 'ca-file <file>'."
            ),
        );
        return None;
    };
    Some((
        check_tls,
        Verify::Required {
            ca,
            host: s.verifyhost.clone(),
        },
    ))
}

#[allow(clippy::too_many_arguments)]
fn build_server(
    s: &ServerDraft,
    check_has_port: bool,
    id: ServerId,
    backend: BackendId,
    uid: u32,
    be_name: &str,
    opts: &LoadOptions,
    diags: &mut Diags,
) -> Option<Server> {
    let kw = "server";
    let err = |diags: &mut Diags, m: String| {
        diags.push(Diag::error(
            &s.span,
            kw,
            format!("'server {be_name}/{}': {m}", s.name),
        ));
    };
    let text = keywords::values::expand_env_braces(&s.addr);
    let parts = match keywords::values::split_addr(&text) {
        Ok(p) => p,
        Err(m) => {
            err(diags, m);
            return None;
        }
    };
    let (port, port_offset) = match parts.port {
        None | Some("") => (0, None),
        Some(p) if p.starts_with('+') || p.starts_with('-') => match p.parse::<i32>() {
            Ok(off) if off.abs() < 65_536 => (0, Some(off)),
            _ => {
                err(diags, format!("invalid port offset '{p}'"));
                return None;
            }
        },
        Some(p) => match keywords::values::parse_port(p) {
            Ok(p) => (p, None),
            Err(m) => {
                err(diags, m);
                return None;
            }
        },
    };
    let addr = match parts.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerAddr::Resolved(SocketAddr::new(ip, port)),
        Err(_) => {
            let mut found = None;
            for m in &s.init_addr {
                match m {
                    InitAddr::Last => {}
                    InitAddr::Libc => {
                        if let Ok(ip) = keywords::values::resolve_host(parts.host, parts.family) {
                            found = Some(ServerAddr::Resolved(SocketAddr::new(ip, port)));
                        }
                    }
                    InitAddr::None => {
                        found = Some(ServerAddr::Unresolved {
                            host: parts.host.to_string(),
                            port,
                        })
                    }
                    InitAddr::Ip(ip) => {
                        found = Some(ServerAddr::Resolved(SocketAddr::new(*ip, port)))
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            match found {
                Some(a) => a,
                None if opts.ignore_resolve_errors => {
                    diags.push(Diag::warning(
                        &s.span,
                        kw,
                        format!(
                            "'server {be_name}/{}': could not resolve address '{}', starting in maintenance (-dr)",
                            s.name, parts.host
                        ),
                    ));
                    ServerAddr::Unresolved {
                        host: parts.host.to_string(),
                        port,
                    }
                }
                None => {
                    err(diags, format!("could not resolve address '{}'", parts.host));
                    return None;
                }
            }
        }
    };
    if s.agent_check && s.agent_port.is_none() {
        err(diags, "'agent-check' needs 'agent-port'".to_string());
        return None;
    }
    if let (Some(min), Some(max)) = (s.minconn, s.maxconn) {
        if min > max && max > 0 {
            err(
                diags,
                format!("minconn {min} is greater than maxconn {max}"),
            );
            return None;
        }
    }
    if port == 0 && port_offset.is_none() && s.check && s.check_port.is_none() && !check_has_port {
        err(
            diags,
            "health checks need a port: add 'port <n>' or give the server a port".to_string(),
        );
        return None;
    }
    let inter = s.inter;
    Some(Server {
        id,
        backend,
        name: s.name.clone(),
        uid,
        span: s.span.clone(),
        addr,
        port_offset,
        check: s.check,
        inter,
        fastinter: s.fastinter.unwrap_or(inter),
        downinter: s.downinter.unwrap_or(inter),
        rise: s.rise,
        fall: s.fall,
        check_port: s.check_port,
        check_addr: s.check_addr,
        check_send_proxy: s.check_send_proxy,
        weight: s.weight,
        backup: s.backup,
        maxconn: s.maxconn.filter(|&m| m > 0),
        maxqueue: s.maxqueue.filter(|&m| m > 0),
        minconn: s.minconn,
        slowstart: s.slowstart,
        send_proxy: s.send_proxy,
        disabled: s.disabled,
        agent: s.agent_check.then(|| Agent {
            port: s.agent_port,
            addr: s.agent_addr,
            inter: s.agent_inter.unwrap_or(inter),
            send: s.agent_send.clone(),
        }),
        observe_layer4: s.observe_layer4,
        error_limit: s.error_limit,
        on_error: s.on_error,
        on_marked_down_shutdown: s.on_marked_down_shutdown,
        on_marked_up_shutdown_backup: s.on_marked_up_shutdown_backup,
        check_tls: CheckTls::default(),
        check_verify: Verify::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../health/testdata/ca.pem");

    /// The model, or every diagnostic, of `text`.
    fn build_text(text: &str) -> (Option<Model>, Vec<String>) {
        let mut ast = Ast::default();
        let mut diags = Diags::default();
        let env: HashMap<String, String> = HashMap::new();
        super::super::parse_text("t.cfg", text, &env, &mut ast, &mut diags);
        let (model, more) = build(&ast, &LoadOptions::default());
        diags.extend(more);
        let shown = diags.items.iter().map(ToString::to_string).collect();
        (model.filter(|_| !diags.has_errors()), shown)
    }

    fn cfg(global: &str, backend: &str) -> String {
        format!(
            "global\n{global}\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nbackend be\n{backend}\n"
        )
    }

    fn ca_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-validate-ca-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ca.pem"), CA).unwrap();
        d
    }

    #[test]
    fn tls_checks_want_a_ca_unless_told_verify_none() {
        const BY_DEFAULT: &str = "t.cfg:9: 'server': 'server be/s1': verify is enabled by \
            default but no CA file specified. If you're running on a LAN where you're certain \
            to trust the server's certificate, please set an explicit 'verify none' statement \
            on the 'server' line, or use 'ssl-server-verify none' in the global section to \
            disable server-side verifications by default. To verify the server, name the CA \
            that signed its certificate with 'ca-file <file>'.";
        let (m, d) = build_text(&cfg("", "    server s1 127.0.0.1:443 check check-ssl"));
        assert!(m.is_none());
        assert_eq!(d, [BY_DEFAULT]);
        // HAProxy: a `connect ssl` rule concerns every server, checked or not.
        let (_, d) = build_text(&cfg(
            "",
            "    option tcp-check\n    tcp-check connect ssl\n    server s1 127.0.0.1:443",
        ));
        assert_eq!(d, [BY_DEFAULT.replace("t.cfg:9", "t.cfg:11")]);
        let (_, d) = build_text(&cfg(
            "    ssl-server-verify none",
            "    server s1 127.0.0.1:443 check check-ssl verify required",
        ));
        assert_eq!(
            d,
            [
                "t.cfg:9: 'server': 'server be/s1': verify is enabled but no CA file \
              specified. To verify the server, name the CA that signed its certificate with \
              'ca-file <file>'."
            ]
        );
        // No TLS check: nothing to verify, whatever 'verify' says.
        let (m, d) = build_text(&cfg(
            "",
            "    server s1 127.0.0.1:443 check verify required",
        ));
        assert_eq!(
            (m.unwrap().servers[0].check_verify.clone(), d.len()),
            (Verify::None, 0)
        );
        for (global, opts) in [
            ("", "check check-ssl verify none"),
            ("    ssl-server-verify none", "check check-ssl"),
        ] {
            let (m, d) = build_text(&cfg(global, &format!("    server s1 127.0.0.1:443 {opts}")));
            assert!(d.is_empty(), "{d:?}");
            let s = &m.unwrap().servers[0];
            assert!(s.check_tls.ssl);
            assert_eq!(s.check_verify, Verify::None);
        }
    }

    #[test]
    fn ca_file_is_read_at_load_relative_to_ca_base() {
        let dir = ca_dir();
        let (m, d) = build_text(&cfg(
            &format!("    ca-base {}", dir.display()),
            "    default-server check-ssl check-sni api.test verifyhost kubernetes\n    \
             server s1 127.0.0.1:443 check ca-file ca.pem\n    \
             server s2 127.0.0.1:443 check ca-file ca.pem no-check-ssl check-alpn http/1.1",
        ));
        assert!(d.is_empty(), "{d:?}");
        let m = m.unwrap();
        let Verify::Required { ca, host } = &m.servers[0].check_verify else {
            panic!("verify required: {:?}", m.servers[0].check_verify);
        };
        assert_eq!((ca.path.clone(), ca.certs.len()), (dir.join("ca.pem"), 1));
        assert_eq!(host.as_deref(), Some("kubernetes"));
        assert_eq!(m.servers[0].check_tls.sni.as_deref(), Some("api.test"));
        // Read once for both servers; s2 speaks no TLS, so verifies nothing.
        assert_eq!(m.servers[1].check_verify, Verify::None);
        assert_eq!(m.servers[1].check_tls.alpn, ["http/1.1"]);
        assert!(!m.servers[1].check_tls.ssl);
        // A missing file is an error even where nothing verifies (HAProxy reads it at parse).
        let (_, d) = build_text(&cfg(
            "",
            "    server s1 127.0.0.1:443 verify none ca-file /nonexistent/ca.pem",
        ));
        assert_eq!(
            d,
            [
                "t.cfg:9: 'server': 'server be/s1': couldn't open the ca-file \
              '/nonexistent/ca.pem' (No such file or directory)"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_tls_defaults_are_errors_once_a_check_speaks_tls() {
        let inert = cfg(
            "    ssl-default-server-ciphers ECDHE+AESGCM",
            "    server s1 127.0.0.1:443 check",
        );
        let (m, d) = build_text(&inert);
        assert!(m.is_some());
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("t.cfg:2: warning: 'ssl-default-server-ciphers': ignored"));
        let (m, d) = build_text(&inert.replace("check", "check check-ssl verify none"));
        assert!(m.is_none());
        assert_eq!(
            d,
            [
                "t.cfg:2: 'ssl-default-server-ciphers' is not supported by sluice: it would set \
              the TLS of the health checks, which use rustls's own settings (TLS 1.2 and 1.3, \
              its safe cipher suites)"
            ]
        );
    }

    /// HAProxy 2.6.12 warns for f1, f3 and l only: a later `option tcplog` wins, and a
    /// backend logs no connection (build order; `load` sorts by line).
    #[test]
    fn httplog_in_tcp_mode_warns_where_it_would_log() {
        let (_, d) = build_text(
            "defaults\n    mode tcp\n    option httplog\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
             frontend f1\n    bind :16001\n    default_backend b\n\
             frontend f2\n    bind :16002\n    option tcplog\n    default_backend b\n\
             frontend f3\n    bind :16003\n    option tcplog\n    option httplog\n    default_backend b\n\
             backend b\n    server s 127.0.0.1:1\n\
             listen l\n    bind :16004\n    server s 127.0.0.1:1\n",
        );
        let fallback = "(needs 'mode http'); falling back to 'option tcplog'";
        assert_eq!(
            d,
            [
                format!(
                    "t.cfg:3: warning: 'option httplog': not usable with frontend 'f1' {fallback}"
                ),
                format!(
                    "t.cfg:17: warning: 'option httplog': not usable with frontend 'f3' {fallback}"
                ),
                format!("t.cfg:3: warning: 'option httplog': not usable with proxy 'l' {fallback}"),
            ]
        );
    }

    #[test]
    fn http_checks_do_not_offer_h2() {
        let (_, d) = build_text(&cfg(
            "",
            "    option httpchk\n    server s1 127.0.0.1:443 check check-ssl verify none check-alpn h2",
        ));
        assert_eq!(d.len(), 1);
        assert!(
            d[0].contains("'check-alpn': sluice's HTTP checks speak HTTP/1.x"),
            "{d:?}"
        );
        let (m, _) = build_text(&cfg(
            "",
            "    option tcp-check\n    server s1 127.0.0.1:443 check check-ssl verify none check-alpn h2",
        ));
        assert!(m.is_some());
    }
}
