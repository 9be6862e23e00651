//! Criterion benchmarks on 10^6 vs 10^6 samples: Mann-Whitney U, the Hodges-Lehmann shift with
//! its interval, the two together as `canary-gate test mann-whitney-u` runs them, and
//! two-sample KS.

use canary_gate_bench::lognormal;
use canary_gate_core::stats::{
    Alternative, hodges_lehmann, ks_2samp, mann_whitney_u, mann_whitney_with_shift,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let canary = lognormal(1_000_000, 44.0, 1);
    let baseline = lognormal(1_000_000, 42.0, 2);
    let mut g = c.benchmark_group("1e6 vs 1e6");
    g.sample_size(10);
    g.bench_function("mann_whitney_u", |b| {
        b.iter(|| mann_whitney_u(&canary, &baseline, Alternative::TwoSided))
    });
    g.bench_function("hodges_lehmann", |b| {
        b.iter(|| hodges_lehmann(&canary, &baseline, 0.95))
    });
    g.bench_function("mann_whitney_with_shift", |b| {
        b.iter(|| mann_whitney_with_shift(&canary, &baseline, Alternative::TwoSided, 0.95))
    });
    g.bench_function("ks_2samp", |b| {
        b.iter(|| ks_2samp(&canary, &baseline, Alternative::TwoSided))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
