//! The check protocols as scripts: what a check sends and how it judges the reply, pure (no
//! sockets, no clocks). The health thread runs the steps in order on one connection.
//! This first version covers TCP connect, tcp-check rules, httpchk and redis-check; the
//! other protocols come with the rest of the health-check work.

use std::net::SocketAddr;

use crate::config::model::{
    Agent, CheckKind, ExpectPattern, HttpExpect, HttpExpectKind, TcpCheckRule,
};

/// One step of a check script.
#[derive(Debug, Clone)]
pub enum Step {
    Connect { port: Option<u16>, send_proxy: bool },
    Send(Vec<u8>),
    Expect(Matcher),
    Comment(String),
}

#[derive(Debug, Clone)]
pub enum Matcher {
    Tcp {
        negate: bool,
        pattern: ExpectPattern,
    },
    Http(Option<HttpExpect>),
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    NeedMore,
    Pass,
    Fail(String),
    Agent(AgentReply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Up,
    Down,
    Drain,
    Maint,
    Ready,
    Stopped,
    Fail,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReply {
    pub weight_percent: Option<u32>,
    pub state: Option<AgentState>,
    pub maxconn: Option<u32>,
    pub message: Option<String>,
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Matcher {
    pub fn evaluate(&self, received: &[u8], eof: bool) -> Verdict {
        match self {
            Matcher::Tcp { negate, pattern } => {
                let hit = match pattern {
                    ExpectPattern::String(s) | ExpectPattern::Binary(s) => find(received, s),
                    ExpectPattern::Rstring(re) => regex::Regex::new(re)
                        .map(|r| r.is_match(&String::from_utf8_lossy(received)))
                        .unwrap_or(false),
                };
                match (hit, negate, eof) {
                    (true, false, _) => Verdict::Pass,
                    (true, true, _) => Verdict::Fail("TCPCHK matched unwanted content".to_string()),
                    (false, true, true) => Verdict::Pass,
                    (false, false, true) => {
                        Verdict::Fail("TCPCHK did not match content".to_string())
                    }
                    (false, _, false) => Verdict::NeedMore,
                }
            }
            Matcher::Http(expect) => {
                let Some(line_end) = received.windows(2).position(|w| w == b"\r\n") else {
                    return if eof {
                        Verdict::Fail("Layer7 invalid response".to_string())
                    } else {
                        Verdict::NeedMore
                    };
                };
                let line = String::from_utf8_lossy(&received[..line_end]);
                let mut parts = line.splitn(3, ' ');
                let (Some(v), Some(code)) = (parts.next(), parts.next()) else {
                    return Verdict::Fail("Layer7 invalid response".to_string());
                };
                let Ok(code) = code.parse::<u16>() else {
                    return Verdict::Fail("Layer7 invalid response".to_string());
                };
                if !v.starts_with("HTTP/") {
                    return Verdict::Fail("Layer7 invalid response".to_string());
                }
                let ok = match expect {
                    None => (200..400).contains(&code),
                    Some(HttpExpect { negate, kind }) => {
                        let hit = match kind {
                            HttpExpectKind::Status(list) => {
                                list.iter().any(|(a, b)| (*a..=*b).contains(&code))
                            }
                            HttpExpectKind::Rstatus(re) => regex::Regex::new(re)
                                .map(|r| r.is_match(&code.to_string()))
                                .unwrap_or(false),
                            HttpExpectKind::String(s) => {
                                if !eof {
                                    return Verdict::NeedMore;
                                }
                                find(received, s.as_bytes())
                            }
                        };
                        hit != *negate
                    }
                };
                if ok {
                    Verdict::Pass
                } else {
                    Verdict::Fail(format!("Layer7 wrong status, code: {code}"))
                }
            }
            Matcher::Agent => match received.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    Verdict::Agent(parse_agent_reply(&String::from_utf8_lossy(&received[..i])))
                }
                None if eof => {
                    Verdict::Agent(parse_agent_reply(&String::from_utf8_lossy(received)))
                }
                None => Verdict::NeedMore,
            },
        }
    }
}

pub fn script(kind: &CheckKind) -> Vec<Step> {
    match kind {
        CheckKind::Connect => Vec::new(),
        CheckKind::TcpCheck(rules) => rules
            .iter()
            .map(|r| match r {
                TcpCheckRule::Connect { port, send_proxy } => Step::Connect {
                    port: *port,
                    send_proxy: *send_proxy,
                },
                TcpCheckRule::Send(b) => Step::Send(b.clone()),
                TcpCheckRule::Expect { negate, pattern } => Step::Expect(Matcher::Tcp {
                    negate: *negate,
                    pattern: pattern.clone(),
                }),
                TcpCheckRule::Comment(c) => Step::Comment(c.clone()),
            })
            .collect(),
        CheckKind::HttpChk {
            method,
            uri,
            version,
            expect,
        } => vec![
            Step::Send(
                format!("{method} {uri} {version}\r\nConnection: close\r\n\r\n").into_bytes(),
            ),
            Step::Expect(Matcher::Http(expect.clone())),
        ],
        CheckKind::Redis => vec![
            Step::Send(b"PING\r\n".to_vec()),
            Step::Expect(Matcher::Tcp {
                negate: false,
                pattern: ExpectPattern::String(b"+PONG".to_vec()),
            }),
        ],
        // Other protocols are checked at layer 4 until their scripts land.
        CheckKind::Mysql { .. } | CheckKind::Pgsql { .. } | CheckKind::SslHello => Vec::new(),
    }
}

pub fn agent_script(agent: &Agent) -> Vec<Step> {
    let mut v = Vec::new();
    if let Some(s) = &agent.send {
        v.push(Step::Send(s.clone().into_bytes()));
    }
    v.push(Step::Expect(Matcher::Agent));
    v
}

pub fn parse_agent_reply(line: &str) -> AgentReply {
    let mut r = AgentReply::default();
    let (words, msg) = match line.split_once('#') {
        Some((w, m)) => (w, Some(m.trim().to_string())),
        None => (line, None),
    };
    r.message = msg;
    for w in words
        .split([' ', ',', '\t', '\r'])
        .filter(|w| !w.is_empty())
    {
        let lw = w.to_ascii_lowercase();
        if let Some(p) = lw.strip_suffix('%') {
            r.weight_percent = p.parse().ok();
        } else if let Some(m) = lw.strip_prefix("maxconn:") {
            r.maxconn = m.parse().ok();
        } else {
            r.state = match lw.as_str() {
                "up" => Some(AgentState::Up),
                "down" => Some(AgentState::Down),
                "drain" => Some(AgentState::Drain),
                "maint" => Some(AgentState::Maint),
                "ready" => Some(AgentState::Ready),
                "stopped" => Some(AgentState::Stopped),
                "fail" => Some(AgentState::Fail),
                _ => r.state,
            };
        }
    }
    r
}

pub fn proxy_v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let fam = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}
