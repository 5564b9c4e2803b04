//! Value conversion shared by every keyword table: the argument cursor [`Args`], times
//! (`us ms s m h d`, default ms), sizes (`k m g`), integers with ranges, and addresses
//! (`ip:port`, `[v6]:port`, `*:port`, `:port`, `ipv4@`/`ipv6@`, port ranges).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::error::Span;
use crate::config::lexer::Word;

/// A cursor over a directive's arguments.
pub struct Args<'a> {
    pub span: &'a Span,
    words: &'a [Word],
    pos: usize,
    /// Set by the dispatcher when the line started with `no`.
    pub negated: bool,
    /// Non-fatal findings; the dispatcher turns them into warnings at this line.
    pub warnings: Vec<String>,
}

impl<'a> Args<'a> {
    pub fn new(span: &'a Span, words: &'a [Word]) -> Args<'a> {
        Args {
            span,
            words,
            pos: 0,
            negated: false,
            warnings: Vec::new(),
        }
    }

    /// The next argument, if any.
    pub fn word(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.pos)?;
        self.pos += 1;
        Some(w.text.as_str())
    }

    pub fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).map(|w| w.text.as_str())
    }

    /// The next argument, or an error naming what was expected.
    pub fn expect(&mut self, what: &str) -> Result<&'a str, String> {
        self.word().ok_or_else(|| format!("expects {what}"))
    }

    /// All remaining arguments.
    pub fn rest(&mut self) -> &'a [Word] {
        let r = &self.words[self.pos..];
        self.pos = self.words.len();
        r
    }

    pub fn remaining(&self) -> usize {
        self.words.len() - self.pos
    }

    /// Errors if arguments are left over.
    pub fn done(&self) -> Result<(), String> {
        match self.words.get(self.pos) {
            None => Ok(()),
            Some(w) => Err(format!("unexpected argument '{}'", w.text)),
        }
    }

    pub fn time(&mut self, what: &str) -> Result<Duration, String> {
        parse_time(self.expect(what)?)
    }

    pub fn u32_in(&mut self, what: &str, min: u32, max: u32) -> Result<u32, String> {
        let s = self.expect(what)?;
        parse_u32_in(s, min, max)
    }

    /// A flag keyword takes no argument.
    pub fn flag(&mut self) -> Result<bool, String> {
        self.done()?;
        Ok(!self.negated)
    }
}

/// Parses a time with HAProxy's units; the default unit is milliseconds.
pub fn parse_time(s: &str) -> Result<Duration, String> {
    parse_time_unit(s, 1_000)
}

/// Parses a time whose bare numbers are in `default_us` microseconds per unit.
pub fn parse_time_unit(s: &str, default_us: u64) -> Result<Duration, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("invalid time value '{s}': expects a number"));
    }
    let n: u64 = s[..digits]
        .parse()
        .map_err(|_| format!("time value '{s}' is too large"))?;
    let unit_us: u64 = match &s[digits..] {
        "" => default_us,
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        other => {
            return Err(format!(
                "unexpected character '{}' in time value '{s}' (units are us, ms, s, m, h, d)",
                other.chars().next().unwrap_or(' ')
            ))
        }
    };
    let us = n
        .checked_mul(unit_us)
        .filter(|&us| us / 1_000 <= i32::MAX as u64)
        .ok_or_else(|| format!("time value '{s}' is too large (the limit is about 24.8 days)"))?;
    Ok(Duration::from_micros(us))
}

/// Parses a size with k/m/g suffixes (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("invalid size '{s}': expects a number"));
    }
    let n: u64 = s[..digits]
        .parse()
        .map_err(|_| format!("size '{s}' is too large"))?;
    let mult: u64 = match &s[digits..] {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return Err(format!("invalid size '{s}' (units are k, m, g)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

pub fn parse_u32_in(s: &str, min: u32, max: u32) -> Result<u32, String> {
    let v: u64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a valid number"))?;
    if v < u64::from(min) || v > u64::from(max) {
        return Err(format!("'{s}' is out of range ({min}-{max})"));
    }
    Ok(v as u32)
}

/// `name(arg)` as `(name, Some(arg))`, a bare `name` as `(name, None)`: the call syntax of
/// `balance random(<draws>)`, `conn_rate(<period>)` and the sample fetches.
pub fn split_call(s: &str) -> Result<(&str, Option<&str>), String> {
    match s.split_once('(') {
        None => Ok((s, None)),
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("missing ')' in '{s}'"))?;
            Ok((name, Some(inner)))
        }
    }
}

/// `name(a,b)` as its name and its comma-separated arguments (none for `name` or `name()`).
pub fn split_call_args(s: &str) -> Result<(&str, Vec<&str>), String> {
    let (name, inner) = split_call(s)?;
    let args = match inner {
        None | Some("") => Vec::new(),
        Some(inner) => inner.split(',').collect(),
    };
    Ok((name, args))
}

pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65_535).contains(&p) => Ok(p as u16),
        _ => Err(format!("invalid port '{s}' (1-65535)")),
    }
}

/// The host part of an address and its port text, after an optional `ipv4@`/`ipv6@` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrText<'a> {
    pub family: Family,
    pub host: &'a str,
    /// None when the address has no port.
    pub port: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// Splits `[ipv4@|ipv6@]host[:port]` the way HAProxy does: the last colon separates the port,
/// brackets may enclose an IPv6 address, and an IPv6 address without brackets and without a
/// port is not possible (`:::80` is `::` port 80).
pub fn split_addr(s: &str) -> Result<AddrText<'_>, String> {
    let (family, rest) = if let Some(r) = s.strip_prefix("ipv4@") {
        (Family::V4, r)
    } else if let Some(r) = s.strip_prefix("ipv6@") {
        (Family::V6, r)
    } else if let Some((proto, _)) = s.split_once('@') {
        return Err(format!(
            "address family '{proto}@' is not supported by sluice (only ipv4@ and ipv6@)"
        ));
    } else if s.starts_with('/') || s.starts_with("abns@") || s.starts_with("unix@") {
        return Err(format!(
            "UNIX socket address '{s}' is not supported by sluice"
        ));
    } else {
        (Family::Any, s)
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in address '{s}'"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected '{p}' after ']' in address '{s}'"))?,
            ),
        };
        return Ok(AddrText { family, host, port });
    }
    match rest.rfind(':') {
        Some(i) => Ok(AddrText {
            family,
            host: &rest[..i],
            port: Some(&rest[i + 1..]),
        }),
        None => Ok(AddrText {
            family,
            host: rest,
            port: None,
        }),
    }
}

/// Parses the host of a bind/listen address: empty and `*` mean any, IPs are literal,
/// names are resolved now.
pub fn bind_host(host: &str, family: Family) -> Result<IpAddr, String> {
    let ip = match host {
        "" | "*" | "0.0.0.0" if family != Family::V6 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "" | "*" | "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h => match h.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => resolve_host(h, family)?,
        },
    };
    check_family(ip, family, host)
}

fn check_family(ip: IpAddr, family: Family, host: &str) -> Result<IpAddr, String> {
    match (family, ip) {
        (Family::V4, IpAddr::V6(_)) => Err(format!("'{host}' is not an IPv4 address")),
        (Family::V6, IpAddr::V4(_)) => Err(format!("'{host}' is not an IPv6 address")),
        _ => Ok(ip),
    }
}

/// How host names become addresses at load time.
pub type Resolver = fn(&str, Family) -> Result<IpAddr, String>;

thread_local! {
    static RESOLVER: std::cell::Cell<Resolver> = const { std::cell::Cell::new(resolve_libc) };
}

/// Replaces the resolver of this thread (tests and the fuzzer use one that never touches
/// the network); returns the previous one.
pub fn set_resolver(r: Resolver) -> Resolver {
    RESOLVER.with(|c| c.replace(r))
}

/// Resolves a host name with the current resolver (getaddrinfo unless replaced).
pub fn resolve_host(host: &str, family: Family) -> Result<IpAddr, String> {
    if host.is_empty() {
        return Err("missing address".to_string());
    }
    RESOLVER.with(|c| c.get())(host, family)
}

/// A resolver that knows only `localhost`: no network, deterministic.
pub fn resolve_offline(host: &str, family: Family) -> Result<IpAddr, String> {
    match (host, family) {
        ("localhost", Family::V6) => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ("localhost", _) => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => Err(format!("could not resolve address '{host}'")),
    }
}

/// getaddrinfo. With no family prefix the first IPv4 address wins, then the first address
/// of any family.
fn resolve_libc(host: &str, family: Family) -> Result<IpAddr, String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<IpAddr> = (host, 0u16)
        .to_socket_addrs()
        .map_err(|_| format!("could not resolve address '{host}'"))?
        .map(|a| a.ip())
        .collect();
    let pick = match family {
        Family::V4 | Family::Any => addrs.iter().find(|a| a.is_ipv4()),
        Family::V6 => addrs.iter().find(|a| a.is_ipv6()),
    };
    let pick = pick.or(if family == Family::Any {
        addrs.first()
    } else {
        None
    });
    pick.copied()
        .ok_or_else(|| format!("could not resolve address '{host}'"))
}

/// Expands `${NAME}` in an address, as HAProxy does for every address it parses (even
/// unquoted); an unset variable expands to nothing.
pub fn expand_env_braces(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses `port` or `lo-hi` into an inclusive range.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (lo, hi) = (parse_port(a)?, parse_port(b)?);
            if lo > hi {
                return Err(format!("invalid port range '{s}': {lo} > {hi}"));
            }
            Ok((lo, hi))
        }
    }
}

/// Expands a bind address list (`addr:port[-port][,addr:port...]`).
pub fn parse_bind_addrs(s: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let a = split_addr(part)?;
        let port = a
            .port
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("missing port number in '{part}'"))?;
        let (lo, hi) = parse_port_range(port)?;
        let ip = bind_host(a.host, a.family)?;
        out.extend((lo..=hi).map(|p| SocketAddr::new(ip, p)));
    }
    Ok(out)
}

/// Parses an IPv4/IPv6 address or network (`10.0.0.0/8`, `::1`, `192.168.1.0/255.255.255.0`).
pub fn parse_net(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = a
        .parse()
        .map_err(|_| format!("'{s}' is not a valid IPv4 or IPv6 address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return Err(format!("invalid prefix length in '{s}'")),
            Err(_) => match (ip, p.parse::<Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(mask)) => {
                    let m = u32::from(mask);
                    if m.leading_ones() + m.trailing_zeros() != 32 {
                        return Err(format!("non-contiguous netmask in '{s}'"));
                    }
                    m.leading_ones() as u8
                }
                _ => return Err(format!("invalid prefix length in '{s}'")),
            },
        },
    };
    Ok((ip, prefix))
}

/// Parses hex text (`send-binary`, `expect binary`).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!(
            "'{s}': hex string must have an even number of digits"
        ));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'{s}' is not a valid hex string"))
        })
        .collect()
}

/// An SNI for TLS health checks (`check-sni`, `connect sni`): a host name. HAProxy sends any
/// string; TLS (RFC 6066) allows host names only, and sluice's TLS library sends nothing
/// else, so an address or a malformed name is refused rather than silently not sent.
pub fn parse_sni(s: &str) -> Result<String, String> {
    if s.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "'{s}' is an address: TLS sends host names only as SNI (use 'verifyhost' to check \
             a certificate's name without SNI)"
        ));
    }
    rustls::pki_types::DnsName::try_from(s)
        .map(|_| s.to_string())
        .map_err(|_| format!("'{s}' is not a valid host name to send as SNI"))
}

/// A `verifyhost` name: a host name (or an address, matched against the certificate's
/// address names).
pub fn parse_verifyhost(s: &str) -> Result<String, String> {
    rustls::pki_types::ServerName::try_from(s)
        .map(|_| s.to_string())
        .map_err(|_| format!("'{s}' is not a valid host name"))
}

/// An ALPN list (`check-alpn`, `connect alpn`): protocol names separated by commas, as
/// HAProxy writes them ("h2,http/1.1"), each 1 to 255 bytes.
pub fn parse_alpn(s: &str) -> Result<Vec<String>, String> {
    s.split(',')
        .map(|p| {
            if p.is_empty() || p.len() > 255 {
                Err(format!(
                    "'{s}': ALPN protocol names are 1 to 255 bytes, separated by commas"
                ))
            } else {
                Ok(p.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("5000"), Ok(Duration::from_millis(5_000)));
        assert_eq!(parse_time("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_time("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_time("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_time("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_time("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_time("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_time("").is_err());
        assert!(parse_time("5x").is_err());
        assert!(parse_time("s").is_err());
        assert!(parse_time("-5").is_err());
        assert!(parse_time("30d").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16_384));
        assert_eq!(parse_size("64k"), Ok(65_536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("1t").is_err());
        assert!(parse_size("k").is_err());
    }

    #[test]
    fn addresses() {
        let v4 = |s: &str| parse_bind_addrs(s).unwrap();
        assert_eq!(v4("*:80"), ["0.0.0.0:80".parse().unwrap()]);
        assert_eq!(v4(":80"), ["0.0.0.0:80".parse().unwrap()]);
        assert_eq!(v4("[::]:80"), ["[::]:80".parse().unwrap()]);
        assert_eq!(v4(":::80"), ["[::]:80".parse().unwrap()]);
        assert_eq!(v4("ipv6@:80"), ["[::]:80".parse().unwrap()]);
        assert_eq!(v4("ipv4@127.0.0.1:9"), ["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(v4("127.0.0.1:8000-8002").len(), 3);
        assert_eq!(v4(":80,:443").len(), 2);
        assert!(parse_bind_addrs("127.0.0.1").is_err());
        assert!(parse_bind_addrs("127.0.0.1:0").is_err());
        assert!(parse_bind_addrs("127.0.0.1:70000").is_err());
        assert!(parse_bind_addrs("127.0.0.1:90-80").is_err());
        assert!(parse_bind_addrs("/var/run/x.sock").is_err());
        assert!(parse_bind_addrs("ipv6@127.0.0.1:80").is_err());
        assert!(parse_bind_addrs("[::1:80").is_err());
    }

    #[test]
    fn networks() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().1, 8);
        assert_eq!(parse_net("10.1.2.3").unwrap().1, 32);
        assert_eq!(parse_net("::1").unwrap().1, 128);
        assert_eq!(parse_net("2001:db8::/32").unwrap().1, 32);
        assert_eq!(parse_net("192.168.0.0/255.255.0.0").unwrap().1, 16);
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("10.0.0.0/255.0.255.0").is_err());
        assert!(parse_net("nope").is_err());
    }

    #[test]
    fn tls_names() {
        assert_eq!(
            parse_sni("api.cluster.local"),
            Ok("api.cluster.local".into())
        );
        assert!(parse_sni("10.0.0.1").unwrap_err().contains("verifyhost"));
        assert!(parse_sni("::1").is_err());
        assert!(parse_sni("bad name").is_err());
        assert!(parse_sni("").is_err());
        assert_eq!(parse_verifyhost("10.0.0.1"), Ok("10.0.0.1".into()));
        assert!(parse_verifyhost("*.pool.test").is_err());
        assert_eq!(
            parse_verifyhost("kubernetes.default"),
            Ok("kubernetes.default".into())
        );
        assert_eq!(
            parse_alpn("h2,http/1.1"),
            Ok(vec!["h2".to_string(), "http/1.1".to_string()])
        );
        assert!(parse_alpn("h2,,http/1.1").is_err());
        assert!(parse_alpn("").is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("0a0B"), Ok(vec![10, 11]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
