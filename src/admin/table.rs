//! `show table` and `clear table` on the stats socket: the stick tables as HAProxy 2.6
//! prints them, with its argument checks, filters, levels and reply texts (captured from a
//! real HAProxy 2.6.12).
//!
//! - `show table`: one summary line per table, the last declared first (HAProxy's list
//!   order);
//! - `show table <t> [key <k> | data.<type> <op> <value> (up to 4)]`: the header, then one
//!   line per entry in key order, the stored data in HAProxy's order; below `operator`
//!   level the header and "# contents not dumped due to insufficient privileges";
//! - `clear table <t> [key <k> | data.<type> <op> <value> ...]`: removes the entries no
//!   connection uses; below `operator` level, silently nothing (with a key, "Permission
//!   denied").
//!
//! HAProxy prints each entry's address; sluice prints its entry's, so those differ.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::config::model::{AccessLevel, TableType};
use crate::stick::{Cleared, Counts, EntryView, Store, Table, Tables};

/// HAProxy's replies.
pub mod reply {
    pub use crate::admin::command::reply::PERMISSION_DENIED;

    pub const NO_SUCH_TABLE: &str = "No such table\n";
    pub const KEY_EXPECTED: &str = "Key value expected\n";
    pub const INVALID_KEY: &str = "Invalid key\n";
    pub const IN_USE: &str = "Entry currently in use, cannot remove\n";
    pub const NOT_DUMPED: &str = "# contents not dumped due to insufficient privileges\n";
    pub const CLEAR_ARGS: &str = "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n";
    pub const SHOW_ARGS: &str =
        "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n";
}

/// Runs `show table` (`clear` false) or `clear table` with the words after `table`, for a
/// socket at `level`, and returns the output.
pub fn execute(
    tables: &Tables,
    clear: bool,
    args: &[String],
    level: AccessLevel,
    now: Instant,
) -> String {
    let Some(name) = args.first() else {
        return if clear {
            reply::CLEAR_ARGS.to_string()
        } else {
            summary(tables, now)
        };
    };
    let Some(t) = tables.by_name(name) else {
        return reply::NO_SUCH_TABLE.to_string();
    };
    let rest = &args[1..];
    let operator = level >= AccessLevel::Operator;
    let filters = match rest.first().map(String::as_str) {
        None => Vec::new(),
        Some("key") => return by_key(t, clear, rest.get(1), operator, now),
        Some(w) if w.starts_with("data.") => match parse_filters(t, rest) {
            Ok(f) => f,
            Err(e) => return e,
        },
        Some(_) if clear => return reply::CLEAR_ARGS.to_string(),
        Some(_) => return reply::SHOW_ARGS.to_string(),
    };
    t.purge(now);
    if clear {
        if operator {
            t.clear_where(now, |c| filters.iter().all(|f| f.matches(c)));
        }
        return String::new();
    }
    let mut out = header(t);
    if !operator {
        out.push_str(reply::NOT_DUMPED);
        return out;
    }
    for e in t.entries(now) {
        if filters.iter().all(|f| f.matches(&e.counts)) {
            entry_line(&mut out, &e, &t.store());
        }
    }
    out
}

/// `show table`: a summary line per table, the last declared first.
pub fn summary(tables: &Tables, now: Instant) -> String {
    let all: Vec<&Table> = tables.iter().collect();
    let mut out = String::new();
    for t in all.into_iter().rev() {
        t.purge(now);
        out.push_str(&header(t));
    }
    out
}

/// `# table: <name>, type: <ip|ipv6>, size:<n>, used:<n>`.
pub fn header(t: &Table) -> String {
    let kind = match t.kind() {
        TableType::Ip => "ip",
        TableType::Ipv6 => "ipv6",
    };
    format!(
        "# table: {}, type: {kind}, size:{}, used:{}\n",
        t.name(),
        t.size(),
        t.used()
    )
}

/// One entry: `0x<addr>: key=<k> use=<refs> exp=<ms>` and the stored data in HAProxy's
/// order (server_id, gpc0, gpc0_rate, conn_cnt, conn_rate, conn_cur, sess_cnt, sess_rate,
/// bytes_in_cnt, bytes_out_cnt, gpc1, gpc1_rate, server_key), rates with their period in
/// milliseconds. A table `stick`
/// rules use prints `server_id=0 ... server_key=-` for an entry with no server, as
/// HAProxy 2.6.12 does.
pub fn entry_line(out: &mut String, e: &EntryView, store: &Store) {
    let _ = write!(
        out,
        "0x{:x}: key={} use={} exp={}",
        e.id,
        key_text(e.key),
        e.refs,
        e.exp_ms
    );
    let c = &e.counts;
    count(out, "server_id", c.server_id);
    count(out, "gpc0", c.gpc[0]);
    rate(out, "gpc0_rate", c.gpc_rate[0], store.gpc_rate[0]);
    count(out, "conn_cnt", c.conn_cnt);
    rate(out, "conn_rate", c.conn_rate, store.conn_rate);
    count(out, "conn_cur", c.conn_cur);
    count(out, "sess_cnt", c.sess_cnt);
    rate(out, "sess_rate", c.sess_rate, store.sess_rate);
    count(out, "bytes_in_cnt", c.bytes_in_cnt);
    count(out, "bytes_out_cnt", c.bytes_out_cnt);
    count(out, "gpc1", c.gpc[1]);
    rate(out, "gpc1_rate", c.gpc_rate[1], store.gpc_rate[1]);
    if store.server_id {
        let _ = write!(
            out,
            " server_key={}",
            e.server_key.as_deref().unwrap_or("-")
        );
    }
    out.push('\n');
}

/// ` <name>=<v>` for a stored counter.
fn count(out: &mut String, name: &str, v: Option<impl std::fmt::Display>) {
    if let Some(v) = v {
        let _ = write!(out, " {name}={v}");
    }
}

/// ` <name>(<period ms>)=<v>` for a stored rate.
fn rate(out: &mut String, name: &str, v: Option<impl std::fmt::Display>, period: Option<u64>) {
    if let (Some(v), Some(p)) = (v, period) {
        let _ = write!(out, " {name}({p})={v}");
    }
}

/// An address as HAProxy prints keys (inet_ntop: `::a.b.c.d` for v4-compatible
/// addresses, `::ffff:a.b.c.d` for v4-mapped ones).
pub fn key_text(key: IpAddr) -> String {
    match key {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let s = a.segments();
            if s[..6] == [0; 6] && s[6] != 0 {
                let o = a.octets();
                format!("::{}", Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else {
                a.to_string()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// `... key <k>`: HAProxy ignores any word after the key.
fn by_key(t: &Table, clear: bool, key: Option<&String>, operator: bool, now: Instant) -> String {
    let Some(key) = key else {
        return reply::KEY_EXPECTED.to_string();
    };
    // An ip table reads the key leniently (HAProxy's inetaddr_host): what does not parse
    // matches nothing. An ipv6 table wants a valid address.
    let key = match t.kind() {
        TableType::Ip => key.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        TableType::Ipv6 => match key.parse::<Ipv6Addr>() {
            Ok(a) => Some(IpAddr::V6(a)),
            Err(_) => return reply::INVALID_KEY.to_string(),
        },
    };
    if !operator {
        return reply::PERMISSION_DENIED.to_string();
    }
    let Some(key) = key else {
        return String::new();
    };
    t.purge(now);
    if clear {
        return match t.clear_key(key, now) {
            Cleared::InUse => reply::IN_USE.to_string(),
            Cleared::Removed | Cleared::NotFound => String::new(),
        };
    }
    match t.entry(key, now) {
        Some(e) => {
            let mut out = header(t);
            entry_line(&mut out, &e, &t.store());
            out
        }
        None => String::new(),
    }
}

/// HAProxy 2.6's data types: a filter on one of these that the table does not store is
/// "not stored"; any other name is "unknown".
const DATA_TYPES: &[&str] = &[
    "server_id",
    "gpt0",
    "gpc0",
    "gpc0_rate",
    "conn_cnt",
    "conn_rate",
    "conn_cur",
    "sess_cnt",
    "sess_rate",
    "http_req_cnt",
    "http_req_rate",
    "http_err_cnt",
    "http_err_rate",
    "bytes_in_cnt",
    "bytes_in_rate",
    "bytes_out_cnt",
    "bytes_out_rate",
    "gpc1",
    "gpc1_rate",
    "server_key",
    "http_fail_cnt",
    "http_fail_rate",
    "gpt",
    "gpc",
    "gpc_rate",
];

/// At most this many `data.` filters (HAProxy's STKTABLE_FILTER_LEN).
const MAX_FILTERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
}

#[derive(Debug, Clone, Copy)]
struct Filter {
    /// Reads the filtered value out of an entry's counts (None: not stored).
    field: fn(&Counts) -> Option<i64>,
    op: Op,
    value: i64,
}

impl Filter {
    fn matches(&self, c: &Counts) -> bool {
        let Some(v) = (self.field)(c) else {
            return false;
        };
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Le => v <= self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Gt => v > self.value,
        }
    }
}

/// The reader of data type `name` when table `t` stores it; None when it does not (or
/// when sluice does not fill that type).
fn stored_field(t: &Table, name: &str) -> Option<fn(&Counts) -> Option<i64>> {
    fn i(v: Option<u64>) -> Option<i64> {
        v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
    }
    let s = t.store();
    let (stored, field): (bool, fn(&Counts) -> Option<i64>) = match name {
        "server_id" => (s.server_id, |c| c.server_id.map(i64::from)),
        "conn_cnt" => (s.conn_cnt, |c| i(c.conn_cnt)),
        "conn_rate" => (s.conn_rate.is_some(), |c| c.conn_rate.map(i64::from)),
        "conn_cur" => (s.conn_cur, |c| c.conn_cur.map(i64::from)),
        "sess_cnt" => (s.sess_cnt, |c| i(c.sess_cnt)),
        "sess_rate" => (s.sess_rate.is_some(), |c| c.sess_rate.map(i64::from)),
        "bytes_in_cnt" => (s.bytes_in_cnt, |c| i(c.bytes_in_cnt)),
        "bytes_out_cnt" => (s.bytes_out_cnt, |c| i(c.bytes_out_cnt)),
        "gpc0" => (s.gpc[0], |c| c.gpc[0].map(i64::from)),
        "gpc1" => (s.gpc[1], |c| c.gpc[1].map(i64::from)),
        "gpc0_rate" => (s.gpc_rate[0].is_some(), |c| c.gpc_rate[0].map(i64::from)),
        "gpc1_rate" => (s.gpc_rate[1].is_some(), |c| c.gpc_rate[1].map(i64::from)),
        _ => return None,
    };
    stored.then_some(field)
}

/// HAProxy's table_prepare_data_request(): `rest` starts at the first `data.` word.
fn parse_filters(t: &Table, rest: &[String]) -> Result<Vec<Filter>, String> {
    let word = |i: usize| rest.get(i).map(String::as_str);
    let mut filters = Vec::new();
    let mut i = 0;
    while i < MAX_FILTERS {
        let Some(w) = word(3 * i) else { break };
        let n = i + 1;
        // HAProxy skips five characters whatever they are ("data.").
        let name = w.get(5..).unwrap_or("");
        if !DATA_TYPES.contains(&name) {
            return Err(format!("Filter entry #{n}: Unknown data type\n"));
        }
        let Some(field) = stored_field(t, name) else {
            return Err(format!(
                "Filter entry #{n}: Data type not stored in this table\n"
            ));
        };
        let op = match word(3 * i + 1) {
            Some("eq") => Op::Eq,
            Some("ne") => Op::Ne,
            Some("le") => Op::Le,
            Some("ge") => Op::Ge,
            Some("lt") => Op::Lt,
            Some("gt") => Op::Gt,
            _ => {
                return Err(format!(
                    "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
                ))
            }
        };
        let Some(value) = word(3 * i + 2).and_then(strl2ll) else {
            return Err(format!(
                "Filter entry #{n}: Require a valid integer value to compare against\n"
            ));
        };
        filters.push(Filter { field, op, value });
        i += 1;
    }
    if i == MAX_FILTERS && word(3 * i).is_some() {
        // HAProxy numbers the words from `show`, and names the one before.
        return Err(format!(
            "Detected extra data in filter, {}th word of input, after '{}'\n",
            3 + 3 * i + 1,
            rest[3 * i - 1]
        ));
    }
    Ok(filters)
}

/// HAProxy's strl2llrc: an optional '-' then digits, nothing else.
fn strl2ll(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{StickTable, StoreItem};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::stick::tests::spec;

    /// Tables leaked as the supervisor does, so that entries can be tracked.
    fn leak(tables: Vec<(&str, StickTable)>) -> &'static Tables {
        Box::leak(Box::new(Tables::from_tables(
            tables.iter().map(|(n, s)| Table::new(n, s)).collect(),
        )))
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    /// Replaces the `0x...:` entry addresses, which differ from run to run.
    fn unaddr(s: &str) -> String {
        s.lines()
            .map(|l| match l.split_once(": key=") {
                Some((a, rest)) if a.starts_with("0x") => format!("0xADDR: key={rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sticky_entries_print_their_server_as_haproxy() {
        let tables: &'static Tables = Box::leak(Box::new(Tables::from_tables(vec![
            Table::new(
                "l4",
                &spec(TableType::Ip, 10, Some(30_000), &[StoreItem::ConnCur]),
            )
            .with_server_id(),
            Table::new("l", &spec(TableType::Ip, 10, Some(30_000), &[])).with_server_id(),
        ])));
        let now = Instant::now();
        let later = now + Duration::from_millis(221);
        drop(tables.by_name("l4").unwrap().track(ip("127.0.0.1"), now));
        let name: Arc<str> = Arc::from("s1");
        tables
            .by_name("l")
            .unwrap()
            .stick_store(ip("127.0.0.1"), (7, &name), now);
        // What HAProxy 2.6.12 printed: an entry a track-sc made in a table a stick rule
        // uses, and one `stick on src` stored for server s1 (id 7).
        let out = super::execute(tables, false, &words("l4"), AccessLevel::Admin, later);
        assert_eq!(
            unaddr(&out),
            "# table: l4, type: ip, size:10, used:1\n\
             0xADDR: key=127.0.0.1 use=0 exp=29779 server_id=0 conn_cur=0 server_key=-\n"
        );
        let out = super::execute(tables, false, &words("l"), AccessLevel::Admin, later);
        assert_eq!(
            unaddr(&out),
            "# table: l, type: ip, size:10, used:1\n\
             0xADDR: key=127.0.0.1 use=0 exp=29779 server_id=7 server_key=s1\n"
        );
        let out = super::execute(
            tables,
            false,
            &words("l data.server_id eq 7"),
            AccessLevel::Admin,
            later,
        );
        assert_eq!(out.lines().count(), 2);
        let out = super::execute(
            tables,
            false,
            &words("l data.server_id eq 3"),
            AccessLevel::Admin,
            later,
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn entry_lines_are_haproxys() {
        let s = Duration::from_secs(10);
        let tables = leak(vec![(
            "fe",
            spec(
                TableType::Ip,
                100,
                Some(30_000),
                // Declared in another order: printed in HAProxy's.
                &[
                    StoreItem::BytesOutCnt,
                    StoreItem::ConnCur,
                    StoreItem::SessRate(s),
                    StoreItem::ConnCnt,
                    StoreItem::BytesInCnt,
                    StoreItem::ConnRate(s),
                    StoreItem::SessCnt,
                ],
            ),
        )]);
        let t = tables.by_name("fe").unwrap();
        let now = Instant::now();
        let mut held = Vec::new();
        for _ in 0..4 {
            let tr = t.track(ip("127.0.0.1"), now).unwrap();
            tr.session(now);
            held.push(tr);
        }
        held[0].add_bytes(18, 18);
        for tr in held.drain(..3) {
            tr.release(now);
        }
        let later = now + Duration::from_millis(308);
        let out = super::execute(tables, false, &words("fe"), AccessLevel::Admin, later);
        // What HAProxy 2.6.12 printed for the same traffic (one connection still open).
        assert_eq!(
            unaddr(&out),
            "# table: fe, type: ip, size:100, used:1\n\
             0xADDR: key=127.0.0.1 use=1 exp=29692 conn_cnt=4 conn_rate(10000)=4 conn_cur=1 sess_cnt=4 sess_rate(10000)=4 bytes_in_cnt=18 bytes_out_cnt=18\n"
        );
        let line = out.lines().nth(1).unwrap();
        let addr = line.split(':').next().unwrap();
        assert!(addr.starts_with("0x") && u64::from_str_radix(&addr[2..], 16).is_ok());
    }

    fn run(tables: &Tables, line: &str, level: AccessLevel) -> String {
        let w = words(line);
        let clear = match w.first().map(String::as_str) {
            Some("show") => false,
            Some("clear") => true,
            _ => panic!("{line}"),
        };
        assert_eq!(w[1], "table");
        execute(tables, clear, &w[2..], level, Instant::now())
    }

    /// The tables of the HAProxy session described in the module docs, filled the same way.
    fn haproxy_like() -> &'static Tables {
        leak(vec![
            (
                "fe",
                spec(
                    TableType::Ip,
                    100,
                    Some(30_000),
                    &[StoreItem::ConnCnt, StoreItem::ConnCur],
                ),
            ),
            (
                "be6",
                spec(
                    TableType::Ipv6,
                    10,
                    None,
                    &[
                        StoreItem::BytesOutCnt,
                        StoreItem::SessRate(Duration::from_secs(60)),
                        StoreItem::ConnCnt,
                        StoreItem::BytesInCnt,
                        StoreItem::ConnCur,
                    ],
                ),
            ),
            ("noexp", spec(TableType::Ip, 2, None, &[StoreItem::ConnCnt])),
            (
                "empty",
                spec(
                    TableType::Ip,
                    1 << 20,
                    Some(3_600_000),
                    &[StoreItem::ConnRate(Duration::from_secs(1))],
                ),
            ),
        ])
    }

    #[test]
    fn summary_lists_the_last_declared_first() {
        let tables = haproxy_like();
        let be6 = tables.by_name("be6").unwrap();
        let now = Instant::now();
        let a = be6.track(ip("::1"), now).unwrap();
        a.session(now);
        a.add_bytes(3, 3);
        drop(a);
        let mut held = Vec::new();
        for _ in 0..4 {
            let t = be6.track(ip("127.0.0.1"), now).unwrap();
            t.session(now);
            held.push(t);
        }
        held[0].add_bytes(18, 18);
        held.truncate(1);
        assert_eq!(
            run(tables, "show table", AccessLevel::User),
            "# table: empty, type: ip, size:1048576, used:0\n\
             # table: noexp, type: ip, size:2, used:0\n\
             # table: be6, type: ipv6, size:10, used:2\n\
             # table: fe, type: ip, size:100, used:0\n"
        );
        // As HAProxy 2.6.12 printed them: key order, the v4 client mapped into the v6
        // table, no expiry.
        assert_eq!(
            unaddr(&run(tables, "show table be6", AccessLevel::Operator)),
            "# table: be6, type: ipv6, size:10, used:2\n\
             0xADDR: key=::1 use=0 exp=0 conn_cnt=1 conn_cur=0 sess_rate(60000)=1 bytes_in_cnt=3 bytes_out_cnt=3\n\
             0xADDR: key=::ffff:127.0.0.1 use=1 exp=0 conn_cnt=4 conn_cur=1 sess_rate(60000)=4 bytes_in_cnt=18 bytes_out_cnt=18\n"
        );
        assert_eq!(
            run(tables, "show table empty", AccessLevel::Admin),
            "# table: empty, type: ip, size:1048576, used:0\n"
        );
        assert_eq!(
            unaddr(&run(
                tables,
                "show table be6 key ::ffff:127.0.0.1",
                AccessLevel::Admin
            )),
            "# table: be6, type: ipv6, size:10, used:2\n\
             0xADDR: key=::ffff:127.0.0.1 use=1 exp=0 conn_cnt=4 conn_cur=1 sess_rate(60000)=4 bytes_in_cnt=18 bytes_out_cnt=18\n"
        );
        assert_eq!(
            run(tables, "show table be6 key ::2", AccessLevel::Admin),
            ""
        );
    }

    #[test]
    fn levels_are_haproxys() {
        let tables = haproxy_like();
        let fe = tables.by_name("fe").unwrap();
        drop(fe.track(ip("127.0.0.1"), Instant::now()).unwrap());
        let user = AccessLevel::User;
        assert_eq!(
            run(tables, "show table fe", user),
            "# table: fe, type: ip, size:100, used:1\n# contents not dumped due to insufficient privileges\n"
        );
        assert_eq!(
            run(tables, "show table fe data.conn_cnt gt 0", user),
            "# table: fe, type: ip, size:100, used:1\n# contents not dumped due to insufficient privileges\n"
        );
        assert_eq!(
            run(tables, "show table fe key 127.0.0.1", user),
            "Permission denied\n"
        );
        assert_eq!(
            run(tables, "clear table fe key 127.0.0.1", user),
            "Permission denied\n"
        );
        // Arguments are checked before the level.
        assert_eq!(run(tables, "clear table nosuch", user), "No such table\n");
        assert_eq!(
            run(tables, "clear table fe key", user),
            "Key value expected\n"
        );
        assert_eq!(run(tables, "clear table be6 key zz", user), "Invalid key\n");
        // A plain clear at user level does nothing, silently.
        assert_eq!(run(tables, "clear table fe", user), "");
        assert_eq!(run(tables, "clear table fe data.conn_cnt gt 0", user), "");
        assert_eq!(fe.used(), 1);
        assert_eq!(run(tables, "clear table fe", AccessLevel::Operator), "");
        assert_eq!(fe.used(), 0);
    }

    #[test]
    fn error_texts_are_haproxys() {
        let tables = haproxy_like();
        let a = AccessLevel::Admin;
        let cases = [
            ("clear table", reply::CLEAR_ARGS),
            ("clear table fe extra", reply::CLEAR_ARGS),
            ("show table fe foo", reply::SHOW_ARGS),
            ("show table nosuch", "No such table\n"),
            ("show table fe key", "Key value expected\n"),
            ("show table be6 key 127.0.0.1", "Invalid key\n"),
            // An ip table reads keys leniently: a bad one finds nothing.
            ("show table fe key ::1", ""),
            ("clear table fe key zz", ""),
            ("clear table fe key 10.0.0.1", ""),
            (
                "show table fe data.foo gt 1",
                "Filter entry #1: Unknown data type\n",
            ),
            (
                "show table fe data.conn_cnt xx 1",
                "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n",
            ),
            (
                "show table fe data.conn_cnt",
                "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n",
            ),
            (
                "show table fe data.conn_cnt gt",
                "Filter entry #1: Require a valid integer value to compare against\n",
            ),
            (
                "show table fe data.conn_cnt gt abc",
                "Filter entry #1: Require a valid integer value to compare against\n",
            ),
            (
                "show table fe data.conn_cnt gt 1x",
                "Filter entry #1: Require a valid integer value to compare against\n",
            ),
            (
                "show table noexp data.conn_cur gt 0",
                "Filter entry #1: Data type not stored in this table\n",
            ),
            (
                "show table fe data.gpc0 gt 0",
                "Filter entry #1: Data type not stored in this table\n",
            ),
            (
                "show table fe data.conn_cnt eq 1 key 127.0.0.1",
                "Filter entry #2: Unknown data type\n",
            ),
            (
                "show table fe data.conn_cnt gt 0 extra",
                "Filter entry #2: Unknown data type\n",
            ),
            (
                "show table fe data.conn_cnt gt 0 data.conn_cnt gt 0 data.conn_cnt gt 0 data.conn_cnt gt 0 data.conn_cnt gt 0",
                "Detected extra data in filter, 16th word of input, after '0'\n",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(run(tables, line, a), want, "{line}");
        }
    }

    #[test]
    fn filters_and_clears() {
        let tables = haproxy_like();
        let fe = tables.by_name("fe").unwrap();
        let now = Instant::now();
        for (k, n) in [("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)] {
            for _ in 0..n {
                drop(fe.track(ip(k), now).unwrap());
            }
        }
        let held = fe.track(ip("10.0.0.9"), now).unwrap();
        let keys = |line: &str| -> Vec<String> {
            run(tables, line, AccessLevel::Admin)
                .lines()
                .skip(1)
                .map(|l| l.split(' ').nth(1).unwrap().to_string())
                .collect()
        };
        assert_eq!(
            keys("show table fe data.conn_cnt ge 2"),
            ["key=10.0.0.2", "key=10.0.0.3"]
        );
        assert_eq!(
            keys("show table fe data.conn_cnt gt 1 data.conn_cnt lt 3"),
            ["key=10.0.0.2"]
        );
        assert_eq!(keys("show table fe data.conn_cur eq 1"), ["key=10.0.0.9"]);
        assert_eq!(
            keys("show table fe data.conn_cnt ne 1"),
            ["key=10.0.0.2", "key=10.0.0.3"]
        );
        assert!(keys("show table fe data.conn_cnt eq -1").is_empty());
        // The key form ignores what follows.
        assert_eq!(keys("show table fe key 10.0.0.2 extra"), ["key=10.0.0.2"]);
        assert_eq!(
            run(tables, "clear table fe key 10.0.0.9", AccessLevel::Admin),
            "Entry currently in use, cannot remove\n"
        );
        assert_eq!(
            run(
                tables,
                "clear table fe data.conn_cnt le 2",
                AccessLevel::Admin
            ),
            ""
        );
        assert_eq!(keys("show table fe"), ["key=10.0.0.3", "key=10.0.0.9"]);
        assert_eq!(
            run(tables, "clear table fe key 10.0.0.3", AccessLevel::Admin),
            ""
        );
        // A plain clear keeps what is in use.
        assert_eq!(run(tables, "clear table fe", AccessLevel::Admin), "");
        assert_eq!(keys("show table fe"), ["key=10.0.0.9"]);
        drop(held);
        assert_eq!(run(tables, "clear table fe", AccessLevel::Admin), "");
        assert_eq!(fe.used(), 0);
    }

    #[test]
    fn keys_print_like_inet_ntop() {
        for (k, want) in [
            ("10.0.0.1", "10.0.0.1"),
            ("::1", "::1"),
            ("::", "::"),
            ("::2", "::2"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ] {
            assert_eq!(key_text(ip(k)), want, "{k}");
        }
    }

    #[test]
    fn random_arguments_never_panic() {
        let tables = haproxy_like();
        let vocab = [
            "fe",
            "be6",
            "noexp",
            "key",
            "data.conn_cnt",
            "data.",
            "data",
            "gt",
            "eq",
            "-1",
            "1",
            "x",
            "::1",
            "127.0.0.1",
            "é",
            "data.é",
            "",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5_000 {
            let mut args = Vec::new();
            for _ in 0..(x % 16) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                args.push(vocab[(x >> 5) as usize % vocab.len()].to_string());
            }
            for clear in [false, true] {
                for level in [AccessLevel::User, AccessLevel::Admin] {
                    let out = execute(tables, clear, &args, level, Instant::now());
                    assert!(!out.contains("\n\n"), "{args:?}: {out:?}");
                }
            }
        }
    }
}
