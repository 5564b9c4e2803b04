//! Reading health-check results from `show stat`, the same way for sluice and for a
//! reference HAProxy.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::backends::cli;

/// What `show stat` says of a server's checks: status, check_status, check_code, last_chk,
/// check_desc.
pub type CheckRow = (String, String, String, String, String);

/// The column names of a `show stat` header line ("# pxname,svname,...").
pub fn columns(header: Option<&str>) -> Vec<&str> {
    header
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect()
}

/// The server rows of `show stat` on `sock`, by "backend/server", polled until `want` servers
/// have a check result, within 10 s. HAProxy says INI before a server's first check ends,
/// and while a check runs shows "* " before the last status with its code reset: such rows
/// are skipped, and a server keeps the last row seen between checks.
pub fn settled(sock: &Path, want: usize) -> HashMap<String, CheckRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rows: HashMap<String, CheckRow> = HashMap::new();
    loop {
        let csv = cli(sock, "show stat");
        let mut lines = csv.lines();
        let header = columns(lines.next());
        let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let (px, sv, status, chk, code, last, desc) = (
            col("pxname"),
            col("svname"),
            col("status"),
            col("check_status"),
            col("check_code"),
            col("last_chk"),
            col("check_desc"),
        );
        for f in lines.map(|l| l.split(',').collect::<Vec<_>>()) {
            if f.len() <= desc
                || f[sv] == "FRONTEND"
                || f[sv] == "BACKEND"
                || f[chk].is_empty()
                || f[chk] == "INI"
                || f[chk].starts_with("* ")
            {
                continue;
            }
            rows.insert(
                format!("{}/{}", f[px], f[sv]),
                (
                    f[status].to_string(),
                    f[chk].to_string(),
                    f[code].to_string(),
                    f[last].to_string(),
                    f[desc].to_string(),
                ),
            );
        }
        if rows.len() >= want {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {want} servers checked:\n{csv}",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn row(status: &str, chk: &str, code: &str, last: &str, desc: &str) -> CheckRow {
    (
        status.into(),
        chk.into(),
        code.into(),
        last.into(),
        desc.into(),
    )
}

/// The field `name` of the first row of the `show stat` answer `csv` that starts with `row`
/// ("pxname,svname"): None when there is no such row or column, empty when the row is short.
pub fn stat_field(csv: &str, row: &str, name: &str) -> Option<String> {
    let mut lines = csv.lines();
    let col = columns(lines.next()).iter().position(|h| *h == name)?;
    let prefix = format!("{row},");
    let line = lines.find(|l| l.starts_with(&prefix))?;
    Some(line.split(',').nth(col).unwrap_or_default().to_string())
}
