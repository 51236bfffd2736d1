//! act-train's random numbers: a SplitMix64 generator and the seeds the trainer starts it from.
//! The generator also fills test models and statistics (`model::randomize`, `random_export`),
//! and act-sim places its objects with it: values that depend only on the seed, not on
//! libtorch's global generator (shared by tests running in parallel threads) or its version.

/// SplitMix64: a small counter-based generator. Every random choice of the trainer is drawn from
/// a generator seeded by [`derive_seed`] from the run seed and a position (epoch, step), so the
/// whole random state of a run is the seed plus the position, which checkpoints store.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// `n` draws uniform in [lo, hi), as f32.
    pub fn uniform_vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi) as f32).collect()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Uniform in `0..n` (n > 0), by 128-bit multiply (Lemire, without the rejection step; the
    /// bias is below 2^-40 for the sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Purposes of derived seeds.
pub const TAG_SPLIT: u64 = 1;
pub const TAG_EPOCH: u64 = 2;
pub const TAG_VAL: u64 = 3;
pub const TAG_TORCH_STEP: u64 = 4;
pub const TAG_TORCH_VAL: u64 = 5;
pub const TAG_INIT: u64 = 6;
pub const TAG_AUGMENT: u64 = 7;

/// A seed for `(run seed, purpose, index)`, well mixed.
pub fn derive_seed(seed: u64, tag: u64, index: u64) -> u64 {
    let mut r = Rng(seed ^ tag.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    r.next_u64();
    let mut r = Rng(r.next_u64() ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
    r.next_u64()
}
