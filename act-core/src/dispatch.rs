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

/// The paths `accept` admits on `isa`, most precise first; with `amx_only`, the ones AMX runs.
fn candidates(isa: Isa, accept: Accuracy, amx_only: bool) -> Vec<WeightStorage> {
    let mut c = if amx_only { vec![] } else { vec![WeightStorage::F32] };
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
    choose_among(isa, accept, false, shapes)
}

/// [`choose`]; with `amx_only` (`Options::require_amx`, which [`amx_refusal`] admitted) f32 is not
/// a candidate. Should nothing be left, f32 runs.
pub(crate) fn choose_among(isa: Isa, accept: Accuracy, amx_only: bool, shapes: &[(usize, usize, usize)]) -> KernelChoice {
    let cands = candidates(isa, accept, amx_only);
    if accept == Accuracy::F32 || cands.is_empty() {
        return KernelChoice { isa, storage: WeightStorage::F32, note: String::from("f32 (exact)") };
    }
    let names = |s: WeightStorage| match s {
        WeightStorage::Bf16 => "bf16",
        WeightStorage::Int8 => "int8",
        _ => "f32",
    };
    let mut missing = String::new();
    if !cands.contains(&WeightStorage::Bf16) && !amx_only {
        missing.push_str("; bf16: no AVX-512 BF16 / Arm BF16 kernel");
    }
    if accept == Accuracy::Int8 && !cands.contains(&WeightStorage::Int8) {
        missing.push_str(&alloc::format!("; int8: needs {}", Isa::INT8_REQUIREMENT));
    }
    // A single candidate needs no timing.
    let times = if cands.len() == 1 { Some(vec![1.0]) } else { measure(isa, &cands, shapes) };
    let Some(times) = times else {
        let storage = cands[0];
        return KernelChoice { isa, storage, note: alloc::format!("{accept:?} accepted; no timer without std: {}{missing}", names(storage)) };
    };
    // Walk from the most precise: a candidate replaces the current choice only if clearly faster.
    let mut best = 0;
    for i in 1..cands.len() {
        if times[best] / times[i] >= MIN_GAIN {
            best = i;
        }
    }
    let mut note = alloc::format!("{accept:?} accepted{}; measured on this CPU ({isa:?}, 1 thread):", if amx_only { ", AMX required" } else { "" });
    for (s, t) in cands.iter().zip(&times) {
        note.push_str(&alloc::format!(" {} {:.2}x {}", names(*s), times[0] / t, names(cands[0])));
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

/// Why the AMX tiles cannot run the `storage` compute path with the `isa` kernels in this process
/// (`Options::require_amx`); `None` when they can. The first call on an AMX CPU asks the OS for
/// tile data.
pub fn amx_refusal(isa: Isa, storage: WeightStorage) -> Option<String> {
    if !matches!(storage, WeightStorage::Bf16 | WeightStorage::Int8) {
        return Some(alloc::format!("AMX runs the bf16 and int8 compute paths only, not {storage:?}: force weights Bf16 or Int8, or accept Bf16 or Int8"));
    }
    #[cfg(target_arch = "x86_64")]
    return amx_refusal_for(isa, crate::kernels::amx::status());
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        Some(String::from("AMX tiles exist only on x86_64 CPUs (Intel Xeon 4th generation and later)"))
    }
}

/// [`amx_refusal`] of a bf16 or int8 path for a given AMX status (tests give each one).
#[cfg(target_arch = "x86_64")]
fn amx_refusal_for(isa: Isa, status: crate::kernels::amx::AmxStatus) -> Option<String> {
    use crate::kernels::amx::AmxStatus;
    // The CPU first, then the caller's choices, then the OS: each message names the first thing
    // to change.
    Some(match status {
        AmxStatus::NotInCpu => {
            String::from("this CPU lacks AMX: CPUID leaf 7 does not list all of AMX-TILE, AMX-BF16, AMX-INT8, AVX-512 BF16 and AVX-512 VNNI (the AMX kernels use the five)")
        }
        _ if isa != Isa::Avx512 => alloc::format!("the AMX kernels run beside the Avx512 kernels, not {isa:?}"),
        AmxStatus::Usable => return None,
        AmxStatus::NotEnabledByOs => String::from("the OS does not enable AMX tile state (XCR0 bits 17-18 clear: Linux before 5.16, or AMX turned off)"),
        AmxStatus::PermissionRefused(e) => {
            let why = match e {
                0 => " (none: act-core asks for tile data only on Linux with its std feature, or Linux answered without granting it)",
                28 => " (ENOSPC: a sigaltstack of this process is too small for tile state)",
                _ => "",
            };
            alloc::format!("the OS refused tile data to this process: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) errno {e}{why}")
        }
        AmxStatus::Disabled => String::from("AMX is turned off in this process (act_core::kernels::amx::set_amx_allowed(false))"),
    })
}

/// Why an AMX CPU runs the AVX-512 kernels instead, if it does (empty otherwise).
pub(crate) fn amx_note(isa: Isa) -> String {
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::kernels::amx::AmxStatus;

    #[test]
    fn amx_refusals_name_the_reason() {
        let refusal = |isa, status| amx_refusal_for(isa, status).unwrap_or_default();
        assert_eq!(amx_refusal_for(Isa::Avx512, AmxStatus::Usable), None);
        assert!(refusal(Isa::Avx2, AmxStatus::Usable).contains("not Avx2"));
        assert!(refusal(Isa::Avx512, AmxStatus::NotInCpu).contains("CPU lacks AMX"));
        assert!(refusal(Isa::Avx2, AmxStatus::NotInCpu).contains("CPU lacks AMX"));
        // The caller's choice before the OS's: fixing the OS would not be enough.
        assert!(refusal(Isa::Avx2, AmxStatus::PermissionRefused(28)).contains("not Avx2"));
        assert!(refusal(Isa::Avx512, AmxStatus::NotEnabledByOs).contains("XCR0"));
        let r = refusal(Isa::Avx512, AmxStatus::PermissionRefused(28));
        assert!(r.contains("errno 28") && r.contains("sigaltstack"), "{r}");
        assert!(refusal(Isa::Avx512, AmxStatus::PermissionRefused(1)).contains("errno 1"));
        assert!(refusal(Isa::Avx512, AmxStatus::Disabled).contains("set_amx_allowed"));
        for storage in [WeightStorage::F32, WeightStorage::F16, WeightStorage::F16Compute] {
            let r = amx_refusal(Isa::Avx512, storage).unwrap_or_default();
            assert!(r.contains("bf16 and int8 compute paths only"), "{storage:?}: {r}");
        }
    }

    #[test]
    fn amx_only_candidates_leave_out_f32() {
        // What this CPU's AVX-512 has (a CPU without AVX-512 has neither).
        let bf16: &[WeightStorage] = if Isa::Avx512.supports_bf16() { &[WeightStorage::Bf16] } else { &[] };
        let int8: &[WeightStorage] = if Isa::Avx512.supports_int8() { &[WeightStorage::Int8] } else { &[] };
        assert_eq!(candidates(Isa::Avx512, Accuracy::Int8, true), [bf16, int8].concat());
        assert_eq!(candidates(Isa::Avx512, Accuracy::Bf16, true), bf16);
        assert_eq!(candidates(Isa::Avx512, Accuracy::Bf16, false), [&[WeightStorage::F32], bf16].concat());
    }
}
