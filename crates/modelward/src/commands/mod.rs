//! One module per subcommand.

pub mod convert_cmd;
pub mod detonate;
pub mod explain;
pub mod provenance;
pub mod rules;
pub mod scan;
pub mod serve;
