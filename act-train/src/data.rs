//! ACT-format episodes (ACT_SPEC.md section 7) read with the hdf5 crate, normalisation statistics
//! (section 4), the train/val split, ACT's sampling (random episode, random start, chunk padded
//! with `is_pad`) and image resizing. The background loader thread that uses them is `loader.rs`.
//!
//! Layout read: root attribute `sim` (bool; missing = sim), `/observations/qpos` (T, S) float,
//! `/observations/images/<cam>` (T, H, W, 3) u8 (read one frame at a time with hdf5 slicing),
//! `/action` (T, A) float. `qvel`/`effort` are not needed and not read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::Array2;

use crate::export::Stats;
use crate::rng::{Rng, TAG_EPOCH, TAG_SPLIT, TAG_VAL, derive_seed};

// ---------------------------------------------------------------------------------------------
// Episodes

/// One episode file: the low-dimensional data in memory, the images left on disk.
#[derive(Clone, Debug)]
pub struct EpisodeInfo {
    pub path: PathBuf,
    /// Number of time steps T.
    pub len: usize,
    /// The root attribute `sim` (true when absent). Real-robot data (false) shifts the action
    /// window one step back (ACT: `actions[max(0, t - 1):]`).
    pub sim: bool,
    pub state_dim: usize,
    pub action_dim: usize,
    /// `[T * state_dim]`, row-major.
    pub qpos: Vec<f32>,
    /// `[T * action_dim]`, row-major.
    pub action: Vec<f32>,
    /// Every image dataset of the file: (camera, H, W).
    pub cameras: Vec<(String, usize, usize)>,
}

impl EpisodeInfo {
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// `episode_<i>.hdf5` files of `dir`, sorted by `i`. Errors for a missing directory, a path that
/// is not a directory, or a directory without episode files.
pub fn list_episode_files(dir: &Path) -> Result<Vec<PathBuf>> {
    ensure!(dir.exists(), "dataset directory {} does not exist", dir.display());
    ensure!(dir.is_dir(), "dataset path {} is not a directory", dir.display());
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(idx) = name
            .strip_prefix("episode_")
            .and_then(|r| r.strip_suffix(".hdf5"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((idx, entry.path()));
    }
    ensure!(
        !found.is_empty(),
        "dataset directory {} holds no episode_<i>.hdf5 files",
        dir.display()
    );
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

pub(crate) fn open_h5(path: &Path) -> Result<hdf5::File> {
    ensure!(path.is_file(), "{}: no such file", path.display());
    hdf5::File::open(path)
        .map_err(|e| anyhow!("{}: not a readable HDF5 file (corrupt or another format): {e}", path.display()))
}

/// Reads the low-dimensional data and the image shapes of one episode, checking the layout.
pub fn read_episode_info(path: &Path) -> Result<EpisodeInfo> {
    let file = open_h5(path)?;
    let bad = |what: String| anyhow!("{}: {what}", path.display());
    let sim = match file.attr("sim") {
        Ok(a) => a
            .read_scalar::<bool>()
            .map_err(|e| bad(format!("root attribute `sim` is not a bool: {e}")))?,
        Err(_) => true,
    };
    let read2 = |name: &str| -> Result<Array2<f32>> {
        let ds = file
            .dataset(name)
            .map_err(|_| bad(format!("missing dataset /{name} (not an ACT episode file)")))?;
        let shape = ds.shape();
        if shape.len() != 2 || shape[1] == 0 {
            return Err(bad(format!("/{name} has shape {shape:?}, expected (T, dim)")));
        }
        ds.read_2d::<f32>()
            .map_err(|e| bad(format!("/{name} unreadable as float: {e}")))
    };
    let qpos = read2("observations/qpos")?;
    let action = read2("action")?;
    let t = qpos.nrows();
    ensure!(t > 0, "{}: episode has no time steps", path.display());
    ensure!(
        action.nrows() == t,
        "{}: mismatched lengths: /action has {} rows, /observations/qpos has {t}",
        path.display(),
        action.nrows()
    );
    for (name, a) in [("observations/qpos", &qpos), ("action", &action)] {
        if let Some(i) = a.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: /{name} holds a non-finite value at time step {}",
                path.display(),
                i / a.ncols()
            );
        }
    }
    let mut cameras = Vec::new();
    if let Ok(g) = file.group("observations/images") {
        let mut names = g
            .member_names()
            .map_err(|e| bad(format!("listing /observations/images: {e}")))?;
        names.sort();
        for name in names {
            let ds = g
                .dataset(&name)
                .map_err(|e| bad(format!("/observations/images/{name} is not a dataset: {e}")))?;
            let s = ds.shape();
            ensure!(
                s.len() == 4 && s[3] == 3 && s[1] > 0 && s[2] > 0,
                "{}: image dataset {name} has shape {s:?}, expected (T, H, W, 3)",
                path.display()
            );
            ensure!(
                s[0] == t,
                "{}: mismatched lengths: camera {name} has {} frames, /observations/qpos has {t} steps",
                path.display(),
                s[0]
            );
            let dt = ds.dtype().map_err(|e| bad(format!("camera {name}: {e}")))?;
            ensure!(
                dt.is::<u8>(),
                "{}: camera {name} is not stored as u8",
                path.display()
            );
            cameras.push((name, s[1], s[2]));
        }
    }
    Ok(EpisodeInfo {
        path: path.to_path_buf(),
        len: t,
        sim,
        state_dim: qpos.ncols(),
        action_dim: action.ncols(),
        qpos: qpos.iter().copied().collect(),
        action: action.iter().copied().collect(),
        cameras,
    })
}

/// The episodes of a dataset directory, checked against each other.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    pub episodes: Vec<EpisodeInfo>,
    /// The cameras the model uses, in model order.
    pub cameras: Vec<String>,
    /// Image size in the files, per camera of `cameras`.
    pub file_hw: Vec<(usize, usize)>,
    pub state_dim: usize,
    pub action_dim: usize,
}

impl Dataset {
    /// Opens every `episode_<i>.hdf5` of `dir` and checks that each holds the cameras asked for,
    /// and that state/action dimensions and per-camera image sizes agree across episodes.
    /// Episode lengths may differ between episodes (human demonstrations do), not within one.
    pub fn open(dir: &Path, cameras: &[String]) -> Result<Self> {
        ensure!(!cameras.is_empty(), "no camera names given");
        let files = list_episode_files(dir)?;
        let mut episodes = Vec::with_capacity(files.len());
        for f in &files {
            episodes.push(read_episode_info(f)?);
        }
        let first = &episodes[0];
        let mut file_hw = Vec::new();
        for cam in cameras {
            let Some((_, h, w)) = first.cameras.iter().find(|(c, _, _)| c == cam) else {
                bail!(
                    "{}: no camera {cam:?} (it has: {})",
                    first.path.display(),
                    camera_list(first)
                );
            };
            file_hw.push((*h, *w));
        }
        for ep in &episodes[1..] {
            ensure!(
                ep.state_dim == first.state_dim && ep.action_dim == first.action_dim,
                "{}: qpos/action have {}/{} columns, {} has {}/{}",
                ep.path.display(),
                ep.state_dim,
                ep.action_dim,
                first.file_name(),
                first.state_dim,
                first.action_dim
            );
            for (cam, &(h, w)) in cameras.iter().zip(&file_hw) {
                let Some((_, eh, ew)) = ep.cameras.iter().find(|(c, _, _)| c == cam) else {
                    bail!(
                        "{}: mismatched cameras: no camera {cam:?} (it has: {}; {} has it)",
                        ep.path.display(),
                        camera_list(ep),
                        first.file_name()
                    );
                };
                ensure!(
                    (*eh, *ew) == (h, w),
                    "{}: mismatched image shapes: camera {cam} is {eh}x{ew}, in {} it is {h}x{w}",
                    ep.path.display(),
                    first.file_name()
                );
            }
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            state_dim: first.state_dim,
            action_dim: first.action_dim,
            episodes,
            cameras: cameras.to_vec(),
            file_hw,
        })
    }

    pub fn lens(&self) -> Vec<usize> {
        self.episodes.iter().map(|e| e.len).collect()
    }
}

fn camera_list(ep: &EpisodeInfo) -> String {
    if ep.cameras.is_empty() {
        "no cameras".to_string()
    } else {
        ep.cameras.iter().map(|(c, _, _)| c.as_str()).collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Which statistics to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// Original ACT: mean over every frame of every episode, unbiased std clipped at >= 0.01,
    /// `(x - mean) / std` (std_eps 0).
    Act,
    /// LeRobot: population std, `(x - mean) / (std + 1e-8)`.
    Lerobot,
}

/// Mean and std per column of the rows of all `blocks` (each `[rows * dim]`), in f64.
pub fn column_stats(blocks: &[&[f32]], dim: usize, norm: Normalization) -> (Vec<f32>, Vec<f32>) {
    let mut n = 0usize;
    let mut sum = vec![0f64; dim];
    for b in blocks {
        for row in b.chunks_exact(dim) {
            n += 1;
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
    let mut ss = vec![0f64; dim];
    for b in blocks {
        for row in b.chunks_exact(dim) {
            for ((s, &v), m) in ss.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
    }
    let std: Vec<f32> = ss
        .iter()
        .map(|s| match norm {
            Normalization::Act => {
                let var = if n > 1 { s / (n - 1) as f64 } else { 0.0 };
                var.sqrt().max(0.01) as f32
            }
            Normalization::Lerobot => (s / n.max(1) as f64).sqrt() as f32,
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}

/// Statistics of qpos and action over every frame of every episode (as ACT's `get_norm_stats`,
/// which uses all episodes, train and validation).
pub fn compute_stats(episodes: &[EpisodeInfo], norm: Normalization) -> Stats {
    let s = episodes[0].state_dim;
    let a = episodes[0].action_dim;
    let q: Vec<&[f32]> = episodes.iter().map(|e| e.qpos.as_slice()).collect();
    let ac: Vec<&[f32]> = episodes.iter().map(|e| e.action.as_slice()).collect();
    let (state_mean, state_std) = column_stats(&q, s, norm);
    let (action_mean, action_std) = column_stats(&ac, a, norm);
    Stats {
        state_mean,
        state_std,
        action_mean,
        action_std,
        std_eps: match norm {
            Normalization::Act => 0.0,
            Normalization::Lerobot => 1e-8,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Split and sampling

/// Episode indices for training and validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

/// ACT's split of a seeded permutation of the episodes: the first `floor((1 - val_fraction) n)`
/// train, the rest validate (ACT's `train_ratio` 0.8 is `val_fraction` 0.2); with n >= 2 and
/// `val_fraction > 0` each side gets at least one episode. `val_fraction` 0 trains on every
/// episode and validates on none. With a single episode and `val_fraction > 0` it serves both
/// (there is nothing else to validate on).
pub fn split_episodes(n: usize, seed: u64, val_fraction: f64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng(derive_seed(seed, TAG_SPLIT, 0)).shuffle(&mut idx);
    if val_fraction <= 0.0 {
        return Split { train: idx, val: Vec::new() };
    }
    if n < 2 {
        return Split {
            train: idx.clone(),
            val: idx,
        };
    }
    // The epsilon keeps floor((1 - f) n) exact where 1 - f rounds just below a multiple of 1/n
    // (f = 0.9, n = 10 would give 0 training episodes).
    let n_train = ((n as f64 * (1.0 - val_fraction) + 1e-9).floor() as usize).clamp(1, n - 1);
    Split {
        train: idx[..n_train].to_vec(),
        val: idx[n_train..].to_vec(),
    }
}

/// One sample: episode index and start time.
pub type SampleRef = (usize, usize);

/// One epoch as ACT's DataLoader(shuffle=True, drop_last=False) makes it: the training episodes
/// in a seeded random order, each with a uniformly random start `t` in `0..T`, cut into batches
/// (the last may be smaller).
pub fn epoch_batches(train: &[usize], lens: &[usize], seed: u64, epoch: u64, batch: usize) -> Vec<Vec<SampleRef>> {
    let mut rng = Rng(derive_seed(seed, TAG_EPOCH, epoch));
    let mut order = train.to_vec();
    rng.shuffle(&mut order);
    let samples: Vec<SampleRef> = order.into_iter().map(|e| (e, rng.below(lens[e]))).collect();
    samples.chunks(batch).map(|c| c.to_vec()).collect()
}

/// A validation pass after training step `step`: every validation episode once, random start.
pub fn val_batches(val: &[usize], lens: &[usize], seed: u64, step: u64, batch: usize) -> Vec<Vec<SampleRef>> {
    let mut rng = Rng(derive_seed(seed, TAG_VAL, step));
    let samples: Vec<SampleRef> = val.iter().map(|&e| (e, rng.below(lens[e]))).collect();
    samples.chunks(batch).map(|c| c.to_vec()).collect()
}

/// Training steps per epoch.
pub fn steps_per_epoch(n_train: usize, batch: usize) -> u64 {
    n_train.div_ceil(batch) as u64
}

/// The normalised target of one sample: `actions[start..]` with `start = t` (sim) or
/// `max(0, t - 1)` (real data), zero-padded (in raw units, then normalised, as ACT does) to
/// `chunk` rows; `is_pad[i]` is true for padded rows. Returns (actions `[chunk * A]`, is_pad).
pub fn action_chunk(ep: &EpisodeInfo, t: usize, chunk: usize, stats: &Stats) -> (Vec<f32>, Vec<bool>) {
    let a = ep.action_dim;
    let start = if ep.sim { t } else { t.saturating_sub(1) };
    let n = (ep.len - start).min(chunk);
    let mut out = vec![0f32; chunk * a];
    let mut is_pad = vec![true; chunk];
    out[..n * a].copy_from_slice(&ep.action[start * a..(start + n) * a]);
    is_pad[..n].fill(false);
    for row in out.chunks_exact_mut(a) {
        for ((v, m), s) in row.iter_mut().zip(&stats.action_mean).zip(&stats.action_std) {
            *v = (*v - m) / (s + stats.std_eps);
        }
    }
    (out, is_pad)
}

/// The normalised qpos of episode `ep` at time `t`.
pub fn qpos_at(ep: &EpisodeInfo, t: usize, stats: &Stats) -> Vec<f32> {
    let s = ep.state_dim;
    ep.qpos[t * s..(t + 1) * s]
        .iter()
        .zip(&stats.state_mean)
        .zip(&stats.state_std)
        .map(|((v, m), sd)| (v - m) / (sd + stats.std_eps))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Image resizing

/// Resizes an RGB u8 image (HWC) from `sh x sw` to `dh x dw`.
///
/// When both sizes divide exactly (`sh = k dh`, `sw = l dw`), each output pixel is the mean of
/// its `k x l` block (area averaging), rounded to nearest (ties up). Otherwise bilinear
/// interpolation with half-pixel centres (`src = (dst + 0.5) * scale - 0.5`, clamped to the
/// image, OpenCV's/PyTorch's `align_corners=False`), rounded to nearest. Inference must feed
/// images resized the same way: this function is the definition.
pub fn resize_rgb(src: &[u8], sh: usize, sw: usize, dh: usize, dw: usize) -> Vec<u8> {
    assert_eq!(src.len(), sh * sw * 3, "resize_rgb: buffer is not {sh}x{sw}x3");
    if (sh, sw) == (dh, dw) {
        return src.to_vec();
    }
    let mut out = vec![0u8; dh * dw * 3];
    if sh.is_multiple_of(dh) && sw.is_multiple_of(dw) {
        let (k, l) = (sh / dh, sw / dw);
        let n = (k * l) as u32;
        for y in 0..dh {
            for x in 0..dw {
                let mut acc = [0u32; 3];
                for yy in y * k..(y + 1) * k {
                    let row = &src[(yy * sw + x * l) * 3..(yy * sw + (x + 1) * l) * 3];
                    for px in row.chunks_exact(3) {
                        acc[0] += px[0] as u32;
                        acc[1] += px[1] as u32;
                        acc[2] += px[2] as u32;
                    }
                }
                let o = (y * dw + x) * 3;
                for c in 0..3 {
                    out[o + c] = ((acc[c] + n / 2) / n) as u8;
                }
            }
        }
        return out;
    }
    let coords = |d: usize, s: usize| -> Vec<(usize, usize, f32)> {
        let scale = s as f32 / d as f32;
        (0..d)
            .map(|i| {
                let f = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (s - 1) as f32);
                let i0 = f.floor() as usize;
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, f - i0 as f32)
            })
            .collect()
    };
    let ys = coords(dh, sh);
    let xs = coords(dw, sw);
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let p = |yy: usize, xx: usize| src[(yy * sw + xx) * 3 + c] as f32;
                let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
                let bot = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
                let v = top * (1.0 - fy) + bot * fy;
                out[(y * dw + x) * 3 + c] = (v + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}
