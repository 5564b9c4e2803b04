//! The syntax tree: lexed lines grouped into sections. A section is its kind, its name, the
//! `from` defaults it names, and its directives in file order. Nothing here interprets a
//! directive; `keywords/` does that and `validate.rs` builds the model.

use super::error::{Diag, Diags, Span};
use super::keywords::haproxy_known;
use super::lexer::{Line, Word};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl SectionKind {
    pub fn from_word(w: &str) -> Option<SectionKind> {
        Some(match w {
            "global" => SectionKind::Global,
            "defaults" => SectionKind::Defaults,
            "frontend" => SectionKind::Frontend,
            "backend" => SectionKind::Backend,
            "listen" => SectionKind::Listen,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            SectionKind::Global => "global",
            SectionKind::Defaults => "defaults",
            SectionKind::Frontend => "frontend",
            SectionKind::Backend => "backend",
            SectionKind::Listen => "listen",
        }
    }

    pub fn is_proxy(self) -> bool {
        matches!(
            self,
            SectionKind::Frontend | SectionKind::Backend | SectionKind::Listen
        )
    }
}

/// One directive: the keyword is `words[0]`, the arguments follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub span: Span,
    pub words: Vec<Word>,
}

impl Directive {
    pub fn keyword(&self) -> &str {
        &self.words[0].text
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    pub name: Option<String>,
    /// `from <defaults>` on the section line.
    pub from: Option<String>,
    pub span: Span,
    pub directives: Vec<Directive>,
}

/// A whole configuration: the sections of every file, in load order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ast {
    pub sections: Vec<Section>,
}

/// Characters HAProxy permits in proxy, defaults and server names.
pub fn invalid_name_char(name: &str) -> Option<char> {
    name.chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
}

/// Groups the lines of one file into sections, appending them to `ast`. Each file starts a
/// new section, as HAProxy requires.
pub fn parse_file(lines: Vec<Line>, ast: &mut Ast, diags: &mut Diags) {
    // Directives of a section sluice does not support are skipped: the section line already
    // carries the error.
    let mut in_unsupported = false;
    let mut current: Option<Section> = None;
    for line in lines {
        let kw = line.words[0].text.as_str();
        if let Some(kind) = SectionKind::from_word(kw) {
            if let Some(s) = current.take() {
                ast.sections.push(s);
            }
            in_unsupported = false;
            current = section_header(kind, &line, diags);
            if current.is_none() {
                // A broken header: skip its body quietly rather than cascade errors.
                in_unsupported = true;
            }
            continue;
        }
        if haproxy_known::SECTIONS.binary_search(&kw).is_ok() {
            if let Some(s) = current.take() {
                ast.sections.push(s);
            }
            diags.push(Diag::error(
                &line.span,
                kw,
                format!("the '{kw}' section is not supported by sluice"),
            ));
            in_unsupported = true;
            continue;
        }
        if in_unsupported {
            continue;
        }
        match current.as_mut() {
            Some(s) => s.directives.push(Directive {
                span: line.span,
                words: line.words,
            }),
            None => diags.push(Diag::error(
                &line.span,
                kw,
                "unknown keyword out of section: a file must start with a section \
                 (global, defaults, frontend, backend, listen)",
            )),
        }
    }
    if let Some(s) = current.take() {
        ast.sections.push(s);
    }
}

fn section_header(kind: SectionKind, line: &Line, diags: &mut Diags) -> Option<Section> {
    let kw = kind.word();
    let args: Vec<&str> = line.words[1..].iter().map(|w| w.text.as_str()).collect();
    let err = |diags: &mut Diags, msg: String| {
        diags.push(Diag::error(&line.span, kw, msg));
    };
    let mut section = Section {
        kind,
        name: None,
        from: None,
        span: line.span.clone(),
        directives: Vec::new(),
    };
    match kind {
        SectionKind::Global => {
            if !args.is_empty() {
                err(diags, "the global section takes no argument".to_string());
                return None;
            }
        }
        SectionKind::Defaults
        | SectionKind::Frontend
        | SectionKind::Backend
        | SectionKind::Listen => {
            let mut rest = &args[..];
            if kind != SectionKind::Defaults || rest.first().is_some_and(|a| *a != "from") {
                let Some(name) = rest.first() else {
                    err(diags, format!("'{kw}' expects <name> as an argument"));
                    return None;
                };
                if let Some(c) = invalid_name_char(name) {
                    err(
                        diags,
                        format!("character '{c}' is not permitted in {kw} name '{name}'"),
                    );
                    return None;
                }
                section.name = Some(name.to_string());
                rest = &rest[1..];
            }
            match rest {
                [] => {}
                ["from", dflt] => section.from = Some(dflt.to_string()),
                ["from"] => {
                    err(
                        diags,
                        "'from' expects the name of a defaults section".to_string(),
                    );
                    return None;
                }
                [addr, ..] if kind == SectionKind::Listen => {
                    err(
                        diags,
                        format!(
                            "the address on the 'listen' line ('{addr}') is no longer \
                             supported: use a 'bind' line in the section instead"
                        ),
                    );
                    return None;
                }
                [extra, ..] => {
                    err(diags, format!("unexpected argument '{extra}'"));
                    return None;
                }
            }
        }
    }
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lexer::{lex, ProcessEnv};
    use std::sync::Arc;

    fn parse(text: &str) -> (Ast, Diags) {
        let mut d = Diags::default();
        let lines = lex(&Arc::from("p.cfg"), text, &ProcessEnv, &mut d);
        let mut ast = Ast::default();
        parse_file(lines, &mut ast, &mut d);
        (ast, d)
    }

    #[test]
    fn groups_sections() {
        let (ast, d) = parse(
            "global\n daemon\ndefaults base\n mode tcp\ndefaults from base\n\
             frontend fe from base\n bind :80\nbackend be\nlisten li\n",
        );
        assert!(!d.has_errors(), "{d:?}");
        let kinds: Vec<_> = ast.sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SectionKind::Global,
                SectionKind::Defaults,
                SectionKind::Defaults,
                SectionKind::Frontend,
                SectionKind::Backend,
                SectionKind::Listen
            ]
        );
        assert_eq!(ast.sections[1].name.as_deref(), Some("base"));
        assert_eq!(ast.sections[2].name, None);
        assert_eq!(ast.sections[2].from.as_deref(), Some("base"));
        assert_eq!(ast.sections[3].from.as_deref(), Some("base"));
        assert_eq!(ast.sections[3].directives[0].keyword(), "bind");
        assert_eq!(ast.sections[3].directives[0].span.line, 7);
    }

    #[test]
    fn header_errors() {
        let (_, d) = parse("frontend\nbackend a/b\nlisten x 0.0.0.0:80\nfrontend f extra\n");
        let msgs: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "p.cfg:1: 'frontend': 'frontend' expects <name> as an argument",
                "p.cfg:2: 'backend': character '/' is not permitted in backend name 'a/b'",
                "p.cfg:3: 'listen': the address on the 'listen' line ('0.0.0.0:80') is no \
                 longer supported: use a 'bind' line in the section instead",
                "p.cfg:4: 'frontend': unexpected argument 'extra'",
            ]
        );
    }

    #[test]
    fn out_of_section_and_unsupported_sections() {
        let (ast, d) = parse("daemon\nresolvers dns\n nameserver a 1.1.1.1:53\nbackend b\n");
        let msgs: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("p.cfg:1: 'daemon': unknown keyword out of section"));
        assert_eq!(
            msgs[1],
            "p.cfg:2: 'resolvers': the 'resolvers' section is not supported by sluice"
        );
        assert_eq!(ast.sections.len(), 1);
    }
}
