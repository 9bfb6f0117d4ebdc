//! The tolerant zip lister on a synthetic zip with 10,000 stored members.
//!
//! `cargo bench -p modelward_bench --bench zip`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelward_bench::stored_zip;
use modelward_formats::zip::{ZipLimits, list};
use std::hint::black_box;
use std::io::Cursor;

fn zip_list(c: &mut Criterion) {
    const MEMBERS: usize = 10_000;
    let data = stored_zip(MEMBERS, 64);
    let listed = list(
        &mut Cursor::new(&data[..]),
        data.len() as u64,
        ZipLimits::default(),
    )
    .expect("zip lists");
    assert_eq!(listed.entries.len(), MEMBERS);
    assert!(
        listed.facts.is_empty(),
        "a well-formed zip has no anomaly: {:?}",
        listed.facts
    );
    let mut group = c.benchmark_group("zip_list");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_with_input(
        BenchmarkId::from_parameter("10k_stored_members"),
        &data[..],
        |b, d| {
            b.iter(|| {
                let mut cursor = Cursor::new(black_box(d));
                list(&mut cursor, d.len() as u64, ZipLimits::default()).map(|l| l.entries.len())
            });
        },
    );
    group.finish();
}

criterion_group!(benches, zip_list);
criterion_main!(benches);
