//! Options of `server` and `default-server` lines (configuration.txt §5.2) and the
//! [`ServerDraft`] they fill. A `server` line starts from a copy of the proxy's
//! `default-server` draft; addresses are resolved later, in `validate.rs`.

use std::net::IpAddr;
use std::time::Duration;

use super::values::{parse_alpn, parse_port, parse_sni, parse_verifyhost, Args};
use super::{scope::BE, KeywordSpec, Parsed, Support, SINCE};
use crate::config::error::Span;
use crate::config::model::{OnError, ProxyProtocol};

/// One `init-addr` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitAddr {
    /// The server-state file; sluice has none, so this method never yields an address.
    Last,
    Libc,
    None,
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerDraft {
    pub span: Span,
    pub name: String,
    /// The address as written (`10.0.0.1:80`, `db1:3306`, `[::1]:80`, `10.0.0.1`).
    pub addr: String,
    pub uid: Option<u32>,
    pub check: bool,
    pub inter: Duration,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    pub check_port: Option<u16>,
    pub check_addr: Option<IpAddr>,
    pub check_send_proxy: bool,
    pub weight: u32,
    pub backup: bool,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub minconn: Option<u32>,
    pub slowstart: Option<Duration>,
    pub send_proxy: Option<ProxyProtocol>,
    pub disabled: bool,
    pub agent_check: bool,
    pub agent_port: Option<u16>,
    pub agent_addr: Option<IpAddr>,
    pub agent_inter: Option<Duration>,
    pub agent_send: Option<String>,
    pub observe_layer4: bool,
    pub error_limit: u32,
    pub on_error: OnError,
    pub on_marked_down_shutdown: bool,
    pub on_marked_up_shutdown_backup: bool,
    pub init_addr: Vec<InitAddr>,
    /// `check-ssl` / `no-check-ssl`.
    pub check_ssl: bool,
    pub check_sni: Option<String>,
    pub check_alpn: Vec<String>,
    /// `verify required` (true) or `verify none`; None: the global `ssl-server-verify`.
    pub verify: Option<bool>,
    /// `ca-file` as written (validation resolves it against `ca-base` and reads it).
    pub ca_file: Option<String>,
    pub verifyhost: Option<String>,
}

impl Default for ServerDraft {
    fn default() -> ServerDraft {
        ServerDraft {
            span: Span::new(&std::sync::Arc::from(""), 0),
            name: String::new(),
            addr: String::new(),
            uid: None,
            check: false,
            inter: Duration::from_secs(2),
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            check_port: None,
            check_addr: None,
            check_send_proxy: false,
            weight: 1,
            backup: false,
            maxconn: None,
            maxqueue: None,
            minconn: None,
            slowstart: None,
            send_proxy: None,
            disabled: false,
            agent_check: false,
            agent_port: None,
            agent_addr: None,
            agent_inter: None,
            agent_send: None,
            observe_layer4: false,
            error_limit: 10,
            on_error: OnError::FailCheck,
            on_marked_down_shutdown: false,
            on_marked_up_shutdown_backup: false,
            init_addr: vec![InitAddr::Last, InitAddr::Libc],
            check_ssl: false,
            check_sni: None,
            check_alpn: Vec::new(),
            verify: None,
            ca_file: None,
            verifyhost: None,
        }
    }
}

macro_rules! opt {
    ($name:expr, $usage:expr, $doc:expr, $f:expr) => {
        KeywordSpec {
            name: $name,
            scope: BE,
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
            scope: BE,
            support: Support::No($why),
            since: SINCE,
            usage: "",
            doc: $why,
            parse: None,
        }
    };
}

fn time_opt(a: &mut Args<'_>, name: &str) -> Result<Duration, String> {
    let t = a.time(&format!("a time after '{name}'"))?;
    if t.is_zero() {
        return Err(format!("'{name}' must be greater than 0"));
    }
    Ok(t)
}

const NO_TLS: &str = "sluice forwards TCP and originates no TLS on the data path; use TLS passthrough (health checks can speak TLS: 'check-ssl')";

pub static KEYWORDS: &[KeywordSpec<ServerDraft>] = &[
    opt!("check", "", "enable health checks", |s, _| {
        s.check = true;
        Ok(())
    }),
    opt!(
        "no-check",
        "",
        "disable health checks set by default-server",
        |s, _| {
            s.check = false;
            Ok(())
        }
    ),
    opt!(
        "inter",
        "<time>",
        "interval between checks (default 2s)",
        |s, a| {
            s.inter = time_opt(a, "inter")?;
            Ok(())
        }
    ),
    opt!(
        "fastinter",
        "<time>",
        "check interval while a server changes state",
        |s, a| {
            s.fastinter = Some(time_opt(a, "fastinter")?);
            Ok(())
        }
    ),
    opt!(
        "downinter",
        "<time>",
        "check interval while a server is down",
        |s, a| {
            s.downinter = Some(time_opt(a, "downinter")?);
            Ok(())
        }
    ),
    opt!(
        "rise",
        "<count>",
        "successful checks to mark a server up (default 2)",
        |s, a| {
            s.rise = a.u32_in("a count after 'rise'", 1, 1_000_000)?;
            Ok(())
        }
    ),
    opt!(
        "fall",
        "<count>",
        "failed checks to mark a server down (default 3)",
        |s, a| {
            s.fall = a.u32_in("a count after 'fall'", 1, 1_000_000)?;
            Ok(())
        }
    ),
    opt!("port", "<port>", "health-check port", |s, a| {
        s.check_port = Some(parse_port(a.expect("a port after 'port'")?)?);
        Ok(())
    }),
    opt!("addr", "<ip>", "health-check address", |s, a| {
        let v = a.expect("an address after 'addr'")?;
        s.check_addr = Some(
            v.parse()
                .map_err(|_| format!("invalid address '{v}' after 'addr'"))?,
        );
        Ok(())
    }),
    opt!(
        "weight",
        "<0-256>",
        "relative share of the load (default 1)",
        |s, a| {
            let w = a.expect("a weight after 'weight'")?;
            s.weight = w.parse::<u32>().ok().filter(|&v| v <= 256).ok_or_else(|| {
                format!("weight of server {} is not within 0 and 256 ({w})", s.name)
            })?;
            Ok(())
        }
    ),
    opt!(
        "backup",
        "",
        "used only when no active server is usable",
        |s, _| {
            s.backup = true;
            Ok(())
        }
    ),
    opt!(
        "no-backup",
        "",
        "undo 'backup' from default-server",
        |s, _| {
            s.backup = false;
            Ok(())
        }
    ),
    opt!(
        "maxconn",
        "<n>",
        "maximum concurrent connections; more wait in the queue",
        |s, a| {
            s.maxconn = Some(a.u32_in("a number after 'maxconn'", 0, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "maxqueue",
        "<n>",
        "maximum connections waiting for this server",
        |s, a| {
            s.maxqueue = Some(a.u32_in("a number after 'maxqueue'", 0, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "minconn",
        "<n>",
        "dynamic maxconn floor (with fullconn)",
        |s, a| {
            s.minconn = Some(a.u32_in("a number after 'minconn'", 0, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "slowstart",
        "<time>",
        "ramp the weight up over this time after coming back",
        |s, a| {
            s.slowstart = Some(a.time("a time after 'slowstart'")?).filter(|t| !t.is_zero());
            Ok(())
        }
    ),
    opt!(
        "send-proxy",
        "",
        "send a PROXY protocol v1 header to the server",
        |s, _| {
            s.send_proxy = Some(ProxyProtocol::V1);
            Ok(())
        }
    ),
    opt!(
        "send-proxy-v2",
        "",
        "send a PROXY protocol v2 header to the server",
        |s, _| {
            s.send_proxy = Some(ProxyProtocol::V2);
            Ok(())
        }
    ),
    opt!(
        "no-send-proxy",
        "",
        "undo send-proxy from default-server",
        |s, _| {
            s.send_proxy = None;
            Ok(())
        }
    ),
    opt!(
        "no-send-proxy-v2",
        "",
        "undo send-proxy-v2 from default-server",
        |s, _| {
            s.send_proxy = None;
            Ok(())
        }
    ),
    opt!(
        "check-send-proxy",
        "",
        "health checks send a PROXY header too",
        |s, _| {
            s.check_send_proxy = true;
            Ok(())
        }
    ),
    opt!("disabled", "", "start in maintenance", |s, _| {
        s.disabled = true;
        Ok(())
    }),
    opt!(
        "enabled",
        "",
        "undo 'disabled' from default-server",
        |s, _| {
            s.disabled = false;
            Ok(())
        }
    ),
    opt!(
        "agent-check",
        "",
        "poll an agent that reports weight and state",
        |s, _| {
            s.agent_check = true;
            Ok(())
        }
    ),
    opt!(
        "no-agent-check",
        "",
        "undo agent-check from default-server",
        |s, _| {
            s.agent_check = false;
            Ok(())
        }
    ),
    opt!("agent-port", "<port>", "the agent's TCP port", |s, a| {
        s.agent_port = Some(parse_port(a.expect("a port after 'agent-port'")?)?);
        Ok(())
    }),
    opt!("agent-addr", "<ip>", "the agent's address", |s, a| {
        let v = a.expect("an address after 'agent-addr'")?;
        s.agent_addr = Some(
            v.parse()
                .map_err(|_| format!("invalid address '{v}' after 'agent-addr'"))?,
        );
        Ok(())
    }),
    opt!(
        "agent-inter",
        "<time>",
        "interval between agent polls (default: inter)",
        |s, a| {
            s.agent_inter = Some(time_opt(a, "agent-inter")?);
            Ok(())
        }
    ),
    opt!(
        "agent-send",
        "<string>",
        "a string sent to the agent on connect",
        |s, a| {
            s.agent_send = Some(a.expect("a string after 'agent-send'")?.to_string());
            Ok(())
        }
    ),
    opt!(
        "observe",
        "layer4",
        "watch live traffic for connection errors",
        |s, a| {
            match a.expect("'layer4' after 'observe'")? {
                "layer4" => s.observe_layer4 = true,
                "layer7" => {
                    return Err(
                        "'observe layer7' needs HTTP mode, which sluice does not proxy".to_string(),
                    )
                }
                o => return Err(format!("'observe' expects 'layer4', not '{o}'")),
            }
            Ok(())
        }
    ),
    opt!(
        "error-limit",
        "<count>",
        "errors observed before on-error applies (default 10)",
        |s, a| {
            s.error_limit = a.u32_in("a count after 'error-limit'", 1, 1_000_000)?;
            Ok(())
        }
    ),
    opt!(
        "on-error",
        "fastinter|fail-check|sudden-death|mark-down",
        "what observed errors do",
        |s, a| {
            s.on_error = match a.expect("a mode after 'on-error'")? {
                "fastinter" => OnError::FastInter,
                "fail-check" => OnError::FailCheck,
                "sudden-death" => OnError::SuddenDeath,
                "mark-down" => OnError::MarkDown,
                m => {
                    return Err(format!(
                    "unknown on-error mode '{m}' (fastinter, fail-check, sudden-death, mark-down)"
                ))
                }
            };
            Ok(())
        }
    ),
    opt!(
        "on-marked-down",
        "shutdown-sessions",
        "close this server's connections when it goes down",
        |s, a| {
            match a.expect("'shutdown-sessions' after 'on-marked-down'")? {
                "shutdown-sessions" => s.on_marked_down_shutdown = true,
                o => {
                    return Err(format!(
                        "'on-marked-down' expects 'shutdown-sessions', not '{o}'"
                    ))
                }
            }
            Ok(())
        }
    ),
    opt!(
        "on-marked-up",
        "shutdown-backup-sessions",
        "close backup connections when this server comes up",
        |s, a| {
            match a.expect("'shutdown-backup-sessions' after 'on-marked-up'")? {
                "shutdown-backup-sessions" => s.on_marked_up_shutdown_backup = true,
                o => {
                    return Err(format!(
                        "'on-marked-up' expects 'shutdown-backup-sessions', not '{o}'"
                    ))
                }
            }
            Ok(())
        }
    ),
    opt!(
        "id",
        "<number>",
        "the numeric id of the server in stats",
        |s, a| {
            s.uid = Some(a.u32_in("a number after 'id'", 1, i32::MAX as u32)?);
            Ok(())
        }
    ),
    opt!(
        "init-addr",
        "{last|libc|none|<ip>},...",
        "how the address is found at load (last: no state file in sluice)",
        |s, a| {
            let list = a.expect("a list of methods after 'init-addr'")?;
            s.init_addr = list
                .split(',')
                .map(|m| match m {
                    "last" => Ok(InitAddr::Last),
                    "libc" => Ok(InitAddr::Libc),
                    "none" => Ok(InitAddr::None),
                    ip => ip.parse().map(InitAddr::Ip).map_err(|_| {
                        format!("unknown init-addr method '{ip}' (last, libc, none, <ip>)")
                    }),
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        }
    ),
    opt!(
        "check-ssl",
        "",
        "health checks speak TLS (the data path stays plain TCP)",
        |s, _| {
            s.check_ssl = true;
            Ok(())
        }
    ),
    opt!(
        "no-check-ssl",
        "",
        "undo check-ssl from default-server",
        |s, _| {
            s.check_ssl = false;
            Ok(())
        }
    ),
    opt!(
        "check-sni",
        "<name>",
        "SNI sent by TLS health checks",
        |s, a| {
            s.check_sni = Some(parse_sni(a.expect("a host name after 'check-sni'")?)?);
            Ok(())
        }
    ),
    opt!(
        "check-alpn",
        "<protocols>",
        "ALPN protocols offered by TLS health checks (comma-separated)",
        |s, a| {
            s.check_alpn = parse_alpn(a.expect("a protocol list after 'check-alpn'")?)?;
            Ok(())
        }
    ),
    opt!(
        "verify",
        "none|required",
        "TLS health checks verify the server's certificate (default: ssl-server-verify)",
        |s, a| {
            s.verify = Some(match a.expect("'none' or 'required' after 'verify'")? {
                "none" => false,
                "required" => true,
                m => {
                    return Err(format!(
                        "unknown verify method '{m}', only 'none' and 'required' are supported"
                    ))
                }
            });
            Ok(())
        }
    ),
    opt!(
        "ca-file",
        "<file>",
        "CA certificates (PEM file or directory, @system-ca) for verify required; relative to ca-base",
        |s, a| {
            s.ca_file = Some(a.expect("a file after 'ca-file'")?.to_string());
            Ok(())
        }
    ),
    opt!(
        "verifyhost",
        "<name>",
        "the name a verified certificate must carry when no SNI is sent",
        |s, a| {
            s.verifyhost = Some(parse_verifyhost(
                a.expect("a host name after 'verifyhost'")?,
            )?);
            Ok(())
        }
    ),
    refused!("ssl", NO_TLS),
    refused!("sni", NO_TLS),
    refused!(
        "crt",
        "sluice presents no client certificate, on the data path or in TLS health checks"
    ),
    refused!("alpn", NO_TLS),
    refused!(
        "resolvers",
        "runtime DNS resolution is not supported by sluice: addresses are resolved at load"
    ),
    refused!(
        "cookie",
        "HTTP cookies need HTTP mode, which sluice does not proxy"
    ),
    refused!(
        "track",
        "not supported by sluice: give each server its own 'check'"
    ),
];

/// Applies the options of a `server`/`default-server` line.
pub fn parse_server_options(s: &mut ServerDraft, a: &mut Args<'_>) -> Parsed {
    super::apply_options(
        KEYWORDS,
        super::haproxy_known::SERVER_OPTIONS,
        "server",
        s,
        a,
    )
}
