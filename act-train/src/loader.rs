//! The background loader thread: it walks the training schedule (ACT's epochs of shuffled batches,
//! validation passes between them) and hands batches, read from the episodes and normalised, to
//! the training loop through a bounded channel, so reading HDF5 and resizing frames overlap the
//! model's step.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow, ensure};

use crate::augment::shift_batch;
use ndarray::Array3;

use crate::data::{EpisodeInfo, SampleRef, Split, action_chunk, epoch_batches, open_h5, qpos_at, resize_rgb, val_batches};
use crate::export::Stats;

/// What a loaded batch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Training step `step`; after it the position is (`epoch_after`, `batch_after`);
    /// `val_due`: the --val-every cadence (or the last step) is reached, which also paces
    /// last.ckpt; `val_follows`: a validation pass comes next (due, and there are validation
    /// episodes).
    Train {
        step: u64,
        epoch: u64,
        epoch_after: u64,
        batch_after: u64,
        val_due: bool,
        val_follows: bool,
    },
    /// Batch `index` of the validation pass after step `step`; `last` ends the pass.
    Val { step: u64, index: usize, last: bool },
}

/// A batch ready for the model (host memory, normalised).
#[derive(Debug)]
pub struct Batch {
    pub kind: JobKind,
    pub size: usize,
    /// `[B * state_dim]`.
    pub qpos: Vec<f32>,
    /// Per camera: `[B * H * W * 3]` u8 at the model's size.
    pub images: Vec<Vec<u8>>,
    /// `[B * chunk * action_dim]`.
    pub actions: Vec<f32>,
    /// `[B * chunk]`.
    pub is_pad: Vec<bool>,
}

/// When validation passes happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValEvery {
    /// After every N-th epoch.
    Epochs(u64),
    /// After every N-th step.
    Steps(u64),
}

/// The deterministic sequence of batches of a run from a position on: training batches epoch by
/// epoch, a validation pass where due, and one after the final step.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub split: Split,
    pub lens: Vec<usize>,
    pub seed: u64,
    pub batch: usize,
    pub total_steps: u64,
    pub val_every: ValEvery,
    pub step: u64,
    pub epoch: u64,
    pub batch_in_epoch: u64,
    epoch_plan: Option<(u64, Vec<Vec<SampleRef>>)>,
    pending: std::collections::VecDeque<(JobKind, Vec<SampleRef>)>,
}

impl Schedule {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        split: Split,
        lens: Vec<usize>,
        seed: u64,
        batch: usize,
        total_steps: u64,
        val_every: ValEvery,
        step: u64,
        epoch: u64,
        batch_in_epoch: u64,
    ) -> Self {
        Schedule {
            split,
            lens,
            seed,
            batch,
            total_steps,
            val_every,
            step,
            epoch,
            batch_in_epoch,
            epoch_plan: None,
            pending: Default::default(),
        }
    }
}

impl Iterator for Schedule {
    type Item = (JobKind, Vec<SampleRef>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(j) = self.pending.pop_front() {
            return Some(j);
        }
        if self.step >= self.total_steps {
            return None;
        }
        if self.epoch_plan.as_ref().is_none_or(|(e, _)| *e != self.epoch) {
            let plan = epoch_batches(&self.split.train, &self.lens, self.seed, self.epoch, self.batch);
            self.epoch_plan = Some((self.epoch, plan));
        }
        let plan = &self.epoch_plan.as_ref().unwrap().1;
        let samples = plan[self.batch_in_epoch as usize].clone();
        let step = self.step;
        let epoch = self.epoch;
        let mut epoch_ended = false;
        self.batch_in_epoch += 1;
        if self.batch_in_epoch as usize >= plan.len() {
            self.batch_in_epoch = 0;
            self.epoch += 1;
            epoch_ended = true;
        }
        self.step += 1;
        let val_due = self.step == self.total_steps
            || match self.val_every {
                ValEvery::Epochs(k) => epoch_ended && k > 0 && self.epoch.is_multiple_of(k),
                ValEvery::Steps(k) => k > 0 && self.step.is_multiple_of(k),
            };
        // No validation episodes (--val-fraction 0): no validation passes.
        let val_follows = val_due && !self.split.val.is_empty();
        if val_follows {
            let vb = val_batches(&self.split.val, &self.lens, self.seed, step, self.batch);
            let n = vb.len();
            for (i, b) in vb.into_iter().enumerate() {
                self.pending.push_back((
                    JobKind::Val {
                        step,
                        index: i,
                        last: i + 1 == n,
                    },
                    b,
                ));
            }
        }
        Some((
            JobKind::Train {
                step,
                epoch,
                epoch_after: self.epoch,
                batch_after: self.batch_in_epoch,
                val_due,
                val_follows,
            },
            samples,
        ))
    }
}

/// Everything the loader thread needs to turn sample references into batches.
pub struct Loader {
    pub episodes: Arc<Vec<EpisodeInfo>>,
    pub cameras: Vec<String>,
    pub file_hw: Vec<(usize, usize)>,
    pub model_hw: Vec<(usize, usize)>,
    pub chunk: usize,
    pub stats: Stats,
    /// Bytes of resized frames kept in memory (frames are cached as they are first read).
    pub cache_bytes: usize,
    /// Training images move by up to this many pixels (`augment::shift_batch`); 0: none.
    pub augment_shift: usize,
    /// The run seed, for the shifts.
    pub seed: u64,
}

struct LoaderState {
    files: HashMap<usize, hdf5::File>,
    cache: HashMap<(usize, usize, usize), Arc<Vec<u8>>>,
    cached: usize,
}

impl Loader {
    fn frame(&self, st: &mut LoaderState, ep: usize, cam: usize, t: usize) -> Result<Arc<Vec<u8>>> {
        if let Some(f) = st.cache.get(&(ep, cam, t)) {
            return Ok(f.clone());
        }
        let info = &self.episodes[ep];
        if !st.files.contains_key(&ep) {
            // Keep at most 64 files open.
            if st.files.len() >= 64 {
                st.files.clear();
            }
            st.files.insert(ep, open_h5(&info.path)?);
        }
        let file = &st.files[&ep];
        let name = &self.cameras[cam];
        let ds = file
            .dataset(&format!("observations/images/{name}"))
            .map_err(|e| anyhow!("{}: camera {name}: {e}", info.path.display()))?;
        let a: Array3<u8> = ds
            .read_slice((t, .., .., ..))
            .map_err(|e| anyhow!("{}: reading frame {t} of camera {name}: {e}", info.path.display()))?;
        let (sh, sw) = self.file_hw[cam];
        let (dh, dw) = self.model_hw[cam];
        ensure!(
            a.shape() == [sh, sw, 3],
            "{}: frame {t} of camera {name} has shape {:?}",
            info.path.display(),
            a.shape()
        );
        let raw: Vec<u8> = match a.as_slice() {
            Some(s) => s.to_vec(),
            None => a.iter().copied().collect(),
        };
        let img = Arc::new(resize_rgb(&raw, sh, sw, dh, dw));
        if st.cached + img.len() <= self.cache_bytes {
            st.cached += img.len();
            st.cache.insert((ep, cam, t), img.clone());
        }
        Ok(img)
    }

    /// Builds one batch from sample references.
    fn load(&self, st: &mut LoaderState, kind: JobKind, samples: &[SampleRef]) -> Result<Batch> {
        let b = samples.len();
        let mut qpos = Vec::new();
        let mut actions = Vec::new();
        let mut is_pad = Vec::new();
        let mut images: Vec<Vec<u8>> = self
            .model_hw
            .iter()
            .map(|(h, w)| Vec::with_capacity(b * h * w * 3))
            .collect();
        for &(e, t) in samples {
            let ep = &self.episodes[e];
            qpos.extend(qpos_at(ep, t, &self.stats));
            let (a, p) = action_chunk(ep, t, self.chunk, &self.stats);
            actions.extend(a);
            is_pad.extend(p);
            for (c, img) in images.iter_mut().enumerate() {
                img.extend_from_slice(&self.frame(st, e, c, t)?);
            }
        }
        if let JobKind::Train { step, .. } = kind {
            shift_batch(&mut images, &self.model_hw, b, self.augment_shift, self.seed, step);
        }
        Ok(Batch {
            kind,
            size: b,
            qpos,
            images,
            actions,
            is_pad,
        })
    }

    /// Starts the loader thread: it walks `schedule`, loads each batch and sends it through a
    /// channel holding at most `prefetch` batches. It stops at the end of the schedule, after an
    /// error (sent as the last item), or when the receiver is dropped.
    pub fn spawn(self, schedule: Schedule, prefetch: usize) -> (Receiver<Result<Batch>>, JoinHandle<()>) {
        let (tx, rx): (SyncSender<Result<Batch>>, _) = sync_channel(prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("act-train-loader".into())
            .spawn(move || {
                let mut st = LoaderState {
                    files: HashMap::new(),
                    cache: HashMap::new(),
                    cached: 0,
                };
                for (kind, samples) in schedule {
                    let r = self.load(&mut st, kind, &samples);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            })
            .expect("spawning the loader thread");
        (rx, handle)
    }
}
