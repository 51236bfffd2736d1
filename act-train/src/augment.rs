//! Random-shift image augmentation for training batches (DrQ, Kostrikov et al. 2020,
//! <https://arxiv.org/abs/2004.13649>, section 3.1: pad by N pixels replicating the border, crop
//! back at a random offset). ACT itself does not augment; its backbone starts from ImageNet
//! weights. Ours starts from scratch on 40 training episodes, where random shifts are the usual
//! remedy for overfitting encoders; on insertion they lowered success (README), so no recipe
//! uses them.
//!
//! The shift of each image is drawn from a generator seeded by (run seed, step), so a resumed run
//! shifts exactly as an uninterrupted one would. Validation batches are never shifted.

use crate::rng::{Rng, TAG_AUGMENT, derive_seed};

/// Writes into `dst` the `h x w` RGB image `src` moved by (`dy`, `dx`) pixels: `dst(y, x) =
/// src(clamp(y + dy), clamp(x + dx))`, i.e. the crop at offset (`dy + N`, `dx + N`) of `src`
/// padded by N with its border replicated.
pub fn shift_replicate(src: &[u8], h: usize, w: usize, dy: isize, dx: isize, dst: &mut [u8]) {
    assert_eq!(src.len(), h * w * 3, "source is not {h}x{w}x3");
    assert_eq!(dst.len(), h * w * 3, "destination is not {h}x{w}x3");
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for y in 0..h {
        let sy = clamp(y as isize + dy, h);
        for x in 0..w {
            let sx = clamp(x as isize + dx, w);
            let s = (sy * w + sx) * 3;
            let d = (y * w + x) * 3;
            dst[d..d + 3].copy_from_slice(&src[s..s + 3]);
        }
    }
}

/// The shifts (dy, dx), each uniform in `-max..=max`, of the `samples x cameras` images of
/// training step `step`, sample-major.
pub fn shifts_for_step(seed: u64, step: u64, samples: usize, cameras: usize, max: usize) -> Vec<(isize, isize)> {
    let mut rng = Rng(derive_seed(seed, TAG_AUGMENT, step));
    let span = 2 * max + 1;
    (0..samples * cameras)
        .map(|_| {
            let dy = rng.below(span) as isize - max as isize;
            let dx = rng.below(span) as isize - max as isize;
            (dy, dx)
        })
        .collect()
}

/// Shifts every image of a training batch in place: `images[c]` holds `samples` frames of camera
/// `c` at `hw[c]`, one after another.
pub fn shift_batch(images: &mut [Vec<u8>], hw: &[(usize, usize)], samples: usize, max: usize, seed: u64, step: u64) {
    if max == 0 {
        return;
    }
    let shifts = shifts_for_step(seed, step, samples, images.len(), max);
    for (c, img) in images.iter_mut().enumerate() {
        let (h, w) = hw[c];
        let n = h * w * 3;
        let mut tmp = vec![0u8; n];
        for k in 0..samples {
            let (dy, dx) = shifts[k * hw.len() + c];
            let frame = &mut img[k * n..(k + 1) * n];
            shift_replicate(frame, h, w, dy, dx, &mut tmp);
            frame.copy_from_slice(&tmp);
        }
    }
}
