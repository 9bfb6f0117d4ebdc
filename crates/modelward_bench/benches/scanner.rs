//! `Scanner::scan(Input::Bytes)` on one committed fixture of each class: time per file.
//!
//! `cargo bench -p modelward_bench --bench scanner`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelward_policy::Policy;
use modelward_scanner::{Input, ScanLimits, Scanner};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut paths: Vec<PathBuf> = [
        "torch/state_dict_zip.pt",
        "joblib/arrays_uncompressed.joblib",
        "numpy/object_strings.npy",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    let mut zips: Vec<PathBuf> = std::fs::read_dir(root.join("zip"))
        .expect("tests/fixtures/zip")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pt"))
        .collect();
    zips.sort();
    paths.extend(zips);
    paths
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
            (name, data)
        })
        .collect()
}

fn scan_fixtures(c: &mut Criterion) {
    let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
    let mut group = c.benchmark_group("scan_bytes");
    for (name, data) in fixtures() {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &data[..], |b, d| {
            b.iter(|| scanner.scan(Input::bytes(name.as_str(), black_box(d))));
        });
    }
    group.finish();
}

criterion_group!(benches, scan_fixtures);
criterion_main!(benches);
