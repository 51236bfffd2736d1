//! One control step (`predict`): act-core beside libtorch (tch, inference mode, no grad) on the
//! same weights and inputs, in the same run, single-threaded.
//!
//! Sizes: ACT_BENCH_SIZES (comma-separated; default "tiny,small,default"; also "aloha4").
//! Run: `cargo bench -p act-benches --bench predict`.
use act_benches::Pair;
use act_core::Options;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn predict(c: &mut Criterion) {
    tch::set_num_threads(1);
    let sizes = std::env::var("ACT_BENCH_SIZES").unwrap_or_else(|_| "tiny,small,default".into());
    for size in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut pair = Pair::new(size, &Options::default()).unwrap_or_else(|e| panic!("{size}: {e:#}"));
        let mut out = vec![0.0f32; (pair.cfg.chunk_size * pair.cfg.action_dim()) as usize];
        let mut group = c.benchmark_group(format!("predict/{size}"));
        if size != "tiny" {
            group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
        }
        group.bench_function("act-core/1-thread", |b| b.iter(|| pair.act_core_predict(&mut out)));
        group.bench_function("libtorch/1-thread", |b| b.iter(|| pair.libtorch_predict()));
        group.finish();
    }
}

criterion_group!(benches, predict);
criterion_main!(benches);
