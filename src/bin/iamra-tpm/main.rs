//! `iamra-tpm`: the helper process in which `iamra` runs the TPM commands of a TPM
//! key (cargo feature `tpm`), so that only a TPM key pays for loading libtss2.
//!
//! Not meant to be run by hand: `iamra` starts it with pipes on stdin and stdout
//! and speaks the protocol of `iamra::key::tpm::helper`. It ends when stdin
//! closes, flushing every TPM object it created. `--log-level FILTER` sets the
//! log filter (`iamra` passes its own when it logs at debug or trace level).
#![deny(unsafe_code)]

#[path = "../../cli/log_format.rs"]
mod log_format;

use std::process::ExitCode;

/// Keeps the key's password out of core dumps and out of reach of other processes
/// of the same user, as `iamra` does for itself.
fn harden_process() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = setrlimit(Resource::Core, none) {
        eprintln!("iamra-tpm: warning: cannot disable core dumps (RLIMIT_CORE): {e}");
    }
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        eprintln!("iamra-tpm: warning: cannot make the process non-dumpable: {e}");
    }
}

fn main() -> ExitCode {
    harden_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = match args.as_slice() {
        [] => "warn",
        [flag, filter] if flag == "--log-level" => filter.as_str(),
        _ => {
            eprintln!(
                "iamra-tpm: error: this helper is started by iamra for TPM keys and takes no arguments but --log-level FILTER"
            );
            return ExitCode::from(2);
        }
    };
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_new(filter) {
        // The same one-line format as iamra's: the helper's stderr is iamra's.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(log_format::ShortFormat)
            .try_init();
    }
    let code = iamra::key::tpm::helper::serve(std::io::stdin().lock(), std::io::stdout().lock());
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
