//! The HTML stats page (`stats enable`, `stats uri`, `stats refresh`, `stats admin`) and the
//! small HTTP router of a stats/metrics listener.
//!
//! The page follows HAProxy's: a process summary, then one table per proxy with its
//! FRONTEND row, its servers and its BACKEND row, the same column groups (queue, session
//! rate, sessions, bytes, denied, errors, warnings, server) and HAProxy's colours for server
//! states, in light and dark schemes. It is self-contained: inline CSS, no script, no
//! external resource. Every name and text from the configuration or from servers is
//! HTML-escaped. Values come from the same rows as `show stat`.
//!
//! [`handle_http`] maps a request to a response:
//! - a request for the stats URI without the credentials of a `stats auth` account -> 401
//!   with HAProxy's challenge and body (see [`super::auth`]), before anything else;
//! - `GET <stats uri>[;up][;norefresh]` -> the page (`;up` hides servers that are down);
//! - `GET <stats uri>;csv` -> `show stat` CSV, `text/plain`;
//! - `GET <metrics path>` -> the Prometheus exporter;
//! - `POST <stats uri>` with `stats admin` allowed -> the form's actions as [`Command`]s to
//!   run, and a 303 redirect to `<stats uri>;st=DONE` (or another status) like HAProxy;
//! - anything else -> 404 (405 for other methods).
//!
//! The stats URI is a prefix, as in HAProxy: `/stats;csv` and `/stats?x` are under
//! `/stats`.

use std::fmt::Write as _;
use std::time::Duration;

use super::auth::{BasicAuth, UNAUTHORIZED_BODY};
use super::command::{Command, ServerState, StatFilter};
use super::prometheus::prometheus;
use super::show::{show_stat_csv, stat_rows, uptime_text, Fld, Obj, Source, StatRow, Val};
use super::snapshot::{ServerRow, ServerStatus, Snapshot};

/// What one HTTP listener serves, as its frontend's configuration and conditions decide
/// for the request at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Site<'a> {
    /// `stats uri` when `stats enable` is on (HAProxy's default is "/haproxy?stats").
    pub stats_uri: Option<&'a str>,
    /// `stats refresh`.
    pub refresh: Option<Duration>,
    /// Whether `stats admin if <cond>` matched for this request.
    pub admin: bool,
    /// The exact path (query string ignored) served by the Prometheus exporter, when
    /// `http-request use-service prometheus-exporter` applies to this request.
    pub metrics_path: Option<&'a str>,
    /// `stats auth`: the stats URI needs one of these accounts.
    pub auth: Option<BasicAuth<'a>>,
    /// What the page shows beyond the statistics.
    pub look: Look<'a>,
}

/// `stats hide-version`, `stats show-legends`, `stats show-node`, `stats show-desc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Look<'a> {
    pub hide_version: bool,
    /// Each proxy's capabilities, mode and id and each server's address and id, as
    /// tooltips (HAProxy's texts).
    pub legends: bool,
    /// The node name after the pid: `Some(None)` for the host name.
    pub node: Option<Option<&'a str>>,
    pub desc: Option<&'a str>,
}

/// An HTTP response, with the admin actions a POST asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// `Location` of a redirect.
    pub location: Option<String>,
    pub body: String,
    /// A HEAD request: send the headers only (Content-Length still the body's).
    pub head_only: bool,
    /// Runtime commands to run, in order, before sending the response (admin POST).
    pub commands: Vec<Command>,
    /// `WWW-Authenticate` of a 401, which is sent as HAProxy sends its error replies.
    pub challenge: Option<String>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: String) -> Response {
        Response {
            status,
            content_type,
            location: None,
            body,
            head_only: false,
            commands: Vec::new(),
            challenge: None,
        }
    }

    /// HAProxy 2.6's 401 reply to a request without valid `stats auth` credentials.
    pub fn unauthorized(auth: &BasicAuth<'_>) -> Response {
        let mut r = Response::new(401, "text/html", UNAUTHORIZED_BODY.to_string());
        r.challenge = Some(auth.challenge());
        r
    }

    /// The response on the wire: HTTP/1.1, `Connection: close`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            303 => "See Other",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Error",
        };
        let mut head = match &self.challenge {
            // HAProxy's error replies put the length first.
            Some(challenge) => format!(
                "HTTP/1.1 {} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: {}\r\nwww-authenticate: {}\r\n",
                self.status,
                self.body.len(),
                self.content_type,
                challenge.replace(['\r', '\n'], "")
            ),
            None => format!(
                "HTTP/1.1 {} {reason}\r\ncache-control: no-cache\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
                self.status,
                self.content_type,
                self.body.len()
            ),
        };
        if let Some(l) = &self.location {
            let _ = write!(head, "location: {}\r\n", l.replace(['\r', '\n'], ""));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The request body's length from a request head's `Content-Length` (0 when absent or
/// invalid), so that the admin thread knows how much of a POST to read.
pub fn content_length(request_head: &str) -> usize {
    request_head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Answers one request. `request_head` is the request line and headers; `body` the POST
/// body (may be empty); `snapshot` is called only when a page or metrics are rendered.
pub fn handle_http(
    request_head: &str,
    body: &[u8],
    site: &Site<'_>,
    snapshot: impl FnOnce() -> Snapshot,
) -> Response {
    let mut parts = request_head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    let stats_uri = site
        .stats_uri
        .filter(|u| !u.is_empty() && target.starts_with(u));
    let metrics = matches!(method, "GET" | "HEAD") && site.metrics_path.is_some_and(|p| p == path);

    let mut resp = match (method, stats_uri, site.auth) {
        _ if metrics => Response::new(200, "text/plain; version=0.0.4", prometheus(&snapshot())),
        // HAProxy asks for credentials on the methods its stats page answers.
        ("GET" | "HEAD" | "POST", Some(_), Some(auth)) if !auth.admits(request_head) => {
            Response::unauthorized(&auth)
        }
        ("GET" | "HEAD", Some(uri), _) => {
            let opts = &target[uri.len()..];
            if opts.contains(";csv") {
                Response::new(200, "text/plain", show_stat_csv(&snapshot()))
            } else {
                let view = View {
                    uri,
                    refresh: site.refresh.filter(|_| !opts.contains(";norefresh")),
                    admin: site.admin,
                    up_only: opts.contains(";up"),
                    norefresh: opts.contains(";norefresh"),
                    status: opts
                        .split(";st=")
                        .nth(1)
                        .map(|s| s.split(';').next().unwrap_or("")),
                    look: site.look,
                };
                Response::new(200, "text/html; charset=utf-8", page(&snapshot(), &view))
            }
        }
        ("POST", Some(uri), _) => {
            let opts = &target[uri.len()..];
            let (st, commands) = if site.admin {
                admin_post(body)
            } else {
                ("DENY", Vec::new())
            };
            let mut r = Response::new(303, "text/plain", String::new());
            let keep = |o: &'static str| if opts.contains(o) { o } else { "" };
            r.location = Some(format!(
                "{uri}{}{};st={st}",
                keep(";up"),
                keep(";norefresh")
            ));
            r.commands = commands;
            r
        }
        ("GET" | "HEAD" | "POST", _, _) => {
            Response::new(404, "text/plain", "Not Found.\n".to_string())
        }
        _ => Response::new(405, "text/plain", "Method Not Allowed.\n".to_string()),
    };
    resp.head_only = head_only;
    resp
}

/// `stats_page` renders the page for `uri` (links and the admin form point there),
/// refreshing every `refresh` when set, with the admin controls when `admin`.
pub fn stats_page(s: &Snapshot, uri: &str, refresh: Option<Duration>, admin: bool) -> String {
    page(
        s,
        &View {
            uri,
            refresh,
            admin,
            up_only: false,
            norefresh: false,
            status: None,
            look: Look::default(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// admin form

/// The stats page's admin form, HAProxy's field names: `b=#<backend id>`, `s=<server>`
/// (repeated), `action=<ready|drain|maint|dhlth|ehlth|shutdown>`. Returns HAProxy's
/// status word for the redirect and the commands to run.
fn admin_post(body: &[u8]) -> (&'static str, Vec<Command>) {
    let body = String::from_utf8_lossy(body);
    let (mut backend, mut action, mut servers) = (None, None, Vec::new());
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = url_decode(v);
        match k {
            "b" => backend = Some(v),
            "s" => servers.push(v),
            "action" => action = Some(v),
            _ => {}
        }
    }
    let (Some(backend), Some(action)) = (backend, action) else {
        return ("ERRP", Vec::new());
    };
    if servers.is_empty() {
        return ("NONE", Vec::new());
    }
    let make = |server: String| -> Option<Command> {
        let backend = backend.clone();
        Some(match action.as_str() {
            "ready" => Command::SetServerState {
                backend,
                server,
                state: ServerState::Ready,
            },
            "drain" => Command::SetServerState {
                backend,
                server,
                state: ServerState::Drain,
            },
            "maint" => Command::SetServerState {
                backend,
                server,
                state: ServerState::Maint,
            },
            "dhlth" => Command::DisableHealth { backend, server },
            "ehlth" => Command::EnableHealth { backend, server },
            "shutdown" => Command::ShutdownSessionsServer { backend, server },
            _ => return None,
        })
    };
    match servers.into_iter().map(make).collect::<Option<Vec<_>>>() {
        Some(cmds) => ("DONE", cmds),
        None => ("ERRP", Vec::new()),
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// the page

struct View<'a> {
    uri: &'a str,
    refresh: Option<Duration>,
    admin: bool,
    up_only: bool,
    norefresh: bool,
    status: Option<&'a str>,
    look: Look<'a>,
}

const CSS: &str = r#"
:root{--bg:#fff;--fg:#1d1d1f;--muted:#6b6b70;--line:#d6d6db;--card:#f6f6f8;--head:#3d4b5c;--head2:#2f3b49;--headfg:#fff;
--px:#b00040;--pxfg:#ffff40;--fe:#e8e8d0;--be:#e8e8d0;
--active_up:#c0ffc0;--active_going_down:#ffffa0;--active_going_up:#ffd020;--active_down:#ff9090;--active_draining:#20a0ff;--active_no_check:#e0e0e0;
--backup_up:#b0d0ff;--backup_going_down:#c060ff;--backup_going_up:#ff80ff;--backup_down:#ff9090;--backup_draining:#cc9900;--backup_no_check:#e0e0e0;--maintain:#c07820}
@media (prefers-color-scheme:dark){:root{--bg:#131516;--fg:#e8e6e3;--muted:#9c978f;--line:#3a3f42;--card:#1c1f20;--head:#2b3642;--head2:#222b35;--headfg:#e8e6e3;
--px:#8d0033;--pxfg:#ffff46;--fe:#2f3437;--be:#2f3437;
--active_up:#165900;--active_going_down:#6c6c00;--active_going_up:#b99200;--active_down:#760000;--active_draining:#006ab9;--active_no_check:#2a2d2f;
--backup_up:#2e3234;--backup_going_down:#580092;--backup_going_up:#7f007f;--backup_down:#760000;--backup_draining:#a37a00;--backup_no_check:#2a2d2f;--maintain:#9a601a}}
*{box-sizing:border-box}
body{margin:0;padding:20px 24px 40px;background:var(--bg);color:var(--fg);font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:inherit}
header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:-.01em}
header h1 .ver{font-weight:400;color:var(--muted);font-size:15px;margin-left:.4em}
header p{margin:2px 0 16px;color:var(--muted)}
.top{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:200px}
.card h3{margin:0 0 6px;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:600}
.card dl{display:grid;grid-template-columns:auto auto;gap:2px 14px;margin:0}
.card dt{color:var(--muted)}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.legend{display:grid;grid-template-columns:repeat(2,auto);gap:3px 16px;align-content:start}
.legend span{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;vertical-align:-2px;border:1px solid var(--line)}
.card ul{margin:0;padding:0 0 0 16px}.card li{margin:2px 0}
.banner{padding:8px 12px;border-radius:6px;margin:0 0 16px;border:1px solid var(--line);background:var(--card)}
.banner.ok{border-color:#3a3;}.banner.err{border-color:#c33}
section.px{margin:0 0 22px}
section.px h2{display:inline-block;margin:0;padding:3px 12px;font-size:14px;background:var(--px);color:var(--pxfg);border-radius:6px 6px 0 0}
section.px h2 a{text-decoration:none}
section.px h2 small{font-weight:400;opacity:.85;margin-left:.6em}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:0 6px 6px 6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 6px;border:1px solid var(--line);white-space:nowrap}
thead th{background:var(--head);color:var(--headfg);font-weight:600;font-size:12px}
thead tr.grp th{background:var(--head2);font-size:11px;text-transform:uppercase;letter-spacing:.05em}
td{text-align:right}
td.name{text-align:left;font-weight:600}
td.c{text-align:center}
tr.frontend,tr.backend{background:var(--fe);font-weight:600}
tr.frontend td,tr.backend td{font-weight:600}
tr.active_up{background:var(--active_up)}tr.active_going_down{background:var(--active_going_down)}tr.active_going_up{background:var(--active_going_up)}
tr.active_down{background:var(--active_down)}tr.active_draining{background:var(--active_draining)}tr.active_no_check{background:var(--active_no_check)}
tr.backup_up{background:var(--backup_up)}tr.backup_going_down{background:var(--backup_going_down)}tr.backup_going_up{background:var(--backup_going_up)}
tr.backup_down{background:var(--backup_down)}tr.backup_draining{background:var(--backup_draining)}tr.backup_no_check{background:var(--backup_no_check)}
tr.maintain{background:var(--maintain)}
.g{margin-left:.18em}
[title]{cursor:help}
td.chk{text-decoration:underline dotted;text-underline-offset:3px}
.adm{padding:6px 8px;display:flex;gap:8px;align-items:center;border-top:1px solid var(--line)}
footer{color:var(--muted);margin-top:24px;font-size:12px}
"#;

fn page(s: &Snapshot, v: &View<'_>) -> String {
    let i = &s.info;
    let mut out = String::with_capacity(32_768 + s.servers.len() * 1_500);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(r) = v.refresh {
        let _ = writeln!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            r.as_secs().max(1)
        );
    }
    let _ = writeln!(out, "<title>Statistics Report for {}</title>", esc(&i.name));
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n<style>");
    out.push_str(CSS);
    out.push_str("</style></head>\n<body>\n");

    // HAProxy's header: the version unless `stats hide-version`, then "Statistics Report
    // for pid <pid>[ on <node>][: <desc>]" as `stats show-node` and `stats show-desc` ask.
    let version = if v.look.hide_version {
        String::new()
    } else {
        format!(
            "<span class=\"ver\">version {}{}</span>",
            esc(&i.version),
            if i.release_date.is_empty() {
                String::new()
            } else {
                format!(", released {}", esc(&i.release_date))
            }
        )
    };
    let node = match v.look.node {
        Some(Some(name)) => Some(name),
        Some(None) => Some(i.node.as_str()).filter(|n| !n.is_empty()),
        None => None,
    };
    let _ = writeln!(
        out,
        "<header><h1>{}{version}</h1><p>Statistics report for pid {}{}{}</p></header>",
        esc(&i.name),
        i.pid,
        node.map(|n| format!(" on {}", esc(n))).unwrap_or_default(),
        v.look
            .desc
            .map(|d| format!(": {}", esc(d)))
            .unwrap_or_default(),
    );

    out.push_str("<div class=\"top\">\n");
    card(
        &mut out,
        "Process",
        &[
            ("pid", format!("{} (nbthread = {})", i.pid, i.nbthread)),
            ("uptime", uptime_text(i.uptime)),
            ("system limits", format!("ulimit-n = {}", group(i.ulimit_n))),
            ("maxsock", group(i.maxsock)),
            ("maxconn", group(i.maxconn)),
            ("maxpipes", group(i.max_pipes)),
        ],
    );
    card(
        &mut out,
        "Activity",
        &[
            ("current conns", group(i.curr_conns)),
            ("total conns", group(i.cum_conns)),
            ("conn rate", format!("{}/sec", group(i.conn_rate))),
            (
                "current pipes",
                format!(
                    "{}/{}",
                    group(i.pipes_used),
                    group(i.pipes_used + i.pipes_free)
                ),
            ),
            (
                "stopping",
                if i.stopping {
                    "yes".to_string()
                } else {
                    "no".to_string()
                },
            ),
        ],
    );
    legend(&mut out);
    options(&mut out, v);
    out.push_str("</div>\n");

    if let Some(st) = v.status {
        let (class, text) = match st {
            "DONE" => ("ok", "Action processed successfully."),
            "NONE" => ("ok", "Nothing has changed."),
            "PART" => (
                "err",
                "Action partially processed. Some server names are probably unknown.",
            ),
            "ERRP" => ("err", "Action not processed because of invalid parameters."),
            "EXCD" => ("err", "Action not processed: too many servers at a time."),
            "DENY" => ("err", "Action denied."),
            _ => ("err", "Unexpected result."),
        };
        let _ = writeln!(out, "<p class=\"banner {class}\">{text}</p>");
    }
    if let Some(d) = &i.description {
        let _ = writeln!(out, "<p>{}</p>", esc(d));
    }

    let filter = StatFilter {
        up_only: v.up_only,
        ..StatFilter::default()
    };
    let rows = stat_rows(s, &filter);
    let mut start = 0;
    while start < rows.len() {
        let iid = rows[start].iid;
        let end = rows[start..]
            .iter()
            .position(|r| r.iid != iid)
            .map_or(rows.len(), |n| start + n);
        proxy_table(&mut out, &rows[start..end], v);
        start = end;
    }

    let _ = writeln!(
        out,
        "<footer>Generated by {}{} &middot; uptime {}</footer>\n</body></html>",
        esc(&i.name),
        if v.look.hide_version {
            String::new()
        } else {
            format!(" {}", esc(&i.version))
        },
        uptime_text(i.uptime)
    );
    out
}

fn card(out: &mut String, title: &str, items: &[(&str, String)]) {
    let _ = write!(out, "<div class=\"card\"><h3>{title}</h3><dl>");
    for (k, v) in items {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl></div>\n");
}

fn legend(out: &mut String) {
    out.push_str("<div class=\"card\"><h3>Server states</h3><div class=\"legend\">");
    for (class, text) in [
        ("active_up", "active UP"),
        ("backup_up", "backup UP"),
        ("active_going_down", "active UP, going down"),
        ("backup_going_down", "backup UP, going down"),
        ("active_going_up", "active DOWN, going up"),
        ("backup_going_up", "backup DOWN, going up"),
        ("active_down", "active or backup DOWN"),
        ("active_no_check", "not checked"),
        ("maintain", "DOWN for maintenance (MAINT)"),
        ("active_draining", "active or backup DRAIN"),
    ] {
        let _ = write!(
            out,
            "<div><span style=\"background:var(--{class})\"></span>{text}</div>"
        );
    }
    out.push_str("</div></div>\n");
}

fn options(out: &mut String, v: &View<'_>) {
    let uri = esc(v.uri);
    let keep_nr = if v.norefresh { ";norefresh" } else { "" };
    out.push_str("<div class=\"card\"><h3>Display</h3><ul>");
    if v.up_only {
        let _ = write!(
            out,
            "<li><a href=\"{uri}{keep_nr}\">Show all servers</a></li>"
        );
    } else {
        let _ = write!(
            out,
            "<li><a href=\"{uri};up{keep_nr}\">Hide 'DOWN' servers</a></li>"
        );
    }
    let keep_up = if v.up_only { ";up" } else { "" };
    if v.norefresh || v.refresh.is_some() {
        if v.norefresh {
            let _ = write!(
                out,
                "<li><a href=\"{uri}{keep_up}\">Enable refresh</a></li>"
            );
        } else {
            let _ = write!(
                out,
                "<li><a href=\"{uri}{keep_up};norefresh\">Disable refresh</a></li>"
            );
        }
    }
    let _ = write!(
        out,
        "<li><a href=\"{uri}{keep_up}{keep_nr}\">Refresh now</a></li>"
    );
    let _ = write!(
        out,
        "<li><a href=\"{uri};csv;norefresh\">CSV export</a></li>"
    );
    out.push_str("</ul></div>\n");
}

const HEAD_GROUPS: &str = "<th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th><th colspan=\"6\">Sessions</th><th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th><th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"9\">Server</th>";
const HEAD_COLS: &str = "<th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th>";

fn proxy_table(out: &mut String, rows: &[StatRow<'_>], v: &View<'_>) {
    // The proxy's name and description, from its frontend or backend (a backend's first
    // row is a server).
    let name = rows
        .iter()
        .find_map(|r| match r.src {
            Source::Frontend(f) => Some((f.name.as_str(), f.description.as_deref())),
            Source::Backend(b) => Some((b.name.as_str(), b.description.as_deref())),
            Source::Server(_) => None,
        })
        .or_else(|| {
            rows.iter().find_map(|r| match r.src {
                Source::Server(sv) => Some((sv.backend.as_str(), None)),
                _ => None,
            })
        })
        .unwrap_or(("", None));
    let backend = rows.iter().find_map(|r| match r.src {
        Source::Backend(b) => Some(b),
        _ => None,
    });
    let has_servers = rows.iter().any(|r| r.obj == Obj::Server);
    let admin = v.admin && has_servers;
    let id = esc(name.0);
    // `stats show-legends`: HAProxy's "cap: <frontend|backend|proxy>, mode: <m>, id: <n>".
    let legend = if v.look.legends {
        let frontend = rows.iter().find_map(|r| match r.src {
            Source::Frontend(f) => Some(f),
            _ => None,
        });
        let cap = match (frontend.is_some(), backend.is_some()) {
            (true, true) => "proxy",
            (true, false) => "frontend",
            _ => "backend",
        };
        let mode = frontend
            .map(|f| f.mode)
            .or(backend.map(|b| b.mode))
            .unwrap_or("tcp");
        let iid = rows.first().map_or(0, |r| r.iid);
        format!(" title=\"cap: {cap}, mode: {mode}, id: {iid}\"")
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<section class=\"px\" id=\"{id}\"><h2><a href=\"#{id}\"{legend}>{id}</a>"
    );
    if let Some(d) = name.1 {
        let _ = write!(out, "<small>{}</small>", esc(d));
    }
    out.push_str("</h2>\n");
    if admin {
        let _ = write!(out, "<form method=\"post\" action=\"{}\">", esc(v.uri));
    }
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr class=\"grp\">");
    if admin {
        out.push_str("<th rowspan=\"2\"></th>");
    }
    let _ = write!(
        out,
        "<th rowspan=\"2\"></th>{HEAD_GROUPS}</tr>\n<tr>{HEAD_COLS}</tr></thead>\n<tbody>\n"
    );
    for r in rows {
        match r.src {
            Source::Frontend(_) => frontend_row(out, r, admin),
            Source::Server(sv) => server_row(out, r, sv, admin, v.look.legends),
            Source::Backend(_) => backend_row(out, r, admin),
        }
    }
    out.push_str("</tbody></table>\n");
    if admin {
        if let Some(b) = backend {
            let _ = write!(
                out,
                "<div class=\"adm\">Choose the action to perform on the checked servers: <select name=\"action\">\
                 <option value=\"\"></option><option value=\"ready\">Set state to READY</option>\
                 <option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option>\
                 <option value=\"dhlth\">Health: disable checks</option><option value=\"ehlth\">Health: enable checks</option>\
                 <option value=\"shutdown\">Kill sessions</option></select>\
                 <input type=\"hidden\" name=\"b\" value=\"#{}\"><input type=\"submit\" value=\"Apply\"></div>",
                b.iid
            );
        }
    }
    out.push_str("</div>");
    if admin {
        out.push_str("</form>");
    }
    out.push_str("</section>\n");
}

/// A number with thin gaps between groups of three digits (copy-paste keeps the digits).
fn group(n: u64) -> String {
    let s = n.to_string();
    let head = s.len() % 3;
    let mut out = String::from(&s[..head]);
    for (k, chunk) in s.as_bytes()[head..].chunks(3).enumerate() {
        let chunk = std::str::from_utf8(chunk).unwrap_or("");
        if k == 0 && head == 0 {
            out.push_str(chunk);
        } else {
            let _ = write!(out, "<span class=\"g\">{chunk}</span>");
        }
    }
    out
}

fn val(r: &StatRow<'_>, f: Fld) -> String {
    match r.get(f) {
        Val::U(n) => group(*n),
        Val::I(n) if *n < 0 => "-".to_string(),
        Val::I(n) => group(n.unsigned_abs()),
        Val::S(s) => esc(s),
        Val::Empty => String::new(),
    }
}

/// A limit: the number, or "-" when there is none.
fn limit(r: &StatRow<'_>, f: Fld) -> String {
    match r.get(f) {
        Val::U(0) | Val::Empty => "-".to_string(),
        _ => val(r, f),
    }
}

fn cells(out: &mut String, cells: &[String]) {
    for c in cells {
        if c.starts_with("<td") {
            out.push_str(c);
        } else {
            let _ = write!(out, "<td>{c}</td>");
        }
    }
}

fn bytes_title(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u < UNITS.len() - 1 {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

fn bytes(r: &StatRow<'_>, f: Fld) -> String {
    match r.get(f) {
        Val::U(n) => format!("<td title=\"{}\">{}</td>", bytes_title(*n), group(*n)),
        _ => String::new(),
    }
}

fn frontend_row(out: &mut String, r: &StatRow<'_>, admin: bool) {
    out.push_str("<tr class=\"frontend\">");
    if admin {
        out.push_str("<td></td>");
    }
    out.push_str("<td class=\"name\">Frontend</td><td colspan=\"3\"></td>");
    let rate_lim = limit(r, Fld::RateLim);
    cells(
        out,
        &[
            val(r, Fld::Rate),
            val(r, Fld::RateMax),
            rate_lim,
            val(r, Fld::Scur),
            val(r, Fld::Smax),
            limit(r, Fld::Slim),
            format!(
                "<td title=\"Cum. connections: {}\">{}</td>",
                text(r, Fld::ConnTot),
                val(r, Fld::Stot)
            ),
            String::new(),
            String::new(),
            bytes(r, Fld::Bin),
            bytes(r, Fld::Bout),
            format!(
                "<td title=\"Denied by tcp-request connection rules: {}\">{}</td>",
                text(r, Fld::Dcon),
                val(r, Fld::Dreq)
            ),
            val(r, Fld::Dresp),
            val(r, Fld::Ereq),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("<td class=\"c\">{}</td>", val(r, Fld::Status)),
            "<td colspan=\"8\"></td>".to_string(),
        ],
    );
    out.push_str("</tr>\n");
}

fn text(r: &StatRow<'_>, f: Fld) -> String {
    match r.get(f) {
        Val::U(n) => n.to_string(),
        Val::I(n) => n.to_string(),
        Val::S(s) => esc(s),
        Val::Empty => String::new(),
    }
}

fn server_class(sv: &ServerRow) -> String {
    let side = if sv.backup { "backup" } else { "active" };
    let state = match sv.status {
        ServerStatus::Maint => return "maintain".to_string(),
        ServerStatus::Up => "up",
        ServerStatus::GoingDown { .. } => "going_down",
        ServerStatus::GoingUp { .. } => "going_up",
        ServerStatus::Down => "down",
        ServerStatus::Drain => "draining",
        ServerStatus::NoCheck => "no_check",
    };
    format!("{side}_{state}")
}

fn server_row(out: &mut String, r: &StatRow<'_>, sv: &ServerRow, admin: bool, legends: bool) {
    let _ = write!(out, "<tr class=\"{}\">", server_class(sv));
    if admin {
        let _ = write!(
            out,
            "<td class=\"c\"><input type=\"checkbox\" name=\"s\" value=\"{}\"></td>",
            esc(&sv.name)
        );
    }
    // `stats show-legends`: HAProxy's "IPv4: <addr>, id: <n>".
    let legend = if legends {
        let family = match sv.addr.as_bytes().first() {
            Some(c) if c.is_ascii_digit() => "IPv4: ",
            Some(b'[') => "IPv6: ",
            _ => "",
        };
        let addr = if sv.addr.is_empty() {
            String::new()
        } else {
            format!("{family}{}, ", esc(&sv.addr))
        };
        format!(" title=\"{addr}id: {}\"", sv.sid)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<td class=\"name\" id=\"{0}/{1}\"{legend}>{1}</td>",
        esc(&sv.backend),
        esc(&sv.name)
    );
    let last = match sv.lastsess {
        Some(d) => human_time(d),
        None => "never".to_string(),
    };
    let status = match sv.status {
        ServerStatus::NoCheck => "<td class=\"c\"><i>no check</i></td>".to_string(),
        _ => format!(
            "<td class=\"c\">{} {}</td>",
            human_time(sv.lastchg),
            val(r, Fld::Status)
        ),
    };
    let lastchk = match (r.get(Fld::CheckStatus), &sv.check) {
        (Val::S(st), Some(c)) => {
            let mut tip = esc(&c.desc);
            if !c.output.is_empty() {
                let _ = write!(tip, ": {}", esc(&c.output));
            }
            let code = c.code.map(|c| format!("/{c}")).unwrap_or_default();
            let took = c
                .duration_ms
                .map(|d| format!(" in {d}ms"))
                .unwrap_or_default();
            format!(
                "<td class=\"c chk\" title=\"{tip}\">{}{code}{took}</td>",
                esc(st)
            )
        }
        _ => String::new(),
    };
    let checks = if sv.check.is_some() {
        format!(
            "<td title=\"Failed health checks\">{}</td><td>{}</td><td>{}</td>",
            val(r, Fld::Chkfail),
            val(r, Fld::Chkdown),
            human_time(sv.downtime)
        )
    } else {
        "<td colspan=\"3\"></td>".to_string()
    };
    let yes = |b: bool| if b { "Y" } else { "-" };
    cells(
        out,
        &[
            val(r, Fld::Qcur),
            val(r, Fld::Qmax),
            limit(r, Fld::Qlimit),
            val(r, Fld::Rate),
            val(r, Fld::RateMax),
            String::new(),
            val(r, Fld::Scur),
            val(r, Fld::Smax),
            limit(r, Fld::Slim),
            format!(
                "<td title=\"Average connect time: {} ms, average session time: {} ms\">{}</td>",
                text(r, Fld::Ctime),
                text(r, Fld::Ttime),
                val(r, Fld::Stot)
            ),
            val(r, Fld::Lbtot),
            last,
            bytes(r, Fld::Bin),
            bytes(r, Fld::Bout),
            String::new(),
            val(r, Fld::Dresp),
            String::new(),
            val(r, Fld::Econ),
            format!(
                "<td title=\"Connection resets during transfers: {} client, {} server\">{}</td>",
                text(r, Fld::CliAbrt),
                text(r, Fld::SrvAbrt),
                val(r, Fld::Eresp)
            ),
            val(r, Fld::Wretr),
            val(r, Fld::Wredis),
            status,
            lastchk,
            format!("<td class=\"c\">{}/{}</td>", sv.weight, sv.uweight),
            format!("<td class=\"c\">{}</td>", yes(!sv.backup)),
            format!("<td class=\"c\">{}</td>", yes(sv.backup)),
            checks,
            format!(
                "<td class=\"c\">{}</td>",
                sv.throttle.map_or("-".to_string(), |t| format!("{t} %"))
            ),
        ],
    );
    out.push_str("</tr>\n");
}

fn backend_row(out: &mut String, r: &StatRow<'_>, admin: bool) {
    let Source::Backend(b) = r.src else { return };
    out.push_str("<tr class=\"backend\">");
    if admin {
        out.push_str("<td></td>");
    }
    let last = match b.lastsess {
        Some(d) => human_time(d),
        None => "never".to_string(),
    };
    cells(
        out,
        &[
            "<td class=\"name\">Backend</td>".to_string(),
            val(r, Fld::Qcur),
            val(r, Fld::Qmax),
            String::new(),
            val(r, Fld::Rate),
            val(r, Fld::RateMax),
            String::new(),
            val(r, Fld::Scur),
            val(r, Fld::Smax),
            limit(r, Fld::Slim),
            format!(
                "<td title=\"Algorithm: {}\">{}</td>",
                esc(b.algo),
                val(r, Fld::Stot)
            ),
            val(r, Fld::Lbtot),
            last,
            bytes(r, Fld::Bin),
            bytes(r, Fld::Bout),
            val(r, Fld::Dreq),
            val(r, Fld::Dresp),
            String::new(),
            val(r, Fld::Econ),
            val(r, Fld::Eresp),
            val(r, Fld::Wretr),
            val(r, Fld::Wredis),
            format!(
                "<td class=\"c\">{} {}</td>",
                human_time(b.lastchg),
                val(r, Fld::Status)
            ),
            String::new(),
            format!("<td class=\"c\">{}/{}</td>", b.weight, b.uweight),
            format!("<td class=\"c\">{}</td>", b.act),
            format!("<td class=\"c\">{}</td>", b.bck),
            String::new(),
            val(r, Fld::Chkdown),
            human_time(b.downtime),
            String::new(),
        ],
    );
    out.push_str("</tr>\n");
}

/// HAProxy's human_time(): the two most significant units, "1m2s", "3d4h", "0s".
pub fn human_time(d: Duration) -> String {
    let t = d.as_secs();
    if t == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut left = 2;
    if t >= 86_400 {
        let _ = write!(out, "{}d", t / 86_400);
        left -= 1;
    }
    if left > 0 && t % 86_400 / 3_600 != 0 {
        let _ = write!(out, "{}h", t % 86_400 / 3_600);
        left -= 1;
    }
    if left > 0 && t % 3_600 / 60 != 0 {
        let _ = write!(out, "{}m", t % 3_600 / 60);
        left -= 1;
    }
    if left > 0 && t % 60 != 0 {
        let _ = write!(out, "{}s", t % 60);
    }
    out
}

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_time_is_haproxys() {
        for (secs, text) in [
            (0, "0s"),
            (7, "7s"),
            (62, "1m2s"),
            (3_600, "1h"),
            (3_725, "1h2m"),
            (90_061, "1d1h"),
            (86_400 * 3 + 5, "3d5s"),
        ] {
            assert_eq!(human_time(Duration::from_secs(secs)), text, "{secs}");
        }
    }

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1<span class=\"g\">000</span>");
        assert_eq!(
            group(123_456_789),
            "123<span class=\"g\">456</span><span class=\"g\">789</span>"
        );
        assert_eq!(bytes_title(999), "999 B");
        assert_eq!(bytes_title(1_234_567), "1.2 MB");
    }

    #[test]
    fn form_decoding() {
        assert_eq!(url_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(url_decode("%zz%41"), "%zzA");
        assert_eq!(admin_post(b"b=%233&action=maint"), ("NONE", vec![]));
        assert_eq!(admin_post(b"s=x&action=explode&b=%233").0, "ERRP");
        assert_eq!(admin_post(b"s=x").0, "ERRP");
        let (st, cmds) = admin_post(b"b=be&s=s1&action=shutdown");
        assert_eq!(
            (st, cmds),
            (
                "DONE",
                vec![Command::ShutdownSessionsServer {
                    backend: "be".into(),
                    server: "s1".into()
                }]
            )
        );
    }
}
