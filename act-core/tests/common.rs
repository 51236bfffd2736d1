//! Test helpers shared by act-core's integration tests.
#![allow(dead_code)]

/// Deterministic xorshift generator, uniform in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Every ISA this CPU can run.
pub fn isas() -> Vec<act_core::Isa> {
    [act_core::Isa::Scalar, act_core::Isa::Avx2, act_core::Isa::Avx512].into_iter().filter(|i| i.is_supported()).collect()
}
