//! The machine's FP32 FMA peak on one core, measured with independent FMA chains so the ratio
//! "achieved / peak" holds on any machine.
use std::time::Instant;

macro_rules! fma16 {
    ($f:ident, $a:ident, $b:ident, $($c:ident),+) => { $( $c = $f($c, $a, $b); )+ };
}
macro_rules! sum16 {
    ($add:ident, $first:ident, $($c:ident),+) => {{ let mut s = $first; $( s = $add(s, $c); )+ s }};
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let one = _mm512_set1_ps(1.0);
    // Sixteen named accumulators stay in registers (an array may be spilled to memory, which
    // adds store-forwarding latency to every chain).
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (one, one, one, one, one, one, one, one);
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14, mut c15) = (one, one, one, one, one, one, one, one);
    for _ in 0..iters {
        fma16!(_mm512_fmadd_ps, a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    }
    let s = sum16!(_mm512_add_ps, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let one = _mm256_set1_ps(1.0);
    // Twelve chains (AVX2_CHAINS): with the two operands they fit AVX2's 16 ymm registers (sixteen
    // would spill and measure half the peak); twelve cover the FMA latency at two per cycle.
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (one, one, one, one, one, one, one, one);
    let (mut c8, mut c9, mut c10, mut c11) = (one, one, one, one);
    for _ in 0..iters {
        fma16!(_mm256_fmadd_ps, a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    }
    let s = sum16!(_mm256_add_ps, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds the 8 floats the store writes.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

/// Independent chains in the AVX2 peak loops.
#[cfg(target_arch = "x86_64")]
const AVX2_CHAINS: u64 = 12;

/// Best of several runs, in GFLOP/s (one FMA = 2 FLOP), on the calling thread.
///
/// Every peak loop gets its count through `black_box`: the loops are pure functions of their
/// argument, and with a plain constant the compiler ran one call and reused its result for the
/// other runs, so the best "run" took nanoseconds (an AVX2 peak of 192 million GFLOP/s, Zen 4).
pub fn fma_peak_gflops() -> f64 {
    let iters = 20_000_000u64;
    let mut best = 0.0f64;
    for _ in 0..5 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                let t = Instant::now();
                // SAFETY: AVX-512F was detected.
                std::hint::black_box(unsafe { fma_avx512(std::hint::black_box(iters)) });
                best = best.max((iters * 16 * 16 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                let t = Instant::now();
                // SAFETY: AVX2 and FMA were detected.
                std::hint::black_box(unsafe { fma_avx2(std::hint::black_box(iters)) });
                best = best.max((iters * AVX2_CHAINS * 8 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
        }
    }
    best
}

/// `iters` rounds of the peak loop's independent FMA chains on the calling thread (the widest
/// instruction set available): work that touches no memory, for measuring the machine rather
/// than the code.
pub fn fma_work(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected.
            return unsafe { fma_avx512(iters) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected.
            return unsafe { fma_avx2(iters) };
        }
    }
    (0..iters).fold(1.0f32, |c, _| c.mul_add(0.999_999, 1e-7))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_avx512(iters: u64) -> i32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_epi8(3);
    let b = _mm512_set1_epi8(-2);
    let z = _mm512_setzero_si512();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (z, z, z, z, z, z, z, z);
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14, mut c15) = (z, z, z, z, z, z, z, z);
    for _ in 0..iters {
        fma16!(_mm512_dpbusd_epi32, a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    }
    let s = sum16!(_mm512_add_epi32, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    _mm512_reduce_add_epi32(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn vnni_avx2(iters: u64) -> i32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_epi8(3);
    let b = _mm256_set1_epi8(-2);
    let z = _mm256_setzero_si256();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (z, z, z, z, z, z, z, z);
    let (mut c8, mut c9, mut c10, mut c11) = (z, z, z, z);
    for _ in 0..iters {
        fma16!(_mm256_dpbusd_avx_epi32, a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    }
    let s = sum16!(_mm256_add_epi32, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    let mut out = [0i32; 8];
    // SAFETY: `out` holds the 8 ints the store writes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, s) };
    out.iter().fold(0i32, |a, &b| a.wrapping_add(b))
}

/// `vpmaddwd` chains: the multiply of the int8 kernel of AVX2 hosts without VNNI
/// (`avx2_int8.rs`), 16 multiply-adds each. Each chain feeds its result back as the next 16-bit
/// pairs (a `vpmaddwd` of two constants would be folded away by the compiler); the kernel's
/// `vpaddd` beside it runs on other ports.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn madd_avx2(iters: u64) -> i32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_epi16(1);
    let madd = |c: __m256i, a: __m256i, _: __m256i| _mm256_madd_epi16(c, a);
    let z = _mm256_set1_epi16(3);
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (z, z, z, z, z, z, z, z);
    let (mut c8, mut c9, mut c10, mut c11) = (z, z, z, z);
    for _ in 0..iters {
        fma16!(madd, a, a, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    }
    let s = sum16!(_mm256_add_epi32, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
    let mut out = [0i32; 8];
    // SAFETY: `out` holds the 8 ints the store writes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, s) };
    out.iter().fold(0i32, |a, &b| a.wrapping_add(b))
}

/// The int8 multiply-add peak of one core through the instruction of `isa`'s int8 kernel: AMX
/// `tdpbusd` for `Avx512` where act-core runs it, else the 512-bit AVX-512 VNNI `vpdpbusd`; for `Avx2` the 256-bit AVX-VNNI form (32
/// multiply-adds) where the CPU has it, else `vpmaddwd` + `vpaddd` (16); `None` where this CPU
/// has no int8 kernel for `isa`.
pub fn int8_peak_gops_on(isa: act_core::Isa) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if isa == act_core::Isa::Avx512 && isa.supports_int8() && act_core::kernels::amx::usable() {
            // AMX `tdpbusd`: 16 x 16 x 64 multiply-adds per instruction, four per round.
            let iters = 2_000_000u64;
            let mut best = 0.0f64;
            for _ in 0..5 {
                let t = Instant::now();
                // SAFETY: `usable` says the OS granted tile data.
                unsafe { amx_loop(std::hint::black_box(iters), true) };
                best = best.max((iters * 4 * 16 * 16 * 64 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
            return Some(best);
        }
        let (run, lanes, chains): (unsafe fn(u64) -> i32, u64, u64) = match isa {
            act_core::Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni") => (vnni_avx512, 64, 16),
            act_core::Isa::Avx2 if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("avxvnni") => (vnni_avx2, 32, AVX2_CHAINS),
            act_core::Isa::Avx2 if std::arch::is_x86_feature_detected!("avx2") => (madd_avx2, 16, AVX2_CHAINS),
            _ => return None,
        };
        let iters = 20_000_000u64;
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: the instructions of `run` were detected just above.
            std::hint::black_box(unsafe { run(std::hint::black_box(iters)) });
            best = best.max((iters * chains * lanes * 2) as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        Some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        None
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dpbf16_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    // SAFETY (transmutes): __m512 and __m512bh are both 64-byte vectors.
    let (a, b): (__m512bh, __m512bh) = unsafe { (std::mem::transmute::<__m512, __m512bh>(_mm512_set1_ps(0.5)), std::mem::transmute::<__m512, __m512bh>(_mm512_set1_ps(1e-3))) };
    let z = _mm512_setzero_ps();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7) = (z, z, z, z, z, z, z, z);
    let (mut c8, mut c9, mut c10, mut c11, mut c12, mut c13, mut c14, mut c15) = (z, z, z, z, z, z, z, z);
    for _ in 0..iters {
        fma16!(_mm512_dpbf16_ps, a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    }
    let s = sum16!(_mm512_add_ps, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    _mm512_reduce_add_ps(s)
}

/// The tile configuration of the AMX peak loop (palette 1, tiles 0-7 of 16 rows x 64 bytes), as
/// act-core's AMX kernels use.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

#[cfg(target_arch = "x86_64")]
fn tile_config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1;
    for t in 0..8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
    }
    TileConfig(c)
}

/// `iters` rounds of four independent `tdpbf16ps` (or `tdpbusd`) on register tiles, as act-core's
/// AMX kernels issue them (2 x 2 accumulators, two A and two B tiles), without loads.
///
/// # Safety
/// The OS must have granted this process tile data (`act_core::kernels::amx::usable()`).
#[cfg(target_arch = "x86_64")]
unsafe fn amx_loop(iters: u64, int8: bool) {
    let cfg = tile_config();
    // SAFETY: a valid palette-1 configuration; the tiles hold zeros (finite products). Tile
    // registers are not Rust's: nothing else on this thread uses them meanwhile.
    unsafe {
        std::arch::asm!("ldtilecfg [{c}]", "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", "tilezero tmm4", "tilezero tmm5", "tilezero tmm6", "tilezero tmm7", c = in(reg) &cfg as *const TileConfig, options(nostack, readonly));
        if int8 {
            for _ in 0..iters {
                std::arch::asm!("tdpbusd tmm0, tmm4, tmm6", "tdpbusd tmm1, tmm4, tmm7", "tdpbusd tmm2, tmm5, tmm6", "tdpbusd tmm3, tmm5, tmm7", options(nostack, nomem));
            }
        } else {
            for _ in 0..iters {
                std::arch::asm!("tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm4, tmm7", "tdpbf16ps tmm2, tmm5, tmm6", "tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
            }
        }
        std::arch::asm!("tilerelease", options(nostack, nomem));
    }
}

/// The bf16 multiply-add peak of one core through the instruction of `isa`'s bf16 kernel, in
/// GFLOP/s (one multiply-add = 2): AMX `tdpbf16ps` (16 x 16 x 32 per instruction) where act-core
/// runs it, else AVX-512 BF16 `vdpbf16ps` (16 lanes x 2); `None` where `isa` has no bf16 kernel
/// here (or it is Arm's, not measured).
pub fn bf16_peak_gflops_on(isa: act_core::Isa) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if isa == act_core::Isa::Avx512 && isa.supports_bf16() {
        let amx = act_core::kernels::amx::usable();
        let iters = if amx { 2_000_000u64 } else { 20_000_000 };
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t = Instant::now();
            let flop = if amx {
                // SAFETY: `usable` says the OS granted tile data.
                unsafe { amx_loop(std::hint::black_box(iters), false) };
                iters * 4 * 16 * 16 * 32 * 2
            } else {
                // SAFETY: `supports_bf16` on Avx512 detected AVX-512 BF16.
                std::hint::black_box(unsafe { dpbf16_avx512(std::hint::black_box(iters)) });
                iters * 16 * 16 * 2 * 2
            };
            best = best.max(flop as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        return Some(best);
    }
    let _ = isa;
    None
}

/// The f32 FMA peak of one core through `isa`'s vector width (AVX-512 or AVX2), as
/// [`fma_peak_gflops`] measures the widest.
pub fn fma_peak_gflops_on(isa: act_core::Isa) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if isa == act_core::Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let iters = 20_000_000u64;
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: AVX2 and FMA were detected.
            std::hint::black_box(unsafe { fma_avx2(std::hint::black_box(iters)) });
            best = best.max((iters * AVX2_CHAINS * 8 * 2) as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        return best;
    }
    let _ = isa;
    fma_peak_gflops()
}
