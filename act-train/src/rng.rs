//! The trainer's random numbers: a SplitMix64 generator and the seeds it is started from.

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
