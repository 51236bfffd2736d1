//! Position embeddings computed once at load.
//! 2-D sine embedding: ACT_SPEC.md section 1.4 (DETR's PositionEmbeddingSine, normalize=True),
//! LeRobot `ACTSinusoidalPositionEmbedding2d`.
use alloc::vec;
use alloc::vec::Vec;

const TEMPERATURE: f64 = 10000.0;
const EPS: f64 = 1e-6;
const SCALE: f64 = 2.0 * core::f64::consts::PI;

/// Token-major [h*w, dim] (row-major over the map): channels 0..dim/2 embed y, dim/2..dim embed x;
/// within each half, even channels are sin and odd channels cos of `pos / 10000^(2*floor(i/2)/(dim/2))`.
/// Computed in f64 and rounded once, so it matches a float32 reference to rounding.
pub fn sine_2d(h: usize, w: usize, dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0.0f32; h * w * dim];
    let inv_freq: Vec<f64> = (0..half).map(|i| libm::pow(TEMPERATURE, (2 * (i / 2)) as f64 / half as f64)).collect();
    // The reference computes these in float32; reproduce its rounding of y_n and x_n.
    let norm = |idx: usize, n: usize| -> f32 { (idx as f32) / ((n as f32) + EPS as f32) * (SCALE as f32) };
    for y in 0..h {
        let yn = norm(y + 1, h);
        for x in 0..w {
            let xn = norm(x + 1, w);
            let row = &mut out[(y * w + x) * dim..(y * w + x + 1) * dim];
            for i in 0..half {
                let fy = (yn / inv_freq[i] as f32) as f64;
                let fx = (xn / inv_freq[i] as f32) as f64;
                let (vy, vx) = if i % 2 == 0 { (libm::sin(fy), libm::sin(fx)) } else { (libm::cos(fy), libm::cos(fx)) };
                row[i] = vy as f32;
                row[half + i] = vx as f32;
            }
        }
    }
    out
}
