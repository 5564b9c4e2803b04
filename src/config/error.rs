//! Configuration diagnostics: where (file:line), which keyword, what went wrong, and how
//! severe it is. Every layer of `config` reports through [`Diag`]; the binary prints them all
//! at once. The text format is fixed and tested: `file:line: 'keyword': message; did you mean 'x'?`
//! for errors, with `warning: ` after the location for warnings.

use std::fmt;
use std::sync::Arc;

/// A location in a configuration file: the file name as given on the command line, and a
/// 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
}

impl Span {
    pub fn new(file: &Arc<str>, line: u32) -> Span {
        Span {
            file: Arc::clone(file),
            line,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    pub span: Option<Span>,
    pub keyword: Option<String>,
    pub message: String,
    pub suggestion: Option<String>,
}

impl Diag {
    pub fn error(span: &Span, keyword: &str, message: impl Into<String>) -> Diag {
        Diag {
            severity: Severity::Error,
            span: Some(span.clone()),
            keyword: (!keyword.is_empty()).then(|| keyword.to_string()),
            message: message.into(),
            suggestion: None,
        }
    }

    pub fn warning(span: &Span, keyword: &str, message: impl Into<String>) -> Diag {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(span, keyword, message)
        }
    }

    /// An error that belongs to no line (for example a missing file).
    pub fn global(message: impl Into<String>) -> Diag {
        Diag {
            severity: Severity::Error,
            span: None,
            keyword: None,
            message: message.into(),
            suggestion: None,
        }
    }

    pub fn with_suggestion(mut self, suggestion: Option<&str>) -> Diag {
        self.suggestion = suggestion.map(str::to_string);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(kw) = &self.keyword {
            write!(f, "'{kw}': ")?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            f.write_str(&hint(s))?;
        }
        Ok(())
    }
}

/// All the diagnostics of one load, errors and warnings, in file order.
#[derive(Debug, Default, Clone)]
pub struct Diags {
    pub items: Vec<Diag>,
}

impl Diags {
    pub fn push(&mut self, d: Diag) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diag::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diag> {
        self.items.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diag> {
        self.items.iter().filter(|d| !d.is_error())
    }

    pub fn extend(&mut self, other: Diags) {
        self.items.extend(other.items);
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|&(d, c)| d <= limit && d < c.chars().count())
        .min_by_key(|&(d, c)| (d, c.len()))
        .map(|(_, c)| c)
}

/// `"; did you mean 'x'?"` for the closest candidate to `word`, or `""` when none is close: the
/// tail of every "unknown ..." message.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates).map(hint).unwrap_or_default()
}

fn hint(suggestion: &str) -> String {
    format!("; did you mean '{suggestion}'?")
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let span = Span::new(&Arc::from("a.cfg"), 7);
        let d = Diag::error(&span, "balance", "unknown algorithm 'rr'")
            .with_suggestion(Some("roundrobin"));
        assert_eq!(
            d.to_string(),
            "a.cfg:7: 'balance': unknown algorithm 'rr'; did you mean 'roundrobin'?"
        );
        let w = Diag::warning(&span, "option httplog", "falls back to tcplog");
        assert_eq!(
            w.to_string(),
            "a.cfg:7: warning: 'option httplog': falls back to tcplog"
        );
    }

    #[test]
    fn suggestions() {
        let kws = ["balance", "bind", "backlog", "timeout"];
        assert_eq!(suggest("balnce", kws), Some("balance"));
        assert_eq!(suggest("tiemout", kws), Some("timeout"));
        assert_eq!(suggest("zzzzzzzz", kws), None);
        assert_eq!(suggest("b", kws), None);
    }
}
