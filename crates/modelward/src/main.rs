//! The `modelward` command; the entry point is [`modelward::run_cli`] (shared with the wheel).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    modelward::run_cli(std::env::args_os())
}
