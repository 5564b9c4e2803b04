//! The lexer: file text -> lines of words, by HAProxy's rules (configuration.txt §2.2-2.3).
//!
//! It owns `#` comments, backslash escapes, "weak" and 'strong' quotes, environment variable
//! expansion inside weak quotes (`$VAR`, `${VAR}`, `${VAR-default}`, `${VAR[*]}` and the
//! pseudo-variables `.FILE`, `.LINE`, `.SECTION`), the empty-word end of arguments, and the
//! "missing LF on the last line" check. Conditional blocks (§2.4) are applied on the lexed
//! lines by `cond.rs`. Nothing here knows keywords; every word carries its file:line.

use std::sync::Arc;

use super::error::{Diag, Diags, Span};

/// HAProxy's MAX_LINE_ARGS: more words than this on one line is an error.
pub const MAX_WORDS: usize = 64;

/// One word of a line, unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// One non-empty statement: its words (at least one) and its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub span: Span,
    pub words: Vec<Word>,
}

impl Line {
    pub fn texts(&self) -> Vec<&str> {
        self.words.iter().map(|w| w.text.as_str()).collect()
    }
}

/// Where `$NAME` gets its values; the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Section keywords: a line starting with one of these sets `.SECTION`.
const SECTION_WORDS: &[&str] = &["global", "defaults", "frontend", "backend", "listen"];

/// Splits a whole file into lines of words. Errors and warnings go to `diags`; a line with an
/// error is dropped, the others are returned.
pub fn lex(file: &Arc<str>, text: &str, env: &dyn Env, diags: &mut Diags) -> Vec<Line> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = text.split('\n').peekable();
    let mut lineno = 0u32;
    while let Some(raw) = lines.next() {
        lineno += 1;
        let is_last = lines.peek().is_none();
        if is_last && raw.is_empty() {
            break;
        }
        let span = Span::new(file, lineno);
        if is_last {
            diags.push(Diag::error(
                &span,
                "",
                format!(
                    "Missing LF on last line, file might have been truncated at position {}.",
                    raw.chars().count() + 1
                ),
            ));
            break;
        }
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let ctx = LineCtx {
            span: &span,
            env,
            section: &section,
        };
        match split_line(raw, &ctx) {
            Ok((words, warnings)) => {
                for w in warnings {
                    diags.push(Diag::warning(&span, "", w));
                }
                if words.is_empty() {
                    continue;
                }
                if SECTION_WORDS.contains(&words[0].text.as_str()) {
                    section = words
                        .get(1)
                        .map_or_else(|| words[0].text.clone(), |w| w.text.clone());
                }
                out.push(Line { span, words });
            }
            Err(msg) => diags.push(Diag::error(&span, "", msg)),
        }
    }
    out
}

struct LineCtx<'a> {
    span: &'a Span,
    env: &'a dyn Env,
    section: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Weak,
    Strong,
}

/// Splits one line (without its LF) into words. Returns the words and any warnings.
fn split_line(line: &str, ctx: &LineCtx<'_>) -> Result<(Vec<Word>, Vec<String>), String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    // A word exists once any of its characters or quotes has been seen: `""` is an empty word.
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut quote_pos = 0;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Quote::Strong => {
                if c == '\'' {
                    quote = Quote::None;
                } else {
                    cur.push(c);
                }
                i += 1;
                continue;
            }
            Quote::Weak if c == '"' => {
                quote = Quote::None;
                i += 1;
                continue;
            }
            Quote::None if c == ' ' || c == '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                i += 1;
                continue;
            }
            Quote::None if c == '#' => break,
            Quote::None if c == '"' || c == '\'' => {
                quote = if c == '"' { Quote::Weak } else { Quote::Strong };
                quote_pos = i + 1;
                in_word = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        if c == '\0' {
            return Err(format!("NUL character at position {}", i + 1));
        }
        in_word = true;
        if c == '\\' {
            i += escape(&chars, i, quote, &mut cur);
            continue;
        }
        if c == '$' && quote == Quote::Weak {
            match expand_var(&chars, i, ctx)? {
                Some((used, Expansion::Text(value))) => {
                    cur.push_str(&value);
                    i += used;
                }
                Some((used, Expansion::Words(list))) => {
                    // `${VAR[*]}`: each space-separated value becomes its own word.
                    let n = list.len();
                    for (k, part) in list.into_iter().enumerate() {
                        cur.push_str(&part);
                        if k + 1 < n {
                            words.push(std::mem::take(&mut cur));
                        }
                    }
                    i += used;
                }
                None => {
                    cur.push('$');
                    i += 1;
                }
            }
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if quote != Quote::None {
        return Err(format!("unmatched quote at position {quote_pos}"));
    }
    if in_word {
        words.push(cur);
    }
    let mut warnings = Vec::new();
    if let Some(pos) = words.iter().position(String::is_empty) {
        if pos == 0 {
            return Err("empty keyword: the first word of a line cannot be empty".to_string());
        }
        if pos + 1 < words.len() {
            warnings.push(format!(
                "argument number {pos} is empty and marks the end of the argument list: \
                 all subsequent arguments are ignored"
            ));
        }
        words.truncate(pos);
    }
    if words.len() > MAX_WORDS {
        return Err(format!(
            "too many words on the line: {} (the limit is {MAX_WORDS})",
            words.len()
        ));
    }
    let words = words
        .into_iter()
        .map(|text| Word {
            text,
            span: ctx.span.clone(),
        })
        .collect();
    Ok((words, warnings))
}

/// Handles the backslash at `chars[i]`; pushes the result onto `out`; returns how many
/// characters were consumed. Unknown escapes keep their backslash, as HAProxy does.
fn escape(chars: &[char], i: usize, quote: Quote, out: &mut String) -> usize {
    let Some(&next) = chars.get(i + 1) else {
        out.push('\\');
        return 1;
    };
    let simple = match next {
        ' ' | '\t' | '#' | '\\' | '\'' | '"' => Some(next),
        '$' if quote == Quote::Weak => Some('$'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        return 2;
    }
    if next == 'x' {
        let hex: String = chars.iter().skip(i + 2).take(2).collect();
        if hex.len() == 2 {
            if let Ok(b) = u8::from_str_radix(&hex, 16) {
                out.push(char::from(b));
                return 4;
            }
        }
    }
    out.push('\\');
    out.push(next);
    2
}

enum Expansion {
    Text(String),
    Words(Vec<String>),
}

/// Expands the variable starting with the `$` at `chars[i]` (inside weak quotes). Returns the
/// number of characters consumed and the expansion, or None if no variable name follows.
fn expand_var(
    chars: &[char],
    i: usize,
    ctx: &LineCtx<'_>,
) -> Result<Option<(usize, Expansion)>, String> {
    let braced = chars.get(i + 1) == Some(&'{');
    let start = if braced { i + 2 } else { i + 1 };
    let mut end = start;
    let is_name = |k: usize, c: char| {
        c == '_' || c.is_ascii_alphabetic() || (k > start && c.is_ascii_digit())
    };
    if chars.get(start) == Some(&'.') {
        end += 1;
    }
    while end < chars.len() && is_name(end, chars[end]) {
        end += 1;
    }
    let name: String = chars[start..end].iter().collect();
    if name.is_empty() || name == "." {
        if braced {
            return Err(format!("invalid variable name at position {}", i + 1));
        }
        return Ok(None);
    }
    let mut split = false;
    let mut default: Option<String> = None;
    let mut pos = end;
    if braced {
        if chars[pos..].starts_with(&['[', '*', ']']) {
            split = true;
            pos += 3;
        }
        if chars.get(pos) == Some(&'-') {
            let close = chars[pos..]
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| format!("missing '}}' after variable at position {}", i + 1))?;
            default = Some(chars[pos + 1..pos + close].iter().collect());
            pos += close;
        }
        if chars.get(pos) != Some(&'}') {
            return Err(format!(
                "missing '}}' after variable '{name}' at position {}",
                i + 1
            ));
        }
        pos += 1;
    }
    let value = match name.as_str() {
        ".FILE" => Some(ctx.span.file.to_string()),
        ".LINE" => Some(ctx.span.line.to_string()),
        ".SECTION" => Some(ctx.section.to_string()),
        _ => ctx.env.var(&name),
    };
    let value = value.or(default).unwrap_or_default();
    let exp = if split {
        Expansion::Words(value.split(' ').map(str::to_string).collect())
    } else {
        Expansion::Text(value)
    };
    Ok(Some((pos - i, exp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn words_env(line: &str, env: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let file: Arc<str> = Arc::from("t.cfg");
        let span = Span::new(&file, 3);
        let ctx = LineCtx {
            span: &span,
            env: &env,
            section: "fe1",
        };
        split_line(line, &ctx).map(|(w, _)| w.into_iter().map(|w| w.text).collect())
    }

    fn words(line: &str) -> Vec<String> {
        words_env(line, &[]).unwrap()
    }

    #[test]
    fn splits_on_spaces_and_tabs_and_comments() {
        assert_eq!(words("  bind\t:80   # a comment"), ["bind", ":80"]);
        assert_eq!(words("global#this is the global section"), ["global"]);
        assert!(words("   # only a comment").is_empty());
        assert!(words("").is_empty());
    }

    /// The five equivalent spellings of configuration.txt §2.2.
    #[test]
    fn manual_quoting_examples_are_equivalent() {
        let expected = ["log-format", "%{+Q}o %t %s %{-Q}r"];
        assert_eq!(words(r"log-format %{+Q}o\ %t\ %s\ %{-Q}r"), expected);
        assert_eq!(words(r#"log-format "%{+Q}o %t %s %{-Q}r""#), expected);
        assert_eq!(words(r"log-format '%{+Q}o %t %s %{-Q}r'"), expected);
        assert_eq!(words(r#"log-format "%{+Q}o %t"' %s %{-Q}r'"#), expected);
        assert_eq!(words(r#"log-format "%{+Q}o %t"' %s'\ %{-Q}r"#), expected);
    }

    /// The character matrix of configuration.txt §2.2.
    #[test]
    fn manual_escape_matrix() {
        for (line, want) in [
            (r"a\	b", "a\tb"),
            (r"a\x09b", "a\tb"),
            ("\"a\tb\"", "a\tb"),
            (r"a\nb", "a\nb"),
            (r#""a\nb""#, "a\nb"),
            (r"a\rb", "a\rb"),
            (r"a\ b", "a b"),
            (r"a\x20b", "a b"),
            (r#""a b""#, "a b"),
            ("'a b'", "a b"),
            (r#"a\"b"#, "a\"b"),
            (r#""a\"b""#, "a\"b"),
            (r#"'a"b'"#, "a\"b"),
            (r"a\#b", "a#b"),
            (r#""a#b""#, "a#b"),
            (r#""a\#b""#, "a#b"),
            ("'a#b'", "a#b"),
            ("a$b", "a$b"),
            (r#""a\$b""#, "a$b"),
            ("'a$b'", "a$b"),
            (r"a\'b", "a'b"),
            (r#""a'b""#, "a'b"),
            (r"a\\b", r"a\b"),
            (r#""a\\b""#, r"a\b"),
            (r"'a\b'", r"a\b"),
        ] {
            assert_eq!(words(line), [want], "line {line:?}");
        }
    }

    #[test]
    fn unknown_escapes_keep_their_backslash() {
        assert_eq!(words(r"a\db"), [r"a\db"]);
        assert_eq!(words(r"a\$b"), [r"a\$b"]);
        assert_eq!(words(r"a\"), [r"a\"]);
        assert_eq!(words(r"a\xZZ"), [r"a\xZZ"]);
    }

    #[test]
    fn env_vars_expand_only_in_weak_quotes() {
        let env = [("X", "1.2.3.4"), ("LIST", "a b c"), ("EMPTY", "")];
        assert_eq!(words_env(r#""${X}:80""#, &env).unwrap(), ["1.2.3.4:80"]);
        assert_eq!(words_env(r#""$X:80""#, &env).unwrap(), ["1.2.3.4:80"]);
        assert_eq!(words_env("${X}:80", &env).unwrap(), ["${X}:80"]);
        assert_eq!(words_env("'${X}'", &env).unwrap(), ["${X}"]);
        assert_eq!(words_env(r#""x${NOPE}y""#, &env).unwrap(), ["xy"]);
        assert_eq!(words_env(r#""${NOPE-dflt}""#, &env).unwrap(), ["dflt"]);
        // The default replaces unset variables only, not empty ones.
        assert_eq!(words_env(r#"a "${EMPTY-dflt}" b"#, &env).unwrap(), ["a"]);
        assert_eq!(
            words_env(r#"k "${LIST[*]}" z"#, &env).unwrap(),
            ["k", "a", "b", "c", "z"]
        );
        assert_eq!(
            words_env(r#""${.FILE}:${.LINE} ${.SECTION}""#, &env).unwrap(),
            ["t.cfg:3 fe1"]
        );
        assert_eq!(words_env(r#""cost: $5""#, &env).unwrap(), ["cost: $5"]);
        assert!(words_env(r#""${X""#, &env).is_err());
        assert!(words_env(r#""${}""#, &env).is_err());
    }

    #[test]
    fn empty_word_ends_the_arguments() {
        assert_eq!(words(r#"default_backend "" ignored"#), ["default_backend"]);
        assert_eq!(words(r#"a "" "#), ["a"]);
        assert!(words_env(r#""" a"#, &[]).is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(
            words_env(r#"balance "unterminated"#, &[]).unwrap_err(),
            "unmatched quote at position 9"
        );
        assert!(words_env("a 'b", &[]).is_err());
        assert!(words_env("a\0b", &[]).is_err());
        let many = vec!["w"; MAX_WORDS + 1].join(" ");
        assert!(words_env(&many, &[]).is_err());
        let ok = vec!["w"; MAX_WORDS].join(" ");
        assert_eq!(words_env(&ok, &[]).unwrap().len(), MAX_WORDS);
    }

    #[test]
    fn missing_final_lf_is_an_error() {
        let file: Arc<str> = Arc::from("t.cfg");
        let mut d = Diags::default();
        let lines = lex(&file, "global\n    mode tcp", &ProcessEnv, &mut d);
        assert_eq!(lines.len(), 1);
        let e: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert_eq!(
            e,
            ["t.cfg:2: Missing LF on last line, file might have been truncated at position 13."]
        );
        let mut d = Diags::default();
        assert_eq!(lex(&file, "global\n\n", &ProcessEnv, &mut d).len(), 1);
        assert!(!d.has_errors());
        assert!(lex(&file, "", &ProcessEnv, &mut d).is_empty());
        assert!(!d.has_errors());
    }

    #[test]
    fn crlf_lines_are_accepted() {
        let file: Arc<str> = Arc::from("t.cfg");
        let mut d = Diags::default();
        let lines = lex(&file, "global\r\n  daemon\r\n", &ProcessEnv, &mut d);
        assert_eq!(lines[1].texts(), ["daemon"]);
        assert_eq!(lines[1].span.line, 2);
    }
}
