//! Episode files in the original ACT HDF5 layout (ACT_SPEC.md section 7):
//! root attribute `sim` (bool), `/observations/qpos` (T,14) f32, `/observations/qvel` (T,14) f32,
//! `/observations/images/<cam>` (T,H,W,3) u8 chunked one frame per chunk, `/action` (T,14) f32.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use hdf5::File;
use ndarray::{Array2, Array3};

use crate::scripted::Episode;

/// Write `ep` to `path` atomically: the file is written under a temporary name in the same
/// directory and renamed at the end, so an interrupted run leaves no partial file under `path`.
pub fn write_episode(path: &Path, ep: &Episode) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("episode path has no file name")?.to_string_lossy();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = write_raw(&tmp, ep);
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", path.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn to_array(rows: &[[f32; 14]]) -> Array2<f32> {
    Array2::from_shape_fn((rows.len(), 14), |(t, j)| rows[t][j])
}

fn write_raw(path: &Path, ep: &Episode) -> Result<()> {
    let t = ep.qpos.len();
    let file = File::create(path).map_err(|e| anyhow!("cannot create {}: {e}", path.display()))?;
    file.new_attr::<bool>().create("sim")?.write_scalar(&true)?;
    let obs = file.create_group("observations")?;
    let images = obs.create_group("images")?;
    for (cam, frames) in &ep.images {
        if frames.len() != t {
            bail!("camera {cam}: {} frames for {t} steps", frames.len());
        }
        let n = frames.first().map(|f| f.len()).unwrap_or(0);
        let (h, w) = ep.image_hw.context("images without a size")?;
        if n != h * w * 3 {
            bail!("camera {cam}: frame of {n} bytes is not {h}x{w}x3");
        }
        let ds = images.new_dataset::<u8>().shape((t, h, w, 3)).chunk((1, h, w, 3)).create(cam.as_str())?;
        for (i, f) in frames.iter().enumerate() {
            let a = ndarray::ArrayView3::from_shape((h, w, 3), f.as_slice())?;
            ds.write_slice(&a, (i, .., .., ..))?;
        }
    }
    obs.new_dataset::<f32>().shape((t, 14)).create("qpos")?.write(&to_array(&ep.qpos))?;
    obs.new_dataset::<f32>().shape((t, 14)).create("qvel")?.write(&to_array(&ep.qvel))?;
    file.new_dataset::<f32>().shape((t, 14)).create("action")?.write(&to_array(&ep.actions))?;
    file.flush()?;
    Ok(())
}

/// An opened ACT episode file (ours, the original's, or a real-robot one).
pub struct EpisodeFile {
    file: File,
    pub sim: Option<bool>,
    pub qpos: Array2<f32>,
    pub qvel: Option<Array2<f32>>,
    pub action: Array2<f32>,
    /// (camera name, (T, H, W)) of each image dataset.
    pub cameras: Vec<(String, (usize, usize, usize))>,
}

impl EpisodeFile {
    /// Open and validate an episode file; a clear error for a missing, corrupt or foreign file.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("{}: no such file", path.display());
        }
        let file = File::open(path)
            .map_err(|e| anyhow!("{}: not a readable HDF5 file (corrupt or another format): {e}", path.display()))?;
        let foreign = |what: &str| anyhow!("{}: not an ACT episode file ({what})", path.display());
        let sim = file.attr("sim").ok().and_then(|a| a.read_scalar::<bool>().ok());
        let read2 = |name: &str| -> Result<Array2<f32>> {
            let ds = file.dataset(name).map_err(|_| foreign(&format!("missing /{name}")))?;
            let shape = ds.shape();
            if shape.len() != 2 || shape[1] != 14 {
                return Err(foreign(&format!("/{name} has shape {shape:?}, expected (T, 14)")));
            }
            ds.read_2d::<f32>().map_err(|e| foreign(&format!("/{name} unreadable as f32: {e}")))
        };
        let qpos = read2("observations/qpos")?;
        let action = read2("action")?;
        let qvel = if file.link_exists("observations/qvel") { Some(read2("observations/qvel")?) } else { None };
        let t = qpos.nrows();
        if action.nrows() != t {
            return Err(foreign(&format!("/action has {} rows, qpos {t}", action.nrows())));
        }
        let mut cameras = Vec::new();
        if let Ok(g) = file.group("observations/images") {
            for name in g.member_names()? {
                let ds = g.dataset(&name)?;
                let s = ds.shape();
                if s.len() != 4 || s[3] != 3 || s[0] != t {
                    return Err(foreign(&format!("image {name} has shape {s:?}, expected ({t}, H, W, 3)")));
                }
                cameras.push((name, (s[0], s[1], s[2])));
            }
        }
        Ok(Self { file, sim, qpos, qvel, action, cameras })
    }

    pub fn len(&self) -> usize {
        self.qpos.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame `t` of camera `cam` as H*W*3 RGB bytes.
    pub fn frame(&self, cam: &str, t: usize) -> Result<(usize, usize, Vec<u8>)> {
        let (_, (n, h, w)) = self
            .cameras
            .iter()
            .find(|(c, _)| c == cam)
            .ok_or_else(|| anyhow!("episode has no camera {cam:?} (has: {})", self.camera_names().join(", ")))?;
        if t >= *n {
            bail!("frame {t} out of range (episode has {n})");
        }
        let ds = self.file.dataset(&format!("observations/images/{cam}"))?;
        let a: Array3<u8> = ds.read_slice((t, .., .., ..))?;
        Ok((*h, *w, a.as_standard_layout().iter().copied().collect()))
    }

    pub fn camera_names(&self) -> Vec<String> {
        self.cameras.iter().map(|(c, _)| c.clone()).collect()
    }
}
