//! One module per subcommand.

pub mod convert_cmd;
pub mod explain;
pub mod rules;
pub mod scan;
pub mod serve;
