//! Row-wise normalisations: layer norm and softmax.

/// LayerNorm over the last dimension, in place, for `x` of `rows x dim` (PyTorch semantics:
/// population variance, `eps` inside the square root).
pub fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    debug_assert!(gamma.len() == dim && beta.len() == dim && x.len().is_multiple_of(dim));
    for row in x.chunks_exact_mut(dim) {
        let mean = sum_lanes(row.iter().copied()) / dim as f32;
        let var = sum_lanes(row.iter().map(|&v| (v - mean) * (v - mean))) / dim as f32;
        let inv = 1.0 / libm::sqrtf(var + eps);
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// A sum in sixteen partial sums, so that it vectorises on every instruction set (a plain
/// `sum()` fixes the order of additions and stays scalar).
#[inline(always)]
fn sum_lanes(values: impl Iterator<Item = f32>) -> f32 {
    const LANES: usize = 16;
    let mut partial = [0.0f32; LANES];
    for (i, v) in values.enumerate() {
        partial[i % LANES] += v;
    }
    partial.iter().sum()
}

/// `exp(x)` to about 1 ulp without branches, so that loops over it vectorise: x = n ln2 + r with
/// |r| <= ln2 / 2 (Cody-Waite split of ln2), exp(r) by its degree-6 Taylor polynomial (truncation
/// error r^7 / 7! < 1.3e-7), 2^n through the exponent bits. Inputs are clamped to the normal range.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in f32.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn softmax_body(x: &mut [f32], n: usize, scale: f32) {
    const LANES: usize = 16;
    for row in x.chunks_exact_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp_approx((*v - max) * scale);
        }
        // Sixteen partial sums so the reduction vectorises too.
        let mut partial = [0.0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (p, &v) in partial.iter_mut().zip(c) {
                *p += v;
            }
        }
        let sum = partial.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_avx512(x: &mut [f32], n: usize, scale: f32) {
    softmax_body(x, n, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(x: &mut [f32], n: usize, scale: f32) {
    softmax_body(x, n, scale)
}

/// Softmax of `scale * x` along each row of length `n`, in place, vectorised for `isa`.
pub fn softmax_rows_isa(isa: super::Isa, x: &mut [f32], n: usize, scale: f32) {
    match isa {
        // SAFETY (both arms): the Isa value is only used when the CPU supports it (checked at
        // policy load), and these functions only add target features to safe code.
        #[cfg(target_arch = "x86_64")]
        super::Isa::Avx512 if isa.is_supported() => unsafe { softmax_avx512(x, n, scale) },
        #[cfg(target_arch = "x86_64")]
        super::Isa::Avx2 if isa.is_supported() => unsafe { softmax_avx2(x, n, scale) },
        // Scalar, and NEON: Advanced SIMD is part of the aarch64 baseline, so the portable body
        // already compiles to 4-lane vector code there (docs/AARCH64.md).
        _ => softmax_body(x, n, scale),
    }
}

/// Softmax of `scale * x` along each row of length `n`, in place (portable code path).
pub fn softmax_rows(x: &mut [f32], n: usize, scale: f32) {
    softmax_body(x, n, scale)
}
