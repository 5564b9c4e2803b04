//! The check protocols as scripts: what a health check sends, how it judges the reply, and how
//! HAProxy 2.6 words the result. Pure: no sockets, no clocks, no threads; the health thread
//! (`mod.rs`) runs a [`Script`] on real connections and this file only turns bytes into
//! [`Verdict`]s and [`Report`]s.
//!
//! Every byte sent and every verdict follows HAProxy 2.6 (`src/tcpcheck.c`, `src/check.c`),
//! checked against a running HAProxy 2.6.12: the bytes in the tests were captured from it,
//! and the report texts are the ones it logs with `option log-health-checks`.
//!
//! How a runner executes a script (HAProxy's `tcpcheck_main`):
//! - It connects first unless the script starts with [`Step::Connect`] (HAProxy's implicit
//!   connect, step 0, which honours the server's `check-send-proxy` and `port`).
//! - A connect that speaks TLS (`ssl`, or the implicit connect and `default` with the
//!   server's `check-ssl`) does its handshake before the next step (`tls.rs`); the steps'
//!   bytes go through the session unchanged. A failed or slow handshake is a layer-6
//!   failure ([`Trouble::Handshake`], [`Trouble::HandshakeTimeout`]).
//! - [`Step::Send`] writes bytes; [`Step::Comment`] does nothing (its text is already part of
//!   the next step's reports).
//! - [`Step::Expect`] reads, then asks [`Matcher::evaluate`] about *everything received on
//!   this connection since the last `Send` or `Connect`*: HAProxy empties its input buffer
//!   only there, never after a passing expect, so two expects in a row judge the same bytes
//!   (mysql-check's second expect needs the greeting the first one saw). The runner reads
//!   only while an expect is current, and at most [`CHECK_BUFSIZE`] bytes.
//! - The first [`Verdict::Fail`] ends the check; when the steps run out the check passed
//!   with [`Script::success`]; connect errors, timeouts and socket errors are worded by
//!   [`Script::failure`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use regex::bytes::Regex;

use crate::config::model::{
    Agent, CheckConnect, CheckKind, ExpectPattern, HttpCheckRule, HttpExpect, HttpExpectKind,
    HttpRequest, TcpCheckRule,
};

/// HAProxy's check buffer (`tune.bufsize`, 16 KiB by default): a runner reads at most this much
/// per step, and an expect that sees a full buffer judges it as final, as if the server had
/// closed.
pub const CHECK_BUFSIZE: usize = 16_384;

/// The longest report info HAProxy keeps (`HCHK_DESC_LEN` - 1); longer texts are cut.
pub const INFO_MAX: usize = 127;

// ---------------------------------------------------------------------------------------------
// scripts

/// What a check runs: the steps, and which kind of check produced them (it selects HAProxy's
/// wording of failures).
#[derive(Debug, Clone)]
pub struct Script {
    pub origin: Origin,
    pub steps: Vec<Step>,
}

/// The check kind a script comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The default check: a TCP connect and nothing else.
    Connect,
    /// `option tcp-check` and its rules: the only kind whose failures name the step.
    TcpCheck,
    Http,
    Mysql,
    Pgsql,
    Redis,
    SslHello,
    Ldap,
    Smtp,
    Agent,
}

/// One step of a check script, run in order on one connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// (Re)connect, closing the previous connection of this check if any.
    Connect {
        /// Overrides the check port (`port`) or the server's port.
        port: Option<u16>,
        /// Overrides the check address (`addr`) or the server's address.
        addr: Option<IpAddr>,
        /// Sends a PROXY v1 header ([`proxy_v1_header`]) before anything else.
        send_proxy: bool,
        /// HAProxy's `connect default`: also applies the server's check options
        /// (`check-send-proxy`), as the implicit connect does. Used by mysql-check and
        /// pgsql-check.
        default: bool,
        /// HAProxy's `connect linger`: close cleanly with a FIN. Without it a check closes
        /// with a reset (SO_LINGER 0), which is what HAProxy does for every other check.
        linger: bool,
        /// `connect ssl`: TLS over this connection (with `default`, also when the server has
        /// `check-ssl`). The runner does the handshake before the next step.
        ssl: bool,
        /// `connect sni`: the SNI of that handshake (with `default`, else `check-sni`).
        sni: Option<String>,
        /// `connect alpn`: the ALPN protocols offered (with `default`, else `check-alpn`).
        alpn: Vec<String>,
    },
    /// Writes these bytes.
    Send(Vec<u8>),
    /// Reads until the matcher decides.
    Expect(Matcher),
    /// `tcp-check comment`: the text reported if the next step fails. Kept in the script so
    /// that step numbers stay HAProxy's (see [`Script::step_id`]).
    Comment(String),
}

/// An expect step: how to judge the reply, and the context HAProxy reports with it.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// HAProxy's step number of this expect (its position in the script, from 1).
    pub step: u32,
    /// The `tcp-check comment` just before this expect, if any.
    pub comment: Option<String>,
    pub kind: MatchKind,
}

/// What an expect looks for.
#[derive(Debug, Clone)]
pub enum MatchKind {
    /// `tcp-check expect [!] string`: the bytes appear anywhere in what was received.
    String { negate: bool, pattern: Vec<u8> },
    /// `tcp-check expect [!] binary`: the same, with hex-decoded bytes.
    Binary { negate: bool, pattern: Vec<u8> },
    /// `tcp-check expect [!] rstring`: the regular expression matches what was received
    /// (searched on the raw bytes; None if the expression did not compile, which config
    /// validation prevents).
    Rstring { negate: bool, regex: Option<Regex> },
    /// `option httpchk` with its `http-check expect` (or the implicit 2xx/3xx one).
    Http(HttpMatch),
    /// mysql-check: the server's first packet is not an error packet.
    MysqlGreeting,
    /// mysql-check with a user: the packet after the greeting is not an error packet.
    MysqlOk,
    /// pgsql-check, first expect: the reply is not an ErrorResponse ('E').
    PgsqlNotError,
    /// pgsql-check, second expect: an AuthenticationRequest HAProxy knows ('R', length 8,
    /// 10 or 12, method ok/kerberos/cleartext/crypt/md5/scm).
    PgsqlAuth,
    /// redis-check: "+PONG\r\n".
    RedisPong,
    /// ssl-hello-chk: the reply starts with a TLS record of type handshake (0x16) or alert
    /// (0x15).
    SslHello,
    /// ldap-check, first expect: an LDAP message (`rbinary ^30`, min-recv 14).
    LdapMessage,
    /// ldap-check, second expect: a BindResponse to message 1 with resultCode 0.
    LdapBindResponse,
    /// smtpchk: a reply line (`rstring ^[0-9]{3}[ \r]`, min-recv 4).
    SmtpReply,
    /// smtpchk: a 2xx reply, its code and text reported: the greeting (`^2[0-9]{2}[ \r]`,
    /// min-recv 4), the reply to HELO/EHLO (`^(2[0-9]{2}-[^\r]*\r\n)*2[0-9]{2}[ \r]`:
    /// every line of a multi-line reply, waiting for the last) and the reply to QUIT
    /// (`^2[0-9]{2}[- \r]`, min-recv 4).
    SmtpOk(SmtpStep),
    /// agent-check: one line of HAProxy's agent grammar.
    Agent,
}

/// Which 2xx reply an smtpchk expect judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStep {
    Greeting,
    Hello,
    Quit,
}

/// An HTTP expectation on one response.
#[derive(Debug, Clone)]
pub struct HttpMatch {
    /// `http-check expect !`.
    pub negate: bool,
    pub rule: HttpRule,
    /// The request was a HEAD: the response has no body.
    pub head: bool,
}

/// What an HTTP expect tests.
#[derive(Debug, Clone)]
pub enum HttpRule {
    /// `status <list>`: inclusive ranges; the implicit rule is 200-399.
    Status(Vec<(u16, u16)>),
    /// `rstatus <regex>`, on the three digits of the status code.
    Rstatus(Option<Regex>),
    /// `string <text>`, anywhere in the (de-chunked) body.
    Body(Vec<u8>),
}

/// What an expect decided about the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Undecided: read more (or, at a timeout, fail with [`Script::failure`]).
    NeedMore,
    /// Passed; run the next step. The report is the check's result if this is the last step
    /// (see [`Script::success`]).
    Pass(Report),
    /// Failed; the check ends with this report.
    Fail(Report),
    /// An agent answered; the check ends. The reply says what to change (possibly nothing).
    Agent(AgentReply),
}

/// What carried the connection a script ended on: a check over TLS that ends with its
/// connect passes at layer 6 (L6OK) rather than layer 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
}

/// What went wrong outside the expects, for [`Script::failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble<'a> {
    /// connect() failed; the text is the system error, as `strerror` words it
    /// ("Connection refused").
    ConnectError(&'a str),
    /// The connection was not established in time.
    ConnectTimeout,
    /// The TLS handshake failed; the text is HAProxy's words for why ("SSL handshake
    /// failure", or a certificate whose names do not match).
    Handshake(&'a str),
    /// Connected, but the TLS handshake did not finish within the connect limit.
    HandshakeTimeout,
    /// Connected, but the script did not finish in time (`timeout check`).
    Timeout,
    /// A send or receive failed on an established connection ("Connection reset by peer").
    SocketError(&'a str),
}

impl Script {
    /// HAProxy's step number of `steps[index]`: its position from 1. Step 0 is the implicit
    /// connect, when the script does not start with one.
    pub fn step_id(index: usize) -> u32 {
        u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1))
    }

    /// True when the script opens its own connection: the runner must not connect first.
    pub fn connects_first(&self) -> bool {
        matches!(
            self.steps.iter().find(|s| !matches!(s, Step::Comment(_))),
            Some(Step::Connect { .. })
        )
    }

    /// The report of a check that ran every step. `last_pass` is the report of the last
    /// [`Verdict::Pass`], if any: HAProxy reports on the last step it ran, so an expect's own
    /// report wins when the script ends with it, a trailing send or connect reports
    /// "(tcp-check)", and a bare connect reports nothing more than Layer4 success (Layer6
    /// when the connection it ended on spoke TLS).
    pub fn success(&self, last_pass: Option<Report>, transport: Transport) -> Report {
        let connected = match transport {
            Transport::Tcp => CheckStatus::L4Ok,
            Transport::Tls => CheckStatus::L6Ok,
        };
        let last = self
            .steps
            .iter()
            .rev()
            .find(|s| !matches!(s, Step::Comment(_)));
        match last {
            Some(Step::Expect(_)) => {
                last_pass.unwrap_or_else(|| Report::new(CheckStatus::L7Ok, 0, b""))
            }
            Some(Step::Send(_)) => Report::new(CheckStatus::L7Ok, 0, b"(tcp-check)"),
            Some(Step::Connect { .. }) => Report::new(connected, 0, b"(tcp-check)"),
            None | Some(Step::Comment(_)) => Report::new(connected, 0, b""),
        }
    }

    /// The report of a check that failed outside an expect's verdict. `at` is the index of
    /// the step running when it happened, None for the implicit connect. Only tcp-check
    /// scripts say where (" at step 2 of tcp-check (expect string 'role:master')").
    pub fn failure(&self, at: Option<usize>, trouble: Trouble<'_>) -> Report {
        let step = at.and_then(|i| self.steps.get(i));
        let mut info = Vec::new();
        match trouble {
            Trouble::ConnectError(e) | Trouble::SocketError(e) | Trouble::Handshake(e) => {
                info.extend_from_slice(e.as_bytes())
            }
            Trouble::ConnectTimeout | Trouble::HandshakeTimeout | Trouble::Timeout => {}
        }
        if self.origin == Origin::TcpCheck {
            self.where_in_tcp_check(at, &mut info);
        }
        let status = match trouble {
            Trouble::ConnectError(_) => CheckStatus::L4Con,
            Trouble::ConnectTimeout => CheckStatus::L4Tout,
            Trouble::SocketError(_) => CheckStatus::SockErr,
            Trouble::Handshake(_) => CheckStatus::L6Rsp,
            Trouble::HandshakeTimeout => CheckStatus::L6Tout,
            Trouble::Timeout => match step {
                Some(Step::Expect(m)) => m.timeout_status(),
                _ => CheckStatus::L7Tout,
            },
        };
        Report::new(status, 0, &info)
    }

    /// HAProxy's " at step N of tcp-check (what) comment: 'c'" suffix.
    fn where_in_tcp_check(&self, at: Option<usize>, out: &mut Vec<u8>) {
        let Some(i) = at else {
            out.extend_from_slice(b" at initial connection step of tcp-check");
            return;
        };
        out.extend_from_slice(format!(" at step {} of tcp-check", Script::step_id(i)).as_bytes());
        match self.steps.get(i) {
            Some(Step::Connect {
                port: Some(port), ..
            }) => out.extend_from_slice(format!(" (connect port {port})").as_bytes()),
            Some(Step::Connect { port: None, .. }) => out.extend_from_slice(b" (connect)"),
            Some(Step::Send(_)) => out.extend_from_slice(b" (send)"),
            Some(Step::Expect(m)) => m.describe(out),
            Some(Step::Comment(_)) | None => {}
        }
        if let Some(c) = comment_before(&self.steps, i) {
            out.extend_from_slice(b" comment: '");
            out.extend_from_slice(c.as_bytes());
            out.push(b'\'');
        }
    }
}

/// The script for a backend's check kind.
pub fn script(kind: &CheckKind) -> Script {
    match kind {
        CheckKind::Connect => Script {
            origin: Origin::Connect,
            steps: Vec::new(),
        },
        CheckKind::TcpCheck(rules) => tcp_check_script(rules),
        CheckKind::HttpChk(rules) => http_check_script(rules),
        CheckKind::Mysql { user, post_41 } => {
            let mut steps = vec![own_connect()];
            if let Some(user) = user {
                steps.push(Step::Send(mysql_auth(user, *post_41)));
            }
            let greeting = Script::step_id(steps.len());
            steps.push(expect(greeting, MatchKind::MysqlGreeting));
            if user.is_some() {
                steps.push(expect(greeting + 1, MatchKind::MysqlOk));
            }
            Script {
                origin: Origin::Mysql,
                steps,
            }
        }
        CheckKind::Pgsql { user } => Script {
            origin: Origin::Pgsql,
            steps: vec![
                own_connect(),
                Step::Send(pgsql_startup(user)),
                expect(3, MatchKind::PgsqlNotError),
                expect(4, MatchKind::PgsqlAuth),
            ],
        },
        CheckKind::Redis => Script {
            origin: Origin::Redis,
            steps: vec![
                Step::Send(REDIS_PING.to_vec()),
                expect(2, MatchKind::RedisPong),
            ],
        },
        CheckKind::Ldap => Script {
            origin: Origin::Ldap,
            steps: vec![
                Step::Send(LDAP_BIND.to_vec()),
                expect(2, MatchKind::LdapMessage),
                expect(3, MatchKind::LdapBindResponse),
            ],
        },
        CheckKind::Smtp { command } => Script {
            origin: Origin::Smtp,
            steps: vec![
                own_connect(),
                expect(2, MatchKind::SmtpReply),
                expect(3, MatchKind::SmtpOk(SmtpStep::Greeting)),
                Step::Send(format!("{command}\r\n").into_bytes()),
                expect(5, MatchKind::SmtpOk(SmtpStep::Hello)),
                // A clean goodbye, as HAProxy 2.6 says one (its issue 1812).
                Step::Send(b"QUIT\r\n".to_vec()),
                expect(7, MatchKind::SmtpOk(SmtpStep::Quit)),
            ],
        },
        CheckKind::SslHello => Script {
            origin: Origin::SslHello,
            // HAProxy stamps the hello with the current time; a pure script cannot, and
            // servers ignore the field (TLS 1.3 makes it random). See `ssl_client_hello`.
            steps: vec![
                Step::Send(ssl_client_hello(0)),
                expect(2, MatchKind::SslHello),
            ],
        },
    }
}

/// The agent-check script: send `agent-send` (if any), then read one line. The runner
/// connects to the agent's address and port, never with a PROXY header.
pub fn agent_script(agent: &Agent) -> Script {
    let mut steps = Vec::new();
    if let Some(s) = &agent.send {
        steps.push(Step::Send(s.as_bytes().to_vec()));
    }
    // HAProxy's agent ruleset always has its send rule, so the expect is step 2.
    steps.push(expect(2, MatchKind::Agent));
    Script {
        origin: Origin::Agent,
        steps,
    }
}

/// A PROXY protocol v1 header. For a check, `src` is the check socket's local address and
/// `dst` the address it connected to, as HAProxy sends it. Mixed address families give
/// "PROXY UNKNOWN".
pub fn proxy_v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    crate::worker::proxy_header::v1(src, dst)
}

/// HAProxy's ssl-hello-chk message: an SSLv3 ClientHello (record and hello version 3.0)
/// offering 39 RSA/DH cipher suites and no compression, with `unix_time` as gmt_unix_time at
/// bytes 11..15 and "HAPROXYSSLCHK\nHAPROXYSSLCHK\n" as the 28 random bytes. 126 bytes.
pub fn ssl_client_hello(unix_time: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(126);
    m.push(0x16); // record: handshake
    m.extend_from_slice(&[0x03, 0x00]); // record version: SSL 3.0
    m.extend_from_slice(&[0x00, 0x79]); // record length: 121
    m.push(0x01); // handshake: ClientHello
    m.extend_from_slice(&[0x00, 0x00, 0x75]); // handshake length: 117
    m.extend_from_slice(&[0x03, 0x00]); // client version: SSL 3.0
    m.extend_from_slice(&unix_time.to_be_bytes());
    m.extend_from_slice(b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n");
    m.push(0x00); // no session id
    m.extend_from_slice(&[0x00, 0x4e]); // cipher suites: 78 bytes
    for suite in (0x0001u16..=0x001b).chain(0x002f..=0x003a) {
        m.extend_from_slice(&suite.to_be_bytes());
    }
    m.extend_from_slice(&[0x01, 0x00]); // one compression method: null
    debug_assert_eq!(m.len(), 126);
    m
}

// ---------------------------------------------------------------------------------------------
// reports

/// HAProxy's check statuses (`HCHK_STATUS_*`), as `show stat` and the logs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// An agent said nothing that changes the server.
    Checked,
    /// observe layer4/layer7 counted too many errors.
    Hana,
    SockErr,
    L4Ok,
    L4Tout,
    L4Con,
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Tout,
    L7Rsp,
    L7Ok,
    L7OkC,
    L7Sts,
}

/// What a status means for rise/fall (HAProxy's `CHK_RES_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    Passed,
    /// Passed, but asks for the NOLB (stopping) state.
    ConditionallyPassed,
    Failed,
    /// Changes nothing.
    Neutral,
}

impl CheckStatus {
    /// The short name: "L7STS".
    pub fn tag(self) -> &'static str {
        match self {
            CheckStatus::Checked => "CHECKED",
            CheckStatus::Hana => "HANA",
            CheckStatus::SockErr => "SOCKERR",
            CheckStatus::L4Ok => "L4OK",
            CheckStatus::L4Tout => "L4TOUT",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L6Ok => "L6OK",
            CheckStatus::L6Tout => "L6TOUT",
            CheckStatus::L6Rsp => "L6RSP",
            CheckStatus::L7Tout => "L7TOUT",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7OkC => "L7OKC",
            CheckStatus::L7Sts => "L7STS",
        }
    }

    /// The words of the logs' "reason:": "Layer7 wrong status".
    pub fn description(self) -> &'static str {
        match self {
            CheckStatus::Checked => "No status change",
            CheckStatus::Hana => "Health analyze",
            CheckStatus::SockErr => "Socket error",
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6Tout => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7OkC => "Layer7 check conditionally passed",
            CheckStatus::L7Sts => "Layer7 wrong status",
        }
    }

    pub fn result(self) -> CheckResult {
        match self {
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok => CheckResult::Passed,
            CheckStatus::L7OkC => CheckResult::ConditionallyPassed,
            CheckStatus::Checked => CheckResult::Neutral,
            _ => CheckResult::Failed,
        }
    }

    /// Layer-7 data statuses carry a code in the logs (HAProxy's `>= HCHK_STATUS_L57DATA`).
    pub fn shows_code(self) -> bool {
        matches!(
            self,
            CheckStatus::L7Ok | CheckStatus::L7OkC | CheckStatus::L7Sts
        )
    }
}

/// A check result as HAProxy logs it. `Display` gives the part after "reason: ", e.g.
/// `Layer7 wrong status, code: 503, info: "Service Unavailable"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub status: CheckStatus,
    /// The HTTP status, MySQL error number, or 0; shown for layer-7 data statuses only.
    pub code: u32,
    /// Raw bytes (servers send what they like); cut at the first NUL and to [`INFO_MAX`]
    /// bytes as HAProxy does, escaped only when displayed.
    pub info: Vec<u8>,
}

impl Report {
    pub fn new(status: CheckStatus, code: u32, info: &[u8]) -> Report {
        let info = until_nul(info);
        Report {
            status,
            code,
            info: info[..info.len().min(INFO_MAX)].to_vec(),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status.description())?;
        if self.status.shows_code() {
            write!(f, ", code: {}", self.code)?;
        }
        if !self.info.is_empty() {
            f.write_str(", info: \"")?;
            // HAProxy's chunk_asciiencode(): control, non-ASCII, quote and angle brackets
            // become <XX>.
            for &b in &self.info {
                if !(0x20..0x7f).contains(&b) || b == b'"' || b == b'<' || b == b'>' {
                    write!(f, "<{b:02X}>")?;
                } else {
                    write!(f, "{}", b as char)?;
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// agent replies

/// The health words of an agent reply: they set the operational state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentHealth {
    /// "up": back up at once if the health check allows it.
    Up,
    /// "down", "stopped" and "fail" all mark the server down; the word only shows which.
    Down,
    Stopped,
    Fail,
}

/// The admin words of an agent reply: they set the administrative state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAdmin {
    Ready,
    Drain,
    Maint,
}

/// One agent reply line, parsed with HAProxy's grammar. The health and admin categories are
/// independent ("up drain" sets both); within one category the last word wins. Anything the
/// agent did not say stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReply {
    /// "75%": the weight in percent of the configured weight (capped at 25600, HAProxy's
    /// overflow guard; see [`AgentReply::weight`]).
    pub weight_percent: Option<u32>,
    pub health: Option<AgentHealth>,
    pub admin: Option<AgentAdmin>,
    /// "maxconn:30".
    pub maxconn: Option<u32>,
    /// The text after '#', shown with a health word.
    pub description: Option<String>,
    /// The first word HAProxy does not know, reported as an error.
    pub unknown: Option<String>,
    /// Why a weight or maxconn word was ignored ("Trailing garbage in weight string").
    pub warning: Option<String>,
    /// The connection ended before a full line: HAProxy ignores the reply.
    pub incomplete: bool,
}

impl AgentReply {
    /// The new weight for a server configured with `initial` (HAProxy:
    /// `iweight * percent / 100`, at most 256). None if the agent sent no weight. A backend
    /// with a static algorithm only accepts 0% and 100%; that check is the caller's.
    pub fn weight(&self, initial: u32) -> Option<u32> {
        self.weight_percent
            .map(|p| (u64::from(initial) * u64::from(p) / 100).min(256) as u32)
    }

    /// The report HAProxy logs for this reply ("via agent : down (maintenance)").
    pub fn report(&self) -> Report {
        if self.incomplete {
            return Report::new(
                CheckStatus::Checked,
                0,
                b"Ignoring incomplete line from agent",
            );
        }
        if let Some(health) = self.health {
            let (word, status) = match health {
                AgentHealth::Up => ("up", CheckStatus::L7Ok),
                AgentHealth::Down => ("down", CheckStatus::L7Sts),
                AgentHealth::Stopped => ("stopped", CheckStatus::L7Sts),
                AgentHealth::Fail => ("fail", CheckStatus::L7Sts),
            };
            let mut msg = self.description.as_deref().unwrap_or("");
            if msg.is_empty() || status == CheckStatus::L7Ok {
                if let Some(e) = &self.unknown {
                    msg = e;
                } else if let Some(w) = &self.warning {
                    msg = w;
                }
            }
            let info = if msg.is_empty() {
                format!("via agent : {word}")
            } else {
                format!("via agent : {word} ({msg})")
            };
            return Report::new(status, 0, info.as_bytes());
        }
        let info = match (&self.unknown, &self.warning) {
            (Some(e), _) => format!("agent reports an error : {e}"),
            (None, Some(w)) => format!("agent warns : {w}"),
            (None, None) => String::new(),
        };
        Report::new(CheckStatus::Checked, 0, info.as_bytes())
    }
}

/// Parses one agent reply line: words separated by spaces, tabs or commas, in any order,
/// case-insensitive: "75%", "maxconn:30", "up", "down", "stopped", "fail", "ready", "drain",
/// "maint"; a word starting with '#' starts the description. The line ends at the first CR
/// or LF.
pub fn parse_agent_reply(line: &str) -> AgentReply {
    parse_agent_line(line.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// matchers

impl Matcher {
    /// Judges everything received on this connection since the last send or connect; `eof`
    /// is true once the server closed (or errored after sending data). Never panics, on any
    /// input; never returns [`Verdict::NeedMore`] when `eof` is true.
    pub fn evaluate(&self, received: &[u8], eof: bool) -> Verdict {
        if received.is_empty() && !matches!(self.kind, MatchKind::Http(_)) {
            return if eof {
                Verdict::Fail(self.empty_response())
            } else {
                Verdict::NeedMore
            };
        }
        // HAProxy judges a full buffer as final.
        let last_read = eof || received.len() >= CHECK_BUFSIZE;
        match &self.kind {
            MatchKind::String { negate, pattern } | MatchKind::Binary { negate, pattern } => {
                if !last_read && received.len() < pattern.len() {
                    return Verdict::NeedMore;
                }
                self.tcp_verdict(contains(received, pattern), *negate, last_read)
            }
            MatchKind::Rstring { negate, regex } => {
                let hit = regex.as_ref().is_some_and(|r| r.is_match(received));
                self.tcp_verdict(hit, *negate, last_read)
            }
            MatchKind::MysqlGreeting => mysql_packet(received, 0, last_read),
            MatchKind::MysqlOk => {
                let greeting = 4 + le24(received, 0);
                mysql_packet(received, greeting, last_read)
            }
            MatchKind::PgsqlNotError => {
                // `! rstring ^E` with min-recv 5, conclusive.
                if !last_read && received.len() < 5 {
                    return Verdict::NeedMore;
                }
                if received.first() == Some(&b'E') {
                    // on-error "%[res.payload(6,0)]": the severity, up to its NUL (nothing when
                    // the reply is shorter).
                    let info = received.get(6..).unwrap_or(b"");
                    Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, info))
                } else {
                    Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b""))
                }
            }
            MatchKind::PgsqlAuth => {
                // `rbinary ^52000000(08|0A|0C)000000(00|02|03|04|05|06)` with min-recv 9.
                if !last_read && received.len() < 9 {
                    return Verdict::NeedMore;
                }
                let hit = received.len() >= 9
                    && received[..4] == [b'R', 0, 0, 0]
                    && matches!(received[4], 0x08 | 0x0a | 0x0c)
                    && received[5..8] == [0, 0, 0]
                    && matches!(received[8], 0 | 2..=6);
                if hit {
                    Verdict::Pass(Report::new(
                        CheckStatus::L7Ok,
                        0,
                        b"PostgreSQL server is ok",
                    ))
                } else {
                    Verdict::Fail(Report::new(
                        CheckStatus::L7Sts,
                        0,
                        b"PostgreSQL unknown error",
                    ))
                }
            }
            MatchKind::RedisPong => {
                const PONG: &[u8] = b"+PONG\r\n";
                if !last_read && received.len() < PONG.len() {
                    return Verdict::NeedMore;
                }
                if contains(received, PONG) {
                    Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b"Redis server is ok"))
                } else if !last_read {
                    Verdict::NeedMore
                } else {
                    // on-error "%[res.payload(0,0),cut_crlf]": the first line.
                    let end = received
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(received.len());
                    Verdict::Fail(Report::new(CheckStatus::L7Sts, 0, &received[..end]))
                }
            }
            MatchKind::LdapMessage => {
                if !last_read && received.len() < 14 {
                    return Verdict::NeedMore;
                }
                if received.first() == Some(&0x30) {
                    Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b""))
                } else {
                    Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, b"Not LDAPv3 protocol"))
                }
            }
            MatchKind::LdapBindResponse => ldap_bind_response(received, last_read),
            MatchKind::SmtpReply => {
                if !last_read && received.len() < 4 {
                    return Verdict::NeedMore;
                }
                if smtp_reply_line(received, u8::is_ascii_digit, b" \r") {
                    Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b""))
                } else {
                    Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, first_line(received)))
                }
            }
            MatchKind::SmtpOk(step) => {
                // The hello reply has no min-recv: a mismatch waits for more data.
                let min_recv = *step != SmtpStep::Hello;
                if min_recv && !last_read && received.len() < 4 {
                    return Verdict::NeedMore;
                }
                let ok = match step {
                    SmtpStep::Greeting => smtp_reply_line(received, is_2, b" \r"),
                    SmtpStep::Hello => smtp_multiline_ok(received),
                    SmtpStep::Quit => smtp_reply_line(received, is_2, b"- \r"),
                };
                let report = |status| Report::new(status, smtp_code(received), smtp_text(received));
                if ok {
                    Verdict::Pass(report(CheckStatus::L7Ok))
                } else if !min_recv && !last_read {
                    Verdict::NeedMore
                } else {
                    Verdict::Fail(report(CheckStatus::L7Sts))
                }
            }
            MatchKind::SslHello => {
                // `rbinary ^1[56]` with min-recv 5, conclusive.
                if !last_read && received.len() < 5 {
                    return Verdict::NeedMore;
                }
                if matches!(received.first(), Some(0x15 | 0x16)) {
                    Verdict::Pass(Report::new(CheckStatus::L6Ok, 0, b""))
                } else {
                    Verdict::Fail(Report::new(CheckStatus::L6Rsp, 0, b""))
                }
            }
            MatchKind::Agent => {
                match received
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n' || b == 0)
                {
                    // A NUL ends HAProxy's scan before the line end: an incomplete line.
                    Some(i) if received[i] != 0 => Verdict::Agent(parse_agent_line(&received[..i])),
                    _ if last_read => Verdict::Agent(AgentReply {
                        incomplete: true,
                        ..AgentReply::default()
                    }),
                    _ => Verdict::NeedMore,
                }
            }
            MatchKind::Http(h) => h.evaluate(received, eof),
        }
    }

    /// The status of a timeout while this expect waits.
    pub fn timeout_status(&self) -> CheckStatus {
        match self.kind {
            MatchKind::SslHello => CheckStatus::L6Tout,
            _ => CheckStatus::L7Tout,
        }
    }

    /// The status of a response HAProxy finds wrong at this expect.
    fn error_status(&self) -> CheckStatus {
        match self.kind {
            MatchKind::RedisPong | MatchKind::PgsqlAuth | MatchKind::SmtpOk(_) => {
                CheckStatus::L7Sts
            }
            MatchKind::SslHello => CheckStatus::L6Rsp,
            _ => CheckStatus::L7Rsp,
        }
    }

    /// "TCPCHK got an empty response at step N": the server closed without a byte.
    fn empty_response(&self) -> Report {
        let mut info = format!("TCPCHK got an empty response at step {}", self.step);
        if let Some(c) = &self.comment {
            info.push_str(&format!(" comment: '{c}'"));
        }
        Report::new(self.error_status(), 0, info.as_bytes())
    }

    /// A tcp-check expect's verdict once matched: waits for more on a miss until the end of
    /// the data (HAProxy's default min-recv -1), passes when match and negation differ.
    fn tcp_verdict(&self, hit: bool, negate: bool, last_read: bool) -> Verdict {
        if !hit && !last_read {
            return Verdict::NeedMore;
        }
        if hit != negate {
            return Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b"(tcp-check)"));
        }
        let mut info: Vec<u8> = if hit {
            b"TCPCHK matched unwanted content".to_vec()
        } else {
            b"TCPCHK did not match content".to_vec()
        };
        match &self.kind {
            MatchKind::String { pattern, .. } => {
                info.extend_from_slice(b" '");
                info.extend_from_slice(pattern);
                info.push(b'\'');
            }
            MatchKind::Binary { .. } => info.extend_from_slice(b" (binary)"),
            _ => info.extend_from_slice(b" (regex)"),
        }
        info.extend_from_slice(format!(" at step {}", self.step).as_bytes());
        if let Some(c) = &self.comment {
            info.extend_from_slice(b" comment: ");
            info.extend_from_slice(c.as_bytes());
        }
        Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, &info))
    }

    /// " (expect string 'x')": this expect in tcp-check failure reports.
    fn describe(&self, out: &mut Vec<u8>) {
        match &self.kind {
            MatchKind::String { pattern, .. } => {
                out.extend_from_slice(b" (expect string '");
                out.extend_from_slice(pattern);
                out.extend_from_slice(b"')");
            }
            MatchKind::Binary { pattern, .. } => {
                out.extend_from_slice(b" (expect binary '");
                out.extend_from_slice(pattern);
                out.extend_from_slice(b"')");
            }
            MatchKind::Rstring { .. } => out.extend_from_slice(b" (expect regex)"),
            _ => out.extend_from_slice(b" (expect custom function)"),
        }
    }
}

/// mysql-check's packet test at `offset` (HAProxy's `tcpcheck_mysql_expect_packet`): a whole
/// packet must be there; an error packet (0xff) fails with its code and message, anything
/// else passes, reporting the server version from the greeting.
fn mysql_packet(buf: &[u8], offset: usize, last_read: bool) -> Verdict {
    let incomplete = || {
        if last_read {
            Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, b""))
        } else {
            Verdict::NeedMore
        }
    };
    if buf.len() < offset.saturating_add(4) {
        return incomplete();
    }
    let len = le24(buf, offset);
    if buf.len() < offset + 4 + len {
        return incomplete();
    }
    if buf.get(offset + 4) == Some(&0xff) {
        let code = u32::from(buf.get(offset + 5).copied().unwrap_or(0))
            | u32::from(buf.get(offset + 6).copied().unwrap_or(0)) << 8;
        // The message runs to the end of what was received; a post-4.1 server puts
        // "#<sqlstate>" first, and HAProxy reports it as is.
        let msg = buf.get(offset + 7..).unwrap_or(b"");
        return Verdict::Fail(Report::new(CheckStatus::L7Sts, code, msg));
    }
    // The version string of the greeting (after its protocol version byte).
    let greeting_end = (4 + le24(buf, 0)).min(buf.len());
    let version = buf.get(5..greeting_end).unwrap_or(b"");
    Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, version))
}

fn le24(buf: &[u8], at: usize) -> usize {
    (0..3).fold(0, |n, i| {
        n | usize::from(buf.get(at + i).copied().unwrap_or(0)) << (8 * i)
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP

impl HttpMatch {
    fn evaluate(&self, received: &[u8], eof: bool) -> Verdict {
        let full = eof || received.len() >= CHECK_BUFSIZE;
        let invalid = || Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, b""));
        let response = match parse_response(received, self.head) {
            Parsed::Invalid => return invalid(),
            Parsed::Incomplete if full => return invalid(),
            Parsed::Incomplete => return Verdict::NeedMore,
            Parsed::Response(r) => r,
        };
        let code = u32::from(response.status);
        let last_read = full || response.complete;
        let pass = || Verdict::Pass(Report::new(CheckStatus::L7Ok, code, b""));
        match &self.rule {
            // Status tests are conclusive as soon as the headers are in.
            HttpRule::Status(ranges) => {
                let hit = ranges
                    .iter()
                    .any(|&(lo, hi)| (lo..=hi).contains(&response.status));
                if hit != self.negate {
                    pass()
                } else {
                    Verdict::Fail(Report::new(CheckStatus::L7Sts, code, response.reason))
                }
            }
            HttpRule::Rstatus(regex) => {
                let hit = regex.as_ref().is_some_and(|r| r.is_match(response.code));
                if hit != self.negate {
                    pass()
                } else {
                    Verdict::Fail(Report::new(CheckStatus::L7Sts, code, response.reason))
                }
            }
            HttpRule::Body(pattern) => {
                let body = &response.body;
                if body.is_empty() {
                    return if last_read {
                        Verdict::Fail(Report::new(
                            CheckStatus::L7Rsp,
                            code,
                            b"HTTP content check could not find a response body",
                        ))
                    } else {
                        Verdict::NeedMore
                    };
                }
                if !last_read && body.len() < pattern.len() {
                    return Verdict::NeedMore;
                }
                let hit = contains(body, pattern);
                if !hit && !last_read {
                    return Verdict::NeedMore;
                }
                if hit != self.negate {
                    pass()
                } else {
                    let info: &[u8] = if self.negate {
                        b"HTTP check matched unwanted content"
                    } else {
                        b"HTTP content check did not match"
                    };
                    Verdict::Fail(Report::new(CheckStatus::L7Rsp, code, info))
                }
            }
        }
    }
}

/// An HTTP response, as far as it was received.
struct Response<'a> {
    status: u16,
    /// The three digits, for `rstatus`.
    code: &'a [u8],
    reason: &'a [u8],
    /// The body received so far, de-chunked.
    body: Vec<u8>,
    /// The whole message is in (per Content-Length, chunked framing, or no body).
    complete: bool,
}

enum Parsed<'a> {
    /// The status line or headers are not all in yet.
    Incomplete,
    /// Not HTTP/1.x as HAProxy's parser accepts it.
    Invalid,
    Response(Response<'a>),
}

/// HAProxy's default `tune.http.maxhdr`.
const MAX_HEADERS: usize = 101;

/// Parses an HTTP/1.x response head and frames its body (LF or CRLF line ends). A prefix
/// that cannot become a valid status line is invalid at once.
fn parse_response(buf: &[u8], head: bool) -> Parsed<'_> {
    const SHAPE: &[u8] = b"HTTP/d.d ddd";
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = trim_cr(&buf[..line_end.unwrap_or(buf.len())]);
    for (i, &c) in line.iter().enumerate().take(SHAPE.len() + 1) {
        let ok = match SHAPE.get(i) {
            Some(b'd') => c.is_ascii_digit(),
            Some(&want) => c == want,
            None => c == b' ' || c == b'\t',
        };
        if !ok {
            return Parsed::Invalid;
        }
    }
    let Some(line_end) = line_end else {
        return Parsed::Incomplete;
    };
    if line.len() < SHAPE.len() {
        return Parsed::Invalid;
    }
    let code = &line[9..12];
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let reason = line.get(13..).unwrap_or(b"");

    let mut pos = line_end + 1;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut headers = 0;
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return Parsed::Incomplete;
        };
        let l = trim_cr(&buf[pos..pos + nl]);
        pos += nl + 1;
        if l.is_empty() {
            break;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            continue; // obsolete line folding: part of the previous value
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Parsed::Invalid;
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Parsed::Invalid;
        };
        let (name, value) = (&l[..colon], trim_ows(&l[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&c| is_token(c)) {
            return Parsed::Invalid;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = parse_decimal(value) else {
                return Parsed::Invalid;
            };
            if content_length.is_some_and(|m| m != n) {
                return Parsed::Invalid;
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim_ows(last).eq_ignore_ascii_case(b"chunked"));
        }
    }
    let rest = &buf[pos..];
    let (body, complete) = if head || status < 200 || status == 204 || status == 304 {
        (Vec::new(), true)
    } else if chunked {
        match dechunk(rest) {
            Some(framed) => framed,
            None => return Parsed::Invalid,
        }
    } else if let Some(n) = content_length {
        (rest[..rest.len().min(n)].to_vec(), rest.len() >= n)
    } else {
        (rest.to_vec(), false) // delimited by the close
    };
    Parsed::Response(Response {
        status,
        code,
        reason,
        body,
        complete,
    })
}

/// Decodes a chunked body received so far: (data, whole message in), None if malformed.
fn dechunk(mut rest: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    loop {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Some((body, false));
        };
        let line = trim_cr(&rest[..nl]);
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 {
            return None;
        }
        let size = usize::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
        rest = &rest[nl + 1..];
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    return Some((body, false));
                };
                let trailer = trim_cr(&rest[..nl]);
                rest = &rest[nl + 1..];
                if trailer.is_empty() {
                    return Some((body, true));
                }
            }
        }
        if rest.len() < size {
            body.extend_from_slice(rest);
            return Some((body, false));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        match rest {
            [] | [b'\r'] => return Some((body, false)),
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] => rest = tail,
            _ => return None,
        }
    }
}

/// The steps of `option httpchk` and its `http-check` rules. A script whose last step is a
/// send gets HAProxy's implicit `http-check expect status 200-399`.
fn http_check_script(rules: &[HttpCheckRule]) -> Script {
    let mut steps: Vec<Step> = Vec::with_capacity(rules.len() + 1);
    let mut head = false;
    for rule in rules {
        let step = match rule {
            HttpCheckRule::Connect(c) => connect_step(c),
            HttpCheckRule::Send(req) => {
                head = req.method == "HEAD";
                Step::Send(http_request(req))
            }
            HttpCheckRule::Comment(c) => Step::Comment(c.clone()),
            HttpCheckRule::Expect(e) => {
                expect_next(&steps, MatchKind::Http(http_match(Some(e), head)))
            }
        };
        steps.push(step);
    }
    let last = steps.iter().rev().find(|s| !matches!(s, Step::Comment(_)));
    if matches!(last, Some(Step::Send(_))) {
        let step = Script::step_id(steps.len());
        steps.push(expect(step, MatchKind::Http(http_match(None, head))));
    }
    Script {
        origin: Origin::Http,
        steps,
    }
}

fn connect_step(c: &CheckConnect) -> Step {
    Step::Connect {
        port: c.port,
        addr: c.addr,
        send_proxy: c.send_proxy,
        default: c.default,
        linger: c.linger,
        ssl: c.ssl,
        sni: c.sni.clone(),
        alpn: c.alpn.clone(),
    }
}

/// An HTTP check request, as HAProxy 2.6 writes it (its check builds the request, its H1
/// multiplexer serialises it):
/// - header names in lower case, values as written; "content-length" and
///   "transfer-encoding" headers are dropped, HAProxy sets the length itself;
/// - "HTTP/1.1" for any version HAProxy takes as 1.1 or later (HTTP/1.1+ or HTTP/2);
/// - a content-length for a body, and "content-length: 0" for methods other than GET, HEAD,
///   OPTIONS and DELETE;
/// - the connection mode last: without a "connection" header the check asks to close
///   ("connection: close" in HTTP/1.1, nothing in 1.0). A "connection" header loses its
///   "close" and "keep-alive" tokens (and vanishes if nothing else is left); "close" asks to
///   close, "keep-alive" to keep alive ("connection: keep-alive" in 1.0), "upgrade" leaves
///   the mode unsaid.
fn http_request(req: &HttpRequest) -> Vec<u8> {
    let vsn = req.version.as_bytes();
    let v11 = match vsn.len() {
        6 => vsn[5] == b'2',
        8 => vsn[5] > b'1' || (vsn[5] == b'1' && vsn[7] >= b'1'),
        _ => false,
    };
    let mut out = Vec::with_capacity(64 + req.uri.len() + req.body.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.uri.as_bytes());
    out.push(b' ');
    out.extend_from_slice(if v11 { b"HTTP/1.1" } else { vsn });
    out.extend_from_slice(b"\r\n");
    // No "connection" header: the check itself adds "Connection: close".
    let mut close = !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"));
    let (mut keep_alive, mut upgrade) = (false, false);
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        let mut value = value.clone();
        match name.as_str() {
            "content-length" | "transfer-encoding" => continue,
            "connection" => {
                let mut kept = Vec::new();
                for token in value.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    } else {
                        upgrade |= token.eq_ignore_ascii_case("upgrade");
                        kept.push(token);
                    }
                }
                value = kept.join(",");
                if value.is_empty() {
                    continue;
                }
            }
            _ => {}
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !req.body.is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n", req.body.len()).as_bytes());
    } else if !matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "DELETE") {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    if !upgrade {
        let want_close = close || !(v11 || keep_alive);
        if want_close && v11 {
            out.extend_from_slice(b"connection: close\r\n");
        } else if !want_close && !v11 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&req.body);
    out
}

fn http_match(expect: Option<&HttpExpect>, head: bool) -> HttpMatch {
    let Some(e) = expect else {
        return HttpMatch {
            negate: false,
            rule: HttpRule::Status(vec![(200, 399)]),
            head,
        };
    };
    let rule = match &e.kind {
        HttpExpectKind::Status(ranges) => HttpRule::Status(ranges.clone()),
        HttpExpectKind::Rstatus(re) => HttpRule::Rstatus(Regex::new(re).ok()),
        HttpExpectKind::String(s) => HttpRule::Body(s.as_bytes().to_vec()),
    };
    HttpMatch {
        negate: e.negate,
        rule,
        head,
    }
}

// ---------------------------------------------------------------------------------------------
// the other protocols' requests

/// redis-check's PING, as a RESP array.
const REDIS_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// mysql-check's client authentication packet for `user` with no password, followed by
/// COM_QUIT, in one write, as HAProxy sends them (before reading the greeting).
/// Post-4.1: capabilities CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION (0x8200), max packet
/// 0x01008000, charset 0x21, 23 zero bytes. Pre-4.1: capabilities 0x8000, max packet 65536.
fn mysql_auth(user: &str, post_41: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(40 + user.len());
    if post_41 {
        body.extend_from_slice(&[0x00, 0x82, 0x00, 0x00]);
        body.extend_from_slice(&[0x00, 0x80, 0x00, 0x01]);
        body.push(0x21);
        body.extend_from_slice(&[0; 23]);
    } else {
        body.extend_from_slice(&[0x00, 0x80]);
        body.extend_from_slice(&[0x00, 0x00, 0x01]);
    }
    body.extend_from_slice(user.as_bytes());
    body.push(0); // end of the user name
    body.push(0); // empty auth response
    let len = body.len().to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], 1];
    packet.extend_from_slice(&body);
    packet.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]); // COM_QUIT, sequence 0
    packet
}

/// pgsql-check's StartupMessage: protocol 3.0 and only "user" (no database: the server
/// defaults it to the user name).
fn pgsql_startup(user: &str) -> Vec<u8> {
    let len = u32::try_from(15 + user.len()).unwrap_or(u32::MAX);
    let mut m = len.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x00, 0x03, 0x00, 0x00]);
    m.extend_from_slice(b"user\0");
    m.extend_from_slice(user.as_bytes());
    m.extend_from_slice(&[0, 0]);
    m
}

// ---------------------------------------------------------------------------------------------
// helpers

fn tcp_check_script(rules: &[TcpCheckRule]) -> Script {
    let mut steps: Vec<Step> = Vec::with_capacity(rules.len());
    for rule in rules {
        let step = match rule {
            TcpCheckRule::Connect(c) => connect_step(c),
            TcpCheckRule::Send(bytes) => Step::Send(bytes.clone()),
            TcpCheckRule::Comment(c) => Step::Comment(c.clone()),
            TcpCheckRule::Expect { negate, pattern } => {
                let negate = *negate;
                let kind = match pattern {
                    ExpectPattern::String(p) => MatchKind::String {
                        negate,
                        pattern: p.clone(),
                    },
                    ExpectPattern::Binary(p) => MatchKind::Binary {
                        negate,
                        pattern: p.clone(),
                    },
                    ExpectPattern::Rstring(re) => MatchKind::Rstring {
                        negate,
                        regex: Regex::new(re).ok(),
                    },
                };
                expect_next(&steps, kind)
            }
        };
        steps.push(step);
    }
    Script {
        origin: Origin::TcpCheck,
        steps,
    }
}

/// The `tcp-check comment` right before `steps[i]`: it applies to that step only.
fn comment_before(steps: &[Step], i: usize) -> Option<&str> {
    match i.checked_sub(1).and_then(|p| steps.get(p)) {
        Some(Step::Comment(c)) => Some(c),
        _ => None,
    }
}

/// mysql-check's and pgsql-check's own first step: `tcp-check connect default linger`.
/// ldap-check's request: an anonymous simple bind, LDAPv3, message id 1 (HAProxy's bytes).
const LDAP_BIND: &[u8] = b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00";

/// ldap-check's judgement of the reply, as HAProxy 2.6 judges it: the LDAPMessage's length
/// (short form, or long form on 2 or 4 bytes) must be all there (else wait, or fail with no
/// text once the server is done), the message must be id 1 and a BindResponse, whose
/// result is an ENUMERATED resultCode; 0 passes.
fn ldap_bind_response(r: &[u8], last_read: bool) -> Verdict {
    let at = |i: usize| r.get(i).copied();
    let not_ldap = || Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, b"Not LDAPv3 protocol"));
    let too_short = || {
        if last_read {
            Verdict::Fail(Report::new(CheckStatus::L7Rsp, 0, b""))
        } else {
            Verdict::NeedMore
        }
    };
    let Some(first) = at(1) else {
        return too_short();
    };
    let (nbytes, msglen) = if first & 0x80 == 0 {
        (0, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if r.len() < 1 + n {
            return too_short();
        }
        let be = |len: usize| {
            r.get(2..2 + len)
                .map(|b| b.iter().fold(0usize, |v, &x| (v << 8) | usize::from(x)))
        };
        match n {
            2 | 4 => match be(n) {
                Some(len) => (n, len),
                None => return too_short(),
            },
            _ => return not_ldap(),
        }
    };
    if r.len() < (2 + nbytes).saturating_add(msglen) {
        return too_short();
    }
    let mut p = 2 + nbytes;
    if r.get(p..p + 4) != Some(b"\x02\x01\x01\x61") {
        return not_ldap();
    }
    p += 4;
    let bind_len_bytes = at(p).map_or(0, |b| {
        if b & 0x80 != 0 {
            usize::from(b & 0x7f)
        } else {
            0
        }
    });
    p += 1 + bind_len_bytes;
    if r.get(p..p + 2) != Some(b"\x0a\x01") {
        return not_ldap();
    }
    match at(p + 2) {
        // HAProxy sets "Success" here, then the end of the script reports the last
        // expect's on-success message, which this one has not: the text is empty.
        Some(0) => Verdict::Pass(Report::new(CheckStatus::L7Ok, 0, b"")),
        Some(code) => Verdict::Fail(Report::new(
            CheckStatus::L7Sts,
            u32::from(code),
            b"See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9",
        )),
        None => not_ldap(),
    }
}

/// Whether `r` starts with the lines of a complete 2xx reply to HELO/EHLO:
/// `^(2[0-9]{2}-[^\r]*\r\n)*2[0-9]{2}[ \r]` (a continuation line runs to its first CR).
fn smtp_multiline_ok(r: &[u8]) -> bool {
    let mut s = r;
    loop {
        if smtp_reply_line(s, is_2, b" \r") {
            return true;
        }
        if !smtp_reply_line(s, is_2, b"-") {
            return false;
        }
        let Some(cr) = s[4..].iter().position(|&b| b == b'\r') else {
            return false;
        };
        let end = 4 + cr;
        if s.get(end + 1) != Some(&b'\n') {
            return false;
        }
        s = &s[end + 2..];
    }
}

/// Whether `r` starts with an SMTP reply code whose first digit passes `first`, then one of
/// `ends`: `^[0-9]{3}[ends]` with the first digit narrowed (`^2[0-9]{2}...` with [`is_2`]).
fn smtp_reply_line(r: &[u8], first: fn(&u8) -> bool, ends: &[u8]) -> bool {
    r.len() >= 4 && first(&r[0]) && r[1..3].iter().all(u8::is_ascii_digit) && ends.contains(&r[3])
}

/// A 2xx reply's first digit.
fn is_2(d: &u8) -> bool {
    *d == b'2'
}

/// `res.payload(4,0),ltrim(' '),cut_crlf`: an SMTP reply's text after its code.
fn smtp_text(r: &[u8]) -> &[u8] {
    let rest = r.get(4..).unwrap_or(b"");
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    first_line(&rest[start..])
}

/// `cut_crlf`: up to the first CR or LF.
fn first_line(r: &[u8]) -> &[u8] {
    let end = r
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(r.len());
    &r[..end]
}

/// `status-code res.payload(0,3)`: the reply's code, 0 when it is not a number.
fn smtp_code(r: &[u8]) -> u32 {
    r.get(..3)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn own_connect() -> Step {
    connect_step(&CheckConnect {
        default: true,
        linger: true,
        ..CheckConnect::default()
    })
}

fn expect(step: u32, kind: MatchKind) -> Step {
    Step::Expect(Matcher {
        step,
        comment: None,
        kind,
    })
}

/// The expect that follows `steps`, carrying the comment just before it.
fn expect_next(steps: &[Step], kind: MatchKind) -> Step {
    Step::Expect(Matcher {
        step: Script::step_id(steps.len()),
        comment: comment_before(steps, steps.len()).map(str::to_string),
        kind,
    })
}

fn parse_agent_line(line: &[u8]) -> AgentReply {
    let line = &line[..line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n' || b == 0)
        .unwrap_or(line.len())];
    let mut r = AgentReply::default();
    let mut weight: Option<&[u8]> = None;
    let mut maxconn: Option<&[u8]> = None;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' | b'\t' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                let text = &line[i + 1..];
                let start = text
                    .iter()
                    .position(|&b| b != b' ' && b != b'\t')
                    .unwrap_or(text.len());
                if start < text.len() {
                    r.description = Some(String::from_utf8_lossy(&text[start..]).into_owned());
                }
                break;
            }
            _ => {}
        }
        let start = i;
        i += 1;
        while i < line.len() && !matches!(line[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        let word = &line[start..i];
        let lower = word.to_ascii_lowercase();
        match lower.as_slice() {
            b"up" => r.health = Some(AgentHealth::Up),
            b"down" => r.health = Some(AgentHealth::Down),
            b"stopped" => r.health = Some(AgentHealth::Stopped),
            b"fail" => r.health = Some(AgentHealth::Fail),
            b"ready" => r.admin = Some(AgentAdmin::Ready),
            b"drain" => r.admin = Some(AgentAdmin::Drain),
            b"maint" => r.admin = Some(AgentAdmin::Maint),
            w if w[0].is_ascii_digit() && w.contains(&b'%') => weight = Some(word),
            w if w.starts_with(b"maxconn:") => maxconn = Some(&word[8..]),
            _ => {
                if r.unknown.is_none() {
                    r.unknown = Some(String::from_utf8_lossy(word).into_owned());
                }
            }
        }
    }
    if let Some(w) = weight {
        // HAProxy's server_parse_weight_change_request().
        let digits = w.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = w[..digits].iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if &w[digits..] == b"%" {
            r.weight_percent = Some(value.min(25_600) as u32);
        } else if value > 256 {
            r.warning = Some("Absolute weight can only be between 0 and 256 inclusive.\n".into());
        } else {
            r.warning = Some("Trailing garbage in weight string".into());
        }
    }
    if let Some(m) = maxconn {
        // HAProxy's server_parse_maxconn_change_request(), on strtol().
        let m = trim_ows(m);
        let digits = m.iter().take_while(|b| b.is_ascii_digit()).count();
        let warning = if digits == 0 {
            Some("maxconn string empty")
        } else if digits < m.len() {
            Some("Trailing garbage in maxconn string")
        } else {
            let n = m.iter().fold(0u64, |n, &d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            r.maxconn = Some(n.min(u64::from(u32::MAX)) as u32);
            None
        };
        if r.warning.is_none() {
            r.warning = warning.map(str::to_string);
        }
    }
    r
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn until_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + usize::from(d - b'0')))
}

/// An HTTP token character (RFC 9110).
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    //! The expected bytes and texts below were captured from HAProxy 2.6.12 (Debian 12): its
    //! checks against a recording server, and its `option log-health-checks` lines against
    //! scripted replies and a real MariaDB 10.11.

    use super::*;
    use crate::config::keywords::proxy::split_httpchk_version;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A request as `option httpchk <method> <uri> <version>` writes it (headers and a body
    /// may hide in the version).
    fn req(method: &str, uri: &str, version: &str) -> HttpRequest {
        let (version, headers, body) = split_httpchk_version(version);
        HttpRequest {
            method: method.into(),
            uri: uri.into(),
            version,
            headers,
            body: body.unwrap_or_default(),
        }
    }

    fn httpchk(method: &str, uri: &str, version: &str) -> CheckKind {
        CheckKind::HttpChk(vec![HttpCheckRule::Send(req(method, uri, version))])
    }

    fn httpchk_expect(method: &str, expect: HttpExpect) -> CheckKind {
        CheckKind::HttpChk(vec![
            HttpCheckRule::Send(req(method, "/", "HTTP/1.1")),
            HttpCheckRule::Expect(expect),
        ])
    }

    fn sent(s: &Script) -> Vec<u8> {
        s.steps
            .iter()
            .filter_map(|st| match st {
                Step::Send(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn expects(s: &Script) -> Vec<&Matcher> {
        s.steps
            .iter()
            .filter_map(|st| match st {
                Step::Expect(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn only_expect(kind: &CheckKind) -> Matcher {
        expects(&script(kind))[0].clone()
    }

    fn tcp(rules: Vec<TcpCheckRule>) -> Script {
        script(&CheckKind::TcpCheck(rules))
    }

    fn tcp_expect(negate: bool, pattern: ExpectPattern) -> TcpCheckRule {
        TcpCheckRule::Expect { negate, pattern }
    }

    fn exp_str(s: &str) -> TcpCheckRule {
        tcp_expect(false, ExpectPattern::String(s.as_bytes().to_vec()))
    }

    /// The expect of an agent check without `agent-send`.
    fn agent_expect() -> Matcher {
        expects(&agent_script(&Agent {
            port: Some(1),
            addr: None,
            inter: std::time::Duration::from_secs(1),
            send: None,
        }))[0]
            .clone()
    }

    fn http(negate: bool, kind: HttpExpectKind) -> Matcher {
        only_expect(&httpchk_expect("GET", HttpExpect { negate, kind }))
    }

    fn shown(v: &Verdict) -> String {
        match v {
            Verdict::Pass(r) => format!("pass: {r}"),
            Verdict::Fail(r) => format!("fail: {r}"),
            Verdict::NeedMore => "more".into(),
            Verdict::Agent(a) => format!("agent: {}", a.report()),
        }
    }

    // --- what is sent ---------------------------------------------------------------------

    #[test]
    fn httpchk_requests_are_haproxys_bytes() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("OPTIONS", "/", "HTTP/1.0", "OPTIONS / HTTP/1.0\r\n\r\n"),
            ("OPTIONS", "/status", "HTTP/1.0", "OPTIONS /status HTTP/1.0\r\n\r\n"),
            (
                "GET",
                "/health",
                "HTTP/1.1",
                "GET /health HTTP/1.1\r\nconnection: close\r\n\r\n",
            ),
            (
                "GET",
                "/h",
                "HTTP/1.1\r\nHost: www\r\nX-Foo: Bar",
                "GET /h HTTP/1.1\r\nhost: www\r\nx-foo: Bar\r\nconnection: close\r\n\r\n",
            ),
            (
                "POST",
                "/h",
                "HTTP/1.1\r\nHost: www\r\n\r\nhello",
                "POST /h HTTP/1.1\r\nhost: www\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            ),
            (
                "HEAD",
                "/",
                "HTTP/1.0\r\nHost: www",
                "HEAD / HTTP/1.0\r\nhost: www\r\n\r\n",
            ),
            (
                "get",
                "/x",
                "HTTP/1.1",
                "get /x HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ),
            (
                "POST",
                "/",
                "HTTP/1.1",
                "POST / HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ),
            ("PUT", "/", "HTTP/1.0", "PUT / HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
            ("DELETE", "/", "HTTP/1.1", "DELETE / HTTP/1.1\r\nconnection: close\r\n\r\n"),
            (
                "CONNECT",
                "/",
                "HTTP/1.1",
                "CONNECT / HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ),
            ("GET", "/", "HTTP/0.9", "GET / HTTP/0.9\r\n\r\n"),
            ("GET", "/", "foo", "GET / foo\r\n\r\n"),
            ("GET", "/", "HTTP/1.2", "GET / HTTP/1.1\r\nconnection: close\r\n\r\n"),
            ("GET", "/", "http/1.1", "GET / HTTP/1.1\r\nconnection: close\r\n\r\n"),
            ("GET", "/", "HTTP/2.0", "GET / HTTP/1.1\r\nconnection: close\r\n\r\n"),
            (
                "POST",
                "/",
                "HTTP/1.0\r\n\r\nxy",
                "POST / HTTP/1.0\r\ncontent-length: 2\r\n\r\nxy",
            ),
        ];
        for (m, u, v, want) in cases {
            let s = script(&httpchk(m, u, v));
            assert_eq!(s.origin, Origin::Http);
            assert!(!s.connects_first());
            assert_eq!(
                String::from_utf8_lossy(&sent(&s)),
                *want,
                "option httpchk {m} {u} {v:?}"
            );
        }
    }

    /// What HAProxy 2.6.12 (Debian 12) sent for `http-check send` lines, captured by running
    /// it (`option httpchk` plus the line, one server with `check inter 300`) against a
    /// 127.0.0.1 listener that recorded the first request of its first check.
    /// (method uri version, headers, body, the bytes sent)
    type Capture = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );

    const HTTP_CHECK_SEND_CAPTURES: &[Capture] = &[
        (
            "GET /primary HTTP/1.1",
            &[("Host", "db.local"), ("User-Agent", "sluice-check")],
            "",
            "GET /primary HTTP/1.1\r\nhost: db.local\r\nuser-agent: sluice-check\r\nconnection: close\r\n\r\n",
        ),
        ("GET /primary HTTP/1.0", &[], "", "GET /primary HTTP/1.0\r\n\r\n"),
        ("OPTIONS /primary HTTP/1.1", &[], "", "OPTIONS /primary HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("OPTIONS / HTTP/1.0", &[("Host", "x")], "", "OPTIONS / HTTP/1.0\r\nhost: x\r\n\r\n"),
        (
            "POST /p HTTP/1.1",
            &[],
            "hello",
            "POST /p HTTP/1.1\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        ),
        ("POST /p HTTP/1.0", &[], "hello", "POST /p HTTP/1.0\r\ncontent-length: 5\r\n\r\nhello"),
        (
            "GET /p HTTP/1.1",
            &[],
            "hello",
            "GET /p HTTP/1.1\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        ),
        ("POST /p HTTP/1.1", &[], "", "POST /p HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        ("PUT /p HTTP/1.0", &[], "", "PUT /p HTTP/1.0\r\ncontent-length: 0\r\n\r\n"),
        (
            "get /p HTTP/1.1",
            &[("X-Y", "a  b ")],
            "",
            "get /p HTTP/1.1\r\nx-y: a  b \r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("X-A", "1"), ("x-a", "2")],
            "",
            "GET /p HTTP/1.1\r\nx-a: 1\r\nx-a: 2\r\nconnection: close\r\n\r\n",
        ),
        (
            "GET http://example.com/x HTTP/1.1",
            &[("X-A", "b")],
            "",
            "GET http://example.com/x HTTP/1.1\r\nx-a: b\r\nconnection: close\r\n\r\n",
        ),
        // Length headers are HAProxy's own.
        ("GET /p HTTP/1.1", &[("Content-Length", "3")], "", "GET /p HTTP/1.1\r\nconnection: close\r\n\r\n"),
        (
            "GET /p HTTP/1.1",
            &[("Transfer-Encoding", "chunked")],
            "abc",
            "GET /p HTTP/1.1\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        ),
        (
            "POST /p HTTP/1.1",
            &[("Content-Length", "3"), ("X-A", "b")],
            "",
            "POST /p HTTP/1.1\r\nx-a: b\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ),
        // A connection header decides the mode.
        ("GET /p HTTP/1.1", &[("Connection", "keep-alive")], "", "GET /p HTTP/1.1\r\n\r\n"),
        ("GET /p HTTP/1.1", &[("Connection", "close")], "", "GET /p HTTP/1.1\r\nconnection: close\r\n\r\n"),
        (
            "GET /p HTTP/1.0",
            &[("Connection", "keep-alive")],
            "",
            "GET /p HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "upgrade"), ("Upgrade", "foo")],
            "",
            "GET /p HTTP/1.1\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "foo"), ("X-A", "b")],
            "",
            "GET /p HTTP/1.1\r\nconnection: foo\r\nx-a: b\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "Close,foo"), ("X-A", "b")],
            "",
            "GET /p HTTP/1.1\r\nconnection: foo\r\nx-a: b\r\nconnection: close\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "a, CLOSE , b"), ("X-A", "b")],
            "",
            "GET /p HTTP/1.1\r\nconnection: a,b\r\nx-a: b\r\nconnection: close\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "Upgrade, close"), ("X-A", "b")],
            "",
            "GET /p HTTP/1.1\r\nconnection: Upgrade\r\nx-a: b\r\n\r\n",
        ),
        (
            "GET /p HTTP/1.1",
            &[("Connection", "keep-alive,close"), ("X-A", "b")],
            "",
            "GET /p HTTP/1.1\r\nx-a: b\r\nconnection: close\r\n\r\n",
        ),
        ("GET /p HTTP/1.0", &[("Connection", "keep-alive,close"), ("X-A", "b")], "", "GET /p HTTP/1.0\r\nx-a: b\r\n\r\n"),
        ("GET /p HTTP/1.0", &[("Connection", "close"), ("X-A", "b")], "", "GET /p HTTP/1.0\r\nx-a: b\r\n\r\n"),
        (
            "GET /p HTTP/1.1",
            &[("X-A", "1"), ("Connection", "close"), ("Connection", "foo")],
            "",
            "GET /p HTTP/1.1\r\nx-a: 1\r\nconnection: foo\r\nconnection: close\r\n\r\n",
        ),
    ];

    #[test]
    fn http_check_send_requests_are_haproxys_bytes() {
        for (line, headers, body, want) in HTTP_CHECK_SEND_CAPTURES {
            let mut words = line.split(' ');
            let (m, u, v) = (
                words.next().unwrap(),
                words.next().unwrap(),
                words.next().unwrap(),
            );
            let kind = CheckKind::HttpChk(vec![HttpCheckRule::Send(HttpRequest {
                method: m.into(),
                uri: u.into(),
                version: v.into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: body.as_bytes().to_vec(),
            })]);
            let s = script(&kind);
            assert_eq!(
                String::from_utf8_lossy(&sent(&s)),
                *want,
                "{line} {headers:?} {body:?}"
            );
            // The implicit expect follows the send.
            assert!(matches!(
                &s.steps[1],
                Step::Expect(Matcher {
                    kind: MatchKind::Http(_),
                    ..
                })
            ));
        }
        // option httpchk's hidden "Connection: close" moves to the end, as HAProxy's did:
        // `option httpchk GET /a HTTP/1.1\r\nConnection:\ close\r\nX-A:\ b`.
        assert_eq!(
            String::from_utf8_lossy(&sent(&script(&httpchk(
                "GET",
                "/a",
                "HTTP/1.1\r\nConnection: close\r\nX-A: b"
            )))),
            "GET /a HTTP/1.1\r\nx-a: b\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn http_check_sequences_become_steps() {
        let kind = CheckKind::HttpChk(vec![
            HttpCheckRule::Comment("primary".into()),
            HttpCheckRule::Connect(CheckConnect {
                port: Some(8008),
                addr: Some("127.0.0.2".parse().unwrap()),
                linger: true,
                ..CheckConnect::default()
            }),
            HttpCheckRule::Send(req("GET", "/primary", "HTTP/1.1")),
            HttpCheckRule::Expect(HttpExpect {
                negate: false,
                kind: HttpExpectKind::Status(vec![(200, 200)]),
            }),
            HttpCheckRule::Connect(CheckConnect::default()),
            HttpCheckRule::Send(req("HEAD", "/b", "HTTP/1.0")),
        ]);
        let s = script(&kind);
        assert!(
            s.connects_first(),
            "a comment before the connect does not count"
        );
        assert!(matches!(
            s.steps[1],
            Step::Connect {
                port: Some(8008),
                addr: Some(_),
                linger: true,
                send_proxy: false,
                default: false,
                ssl: false,
                ..
            }
        ));
        let e = expects(&s);
        assert_eq!(e.len(), 2, "the trailing send gets the implicit expect");
        assert_eq!((e[0].step, e[1].step), (4, 7));
        let MatchKind::Http(last) = &e[1].kind else {
            panic!("not http")
        };
        assert!(last.head && matches!(last.rule, HttpRule::Status(ref r) if r == &[(200, 399)]));
        // A script of only an expect sends nothing (HAProxy's inherited-option trap).
        let s = script(&CheckKind::HttpChk(vec![HttpCheckRule::Expect(
            HttpExpect {
                negate: false,
                kind: HttpExpectKind::Status(vec![(200, 200)]),
            },
        )]));
        assert!(sent(&s).is_empty() && expects(&s).len() == 1);
    }

    #[test]
    fn mysql_check_sends_haproxys_packets() {
        // option mysql-check user haproxy (post-41, HAProxy's default) and ... pre-41.
        let post = script(&CheckKind::Mysql {
            user: Some("haproxy".into()),
            post_41: true,
        });
        assert_eq!(
            sent(&post),
            hex(
                "29000001 00820000 00800001 21 0000000000000000000000000000000000000000000000
                 686170726f787900 00 0100000001"
            )
        );
        let pre = script(&CheckKind::Mysql {
            user: Some("haproxy".into()),
            post_41: false,
        });
        assert_eq!(
            sent(&pre),
            hex("0e000001 0080 000001 686170726f787900 00 0100000001")
        );
        // Its own connect (default, linger), the send, then two expects: steps 3 and 4.
        assert!(post.connects_first());
        assert!(matches!(
            post.steps[0],
            Step::Connect {
                port: None,
                addr: None,
                send_proxy: false,
                default: true,
                linger: true,
                ssl: false,
                ..
            }
        ));
        let e = expects(&post);
        assert_eq!((e[0].step, e[1].step), (3, 4));
        // Without a user nothing is sent and the greeting is step 2.
        let bare = script(&CheckKind::Mysql {
            user: None,
            post_41: false,
        });
        assert!(sent(&bare).is_empty());
        assert_eq!(expects(&bare)[0].step, 2);
    }

    #[test]
    fn ldap_and_smtp_scripts_are_haproxys() {
        let ldap = script(&CheckKind::Ldap);
        assert_eq!(sent(&ldap), hex("300C020101600702010304008000"));
        assert!(
            !ldap.connects_first(),
            "ldap-check uses the implicit connect"
        );
        let smtp = script(&CheckKind::Smtp {
            command: "EHLO lb.example.com".into(),
        });
        assert!(smtp.connects_first());
        assert_eq!(sent(&smtp), b"EHLO lb.example.com\r\nQUIT\r\n");
    }

    #[test]
    fn ldap_bind_responses_are_judged_as_haproxy_2_6_does() {
        let verdict = |h: &str, last| match ldap_bind_response(&hex(h), last) {
            Verdict::Pass(r) => format!("pass {:?} {}", r.status, r.code),
            Verdict::Fail(r) => format!(
                "fail {:?} {} {}",
                r.status,
                r.code,
                String::from_utf8_lossy(&r.info)
            ),
            Verdict::NeedMore => "more".into(),
            Verdict::Agent(_) => "agent".into(),
        };
        let not_ldap = "fail L7Rsp 0 Not LDAPv3 protocol";
        assert_eq!(
            verdict("300c02010161070a010004000400", false),
            "pass L7Ok 0"
        );
        // Long form lengths on 2 or 4 bytes; any for the BindResponse.
        assert_eq!(
            verdict("3082000c02010161070a010004000400", false),
            "pass L7Ok 0"
        );
        assert_eq!(
            verdict("308400000010020101618500000000070a010004000400", false),
            "pass L7Ok 0"
        );
        assert_eq!(verdict("30810c02010161070a010004000400", false), not_ldap);
        assert_eq!(
            verdict("308300000c02010161070a010004000400", false),
            not_ldap
        );
        // resultCode 49 (invalidCredentials).
        assert!(verdict("300c02010161070a013104000400", false).starts_with("fail L7Sts 49 See RFC"));
        // Not a BindResponse to message 1.
        assert_eq!(verdict("300c02010261070a010004000400", false), not_ldap);
        assert_eq!(verdict("300c02010165070a010004000400", false), not_ldap);
        // Shorter than announced: wait, and once the server is done, fail with no text.
        assert_eq!(verdict("302002010161070a010004000400", false), "more");
        assert_eq!(
            verdict("302002010161070a010004000400", true),
            "fail L7Rsp 0 "
        );
        // Hostile lengths never read out of bounds.
        assert_eq!(verdict("3084ffffffff", true), "fail L7Rsp 0 ");
        assert_eq!(verdict("3005020101618f", true), not_ldap);
        assert_eq!(verdict("30", true), "fail L7Rsp 0 ");
    }

    #[test]
    fn smtp_hello_replies_may_span_lines() {
        assert!(smtp_multiline_ok(b"250 hi\r\n"));
        assert!(smtp_multiline_ok(b"250-a\r\n250-b\r\n250 c\r\n"));
        assert!(
            !smtp_multiline_ok(b"250-a\r\n250-b\r\n"),
            "the last line is missing"
        );
        assert!(
            !smtp_multiline_ok(b"250-a\n250 b\r\n"),
            "a continuation ends with CRLF"
        );
        assert!(!smtp_multiline_ok(b"250-a\r\n502 no\r\n"));
        assert!(!smtp_multiline_ok(b"502 no\r\n"));
        assert!(!smtp_multiline_ok(b"25"));
    }

    #[test]
    fn pgsql_redis_and_ssl_requests_are_haproxys_bytes() {
        let pg = script(&CheckKind::Pgsql {
            user: "haproxy".into(),
        });
        assert_eq!(
            sent(&pg),
            hex("00000016 00030000 7573657200 686170726f787900 00")
        );
        assert!(pg.connects_first());
        assert_eq!(sent(&script(&CheckKind::Redis)), b"*1\r\n$4\r\nPING\r\n");
        // Captured with the date 0x6b01599d at bytes 11..15.
        let captured = hex("16030000790100007503006b01599d4841
             50524f585953534c43484b0a48415052
             4f585953534c43484b0a00004e000100
             02000300040005000600070008000900
             0a000b000c000d000e000f0010001100
             12001300140015001600170018001900
             1a001b002f0030003100320033003400
             350036003700380039003a0100");
        assert_eq!(ssl_client_hello(0x6b01_599d), captured);
        let mut zero = captured.clone();
        zero[11..15].fill(0);
        assert_eq!(sent(&script(&CheckKind::SslHello)), zero);
    }

    #[test]
    fn proxy_v1_header_is_haproxys_line() {
        let src: SocketAddr = "127.0.0.1:50860".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:38381".parse().unwrap();
        assert_eq!(
            proxy_v1_header(src, dst),
            b"PROXY TCP4 127.0.0.1 127.0.0.1 50860 38381\r\n"
        );
        let src6: SocketAddr = "[::1]:1000".parse().unwrap();
        let dst6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(
            proxy_v1_header(src6, dst6),
            b"PROXY TCP6 ::1 2001:db8::1 1000 80\r\n"
        );
        assert_eq!(proxy_v1_header(src, dst6), b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn agent_script_sends_agent_send_then_reads() {
        let mut agent = Agent {
            port: Some(9_999),
            addr: None,
            inter: std::time::Duration::from_secs(2),
            send: Some("hello\n".into()),
        };
        let s = agent_script(&agent);
        assert_eq!(s.origin, Origin::Agent);
        assert_eq!(sent(&s), b"hello\n");
        assert_eq!(expects(&s)[0].step, 2);
        agent.send = None;
        let s = agent_script(&agent);
        assert!(sent(&s).is_empty());
        assert_eq!(s.steps.len(), 1);
    }

    // --- tcp-check ------------------------------------------------------------------------

    #[test]
    fn tcp_check_steps_count_comments_and_carry_them() {
        let s = tcp(vec![
            TcpCheckRule::Comment("first".into()),
            exp_str("+PONG"),
            TcpCheckRule::Comment("second".into()),
            exp_str("nope"),
        ]);
        let e = expects(&s);
        assert_eq!((e[0].step, e[0].comment.as_deref()), (2, Some("first")));
        assert_eq!((e[1].step, e[1].comment.as_deref()), (4, Some("second")));
        assert_eq!(
            shown(&e[1].evaluate(b"+PONG\r\nrole:slave\r\n", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK did not match content 'nope' \
             at step 4 comment: second\""
        );
        // A comment before a send belongs to the send, not to the expect after it.
        let s = tcp(vec![
            TcpCheckRule::Comment("role check".into()),
            TcpCheckRule::Send(b"info\r\n".to_vec()),
            exp_str("role:master"),
        ]);
        assert_eq!(
            shown(&expects(&s)[0].evaluate(b"role:slave\r\n", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK did not match content \
             'role:master' at step 3\""
        );
    }

    #[test]
    fn tcp_string_expect() {
        let m = expects(&tcp(vec![exp_str("role:master")]))[0].clone();
        assert_eq!(m.evaluate(b"", false), Verdict::NeedMore);
        assert_eq!(m.evaluate(b"role:ma", false), Verdict::NeedMore);
        // A miss waits for more until the server closes.
        assert_eq!(
            m.evaluate(b"# Replication\r\nrole:slave\r\n", false),
            Verdict::NeedMore
        );
        assert_eq!(
            shown(&m.evaluate(b"x\r\nrole:master\r\n", false)),
            "pass: Layer7 check passed, code: 0, info: \"(tcp-check)\""
        );
        assert_eq!(
            shown(&m.evaluate(b"", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK got an empty response at step 1\""
        );
        assert_eq!(
            shown(&m.evaluate(b"role:slave", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK did not match content \
             'role:master' at step 1\""
        );
        // A full buffer is judged as final.
        let big = vec![b'x'; CHECK_BUFSIZE];
        assert!(matches!(m.evaluate(&big, false), Verdict::Fail(_)));
    }

    #[test]
    fn tcp_negated_expect_fails_at_once_and_passes_only_at_the_end() {
        let m = expects(&tcp(vec![tcp_expect(
            true,
            ExpectPattern::String(b"role:slave".to_vec()),
        )]))[0]
            .clone();
        assert_eq!(
            shown(&m.evaluate(b"role:slave\r\n", false)),
            "fail: Layer7 invalid response, info: \"TCPCHK matched unwanted content \
             'role:slave' at step 1\""
        );
        assert_eq!(m.evaluate(b"role:master\r\n", false), Verdict::NeedMore);
        assert!(matches!(
            m.evaluate(b"role:master\r\n", true),
            Verdict::Pass(_)
        ));
        // Nothing at all is still an empty response, negated or not.
        assert!(matches!(m.evaluate(b"", true), Verdict::Fail(_)));
    }

    #[test]
    fn tcp_binary_and_regex_expects() {
        let s = tcp(vec![
            tcp_expect(false, ExpectPattern::Binary(vec![0x01, 0x02])),
            tcp_expect(false, ExpectPattern::Rstring("^role:m".into())),
        ]);
        let e = expects(&s);
        assert!(matches!(
            e[0].evaluate(b"\x00\x01\x02", false),
            Verdict::Pass(_)
        ));
        assert_eq!(e[0].evaluate(b"\x00", false), Verdict::NeedMore);
        assert_eq!(
            shown(&e[0].evaluate(b"role:slave\r\n", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK did not match content (binary) \
             at step 1\""
        );
        assert!(matches!(
            e[1].evaluate(b"role:master", false),
            Verdict::Pass(_)
        ));
        assert_eq!(e[1].evaluate(b"x role:master", false), Verdict::NeedMore);
        assert_eq!(
            shown(&e[1].evaluate(b"role:slave\r\n", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK did not match content (regex) \
             at step 2\""
        );
        // The regex runs on raw bytes: invalid UTF-8 around the match is fine.
        assert!(matches!(
            e[1].evaluate(b"role:m\xff\xfe", false),
            Verdict::Pass(_)
        ));
    }

    #[test]
    fn tcp_check_failures_name_the_step() {
        let s = tcp(vec![
            TcpCheckRule::Comment("hello".into()),
            TcpCheckRule::Connect(CheckConnect {
                port: Some(47_031),
                ..CheckConnect::default()
            }),
            TcpCheckRule::Send(b"info\r\n".to_vec()),
            exp_str("role:master"),
            TcpCheckRule::Comment("bincomment".into()),
            tcp_expect(false, ExpectPattern::Binary(vec![0x0a, 0xff])),
        ]);
        let f = |at, t| s.failure(at, t).to_string();
        assert_eq!(
            f(Some(1), Trouble::ConnectTimeout),
            "Layer4 timeout, info: \" at step 2 of tcp-check (connect port 47031) comment: \
             'hello'\""
        );
        assert_eq!(
            f(Some(1), Trouble::ConnectError("Connection refused")),
            "Layer4 connection problem, info: \"Connection refused at step 2 of tcp-check \
             (connect port 47031) comment: 'hello'\""
        );
        assert_eq!(
            f(Some(2), Trouble::SocketError("Connection reset by peer")),
            "Socket error, info: \"Connection reset by peer at step 3 of tcp-check (send)\""
        );
        assert_eq!(
            f(Some(3), Trouble::Timeout),
            "Layer7 timeout, info: \" at step 4 of tcp-check (expect string 'role:master')\""
        );
        assert_eq!(
            f(Some(5), Trouble::Timeout),
            "Layer7 timeout, info: \" at step 6 of tcp-check (expect binary '<0A><FF>') \
             comment: 'bincomment'\""
        );
        let implicit = tcp(vec![TcpCheckRule::Send(b"x".to_vec())]);
        assert_eq!(
            implicit
                .failure(None, Trouble::ConnectError("Connection refused"))
                .to_string(),
            "Layer4 connection problem, info: \"Connection refused at initial connection \
             step of tcp-check\""
        );
        assert_eq!(
            implicit.failure(None, Trouble::ConnectTimeout).to_string(),
            "Layer4 timeout, info: \" at initial connection step of tcp-check\""
        );
        let explicit = tcp(vec![TcpCheckRule::Connect(CheckConnect::default())]);
        assert_eq!(
            explicit
                .failure(Some(0), Trouble::ConnectError("Connection refused"))
                .to_string(),
            "Layer4 connection problem, info: \"Connection refused at step 1 of tcp-check \
             (connect)\""
        );
    }

    #[test]
    fn other_checks_fail_without_step_details() {
        let plain = script(&CheckKind::Connect);
        assert_eq!(
            plain
                .failure(None, Trouble::ConnectError("Connection refused"))
                .to_string(),
            "Layer4 connection problem, info: \"Connection refused\""
        );
        assert_eq!(
            plain.failure(None, Trouble::ConnectTimeout).to_string(),
            "Layer4 timeout"
        );
        let http = script(&httpchk("OPTIONS", "/", "HTTP/1.0"));
        assert_eq!(
            http.failure(Some(1), Trouble::Timeout).to_string(),
            "Layer7 timeout"
        );
        let ssl = script(&CheckKind::SslHello);
        assert_eq!(
            ssl.failure(Some(1), Trouble::Timeout).to_string(),
            "Layer6 timeout"
        );
        let mysql = script(&CheckKind::Mysql {
            user: Some("haproxy".into()),
            post_41: true,
        });
        assert_eq!(
            mysql.failure(Some(2), Trouble::Timeout).to_string(),
            "Layer7 timeout"
        );
    }

    #[test]
    fn success_reports_the_last_step() {
        let plain = script(&CheckKind::Connect);
        assert_eq!(
            plain.success(None, Transport::Tcp).to_string(),
            "Layer4 check passed"
        );
        let send_only = tcp(vec![TcpCheckRule::Send(b"hi\r\n".to_vec())]);
        assert_eq!(
            send_only.success(None, Transport::Tcp).to_string(),
            "Layer7 check passed, code: 0, info: \"(tcp-check)\""
        );
        let comments_only = tcp(vec![TcpCheckRule::Comment("nothing".into())]);
        assert_eq!(
            comments_only.success(None, Transport::Tcp).to_string(),
            "Layer4 check passed"
        );
        let connect_only = tcp(vec![TcpCheckRule::Connect(CheckConnect::default())]);
        assert_eq!(
            connect_only.success(None, Transport::Tcp).to_string(),
            "Layer4 check passed, info: \"(tcp-check)\""
        );
        let redis = script(&CheckKind::Redis);
        let Verdict::Pass(r) = expects(&redis)[0].evaluate(b"+PONG\r\n", false) else {
            panic!("redis pass");
        };
        assert_eq!(
            redis.success(Some(r), Transport::Tcp).to_string(),
            "Layer7 check passed, code: 0, info: \"Redis server is ok\""
        );
    }

    /// HAProxy 2.6.12's reports for checks over TLS: a check that ends on its connect passes
    /// at layer 6; a failed or slow handshake is a layer-6 failure, worded like a connect
    /// error (tcp-check scripts name the connect step).
    #[test]
    fn tls_checks_pass_and_fail_at_layer_6() {
        let plain = script(&CheckKind::Connect);
        assert_eq!(
            plain.success(None, Transport::Tls).to_string(),
            "Layer6 check passed"
        );
        let connect_only = tcp(vec![TcpCheckRule::Connect(CheckConnect {
            ssl: true,
            ..CheckConnect::default()
        })]);
        assert_eq!(
            connect_only.success(None, Transport::Tls).to_string(),
            "Layer6 check passed, info: \"(tcp-check)\""
        );
        let send_only = tcp(vec![
            TcpCheckRule::Connect(CheckConnect {
                ssl: true,
                ..CheckConnect::default()
            }),
            TcpCheckRule::Send(b"x".to_vec()),
        ]);
        assert_eq!(
            send_only.success(None, Transport::Tls).to_string(),
            "Layer7 check passed, code: 0, info: \"(tcp-check)\""
        );
        assert_eq!(
            plain
                .failure(None, Trouble::Handshake("SSL handshake failure"))
                .to_string(),
            "Layer6 invalid response, info: \"SSL handshake failure\""
        );
        assert_eq!(
            plain.failure(None, Trouble::HandshakeTimeout).to_string(),
            "Layer6 timeout"
        );
        assert_eq!(
            connect_only
                .failure(Some(0), Trouble::Handshake("SSL handshake failure"))
                .to_string(),
            "Layer6 invalid response, info: \"SSL handshake failure at step 1 of tcp-check \
             (connect)\""
        );
        assert_eq!(
            connect_only
                .failure(Some(0), Trouble::HandshakeTimeout)
                .to_string(),
            "Layer6 timeout, info: \" at step 1 of tcp-check (connect)\""
        );
        let implicit = tcp(vec![TcpCheckRule::Send(b"hello\r\n".to_vec())]);
        assert_eq!(
            implicit
                .failure(None, Trouble::Handshake("SSL handshake failure"))
                .to_string(),
            "Layer6 invalid response, info: \"SSL handshake failure at initial connection \
             step of tcp-check\""
        );
        let commented = tcp(vec![
            TcpCheckRule::Comment("tls please".into()),
            TcpCheckRule::Connect(CheckConnect {
                port: Some(18_080),
                ssl: true,
                ..CheckConnect::default()
            }),
        ]);
        assert_eq!(
            commented
                .failure(Some(1), Trouble::Handshake("SSL handshake failure"))
                .to_string(),
            "Layer6 invalid response, info: \"SSL handshake failure at step 2 of tcp-check \
             (connect port 18080) comment: 'tls please'\""
        );
        let httpchk = script(&CheckKind::HttpChk(vec![HttpCheckRule::Connect(
            CheckConnect {
                ssl: true,
                ..CheckConnect::default()
            },
        )]));
        assert_eq!(
            httpchk
                .failure(
                    Some(0),
                    Trouble::Handshake(
                        "Server presented an SSL certificate different from the expected one"
                    )
                )
                .to_string(),
            "Layer6 invalid response, info: \"Server presented an SSL certificate different \
             from the expected one\""
        );
    }

    // --- httpchk --------------------------------------------------------------------------

    #[test]
    fn http_default_expect_is_2xx_or_3xx() {
        let m = only_expect(&httpchk("OPTIONS", "/", "HTTP/1.0"));
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
        assert_eq!(
            shown(&m.evaluate(ok, false)),
            "pass: Layer7 check passed, code: 200"
        );
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n", false)),
            "pass: Layer7 check passed, code: 301"
        );
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.0 503 Service Unavailable\r\n\r\ndown", true)),
            "fail: Layer7 wrong status, code: 503, info: \"Service Unavailable\""
        );
        // The status decides as soon as the headers are in, body or not.
        assert_eq!(
            shown(&m.evaluate(
                b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\nabc",
                false
            )),
            "fail: Layer7 wrong status, code: 503, info: \"Busy\""
        );
        // LF-only line ends are accepted.
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false),
            Verdict::Pass(_)
        ));
        // Partial heads wait; a close before the end of the head is invalid.
        for cut in [0, 1, 5, 12, 17, 30, 36] {
            assert_eq!(
                m.evaluate(&ok[..cut], false),
                Verdict::NeedMore,
                "cut {cut}"
            );
            assert_eq!(
                shown(&m.evaluate(&ok[..cut], true)),
                "fail: Layer7 invalid response",
                "cut {cut}"
            );
        }
        // Not HTTP: invalid at once, without waiting.
        assert_eq!(
            shown(&m.evaluate(b"hello there\n", false)),
            "fail: Layer7 invalid response"
        );
        assert_eq!(
            shown(&m.evaluate(b"SSH-2.0-OpenSSH", false)),
            "fail: Layer7 invalid response"
        );
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", false)),
            "fail: Layer7 invalid response"
        );
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 20", false),
            Verdict::NeedMore
        ));
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 2x0", false),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn http_status_and_rstatus_expects() {
        let m = http(false, HttpExpectKind::Status(vec![(200, 201), (300, 310)]));
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 305 X\r\n\r\n", false),
            Verdict::Pass(_)
        ));
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.0 503 Service Unavailable\r\n\r\n", false)),
            "fail: Layer7 wrong status, code: 503, info: \"Service Unavailable\""
        );
        let m = http(true, HttpExpectKind::Status(vec![(500, 500)]));
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
        assert!(matches!(m.evaluate(partial, false), Verdict::Pass(_)));
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 500 E\r\n\r\n", false),
            Verdict::Fail(_)
        ));
        let m = http(false, HttpExpectKind::Rstatus("^5".into()));
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)),
            "fail: Layer7 wrong status, code: 200, info: \"OK\""
        );
        assert!(matches!(
            m.evaluate(b"HTTP/1.1 502 Bad\r\n\r\n", false),
            Verdict::Pass(_)
        ));
        // No reason phrase: no info.
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.1 404\r\n\r\n", false)),
            "fail: Layer7 wrong status, code: 404"
        );
    }

    #[test]
    fn http_body_expects() {
        let m = http(false, HttpExpectKind::String("alive".into()));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(m.evaluate(head, false), Verdict::NeedMore);
        assert_eq!(
            m.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhel", false),
            Verdict::NeedMore
        );
        assert_eq!(
            shown(&m.evaluate(
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
                false
            )),
            "fail: Layer7 invalid response, info: \"HTTP content check did not match\""
        );
        assert!(matches!(
            m.evaluate(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nI am alive",
                false
            ),
            Verdict::Pass(_)
        ));
        assert_eq!(
            shown(&m.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)),
            "fail: Layer7 invalid response, info: \"HTTP content check could not find a \
             response body\""
        );
        // Close-delimited body: decided at the close.
        let close = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(m.evaluate(close, false), Verdict::NeedMore);
        assert!(matches!(m.evaluate(close, true), Verdict::Fail(_)));
        // Chunked bodies are matched de-chunked, across chunk boundaries.
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nali\r\n2;x=y\r\nve\r\n0\r\n\r\n";
        assert!(matches!(m.evaluate(chunked, false), Verdict::Pass(_)));
        assert_eq!(m.evaluate(&chunked[..50], false), Verdict::NeedMore);
        assert!(matches!(
            m.evaluate(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            ),
            Verdict::Fail(_)
        ));
        let neg = http(true, HttpExpectKind::String("hello".into()));
        assert_eq!(
            shown(&neg.evaluate(
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
                false
            )),
            "fail: Layer7 invalid response, info: \"HTTP check matched unwanted content\""
        );
        assert_eq!(
            neg.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", false),
            Verdict::NeedMore
        );
        assert!(matches!(
            neg.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false),
            Verdict::Pass(_)
        ));
        // A HEAD response has no body, whatever Content-Length says.
        let head_m = only_expect(&httpchk_expect(
            "HEAD",
            HttpExpect {
                negate: false,
                kind: HttpExpectKind::String("x".into()),
            },
        ));
        assert!(matches!(
            head_m.evaluate(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
            Verdict::Fail(_)
        ));
    }

    // --- mysql, pgsql, redis, ssl ---------------------------------------------------------

    /// MariaDB 10.11's greeting, then its OK packet, as answered to HAProxy's post-41 packet.
    fn mariadb_ok() -> Vec<u8> {
        hex(
            "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531002600
             0000742d215a274e355f00fef7080200ff81150000000000001d0000005c342a773a583024603a3f
             6d006d7973716c5f6e61746976655f70617373776f7264000700000200000002000000",
        )
    }

    /// The same greeting, then the error packet for an unknown user (post-41).
    fn mariadb_denied() -> Vec<u8> {
        hex(
            "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531002900
             0000522b7a493d373a5e00fef7080200ff81150000000000001d0000004933647b61535d58213a40
             71006d7973716c5f6e61746976655f70617373776f72640049000002ff1504233238303030416363
             6573732064656e69656420666f72207573657220276e6f626f64792740273132372e302e302e3127
             20287573696e672070617373776f72643a204e4f29",
        )
    }

    fn mysql(user: bool) -> Vec<Matcher> {
        let s = script(&CheckKind::Mysql {
            user: user.then(|| "haproxy".to_string()),
            post_41: true,
        });
        expects(&s).into_iter().cloned().collect()
    }

    #[test]
    fn mysql_greeting_then_ok() {
        let m = mysql(true);
        let ok = mariadb_ok();
        assert!(matches!(m[0].evaluate(&ok, false), Verdict::Pass(_)));
        assert_eq!(
            shown(&m[1].evaluate(&ok, false)),
            "pass: Layer7 check passed, code: 0, info: \"5.5.5-10.11.19-MariaDB-0+deb12u1\""
        );
        let greeting_len = 4 + 0x64;
        assert!(matches!(
            m[0].evaluate(&ok[..greeting_len], false),
            Verdict::Pass(_)
        ));
        for cut in [1, 3, 4, 50, greeting_len - 1] {
            assert_eq!(
                m[0].evaluate(&ok[..cut], false),
                Verdict::NeedMore,
                "cut {cut}"
            );
            assert_eq!(
                shown(&m[0].evaluate(&ok[..cut], true)),
                "fail: Layer7 invalid response"
            );
        }
        for cut in [greeting_len, greeting_len + 3, ok.len() - 1] {
            assert_eq!(
                m[1].evaluate(&ok[..cut], false),
                Verdict::NeedMore,
                "cut {cut}"
            );
        }
        assert_eq!(
            shown(&m[0].evaluate(b"", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK got an empty response at step 3\""
        );
        assert_eq!(
            shown(&mysql(false)[0].evaluate(b"", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK got an empty response at step 2\""
        );
        assert_eq!(
            shown(&mysql(false)[0].evaluate(&ok[..greeting_len], false)),
            "pass: Layer7 check passed, code: 0, info: \"5.5.5-10.11.19-MariaDB-0+deb12u1\""
        );
    }

    #[test]
    fn mysql_access_denied_reports_mariadbs_error() {
        let m = mysql(true);
        let denied = mariadb_denied();
        assert!(matches!(m[0].evaluate(&denied, false), Verdict::Pass(_)));
        // HAProxy reports the post-4.1 "#28000" SQL state with the message.
        assert_eq!(
            shown(&m[1].evaluate(&denied, false)),
            "fail: Layer7 wrong status, code: 1045, info: \"#28000Access denied for user \
             'nobody'@'127.0.0.1' (using password: NO)\""
        );
        // An error instead of a greeting ("Host is blocked", "Too many connections").
        let blocked = b"\x17\x00\x00\x00\xff\x10\x04Too many connections";
        assert_eq!(
            shown(&m[0].evaluate(blocked, false)),
            "fail: Layer7 wrong status, code: 1040, info: \"Too many connections\""
        );
        // Anything but an error packet passes, as in HAProxy.
        assert!(matches!(
            m[0].evaluate(b"\x01\x00\x00\x00\x00", false),
            Verdict::Pass(_)
        ));
    }

    #[test]
    fn pgsql_auth_request_or_error() {
        let s = script(&CheckKind::Pgsql { user: "x".into() });
        let e = expects(&s);
        let md5 = hex("52 0000000c 00000005 01020304");
        assert!(matches!(e[0].evaluate(&md5, false), Verdict::Pass(_)));
        assert_eq!(
            shown(&e[1].evaluate(&md5, false)),
            "pass: Layer7 check passed, code: 0, info: \"PostgreSQL server is ok\""
        );
        let trust = hex("52 00000008 00000000");
        assert!(matches!(e[1].evaluate(&trust, false), Verdict::Pass(_)));
        assert_eq!(e[0].evaluate(&trust[..4], false), Verdict::NeedMore);
        assert_eq!(e[1].evaluate(&trust[..8], false), Verdict::NeedMore);
        let mut error = b"E\x00\x00\x00\x64SFATAL\x00VFATAL\x00C28000\x00".to_vec();
        error.extend_from_slice(b"Mno pg_hba.conf entry for host \"127.0.0.1\"\x00\x00");
        assert_eq!(
            shown(&e[0].evaluate(&error, false)),
            "fail: Layer7 invalid response, info: \"FATAL\""
        );
        assert_eq!(
            shown(&e[0].evaluate(b"E\x00\x00\x00", true)),
            "fail: Layer7 invalid response"
        );
        assert_eq!(
            shown(&e[0].evaluate(b"hello there\n", false)),
            "pass: Layer7 check passed, code: 0"
        );
        assert_eq!(
            shown(&e[1].evaluate(b"hello there\n", false)),
            "fail: Layer7 wrong status, code: 0, info: \"PostgreSQL unknown error\""
        );
        // SCRAM (PostgreSQL 14's default) is not in HAProxy 2.6's list.
        let sasl = hex("52 00000017 0000000a 534352414d2d5348412d3235360000");
        assert!(matches!(e[1].evaluate(&sasl, false), Verdict::Fail(_)));
        assert_eq!(
            shown(&e[0].evaluate(b"", true)),
            "fail: Layer7 invalid response, info: \"TCPCHK got an empty response at step 3\""
        );
    }

    #[test]
    fn redis_pong_or_first_line() {
        let m = only_expect(&CheckKind::Redis);
        assert_eq!(
            shown(&m.evaluate(b"+PONG\r\n", false)),
            "pass: Layer7 check passed, code: 0, info: \"Redis server is ok\""
        );
        assert_eq!(m.evaluate(b"+PON", false), Verdict::NeedMore);
        // An error reply waits for more (a real Redis keeps the connection open, so this
        // ends in a timeout), and is reported at the close.
        let noauth = b"-NOAUTH Authentication required.\r\n";
        assert_eq!(m.evaluate(noauth, false), Verdict::NeedMore);
        assert_eq!(
            shown(&m.evaluate(noauth, true)),
            "fail: Layer7 wrong status, code: 0, info: \"-NOAUTH Authentication required.\""
        );
        assert_eq!(
            shown(&m.evaluate(b"", true)),
            "fail: Layer7 wrong status, code: 0, info: \"TCPCHK got an empty response at \
             step 2\""
        );
    }

    #[test]
    fn ssl_hello_accepts_handshake_and_alert_records() {
        let m = only_expect(&CheckKind::SslHello);
        assert_eq!(
            shown(&m.evaluate(&hex("160303002a020000260303"), false)),
            "pass: Layer6 check passed"
        );
        assert!(matches!(
            m.evaluate(&hex("15030300020228"), false),
            Verdict::Pass(_)
        ));
        assert_eq!(m.evaluate(&hex("1603"), false), Verdict::NeedMore);
        assert!(matches!(m.evaluate(&hex("1603"), true), Verdict::Pass(_)));
        assert_eq!(
            shown(&m.evaluate(b"hello there\n", false)),
            "fail: Layer6 invalid response"
        );
        assert_eq!(
            shown(&m.evaluate(b"", true)),
            "fail: Layer6 invalid response, info: \"TCPCHK got an empty response at step 2\""
        );
    }

    // --- agent ----------------------------------------------------------------------------

    #[test]
    fn agent_grammar() {
        let r = parse_agent_reply("75%");
        assert_eq!(r.weight_percent, Some(75));
        assert_eq!(r.weight(10), Some(7));
        assert_eq!(r.weight(100), Some(75));
        assert_eq!(r.report().to_string(), "No status change");
        let r = parse_agent_reply("up 50% maxconn:30");
        assert_eq!(
            (r.health, r.weight_percent, r.maxconn),
            (Some(AgentHealth::Up), Some(50), Some(30))
        );
        assert_eq!(
            r.report().to_string(),
            "Layer7 check passed, code: 0, info: \"via agent : up\""
        );
        // '#' starts a description only at the start of a word: this is one unknown word.
        let r = parse_agent_reply("down#maintenance window");
        assert_eq!(
            (r.health, r.unknown.as_deref()),
            (None, Some("down#maintenance"))
        );
        let r = parse_agent_reply("down #maintenance window");
        assert_eq!(r.health, Some(AgentHealth::Down));
        assert_eq!(r.description.as_deref(), Some("maintenance window"));
        assert_eq!(
            r.report().to_string(),
            "Layer7 wrong status, code: 0, info: \"via agent : down (maintenance window)\""
        );
        let r = parse_agent_reply("stopped # going away");
        assert_eq!(
            r.report().to_string(),
            "Layer7 wrong status, code: 0, info: \"via agent : stopped (going away)\""
        );
        let r = parse_agent_reply("fail, bogus");
        assert_eq!(r.unknown.as_deref(), Some("bogus"));
        assert_eq!(
            r.report().to_string(),
            "Layer7 wrong status, code: 0, info: \"via agent : fail (bogus)\""
        );
        let r = parse_agent_reply("foo,50%");
        assert_eq!(r.weight_percent, Some(50));
        assert_eq!(
            r.report().to_string(),
            "No status change, info: \"agent reports an error : foo\""
        );
        // Admin and health words are independent; the last of each category wins.
        let r = parse_agent_reply("DRAIN\tup,ready down 10% 20%");
        assert_eq!(
            (r.admin, r.health, r.weight_percent),
            (Some(AgentAdmin::Ready), Some(AgentHealth::Down), Some(20))
        );
        let r = parse_agent_reply("maint");
        assert_eq!((r.admin, r.health), (Some(AgentAdmin::Maint), None));
        // Bad numbers are ignored with HAProxy's warnings.
        let r = parse_agent_reply("5x%");
        assert_eq!(r.weight_percent, None);
        assert_eq!(
            r.report().to_string(),
            "No status change, info: \"agent warns : Trailing garbage in weight string\""
        );
        let r = parse_agent_reply("maxconn:abc");
        assert_eq!(
            (r.maxconn, r.warning.as_deref()),
            (None, Some("maxconn string empty"))
        );
        let r = parse_agent_reply("MAXCONN:12x");
        assert_eq!(
            r.warning.as_deref(),
            Some("Trailing garbage in maxconn string")
        );
        assert_eq!(
            parse_agent_reply("99999999999%").weight_percent,
            Some(25_600)
        );
        assert_eq!(parse_agent_reply("99999999999%").weight(1), Some(256));
        // '#' only starts a description at the start of a word.
        let r = parse_agent_reply("up#x");
        assert_eq!((r.health, r.unknown.as_deref()), (None, Some("up#x")));
        assert_eq!(parse_agent_reply("up\r\ndown"), parse_agent_reply("up"));
        assert_eq!(parse_agent_reply(""), AgentReply::default());
    }

    #[test]
    fn agent_reads_one_line() {
        let m = agent_expect();
        assert_eq!(m.evaluate(b"75", false), Verdict::NeedMore);
        assert_eq!(
            m.evaluate(b"75%\nleftover", false),
            Verdict::Agent(parse_agent_reply("75%"))
        );
        assert_eq!(
            m.evaluate(b"drain\r\n", false),
            Verdict::Agent(parse_agent_reply("drain"))
        );
        let Verdict::Agent(r) = m.evaluate(b"50%", true) else {
            panic!("agent verdict");
        };
        assert!(r.incomplete);
        assert_eq!(
            r.report().to_string(),
            "No status change, info: \"Ignoring incomplete line from agent\""
        );
        assert!(matches!(
            m.evaluate(b"up\0\n", true),
            Verdict::Agent(AgentReply {
                incomplete: true,
                ..
            })
        ));
    }

    // --- reports --------------------------------------------------------------------------

    #[test]
    fn reports_escape_and_cut_like_haproxy() {
        let mut info = b"-ERR a\"b<c>d\te\\f".to_vec();
        info.extend_from_slice(&[0xc3, 0xa9, b'~', 0x7f]);
        assert_eq!(
            Report::new(CheckStatus::L7Sts, 0, &info).to_string(),
            "Layer7 wrong status, code: 0, info: \"-ERR a<22>b<3C>c<3E>d<09>e\\f<C3><A9>~<7F>\""
        );
        let long = vec![b'x'; 300];
        assert_eq!(
            Report::new(CheckStatus::L7Rsp, 0, &long).info.len(),
            INFO_MAX
        );
        assert_eq!(Report::new(CheckStatus::L7Rsp, 0, b"ab\0cd").info, b"ab");
        assert_eq!(CheckStatus::L7Sts.tag(), "L7STS");
        assert_eq!(CheckStatus::L4Con.result(), CheckResult::Failed);
        assert_eq!(CheckStatus::L6Ok.result(), CheckResult::Passed);
        assert_eq!(CheckStatus::Checked.result(), CheckResult::Neutral);
    }

    // --- robustness -----------------------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// One matcher of every kind and flavour.
    fn every_matcher() -> Vec<Matcher> {
        let mut all = Vec::new();
        for negate in [false, true] {
            all.extend(
                expects(&tcp(vec![
                    tcp_expect(negate, ExpectPattern::String(b"+PONG".to_vec())),
                    tcp_expect(negate, ExpectPattern::Binary(vec![0x0d, 0x0a])),
                    tcp_expect(
                        negate,
                        ExpectPattern::Rstring("^HTTP/1\\.. (2..|3..)".into()),
                    ),
                ]))
                .into_iter()
                .cloned(),
            );
            all.push(http(negate, HttpExpectKind::Status(vec![(200, 399)])));
            all.push(http(negate, HttpExpectKind::Rstatus("^[23]".into())));
            all.push(http(negate, HttpExpectKind::String("OK".into())));
        }
        all.push(only_expect(&httpchk("HEAD", "/", "HTTP/1.0")));
        all.extend(mysql(true));
        let pg = script(&CheckKind::Pgsql { user: "u".into() });
        all.extend(expects(&pg).into_iter().cloned());
        all.push(only_expect(&CheckKind::Redis));
        all.push(only_expect(&CheckKind::SslHello));
        all.push(agent_expect());
        all
    }

    /// Pieces that make random inputs look like the protocols often enough to go deep.
    const PIECES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 503 X\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"\n",
        b"ffffffffffffffff\r\n",
        b"3\r\nabc\r\n",
        b"0\r\n\r\n",
        b"+PONG\r\n",
        b"-ERR x\r\n",
        b"\xff\xff\xff\x00",
        b"\x05\x00\x00\x00\xff",
        b"R\x00\x00\x00\x08\x00\x00\x00\x00",
        b"E\x00\x00\x00",
        b"\x16\x03\x01",
        b"up 50% maxconn:",
        b"#",
        b"\0",
        b"OK",
    ];

    #[test]
    fn never_panics_and_always_decides_at_eof() {
        let matchers = every_matcher();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::new();
        for round in 0..20_000 {
            buf.clear();
            let parts = rng.below(8);
            for _ in 0..parts {
                if rng.below(2) == 0 {
                    buf.extend_from_slice(PIECES[rng.below(PIECES.len())]);
                } else {
                    let n = rng.below(40);
                    buf.extend((0..n).map(|_| rng.next() as u8));
                }
            }
            if round % 500 == 0 {
                buf.resize(CHECK_BUFSIZE + rng.below(100), b'a');
            }
            for m in &matchers {
                let _ = m.evaluate(&buf, false);
                assert_ne!(
                    m.evaluate(&buf, true),
                    Verdict::NeedMore,
                    "{:?} on {buf:?}",
                    m.kind
                );
            }
        }
        for line in [&b""[..], b"\xff%", b"9%%", b"maxconn:", b"#", b",,,", b"0%"] {
            let _ = parse_agent_line(line).report().to_string();
        }
    }

    #[test]
    fn prefixes_of_a_passing_reply_never_fail() {
        let ok_http = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n";
        let cases: Vec<(Matcher, Vec<u8>)> = vec![
            (
                only_expect(&httpchk("GET", "/", "HTTP/1.1")),
                ok_http.to_vec(),
            ),
            (
                http(false, HttpExpectKind::String("OK".into())),
                ok_http.to_vec(),
            ),
            (mysql(true)[0].clone(), mariadb_ok()),
            (mysql(true)[1].clone(), mariadb_ok()),
            (only_expect(&CheckKind::Redis), b"+PONG\r\n".to_vec()),
            (only_expect(&CheckKind::SslHello), hex("160303002a")),
            (
                expects(&tcp(vec![exp_str("role:master")]))[0].clone(),
                b"a\nrole:master\n".to_vec(),
            ),
        ];
        for (m, reply) in cases {
            assert!(
                matches!(m.evaluate(&reply, false), Verdict::Pass(_)),
                "{:?}",
                m.kind
            );
            for cut in 0..reply.len() {
                assert!(
                    !matches!(m.evaluate(&reply[..cut], false), Verdict::Fail(_)),
                    "{:?} failed on a prefix of {cut} bytes",
                    m.kind
                );
            }
        }
    }
}
