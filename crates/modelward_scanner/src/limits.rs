//! Every budget of a scan, in one place. Crossing one yields a finding (the file is never
//! declared clean because of it) and the scan goes on with the next member or file.

use modelward_formats::tensors::deep::DeepLimits;
use modelward_pickle::Limits as PickleLimits;
use std::time::Duration;

/// Budgets for one scan.
#[derive(Debug, Clone)]
pub struct ScanLimits {
    /// Files larger than this are not opened (a finding says so).
    pub max_file_size: u64,
    /// Containers nested deeper than this are not opened.
    pub max_depth: u32,
    /// Archive members read per file, all archives together.
    pub max_members: u64,
    /// Bytes one decompressed stream may produce.
    pub max_decompressed: u64,
    /// Largest ratio of decompressed to compressed bytes (checked past the first MiB).
    pub max_ratio: u64,
    /// Largest stream copied to a temporary file to be read as a zip or 7z.
    pub max_spool: u64,
    /// Wall time per file.
    pub max_time: Duration,
    /// Budgets per pickle.
    pub pickle: PickleLimits,
    /// Embedded pickles scanned per pickle.
    pub max_nested: usize,
    /// Bytes of a member checked when PyTorch only ever reads it as raw tensor data.
    pub storage_head: usize,
    /// Largest TorchScript source file read.
    pub max_code_file: u64,
    /// Findings of one rule listed per file; the rest are counted in one more finding of that
    /// rule (a crafted archive of overlapping members gave 25,000 findings from 135 KB).
    pub max_findings_per_rule: usize,
    /// `scan --deep`: tensor data is sampled under these budgets (none: tensor data is never
    /// read, only headers and layouts).
    pub deep: Option<DeepLimits>,
}

impl Default for ScanLimits {
    fn default() -> ScanLimits {
        ScanLimits {
            max_file_size: 1 << 40,
            max_depth: 8,
            max_members: 10_000,
            max_decompressed: 4 << 30,
            max_ratio: 1000,
            max_spool: 2 << 30,
            max_time: Duration::from_secs(300),
            pickle: PickleLimits::default(),
            max_nested: 64,
            storage_head: 64,
            max_code_file: 4 << 20,
            max_findings_per_rule: 100,
            deep: None,
        }
    }
}
