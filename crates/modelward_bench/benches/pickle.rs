//! Pickle decoding + symbolic machine throughput on large numeric and string pickles.
//!
//! `cargo bench -p modelward_bench --bench pickle`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelward_bench::{float_list_p2, str_dict_p4};
use modelward_pickle::{End, Limits, NoInline, scan_stream};
use std::hint::black_box;

fn scan(data: &[u8]) -> u64 {
    let scan = scan_stream(
        data,
        0,
        Some(data.len() as u64),
        &Limits::default(),
        &mut NoInline,
    );
    scan.pickles.iter().map(|t| t.ops).sum()
}

fn pickle_machine(c: &mut Criterion) {
    let inputs = [
        ("list_1M_floats_p2", float_list_p2(1_000_000)),
        ("dict_100k_strings_p4", str_dict_p4(100_000)),
    ];
    let mut group = c.benchmark_group("pickle_scan_stream");
    group.sample_size(20);
    for (name, data) in &inputs {
        // The input must be read whole, to STOP, or the number means nothing.
        let check = scan_stream(
            &data[..],
            0,
            Some(data.len() as u64),
            &Limits::default(),
            &mut NoInline,
        );
        assert_eq!(check.pickles.len(), 1, "{name}");
        assert_eq!(check.pickles[0].end_reason, End::Stop, "{name}");
        assert_eq!(check.pickles[0].end, data.len() as u64, "{name}");
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &data[..], |b, d| {
            b.iter(|| scan(black_box(d)));
        });
    }
    group.finish();
}

criterion_group!(benches, pickle_machine);
criterion_main!(benches);
