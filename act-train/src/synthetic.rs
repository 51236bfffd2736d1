//! Small synthetic episodes in the ACT HDF5 layout, for tests and smoke runs.
//!
//! qpos follows smooth per-joint sinusoids, the action at t is the qpos at t + 1 (as a position
//! controller's target would be), and each camera shows a bright square whose position moves
//! with t on a textured background, so images carry the time.

use std::path::Path;

use anyhow::{Result, anyhow};
use ndarray::{Array2, Array4};

/// What to write.
#[derive(Clone, Debug)]
pub struct SyntheticEpisode {
    pub len: usize,
    pub cameras: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub state_dim: usize,
    pub action_dim: usize,
    /// The root attribute `sim`; `None` writes no attribute.
    pub sim: Option<bool>,
    pub seed: u64,
}

impl SyntheticEpisode {
    pub fn new(len: usize, height: usize, width: usize, seed: u64) -> Self {
        SyntheticEpisode {
            len,
            cameras: vec!["top".into()],
            height,
            width,
            state_dim: 14,
            action_dim: 14,
            sim: Some(true),
            seed,
        }
    }

    pub fn qpos(&self) -> Array2<f32> {
        let s = self.seed as f32;
        Array2::from_shape_fn((self.len, self.state_dim), |(t, j)| {
            let tt = t as f32 / self.len.max(1) as f32;
            (0.3 + 0.05 * j as f32) * (std::f32::consts::TAU * tt * (1.0 + 0.1 * j as f32) + 0.7 * s + 0.3 * j as f32).sin()
                + 0.1 * j as f32
        })
    }

    pub fn action(&self) -> Array2<f32> {
        let q = self.qpos();
        let s = self.seed as f32;
        Array2::from_shape_fn((self.len, self.action_dim), |(t, j)| {
            let tn = (t + 1).min(self.len - 1);
            if j < self.state_dim {
                q[[tn, j]] + 0.01 * s
            } else {
                0.5
            }
        })
    }

    pub fn images(&self) -> Array4<u8> {
        let (h, w) = (self.height, self.width);
        let n = self.len.max(1);
        Array4::from_shape_fn((self.len, h, w, 3), |(t, y, x, c)| {
            let cy = (t * (h.saturating_sub(h / 4))) / n;
            let cx = ((t * 7 + self.seed as usize * 5) % n) * (w.saturating_sub(w / 4)) / n;
            let inside = y >= cy && y < cy + h / 4 && x >= cx && x < cx + w / 4;
            if inside {
                [250u8, 240, 30][c]
            } else {
                (((x * 3 + y * 5 + c * 40) % 64) + 20) as u8
            }
        })
    }

    /// Writes the episode to `path` (images chunked one frame per chunk, as ACT writes them).
    pub fn write(&self, path: &Path) -> Result<()> {
        let err = |e: hdf5::Error| anyhow!("writing {}: {e}", path.display());
        let file = hdf5::File::create(path).map_err(err)?;
        if let Some(sim) = self.sim {
            file.new_attr::<bool>().create("sim").map_err(err)?.write_scalar(&sim).map_err(err)?;
        }
        let obs = file.create_group("observations").map_err(err)?;
        let images = obs.create_group("images").map_err(err)?;
        let img = self.images();
        for cam in &self.cameras {
            images
                .new_dataset_builder()
                .chunk((1, self.height, self.width, 3))
                .with_data(&img)
                .create(cam.as_str())
                .map_err(err)?;
        }
        let q = self.qpos();
        obs.new_dataset_builder().with_data(&q).create("qpos").map_err(err)?;
        obs.new_dataset_builder()
            .with_data(&Array2::<f32>::zeros(q.raw_dim()))
            .create("qvel")
            .map_err(err)?;
        file.new_dataset_builder()
            .with_data(&self.action())
            .create("action")
            .map_err(err)?;
        file.flush().map_err(err)?;
        Ok(())
    }
}

/// Writes `n` episodes `episode_0.hdf5 ..` of length `len` into `dir` (created if missing).
pub fn write_dataset(dir: &Path, n: usize, len: usize, height: usize, width: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        SyntheticEpisode::new(len, height, width, i as u64).write(&dir.join(format!("episode_{i}.hdf5")))?;
    }
    Ok(())
}
