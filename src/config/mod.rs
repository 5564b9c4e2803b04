//! The configuration language: TEXT -> AST -> MODEL. Pure: no sockets, no threads, no clocks.
//!
//! [`load`] reads the files given with `-f` (a directory means its `*.cfg` files in lexical
//! order), lexes them (`lexer.rs`), applies conditional blocks (`cond.rs`), groups sections
//! (`ast.rs`), and builds the immutable [`model::Model`] through the keyword registry
//! (`keywords/`) and `validate.rs`. Every error of every file is reported at once.

pub mod acl;
pub mod ast;
pub mod cafile;
pub mod cond;
pub mod error;
pub mod keywords;
pub mod lexer;
pub mod logformat;
pub mod model;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Diag, Diags, Severity, Span};
pub use model::Model;
pub use validate::LoadOptions;

/// Expands `-f` arguments: files as given, directories as their `*.cfg` files sorted.
pub fn expand_paths(args: &[PathBuf], diags: &mut Diags) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in args {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut files: Vec<PathBuf> = rd
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|f| f.extension().is_some_and(|e| e == "cfg") && f.is_file())
                        .collect();
                    files.sort();
                    out.extend(files);
                }
                Err(e) => diags.push(Diag::global(format!(
                    "Could not open configuration directory {} : {e}",
                    p.display()
                ))),
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Parses configuration text as if read from `name` (for tests, fuzzing and `load`).
pub fn parse_text(
    name: &str,
    text: &str,
    env: &dyn lexer::Env,
    ast: &mut ast::Ast,
    diags: &mut Diags,
) {
    let file: Arc<str> = Arc::from(name);
    let lines = lexer::lex(&file, text, env, diags);
    let lines = cond::apply(lines, env, diags);
    ast::parse_file(lines, ast, diags);
}

/// Loads and validates the configuration files. On success returns the model and the
/// warnings; otherwise every diagnostic (errors and warnings) in file order.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<(Arc<Model>, Diags), Diags> {
    let mut diags = Diags::default();
    let files = expand_paths(paths, &mut diags);
    if files.is_empty() && !diags.has_errors() {
        diags.push(Diag::global(
            "no configuration file given (use -f <file|dir>)",
        ));
    }
    let mut ast = ast::Ast::default();
    for f in &files {
        match read_file(f) {
            Ok(text) => parse_text(
                &f.display().to_string(),
                &text,
                &lexer::ProcessEnv,
                &mut ast,
                &mut diags,
            ),
            Err(e) => diags.push(Diag::global(e)),
        }
    }
    let (model, more) = validate::build(&ast, opts);
    diags.extend(more);
    sort_by_location(&mut diags, &files);
    match model {
        Some(m) if !diags.has_errors() => Ok((Arc::new(m), diags)),
        _ => Err(diags),
    }
}

/// Orders diagnostics by file (load order) and line, so the report reads top to bottom.
fn sort_by_location(diags: &mut Diags, files: &[PathBuf]) {
    let order: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    diags.items.sort_by_key(|d| match &d.span {
        None => (0, 0, 0),
        Some(s) => (
            1,
            order
                .iter()
                .position(|f| **f == *s.file)
                .unwrap_or(usize::MAX),
            s.line,
        ),
    });
}

fn read_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("Could not open configuration file {} : {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses and validates one configuration text without touching the network (only
/// `localhost` resolves) and returns every diagnostic. The fuzzer and the regression tests
/// drive the whole front end through this.
pub fn check_text(name: &str, text: &str) -> Diags {
    let previous = keywords::values::set_resolver(keywords::values::resolve_offline);
    let mut diags = Diags::default();
    let mut ast = ast::Ast::default();
    let env = std::collections::HashMap::from([("HOME".to_string(), "/root".to_string())]);
    parse_text(name, text, &env, &mut ast, &mut diags);
    let (_, more) = validate::build(&ast, &LoadOptions::default());
    diags.extend(more);
    keywords::values::set_resolver(previous);
    diags
}
