//! Row-wise normalisations: layer norm and softmax.

/// LayerNorm over the last dimension, in place, for `x` of `rows x dim` (PyTorch semantics:
/// population variance, `eps` inside the square root).
pub fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    debug_assert!(gamma.len() == dim && beta.len() == dim && x.len() % dim == 0);
    for row in x.chunks_exact_mut(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
        let inv = 1.0 / libm::sqrtf(var + eps);
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// Softmax of `scale * x` along each row of length `n`, in place.
pub fn softmax_rows(x: &mut [f32], n: usize, scale: f32) {
    for row in x.chunks_exact_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = libm::expf((*v - max) * scale);
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}
