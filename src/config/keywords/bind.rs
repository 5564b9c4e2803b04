//! `bind` lines (configuration.txt §5.1): the address list and the bind options, straight
//! into the model's [`Bind`].

use super::values::{parse_bind_addrs, Args};
use super::{scope::FE_ONLY, KeywordSpec, Support, SINCE};
use crate::config::model::Bind;

macro_rules! opt {
    ($name:expr, $usage:expr, $doc:expr, $f:expr) => {
        KeywordSpec {
            name: $name,
            scope: FE_ONLY,
            support: Support::Yes,
            since: SINCE,
            usage: $usage,
            doc: $doc,
            parse: Some($f),
        }
    };
}

macro_rules! refused {
    ($name:expr, $why:expr) => {
        KeywordSpec {
            name: $name,
            scope: FE_ONLY,
            support: Support::No($why),
            since: SINCE,
            usage: "",
            doc: $why,
            parse: None,
        }
    };
}

const NO_TLS: &str =
    "sluice does not terminate TLS; route TLS by SNI with 'tcp-request content' and req.ssl_sni";

pub static KEYWORDS: &[KeywordSpec<Bind>] = &[
    opt!(
        "accept-proxy",
        "",
        "expect a PROXY protocol header (v1 or v2) on every connection",
        |b, _| {
            b.accept_proxy = true;
            Ok(())
        }
    ),
    opt!(
        "v4v6",
        "",
        "an IPv6 listener also accepts IPv4 (IPV6_V6ONLY off)",
        |b, _| {
            b.v4v6 = true;
            Ok(())
        }
    ),
    opt!(
        "v6only",
        "",
        "an IPv6 listener accepts IPv6 only",
        |b, _| {
            b.v6only = true;
            Ok(())
        }
    ),
    opt!("backlog", "<n>", "listen backlog of this bind", |b, a| {
        b.backlog = Some(a.u32_in("a number after 'backlog'", 1, i32::MAX as u32)?);
        Ok(())
    }),
    opt!(
        "maxconn",
        "<n>",
        "maximum concurrent connections on this bind",
        |b, a| {
            b.maxconn = Some(a.u32_in("a number after 'maxconn'", 1, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "name",
        "<name>",
        "the name of this listener in stats",
        |b, a| {
            b.name = Some(a.expect("a name after 'name'")?.to_string());
            Ok(())
        }
    ),
    opt!(
        "id",
        "<number>",
        "the numeric id of this listener in stats",
        |b, a| {
            b.id = Some(a.u32_in("a number after 'id'", 1, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "interface",
        "<name>",
        "bind to this network interface (SO_BINDTODEVICE)",
        |b, a| {
            b.interface = Some(a.expect("an interface after 'interface'")?.to_string());
            Ok(())
        }
    ),
    opt!(
        "defer-accept",
        "",
        "wake up only when data arrives (TCP_DEFER_ACCEPT)",
        |b, _| {
            b.defer_accept = true;
            Ok(())
        }
    ),
    opt!("tfo", "", "accept TCP Fast Open", |b, _| {
        b.tfo = true;
        Ok(())
    }),
    opt!(
        "mss",
        "<value>",
        "TCP maximum segment size of accepted connections",
        |b, a| {
            let v = a.expect("a value after 'mss'")?;
            let n: i32 = v.parse().map_err(|_| format!("invalid mss '{v}'"))?;
            if n < 0 {
                return Err(format!(
                    "a negative mss ('{v}': reduce the peer's MSS) is not supported by sluice"
                ));
            }
            if !(88..=32_767).contains(&n) {
                return Err(format!(
                    "mss '{v}' is out of range (88-32767, what Linux accepts)"
                ));
            }
            b.mss = Some(n);
            Ok(())
        }
    ),
    opt!(
        "transparent",
        "",
        "bind non-local addresses (IP_TRANSPARENT)",
        |b, _| {
            b.transparent = true;
            Ok(())
        }
    ),
    refused!("ssl", NO_TLS),
    refused!("crt", NO_TLS),
    refused!("crt-list", NO_TLS),
    refused!("alpn", NO_TLS),
    refused!("ca-file", NO_TLS),
    refused!("verify", NO_TLS),
    refused!("npn", NO_TLS),
    refused!(
        "proto",
        "HTTP multiplexers need HTTP mode, which sluice does not proxy"
    ),
];

/// Parses `bind <addrs> [options]`.
pub fn parse_bind(a: &mut Args<'_>) -> Result<Bind, String> {
    let addrs = a.expect("an address and port")?;
    let addrs = parse_bind_addrs(&super::values::expand_env_braces(addrs))?;
    let mut b = Bind {
        span: a.span.clone(),
        addrs,
        accept_proxy: false,
        v4v6: false,
        v6only: false,
        backlog: None,
        maxconn: None,
        name: None,
        id: None,
        interface: None,
        defer_accept: false,
        tfo: false,
        mss: None,
        transparent: false,
    };
    super::apply_options(
        KEYWORDS,
        super::haproxy_known::BIND_OPTIONS,
        "bind",
        &mut b,
        a,
    )?;
    if b.v4v6 && b.v6only {
        return Err("'v4v6' and 'v6only' are mutually exclusive".to_string());
    }
    Ok(b)
}
