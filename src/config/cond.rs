//! Conditional blocks (configuration.txt §2.4): `.if/.elif/.else/.endif` and the report
//! directives `.diag/.notice/.warning/.alert`, applied to the lexed lines of one file.
//!
//! sluice evaluates conditions as HAProxy 2.6 would: `version_atleast()`/`version_before()`
//! compare with [`SPEAKS_VERSION`], the HAProxy version whose language sluice speaks, and
//! `feature()` is true for no feature (sluice has none of HAProxy's build options).

use super::error::{Diag, Diags};
use super::lexer::{Env, Line};

/// The HAProxy language version sluice implements, for `version_atleast()`.
pub const SPEAKS_VERSION: &str = "2.6.0";

#[derive(Clone, Copy)]
struct Level {
    /// Lines of this branch are kept.
    active: bool,
    /// Some branch of this `.if` chain has already been taken.
    taken: bool,
    /// The enclosing level is active.
    parent_active: bool,
    seen_else: bool,
}

/// Keeps the lines selected by the conditional blocks and drops the directives themselves.
pub fn apply(lines: Vec<Line>, env: &dyn Env, diags: &mut Diags) -> Vec<Line> {
    let mut stack: Vec<(Level, Line)> = Vec::new();
    let mut out = Vec::new();
    for line in lines {
        let kw = line.words[0].text.as_str();
        let active = stack.last().map_or(true, |(l, _)| l.active);
        if !kw.starts_with('.') {
            if active {
                out.push(line);
            }
            continue;
        }
        let args: Vec<&str> = line.words[1..].iter().map(|w| w.text.as_str()).collect();
        match kw {
            ".if" => {
                let cond = active && eval_or_report(&args, &line, env, diags);
                let level = Level {
                    active: cond,
                    taken: cond,
                    parent_active: active,
                    seen_else: false,
                };
                stack.push((level, line));
            }
            ".elif" | ".else" => {
                let Some((level, _)) = stack.last_mut() else {
                    diags.push(Diag::error(&line.span, kw, format!("'{kw}' without '.if'")));
                    continue;
                };
                if level.seen_else {
                    diags.push(Diag::error(&line.span, kw, format!("'{kw}' after '.else'")));
                    continue;
                }
                let parent = level.parent_active;
                let taken = level.taken;
                let cond = if kw == ".else" {
                    level.seen_else = true;
                    true
                } else {
                    parent && !taken && eval_or_report(&args, &line, env, diags)
                };
                let level = &mut stack.last_mut().expect("checked above").0;
                level.active = parent && !taken && cond;
                level.taken |= level.active;
            }
            ".endif" => {
                if stack.pop().is_none() {
                    diags.push(Diag::error(&line.span, kw, "'.endif' without '.if'"));
                }
            }
            ".diag" | ".notice" => {
                if active {
                    log::info!("{}: {}", line.span, args.join(" "));
                }
            }
            ".warning" => {
                if active {
                    diags.push(Diag::warning(&line.span, kw, args.join(" ")));
                }
            }
            ".alert" => {
                if active {
                    diags.push(Diag::error(&line.span, kw, args.join(" ")));
                }
            }
            _ => {
                if active {
                    diags.push(Diag::error(&line.span, kw, "unknown directive"));
                }
            }
        }
    }
    for (_, open) in stack {
        diags.push(Diag::error(
            &open.span,
            ".if",
            "missing '.endif' for this '.if'",
        ));
    }
    out
}

fn eval_or_report(args: &[&str], line: &Line, env: &dyn Env, diags: &mut Diags) -> bool {
    let text = args.join(" ");
    match eval(&text, env) {
        Ok(v) => v,
        Err(msg) => {
            let kw = line.words[0].text.as_str();
            diags.push(Diag::error(&line.span, kw, msg));
            false
        }
    }
}

/// Evaluates a condition; an empty condition is false.
pub fn eval(text: &str, env: &dyn Env) -> Result<bool, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        env,
    };
    p.skip_ws();
    if p.pos == p.s.len() {
        return Ok(false);
    }
    let v = p.or()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!(
            "unexpected text at position {}: '{}'",
            p.pos + 1,
            &text[p.pos..]
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    env: &'a dyn Env,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(tok.as_bytes()) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            v |= self.and()?;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.term()?;
        while self.eat("&&") {
            v &= self.term()?;
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<bool, String> {
        if self.eat("!") {
            return Ok(!self.term()?);
        }
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err("missing closing parenthesis".to_string());
            }
            return Ok(v);
        }
        self.skip_ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        if word.is_empty() {
            return Err(format!("expected a term at position {}", start + 1));
        }
        if word.bytes().all(|c| c.is_ascii_digit()) {
            return Ok(word.bytes().any(|c| c != b'0'));
        }
        if !self.eat("(") {
            return Err(format!("unknown term '{word}'"));
        }
        let close = self.s[self.pos..]
            .iter()
            .position(|&c| c == b')')
            .ok_or_else(|| format!("missing ')' after '{word}('"))?;
        let inner = String::from_utf8_lossy(&self.s[self.pos..self.pos + close]).into_owned();
        self.pos += close + 1;
        let args: Vec<&str> = inner.split(',').collect();
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("'{word}' takes {n} argument(s)"))
            }
        };
        match word.as_str() {
            "defined" => want(1).map(|_| self.env.var(args[0]).is_some()),
            "feature" => want(1).map(|_| false),
            "streq" => want(2).map(|_| args[0] == args[1]),
            "strneq" => want(2).map(|_| args[0] != args[1]),
            "version_atleast" => {
                want(1)?;
                Ok(version_key(SPEAKS_VERSION) >= version_key(args[0]))
            }
            "version_before" => {
                want(1)?;
                Ok(version_key(SPEAKS_VERSION) < version_key(args[0]))
            }
            _ => Err(format!("unknown predicate '{word}'")),
        }
    }
}

/// "2.4-dev19" -> [2, 4, 0]: numeric components; missing ones are zero. A "-dev" suffix
/// orders before the release, as HAProxy does.
fn version_key(v: &str) -> (Vec<u32>, u32) {
    let (num, suffix) = v.split_once('-').unwrap_or((v, ""));
    let mut parts: Vec<u32> = num.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    let rank = if suffix.starts_with("dev") { 0 } else { 1 };
    (parts, rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::error::Span;
    use crate::config::lexer::Word;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn env() -> HashMap<String, String> {
        [("A", "1"), ("WITH_SSL", "yes")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expressions() {
        let e = env();
        assert!(eval("1", &e).unwrap());
        assert!(!eval("0", &e).unwrap());
        assert!(!eval("", &e).unwrap());
        assert!(eval("defined(A)", &e).unwrap());
        assert!(!eval("defined(B)", &e).unwrap());
        assert!(eval("!defined(B) && streq(yes,yes)", &e).unwrap());
        assert!(eval("0 && 1 || 1", &e).unwrap());
        assert!(!eval("0 && (1 || 1)", &e).unwrap());
        assert!(!eval("feature(OPENSSL)", &e).unwrap());
        assert!(eval("version_atleast(2.4-dev19)", &e).unwrap());
        assert!(eval("version_atleast(2.6)", &e).unwrap());
        assert!(!eval("version_atleast(2.7)", &e).unwrap());
        assert!(eval("version_before(2.7)", &e).unwrap());
        assert!(eval("strneq(a,b)", &e).unwrap());
        assert!(eval("bogus(1)", &e).is_err());
        assert!(eval("(1", &e).is_err());
        assert!(eval("streq(a)", &e).is_err());
    }

    fn line(n: u32, text: &[&str]) -> Line {
        let span = Span::new(&Arc::from("c.cfg"), n);
        Line {
            span: span.clone(),
            words: text
                .iter()
                .map(|t| Word {
                    text: t.to_string(),
                    span: span.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn blocks_select_lines() {
        let lines = vec![
            line(1, &[".if", "defined(A)"]),
            line(2, &["kept1"]),
            line(3, &[".if", "0"]),
            line(4, &["dropped"]),
            line(5, &[".elif", "1"]),
            line(6, &["kept2"]),
            line(7, &[".else"]),
            line(8, &["dropped"]),
            line(9, &[".endif"]),
            line(10, &[".else"]),
            line(11, &["dropped"]),
            line(12, &[".alert", "never"]),
            line(13, &[".endif"]),
            line(14, &["kept3"]),
        ];
        let mut d = Diags::default();
        let out = apply(lines, &env(), &mut d);
        let kept: Vec<&str> = out.iter().map(|l| l.words[0].text.as_str()).collect();
        assert_eq!(kept, ["kept1", "kept2", "kept3"]);
        assert!(!d.has_errors(), "{d:?}");
    }

    #[test]
    fn structure_errors() {
        let mut d = Diags::default();
        apply(vec![line(1, &[".if", "1"])], &env(), &mut d);
        assert_eq!(
            d.items[0].to_string(),
            "c.cfg:1: '.if': missing '.endif' for this '.if'"
        );
        let mut d = Diags::default();
        apply(
            vec![line(1, &[".endif"]), line(2, &[".alert", "SSL", "needed"])],
            &env(),
            &mut d,
        );
        assert_eq!(d.errors().count(), 2);
        assert_eq!(d.items[1].to_string(), "c.cfg:2: '.alert': SSL needed");
    }
}
