//! The `modelward` command. Thin: arguments, configuration, exit codes; the work is in the
//! library crates.
//!
//! The entry point is a library function so that the same code runs as the plain binary
//! (`main.rs`) and as the Python wheel's `modelward` console script (`crates/modelward_py`).
#![forbid(unsafe_code)]

mod args;
mod commands;

pub use commands::explain::explain_to;
pub use commands::scan::limits_from;

use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the command line `args` (the first item is the program name, as in `std::env::args_os`).
pub fn run_cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = args::Cli::parse_from(args);
    let result = match cli.command {
        args::Command::Scan(a) => commands::scan::run(a),
        args::Command::Explain(a) => commands::explain::run(&a),
        args::Command::Convert(a) => commands::convert_cmd::run(&a),
        args::Command::Detonate(a) => commands::detonate::run(&a),
        args::Command::Manifest(a) => commands::provenance::manifest(&a),
        args::Command::Verify(a) => commands::provenance::verify(&a),
        args::Command::Serve(a) => commands::serve::run(a),
        args::Command::Worker(a) => commands::serve::worker(a),
        args::Command::Rules => commands::rules::list(),
        args::Command::Rule { code } => commands::rules::show(&code),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`modelward scan | head`) is not a failure.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("modelward failed: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  cause: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
