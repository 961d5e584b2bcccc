//! The `iamra` binary: parse flags, run, render errors.
// `unsafe` only where the process must touch the OS directly (adopting the systemd
// socket, removing variables from the environment, descriptors before `exec`); each
// use is allowed locally and carries a
// `// SAFETY:` comment.
#![deny(unsafe_code)]
// A binary has no API: `pub` inside it means "visible in this crate", as `pub(crate)` does.
#![allow(unreachable_pub, reason = "a binary crate exports nothing")]

mod cli;

use clap::Parser as _;

fn init_logging(log: &cli::args::LogArgs) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match &log.log_level {
        Some(f) => EnvFilter::try_new(f).map_err(|e| {
            format!(
                "--log-level {} is not a level or filter: {}",
                iamra::error::quote(f),
                iamra::error::shorten(&e.to_string())
            )
        })?,
        None => match std::env::var("RUST_LOG").or_else(|_| std::env::var("IAMRA_LOG")) {
            Ok(f) if !f.is_empty() => {
                EnvFilter::try_new(&f).unwrap_or_else(|_| EnvFilter::new("warn"))
            }
            _ if log.debug => EnvFilter::new("iamra=debug,warn"),
            _ => EnvFilter::new("warn"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match log.log_format {
        cli::args::LogFormat::Text => builder
            .event_format(cli::log_format::ShortFormat)
            .try_init(),
        cli::args::LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    Ok(())
}

/// Keeps keys, PINs and credentials in this process's memory out of core dumps
/// (a panic aborts, and SIGABRT would dump core where core dumps are on) and out of
/// reach of other processes of the same user (no ptrace attach, no
/// `/proc/PID/mem`): the process is made non-dumpable and its core size limit 0.
/// root keeps its reach (see SECURITY.md). Returns what failed, logged once logging
/// is set up.
fn harden_process() -> Vec<String> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let mut failed = Vec::new();
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = setrlimit(Resource::Core, none) {
        failed.push(format!("cannot disable core dumps (RLIMIT_CORE): {e}"));
    }
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        failed.push(format!("cannot make the process non-dumpable: {e}"));
    }
    failed
}

/// clap quotes a bad value whole (`invalid value '…' for '--region <REGION>'`):
/// each quoted part is cut to 100 characters, then `…` and its length.
fn shorten_quoted(line: &str) -> String {
    line.split('\'')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                iamra::error::shorten(part).into_owned()
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("'")
}

fn main() {
    let hardening_failed = harden_process();
    cli::take_secret_variables();
    iamra::error::set_field_names(cli::flag_name);
    let parsed = match cli::args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            // One line: clap's first line, without its "error: " prefix and usage block.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("iamra: error: {}", shorten_quoted(first));
            eprintln!("iamra: hint: run 'iamra --help' or 'iamra <command> --help'");
            std::process::exit(2);
        }
    };
    if let Err(e) = init_logging(&parsed.log) {
        eprintln!("iamra: error: {e}");
        std::process::exit(2);
    }
    for failure in hardening_failed {
        tracing::warn!("{failure}");
    }
    if let Err(e) = cli::run(parsed.command) {
        eprintln!("iamra: error: {}", iamra::error::chain(&e));
        if let Some(hint) = e.hint() {
            eprintln!("iamra: hint: {hint}");
        }
        std::process::exit(e.exit_code());
    }
}
