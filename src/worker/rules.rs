//! Evaluating conditions at accept time (layer 4): `use_backend <be> if <cond>` with the
//! fetches that need no request data: `src`, `dst`, `src_port`, `dst_port`, `nbsrv`,
//! `be_conn` and the predefined TRUE/FALSE. [`l4_fetch`] tells the supervisor which fetches
//! this evaluator handles, so a configuration using others is refused at start rather than
//! misjudged.

use std::net::{IpAddr, SocketAddr};

use crate::config::model::{
    Acl, AclRef, AclTerm, BackendId, Condition, Fetch, MatchMethod, Pattern, TcpAction, TcpRule,
};

/// The state of the backends that `nbsrv` and `be_conn` read.
pub trait BackendState {
    /// Usable servers of a backend.
    fn nbsrv(&self, b: BackendId) -> u32;
    /// Established connections of a backend (all workers).
    fn be_conn(&self, b: BackendId) -> u32;
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

/// What the fetches read.
pub struct FetchCtx<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub backends: &'a dyn BackendState,
    /// A PROXY header was received (`fc_rcvd_proxy`).
    pub proxied: bool,
}

/// Fetches this evaluator implements.
pub fn l4_fetch(f: &Fetch) -> bool {
    matches!(
        f,
        Fetch::Src
            | Fetch::Dst
            | Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::Nbsrv(_)
            | Fetch::BeConn(Some(_))
            | Fetch::Always(_)
            | Fetch::FcRcvdProxy
    )
}

/// Why a `tcp-request` rule cannot run in this build, if it cannot: tracking and
/// silent-drop, and conditions on request data or stick tables.
pub fn unsupported_rule(r: &TcpRule, acls: &[Acl]) -> Option<String> {
    match r.action {
        TcpAction::Accept | TcpAction::Reject | TcpAction::ExpectProxyLayer4 => {}
        TcpAction::TrackSc { .. } => return Some("'track-sc' (stick tables)".to_string()),
        TcpAction::SilentDrop => return Some("'silent-drop'".to_string()),
    }
    let cond = r.cond.as_ref()?;
    cond_fetches(cond, acls)
        .into_iter()
        .find(|f| !l4_fetch(f))
        .map(|f| format!("a 'tcp-request' condition on {f:?}"))
}

/// The verdict of an ordered list of accept/reject rules: the first accept or reject rule
/// whose condition holds decides; none: accept. `expect-proxy` rules decide nothing here
/// (see [`expects_proxy`]).
pub fn accepts(rules: &[TcpRule], acls: &[Acl], ctx: &FetchCtx<'_>) -> bool {
    for r in rules {
        if r.action == TcpAction::ExpectProxyLayer4 {
            continue;
        }
        if r.cond.as_ref().map_or(true, |c| eval(c, acls, ctx)) {
            return r.action != TcpAction::Reject;
        }
    }
    true
}

/// Whether a matching `expect-proxy layer4` rule comes before the first matching accept
/// or reject: then the connection must start with a PROXY header.
pub fn expects_proxy(rules: &[TcpRule], acls: &[Acl], ctx: &FetchCtx<'_>) -> bool {
    for r in rules {
        if r.cond.as_ref().map_or(true, |c| eval(c, acls, ctx)) {
            match r.action {
                TcpAction::ExpectProxyLayer4 => return true,
                TcpAction::Accept | TcpAction::Reject => return false,
                _ => {}
            }
        }
    }
    false
}

/// Whether any of these rules reads the destination address.
pub fn rules_need_dst(rules: &[TcpRule], acls: &[Acl]) -> bool {
    rules.iter().filter_map(|r| r.cond.as_ref()).any(|c| {
        cond_fetches(c, acls)
            .iter()
            .any(|f| matches!(f, Fetch::Dst | Fetch::DstPort))
    })
}

/// Every fetch a condition uses (named ACLs resolved through `acls`).
pub fn cond_fetches<'a>(cond: &'a Condition, acls: &'a [Acl]) -> Vec<&'a Fetch> {
    let mut out = Vec::new();
    for term in cond.any_of.iter().flatten() {
        match &term.acl {
            AclRef::Inline(t) => out.push(&t.fetch),
            AclRef::Named(i) => out.extend(acls[*i].terms.iter().map(|t| &t.fetch)),
        }
    }
    out
}

pub fn eval(cond: &Condition, acls: &[Acl], ctx: &FetchCtx<'_>) -> bool {
    let hit = cond.any_of.iter().any(|all| {
        all.iter().all(|t| {
            let m = match &t.acl {
                AclRef::Inline(term) => term_matches(term, ctx),
                AclRef::Named(i) => acls[*i].terms.iter().any(|term| term_matches(term, ctx)),
            };
            m != t.negate
        })
    });
    hit != cond.unless
}

enum Sample {
    Ip(IpAddr),
    Int(i64),
    Bool(bool),
}

fn fetch(f: &Fetch, ctx: &FetchCtx<'_>) -> Option<Sample> {
    Some(match f {
        Fetch::Src => Sample::Ip(ctx.src.ip()),
        Fetch::Dst => Sample::Ip(ctx.dst.ip()),
        Fetch::SrcPort => Sample::Int(i64::from(ctx.src.port())),
        Fetch::DstPort => Sample::Int(i64::from(ctx.dst.port())),
        Fetch::Nbsrv(b) => Sample::Int(i64::from(ctx.backends.nbsrv(*b))),
        Fetch::BeConn(Some(b)) => Sample::Int(i64::from(ctx.backends.be_conn(*b))),
        Fetch::Always(v) => Sample::Bool(*v),
        Fetch::FcRcvdProxy => Sample::Bool(ctx.proxied),
        _ => return None,
    })
}

fn term_matches(t: &AclTerm, ctx: &FetchCtx<'_>) -> bool {
    let Some(sample) = fetch(&t.fetch, ctx) else {
        return false;
    };
    match (t.method, sample) {
        (MatchMethod::Found, _) => true,
        (MatchMethod::Bool, Sample::Bool(b)) => b,
        (MatchMethod::Bool, Sample::Int(n)) => n != 0,
        (_, Sample::Ip(ip)) => t.patterns.iter().any(|p| net_contains(p, ip)),
        (_, Sample::Int(n)) => t
            .patterns
            .iter()
            .any(|p| matches!(p, Pattern::Int(lo, hi) if (*lo..=*hi).contains(&n))),
        (_, Sample::Bool(b)) => b,
    }
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
        let ctx = FetchCtx {
            src: src.parse().unwrap(),
            dst: "10.0.0.1:443".parse().unwrap(),
            backends: &Fixed,
            proxied: false,
        };
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
}
