//! The `sluice` binary: parses the command line, sets up logging, and either checks the
//! configuration (`-c`), dumps the keyword registry (`-dK`), or runs the load balancer.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice::cli::{self, Cli};
use sluice::config::{self, keywords, Diags, LoadOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match cli::parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("sluice: {msg}\n{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    init_logging(&cli);
    if cli.version > 0 {
        print_version(cli.version);
        return ExitCode::SUCCESS;
    }
    if let Some(class) = &cli.dump_keywords {
        dump_keywords(class);
        return ExitCode::SUCCESS;
    }
    if cli.files.is_empty() {
        eprintln!("sluice: no configuration file given\n{}", cli::USAGE);
        return ExitCode::from(1);
    }
    let opts = LoadOptions {
        ignore_resolve_errors: cli.ignore_resolve_errors,
    };
    let (model, diags) = match config::load(&cli.files, &opts) {
        Ok(ok) => ok,
        Err(diags) => {
            print_diags(&diags, cli.quiet);
            return ExitCode::from(1);
        }
    };
    print_diags(&diags, cli.quiet);
    if cli.check {
        if !cli.quiet {
            println!("Configuration file is valid");
        }
        return ExitCode::SUCCESS;
    }
    if sluice::master::wanted(&model, &cli) {
        // HAProxy's lines carry the process id: the master's and its workers' share a log.
        LOG_PID.store(true, Ordering::Relaxed);
    }
    match sluice::run(model, &cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::from(1)
        }
    }
}

/// Log lines name their process (master-worker mode).
static LOG_PID: AtomicBool = AtomicBool::new(false);

fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else if cli.debug {
        "debug"
    } else {
        "info"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(|buf, record| {
            let style = buf.default_level_style(record.level());
            write!(
                buf,
                "[{} {style}{:<5}{style:#}] ",
                buf.timestamp(),
                record.level()
            )?;
            if LOG_PID.load(Ordering::Relaxed) {
                write!(buf, "({}) ", std::process::id())?;
            }
            writeln!(buf, "{}", record.args())
        })
        .init();
}

/// Errors always; warnings unless quiet. One line each, in file order.
fn print_diags(diags: &Diags, quiet: bool) {
    let mut err = std::io::stderr().lock();
    for d in &diags.items {
        if d.is_error() || !quiet {
            let _ = writeln!(err, "{d}");
        }
    }
}

fn print_version(level: u8) {
    println!(
        "sluice version {} - a TCP load balancer speaking HAProxy {}'s configuration language",
        sluice::VERSION,
        config::cond::SPEAKS_VERSION
    );
    if level > 1 {
        println!("Build: rustc, target {}", std::env::consts::ARCH);
        println!("Features: +SPLICE +REUSEPORT +EPOLL -OPENSSL -LUA -HTTP");
        println!("Keywords: {}", keywords::registry().len());
    }
}

fn dump_keywords(class: &str) {
    let mut out = std::io::stdout().lock();
    for k in keywords::registry() {
        if class != "all" && class != k.table {
            continue;
        }
        let support = match k.support {
            keywords::Support::Yes => "supported".to_string(),
            keywords::Support::Extension => "extension".to_string(),
            keywords::Support::No(why) => format!("not supported: {why}"),
        };
        let _ = writeln!(
            out,
            "{}\t{}{}\t[{}]\t{}\t{}",
            k.table,
            k.name,
            if k.usage.is_empty() {
                String::new()
            } else {
                format!(" {}", k.usage)
            },
            keywords::scope_label(k.scope),
            support,
            k.doc
        );
    }
}
