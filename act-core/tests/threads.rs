//! Several threads give the single-thread result (which the agreement tests compare to libtorch),
//! for every camera layout, and keep their workers across steps.
mod common;
use act_core::{Options, Policy};
use common::{image, rel_err, Tiny};

#[test]
fn multi_threaded_predict_matches_single_threaded() {
    let mut t = Tiny::new();
    t.dim = 64;
    t.heads = 4;
    t.ff = 96;
    t.chunk = 20;
    t.cameras = vec![("top", 96, 128), ("left_wrist", 64, 64)];
    let bytes = t.checkpoint(21);
    let imgs = [image(96, 128, 1), image(64, 64, 2)];
    let views: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let qpos: Vec<f32> = (0..14).map(|i| i as f32 * 0.1 - 0.5).collect();
    let mut single = Policy::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(single.threads(), 1);
    let mut want = vec![0.0f32; t.chunk * t.action];
    single.predict(&qpos, &views, &mut want).unwrap();
    for threads in [2, 3] {
        let mut p = Policy::from_bytes(&bytes, &Options { threads, ..Default::default() }).unwrap();
        assert_eq!(p.threads(), threads);
        for _ in 0..3 {
            let mut got = vec![0.0f32; t.chunk * t.action];
            p.predict(&qpos, &views, &mut got).unwrap();
            let err = rel_err(&got, &want);
            assert!(err < 1e-6, "{threads} threads: rel err {err}");
        }
    }
}

/// Dynamic distribution hands every item to exactly one part, for item counts below, at and
/// above the number of parts, and also when one part is slow (it should then take fewer items).
#[test]
fn run_dynamic_runs_every_item_exactly_once() {
    use act_core::kernels::exec::{run_dynamic, ThreadPool};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = ThreadPool::new(3);
    for n in [0usize, 1, 2, 3, 7, 100, 1000] {
        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let by_part: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        run_dynamic(&pool, n, &|part, i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
            by_part[part].fetch_add(1, Ordering::Relaxed);
            if part == 2 && n == 100 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(h.load(Ordering::Relaxed), 1, "n={n}: item {i}");
        }
        if n == 100 {
            let slow = by_part[2].load(Ordering::Relaxed);
            assert!(slow < 100 / 3, "the slowed part took {slow} of 100 items");
        }
    }
}

fn isas() -> Vec<act_core::Isa> {
    act_core::Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
}

/// The parallel GEMM, split by panels and by rows, writes through a shared raw pointer; it must
/// give exactly the serial result (which kernels.rs checks against naive references). Small enough
/// for Miri: `cargo +nightly miri test -p act-core --test threads -- --exact
/// run_dynamic_runs_every_item_exactly_once threaded_gemm_equals_serial`.
#[test]
fn threaded_gemm_equals_serial() {
    use act_core::kernels::exec::{Serial, ThreadPool};
    use act_core::kernels::gemm::{gemm, Epilogue};
    use act_core::kernels::pack::{MatrixA, PackedB, RowMap};
    let mut rng = common::Rng(11);
    let pool = ThreadPool::new(3);
    // Above the 2^20 multiply-adds below which a GEMM stays serial: few rows and wide B (split by
    // panels), then many rows (split by rows).
    for (m, k, n) in [(8, 150, 1100), (300, 300, 16)] {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let bias = rng.vec(n);
        let res = rng.vec(m * n);
        // Every weight storage each ISA runs, so the bf16, fp16 and int8 tile sources are split too.
        let storages = |isa: act_core::Isa| {
            use act_core::WeightStorage::*;
            [F32, F16, Bf16, F16Compute, Int8].into_iter().filter(move |&s| match s {
                F32 => true,
                F16 => isa.supports_f16(),
                Bf16 => isa.supports_bf16(),
                F16Compute => isa.supports_f16_compute(),
                Int8 => isa.supports_int8(),
            })
        };
        for (isa, storage) in isas().into_iter().flat_map(|i| storages(i).map(move |s| (i, s))) {
            let packed = PackedB::from_fn_stored(k, n, isa.nr(), storage, |p, j| b[p * n + j]);
            let epi = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true };
            let run = |exec: &dyn act_core::kernels::Executor| {
                let mut c = vec![f32::NAN; m * n];
                gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, epi, exec);
                c
            };
            let (serial, threaded) = (run(&Serial), run(&pool));
            assert!(serial.iter().zip(&threaded).all(|(s, t)| s.to_bits() == t.to_bits()), "{isa:?} {storage:?} gemm {m}x{k}x{n}: threaded differs");
        }
    }
}

/// Attention heads claimed dynamically write disjoint columns of one output through a raw
/// pointer; exactly the serial result.
#[test]
#[cfg_attr(miri, ignore = "libm's x86 sqrtf is inline assembly, which Miri cannot run")]
fn threaded_attention_equals_serial() {
    use act_core::kernels::attention::{multi_head_attention, AttentionScratch, Tokens};
    use act_core::kernels::exec::{Serial, ThreadPool};
    fn t(data: &[f32], len: usize, ld: usize) -> Tokens<'_> {
        Tokens { data, ld, len }
    }
    let mut rng = common::Rng(12);
    let pool = ThreadPool::new(3);
    let (tq, tk, heads, hd) = (7, 19, 5, 8);
    let dim = heads * hd;
    let (q, k, v) = (rng.vec(tq * dim), rng.vec(tk * dim), rng.vec(tk * dim));
    for isa in isas() {
        let run = |exec: &dyn act_core::kernels::Executor, parts: usize| {
            let mut out = vec![f32::NAN; tq * dim];
            let mut scratch = AttentionScratch::new(isa, tq, tk, hd, parts).unwrap();
            multi_head_attention(isa, t(&q, tq, dim), t(&k, tk, dim), t(&v, tk, dim), heads, hd, &mut out, dim, &mut scratch, exec);
            out
        };
        let (serial, threaded) = (run(&Serial, 1), run(&pool, 3));
        assert!(serial.iter().zip(&threaded).all(|(s, t)| s.to_bits() == t.to_bits()), "{isa:?} attention: threaded differs");
    }
}

/// A worker thread the system cannot start is a load error naming it, not a panic. The test
/// re-runs itself in a child process that caps its address space just above what it uses, so no
/// 2 MiB thread stack fits; the cap is lifted again before the child's harness reports.
#[cfg(target_os = "linux")]
#[test]
fn a_worker_thread_the_system_cannot_start_is_an_error() {
    use act_core::kernels::exec::ThreadPool;
    const CHILD: &str = "ACT_CORE_SPAWN_LIMIT_CHILD";
    const NAME: &str = "a_worker_thread_the_system_cannot_start_is_an_error";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("spawn refused as expected"), "child did not reach the check: {stdout}");
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmSize:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `old` is a valid out-pointer; the new limit is a plain value.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let cap = libc::rlimit { rlim_cur: (vm_kib + 512) * 1024, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &cap), 0);
    }
    let result = ThreadPool::with_priority(4, None);
    // SAFETY: as above; lowering then raising the soft limit back to its old value is allowed.
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &old), 0) };
    match result {
        Ok(_) => panic!("a 4-thread pool started with no room for a thread stack"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("`threads`") && msg.contains("could not start worker thread 1 of 4"), "{msg}");
            println!("spawn refused as expected: {msg}");
        }
    }
}
