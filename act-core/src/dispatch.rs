//! Choosing the compute path at load, on the host the policy runs on (issue #14): the user says
//! which accuracy they accept ([`Accuracy`]); the policy runs the fastest path within it, measured
//! here, never a lower-precision path that is slower than a more precise one on this CPU
//! (`vdpbf16ps` is fast on AMD Zen 4/5 and half the f32 rate on some Intel cores).
use crate::kernels::pack::WeightStorage;
use crate::kernels::Isa;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// The lowest precision a user accepts for the weight GEMMs and convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Accuracy {
    /// f32 throughout (agrees with libtorch to ~1e-6); `Options::weights` may still force a storage.
    #[default]
    F32,
    /// bf16 compute is acceptable (relative error near 1e-2): it runs where it is faster than f32.
    Bf16,
    /// int8 compute is acceptable too (relative error a few 1e-2): the fastest of int8, bf16 and f32.
    Int8,
}

/// A lower-precision path is chosen only when it is at least this much faster (the host is shared
/// and noisy; a tie keeps the more precise path).
const MIN_GAIN: f64 = 1.10;

/// What the policy runs, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelChoice {
    pub isa: Isa,
    pub storage: WeightStorage,
    /// One line: the accuracy asked for, what was measured, what was chosen.
    pub note: String,
}

/// The paths `accept` admits on `isa`, most precise first.
fn candidates(isa: Isa, accept: Accuracy) -> Vec<WeightStorage> {
    let mut c = vec![WeightStorage::F32];
    if accept != Accuracy::F32 && isa.supports_bf16() {
        c.push(WeightStorage::Bf16);
    }
    // The scalar int8 kernel is a reference, never a speed-up.
    if accept == Accuracy::Int8 && isa != Isa::Scalar && isa.supports_int8() {
        c.push(WeightStorage::Int8);
    }
    c
}

/// Pick the storage for `accept` on `isa`. `shapes` are (m, k, n) GEMMs standing for the model (a
/// 3x3 convolution and a transformer projection); each candidate runs them five times, one thread,
/// interleaved with the others, and its median counts.
pub fn choose(isa: Isa, accept: Accuracy, shapes: &[(usize, usize, usize)]) -> KernelChoice {
    if accept == Accuracy::F32 {
        return KernelChoice { isa, storage: WeightStorage::F32, note: String::from("f32 (exact)") };
    }
    let cands = candidates(isa, accept);
    let names = |s: WeightStorage| match s {
        WeightStorage::Bf16 => "bf16",
        WeightStorage::Int8 => "int8",
        _ => "f32",
    };
    let mut missing = String::new();
    if !cands.contains(&WeightStorage::Bf16) {
        missing.push_str("; bf16: no AVX-512 BF16 / Arm BF16 kernel");
    }
    if accept == Accuracy::Int8 && !cands.contains(&WeightStorage::Int8) {
        missing.push_str(&alloc::format!("; int8: needs {}", Isa::INT8_REQUIREMENT));
    }
    let times = measure(isa, &cands, shapes);
    let Some(times) = times else {
        return KernelChoice { isa, storage: WeightStorage::F32, note: alloc::format!("{accept:?} accepted; no timer without std: f32{missing}") };
    };
    // Walk from the most precise: a candidate replaces the current choice only if clearly faster.
    let mut best = 0;
    for i in 1..cands.len() {
        if times[best] / times[i] >= MIN_GAIN {
            best = i;
        }
    }
    let mut note = alloc::format!("{accept:?} accepted; measured on this CPU ({isa:?}, 1 thread):");
    for (s, t) in cands.iter().zip(&times) {
        note.push_str(&alloc::format!(" {} {:.2}x f32", names(*s), times[0] / t));
    }
    note.push_str(&alloc::format!("; running {}", names(cands[best])));
    if cands[best] == WeightStorage::Int8 {
        note.push_str(&alloc::format!(" ({} kernel)", isa.int8_kernel_name()));
    }
    if cands[best] == WeightStorage::Bf16 {
        note.push_str(&alloc::format!(" ({} kernel)", isa.bf16_kernel_name()));
    }
    note.push_str(&missing);
    note.push_str(&amx_note(isa));
    KernelChoice { isa, storage: cands[best], note }
}

/// Why an AMX CPU runs the AVX-512 kernels instead, if it does (empty otherwise).
fn amx_note(isa: Isa) -> String {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        use crate::kernels::amx::{status, AmxStatus};
        return match status() {
            AmxStatus::NotEnabledByOs => String::from("; AMX: the OS does not enable tile state (XCR0), AVX-512 kernels run"),
            AmxStatus::PermissionRefused(e) => alloc::format!("; AMX: the OS refused tile data (arch_prctl errno {e}), AVX-512 kernels run"),
            AmxStatus::Disabled => String::from("; AMX: turned off (set_amx_allowed), AVX-512 kernels run"),
            AmxStatus::Usable | AmxStatus::NotInCpu => String::new(),
        };
    }
    let _ = isa;
    String::new()
}

#[cfg(feature = "std")]
fn measure(isa: Isa, cands: &[WeightStorage], shapes: &[(usize, usize, usize)]) -> Option<Vec<f64>> {
    use crate::kernels::exec::Serial;
    use crate::kernels::gemm::{gemm, Epilogue};
    use crate::kernels::pack::{MatrixA, PackedB, RowMap};
    use std::time::Instant;
    let packed: Vec<Vec<PackedB>> = cands
        .iter()
        .map(|&st| shapes.iter().map(|&(_, k, n)| PackedB::from_fn_stored(k, n, isa.nr(), st, |p, j| ((p * 7 + j * 3) % 11) as f32 * 0.1 - 0.5)).collect())
        .collect();
    let inputs: Vec<Vec<f32>> = shapes.iter().map(|&(m, k, _)| (0..m * k).map(|i| ((i * 5) % 13) as f32 * 0.1 - 0.6).collect()).collect();
    let mut out: Vec<Vec<f32>> = shapes.iter().map(|&(m, _, n)| vec![0.0; m * n]).collect();
    let mut samples = vec![Vec::new(); cands.len()];
    // One warm-up round (page faults, caches), then five measured.
    for round in 0..6 {
        for (c, ps) in packed.iter().enumerate() {
            let t = Instant::now();
            for (((&(m, k, n), a), b), o) in shapes.iter().zip(&inputs).zip(ps).zip(out.iter_mut()) {
                gemm(isa, &MatrixA { data: a, ld: k, m, k }, b.as_ref(), o, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
            }
            if round > 0 {
                samples[c].push(t.elapsed().as_secs_f64());
            }
        }
    }
    Some(
        samples
            .into_iter()
            .map(|mut s| {
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            })
            .collect(),
    )
}

#[cfg(not(feature = "std"))]
fn measure(_: Isa, _: &[WeightStorage], _: &[(usize, usize, usize)]) -> Option<Vec<f64>> {
    None
}
