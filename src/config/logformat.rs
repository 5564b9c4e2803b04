//! `log-format` strings (configuration.txt §8.2.4): literals and `%` variables, checked
//! against the variables that mean something for a TCP connection.

use super::model::LogItem;

/// HAProxy's tcplog format, used by `option tcplog`.
pub const TCPLOG_FORMAT: &str =
    "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

/// Variables sluice fills for TCP connections.
pub const TCP_VARS: &[&str] = &[
    "B", "H", "T", "Tc", "Tt", "Ts", "Tw", "U", "ac", "b", "bc", "bi", "bp", "bq", "ci", "cp", "f",
    "fc", "fi", "fp", "ft", "lc", "ms", "o", "pid", "rc", "rt", "s", "sc", "si", "sp", "sq", "t",
    "ts",
];

/// HAProxy variables that only mean something for HTTP or TLS.
const HTTP_VARS: &[&str] = &[
    "CC", "CS", "HM", "HP", "HPO", "HQ", "HU", "HV", "ID", "ST", "Ta", "Td", "Th", "Ti", "Tq",
    "TR", "Tr", "Tu", "hr", "hrl", "hs", "hsl", "r", "sslc", "sslv", "tr", "trg", "trl", "tsc",
];

pub fn parse(s: &str) -> Result<Vec<LogItem>, String> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            lit.push(c);
            continue;
        }
        match chars.get(i) {
            Some('%') => {
                lit.push('%');
                i += 1;
                continue;
            }
            Some('[') => {
                return Err(
                    "sample expressions '%[...]' in log-format are not supported by sluice"
                        .to_string(),
                )
            }
            None => return Err("log-format ends with a lone '%'".to_string()),
            _ => {}
        }
        let mut flags = Vec::new();
        if chars.get(i) == Some(&'{') {
            let close = chars[i..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("missing '}' in log-format")?;
            let inner: String = chars[i + 1..i + close].iter().collect();
            flags = inner.split(',').map(str::to_string).collect();
            i += close + 1;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        // The longest known name wins (`%Tw/` vs `%T`); text after it is literal.
        let known = |n: &str| TCP_VARS.contains(&n) || HTTP_VARS.contains(&n);
        let mut end = name.len();
        while end > 0 && !known(&name[..end]) {
            end -= 1;
        }
        if end == 0 {
            return Err(format!("no such format variable '%{name}'"));
        }
        let var = &name[..end];
        if HTTP_VARS.contains(&var) {
            return Err(format!(
                "format variable '%{var}' needs HTTP mode, which sluice does not proxy"
            ));
        }
        if !lit.is_empty() {
            items.push(LogItem::Literal(std::mem::take(&mut lit)));
        }
        items.push(LogItem::Var {
            name: var.to_string(),
            flags,
        });
        lit.push_str(&name[end..]);
    }
    if !lit.is_empty() {
        items.push(LogItem::Literal(lit));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcplog_format_parses() {
        let items = parse(TCPLOG_FORMAT).unwrap();
        let vars: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                LogItem::Var { name, .. } => Some(name.as_str()),
                LogItem::Literal(_) => None,
            })
            .collect();
        assert_eq!(
            vars,
            [
                "ci", "cp", "t", "ft", "b", "s", "Tw", "Tc", "Tt", "B", "ts", "ac", "fc", "bc",
                "sc", "rc", "sq", "bq"
            ]
        );
    }

    #[test]
    fn flags_and_literals() {
        let items = parse("%{+Q}o %ci 100%% x").unwrap();
        assert_eq!(
            items[0],
            LogItem::Var {
                name: "o".into(),
                flags: vec!["+Q".into()]
            }
        );
        assert_eq!(items.last(), Some(&LogItem::Literal(" 100% x".into())));
    }

    #[test]
    fn errors() {
        assert!(parse("%[src]").is_err());
        assert!(parse("%zz").is_err());
        assert!(parse("%r").unwrap_err().contains("HTTP"));
        assert!(parse("abc %").is_err());
        assert!(parse("%{+Q").is_err());
    }
}
