pub mod contract;
pub mod pg;
