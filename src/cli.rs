//! The command line: HAProxy's flags where they overlap (management.txt §3). Parsing only;
//! `main.rs` acts on the result.

use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: sluice -f <cfgfile|cfgdir> [-f ...] [options]
  -f <file|dir>  configuration file, or directory of *.cfg files (lexical order); repeatable
  -c             check the configuration and exit (0: valid, 1: errors)
  -v, -vv        print the version (-vv: and build details)
  -d, -db        stay in the foreground with debug logs
  -D             daemonize
  -W             master-worker mode: a master process runs a worker process and reloads
                 on SIGUSR2 (or SIGHUP): new worker, old one stops softly once it is ready
  -Ws            -W, telling systemd (Type=notify) through $NOTIFY_SOCKET
  -p <pidfile>   write the process id here (the master's with -W)
  -sf <pid>...   after start, ask these old processes to finish their connections and exit
  -st <pid>...   after start, stop these old processes at once
  -x <socket>    (not available yet) take the listening sockets from this stats socket
  -q             quiet: only errors
  -dK [<class>]  dump the keyword registry (all, global, proxy, bind, server)
  -dr            a server hostname that does not resolve starts in maintenance
";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cli {
    pub files: Vec<PathBuf>,
    pub check: bool,
    /// 1 for -v, 2 for -vv.
    pub version: u8,
    pub debug: bool,
    pub foreground: bool,
    pub daemon: bool,
    pub master_worker: bool,
    pub systemd: bool,
    pub pidfile: Option<PathBuf>,
    pub soft_stop_pids: Vec<i32>,
    pub hard_stop_pids: Vec<i32>,
    pub takeover_socket: Option<PathBuf>,
    pub quiet: bool,
    /// `-dK`, with its class (default "all").
    pub dump_keywords: Option<String>,
    pub ignore_resolve_errors: bool,
}

/// Parses the arguments (without the program name). Err carries the message to print
/// before the usage.
pub fn parse(args: &[String]) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| format!("option '{flag}' expects an argument"))
    };
    let pids = |i: &mut usize, flag: &str| -> Result<Vec<i32>, String> {
        let mut out = Vec::new();
        while let Some(a) = args.get(*i + 1) {
            match a.parse::<i32>() {
                Ok(p) if p > 0 => {
                    out.push(p);
                    *i += 1;
                }
                _ => break,
            }
        }
        if out.is_empty() {
            return Err(format!("option '{flag}' expects at least one process id"));
        }
        Ok(out)
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-f" => cli.files.push(PathBuf::from(value(&mut i, a)?)),
            "-c" => cli.check = true,
            "-v" => cli.version = cli.version.max(1),
            "-vv" => cli.version = 2,
            "-d" | "-db" => {
                cli.debug = true;
                cli.foreground = true;
            }
            "-D" => cli.daemon = true,
            "-W" => cli.master_worker = true,
            "-Ws" => {
                cli.master_worker = true;
                cli.systemd = true;
            }
            "-p" => cli.pidfile = Some(PathBuf::from(value(&mut i, a)?)),
            "-sf" => cli.soft_stop_pids.extend(pids(&mut i, a)?),
            "-st" => cli.hard_stop_pids.extend(pids(&mut i, a)?),
            "-x" => cli.takeover_socket = Some(PathBuf::from(value(&mut i, a)?)),
            "-S" => {
                return Err(
                    "option '-S' (HAProxy's master CLI) is not supported by sluice: \
                     drop it (Debian's haproxy.service passes it in EXTRAOPTS: set \
                     EXTRAOPTS= in /etc/default/haproxy)"
                        .to_string(),
                )
            }
            "-q" => cli.quiet = true,
            "-dK" => {
                let class = match args.get(i + 1) {
                    Some(c) if !c.starts_with('-') => {
                        i += 1;
                        c.clone()
                    }
                    _ => "all".to_string(),
                };
                if !["all", "global", "proxy", "bind", "server"].contains(&class.as_str()) {
                    return Err(format!(
                        "unknown keyword class '{class}' for -dK (all, global, proxy, bind, server)"
                    ));
                }
                cli.dump_keywords = Some(class);
            }
            "-dr" => cli.ignore_resolve_errors = true,
            "--" => {
                cli.files.extend(args[i + 1..].iter().map(PathBuf::from));
                break;
            }
            other if other.starts_with('-') => return Err(format!("unknown option '{other}'")),
            // HAProxy treats a bare argument after the options as a configuration file.
            other => cli.files.push(PathBuf::from(other)),
        }
        i += 1;
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Cli, String> {
        let v: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&v)
    }

    #[test]
    fn flags() {
        let c = p("-f a.cfg -f dir -c -q -dr").unwrap();
        assert_eq!(c.files, [PathBuf::from("a.cfg"), PathBuf::from("dir")]);
        assert!(c.check && c.quiet && c.ignore_resolve_errors);
        let c = p("-db -p /run/x.pid -sf 12 13 -x /s.sock").unwrap();
        assert!(c.debug && c.foreground);
        assert_eq!(c.soft_stop_pids, [12, 13]);
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(p("-vv").unwrap().version, 2);
        let c = p("-Ws -f a.cfg").unwrap();
        assert!(c.master_worker && c.systemd);
        let c = p("-W").unwrap();
        assert!(c.master_worker && !c.systemd);
        assert_eq!(p("-dK").unwrap().dump_keywords.as_deref(), Some("all"));
        assert_eq!(
            p("-dK proxy -c").unwrap().dump_keywords.as_deref(),
            Some("proxy")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(p("-z").unwrap_err(), "unknown option '-z'");
        assert!(p("-f").is_err());
        assert!(p("-sf").is_err());
        assert!(p("-sf x").is_err());
        assert!(p("-dK nope").is_err());
        assert!(p("-Ws -S /run/haproxy-master.sock")
            .unwrap_err()
            .contains("master CLI"));
    }
}
