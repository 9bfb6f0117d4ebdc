//! `modelward explain`: disassembly and pseudo-Python of a pickle.

use crate::args::ExplainArgs;
use anyhow::Result;
use std::process::ExitCode;

/// Placeholder replaced below.
pub fn run(_args: &ExplainArgs) -> Result<ExitCode> {
    anyhow::bail!("explain is not implemented yet")
}
