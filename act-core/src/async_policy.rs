//! A control step that never waits for inference (std): queries run on a background thread, and
//! `step` serves the current action from the chunks that have arrived ([`crate::blend`]).
//!
//! Threads and buffers:
//! - the **caller** (the control loop) calls [`AsyncPolicy::step`] once per control period. It
//!   validates the observation, copies it into the observation slot (`qpos` and every image,
//!   preallocated), takes a chunk from the result slot if a new one arrived (one copy of
//!   chunk x action_dim floats), and blends. It holds each slot's lock only for its copy.
//! - the **inference thread** (started at construction, joined on drop) waits for an observation
//!   newer than the last it used, swaps the slot's buffers with its own (no copy under the lock),
//!   runs [`Policy::predict`] (on the policy's worker threads too, when it has them), and swaps the
//!   chunk into the result slot. It runs a query whenever it is free, always on the newest
//!   observation; observations that arrive during a query are superseded, not queued.
//!
//! What blocks when: the first step of an episode waits for its first chunk (the robot cannot act
//! before one exists; after `reset` that can include finishing a query of the previous episode,
//! which is discarded). Every later step waits at most for the other side's buffer swap or copy.
//! When every chunk is exhausted (a query took longer than a chunk lasts), the last action is
//! held and [`AsyncStats::held`] counts it.
//!
//! Alignment: a chunk computed from the observation of step t0 that arrives at step t1 is placed at
//! t0 (aligned: at step t it contributes its action t - t0) or at t1 (naive: played from action 0,
//! t1 - t0 steps late), see [`Alignment`].
use crate::blend::{Blend, ChunkBlender, Served};
use crate::config::Config;
use crate::error::{config_err, Error, Result};
use crate::policy::{validate_inputs, Policy};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Where a late chunk is placed in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Alignment {
    /// At the step its observation was taken: the stale head of the chunk is skipped.
    #[default]
    Observation,
    /// At the step it arrives, played from its first action (a plain queue; for comparison).
    Arrival,
}

/// Options of the asynchronous stepper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsyncOptions {
    pub blend: Blend,
    pub alignment: Alignment,
}

/// Counters since construction (or the last [`AsyncPolicy::reset_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncStats {
    /// Steps served.
    pub steps: u64,
    /// Chunks received (of the current episodes; a chunk of a previous episode is discarded).
    pub chunks: u64,
    /// Steps that held the last action because no chunk covered them.
    pub held: u64,
    /// Sum and maximum over fresh steps of the staleness: steps since the observation (aligned) or
    /// the arrival (naive) of the newest chunk used.
    pub staleness_sum: u64,
    pub staleness_max: u64,
}

struct ObsSlot {
    qpos: Vec<f32>,
    images: Vec<Vec<u8>>,
    /// Step and episode the observation belongs to.
    t: usize,
    episode: u64,
    /// Set by `step`, cleared by the inference thread when it takes the observation.
    fresh: bool,
    shutdown: bool,
}

struct ResultSlot {
    chunk: Vec<f32>,
    /// Step (of `episode`) whose observation the chunk was computed from.
    t: usize,
    episode: u64,
    fresh: bool,
    /// Set when a query failed or panicked; the inference thread has stopped.
    failure: Option<String>,
}

struct Shared {
    obs: Mutex<ObsSlot>,
    obs_ready: Condvar,
    result: Mutex<ResultSlot>,
    result_ready: Condvar,
}

/// Locks a slot. A slot's lock is only held for copies and swaps that cannot panic, so a
/// poisoned lock still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the inference thread runs: a [`Policy`], or in tests a stand-in (a slow or failing one).
pub trait ChunkSource: Send + 'static {
    fn config(&self) -> &Config;
    /// One chunk, un-normalised (chunk_size x action_dim), from validated inputs.
    fn predict(&mut self, qpos: &[f32], images: &[&[u8]], out: &mut [f32]) -> Result<()>;
}

impl ChunkSource for Policy {
    fn config(&self) -> &Config {
        Policy::config(self)
    }
    fn predict(&mut self, qpos: &[f32], images: &[&[u8]], out: &mut [f32]) -> Result<()> {
        Policy::predict(self, qpos, images, out)
    }
}

pub struct AsyncPolicy {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    config: Config,
    options: AsyncOptions,
    blender: ChunkBlender,
    /// The newest chunk, copied out of the result slot.
    inbox: Vec<f32>,
    t: usize,
    episode: u64,
    /// The observation step of the newest chunk this episode.
    newest_obs_step: Option<usize>,
    /// How the last step's action was served.
    last_served: Served,
    stats: AsyncStats,
}

impl AsyncPolicy {
    /// Moves `policy` (a [`Policy`]) onto a new inference thread. Allocates every buffer here.
    pub fn new(policy: impl ChunkSource, options: AsyncOptions) -> Result<AsyncPolicy> {
        if let Blend::Ensemble(m) = options.blend
            && !(m.is_finite() && m >= 0.0)
        {
            return Err(config_err("temporal_ensemble_coeff", format!("{m} must be finite and >= 0")));
        }
        let config = policy.config().clone();
        let (c, a) = (config.chunk_size, config.action_dim);
        let images: Vec<Vec<u8>> = config.cameras.iter().map(|cam| vec![0u8; cam.height * cam.width * 3]).collect();
        let shared = Arc::new(Shared {
            obs: Mutex::new(ObsSlot { qpos: vec![0.0; config.state_dim], images: images.clone(), t: 0, episode: 0, fresh: false, shutdown: false }),
            obs_ready: Condvar::new(),
            result: Mutex::new(ResultSlot { chunk: vec![0.0; c * a], t: 0, episode: 0, fresh: false, failure: None }),
            result_ready: Condvar::new(),
        });
        let local = ObsSlot { qpos: vec![0.0; config.state_dim], images, t: 0, episode: 0, fresh: false, shutdown: false };
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("act-core-inference".into())
                .spawn(move || inference_loop(policy, &shared, local))
                .map_err(|e| config_err("asynchronous", format!("cannot start the inference thread: {e}")))?
        };
        Ok(AsyncPolicy {
            shared,
            worker: Some(worker),
            blender: ChunkBlender::new(options.blend, c, a),
            inbox: vec![0.0; c * a],
            config,
            options,
            t: 0,
            episode: 0,
            newest_obs_step: None,
            last_served: Served::Empty,
            stats: AsyncStats::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn options(&self) -> AsyncOptions {
        self.options
    }

    pub fn stats(&self) -> AsyncStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = AsyncStats::default();
    }

    /// How old the newest chunk received this episode is, as of the last step served: steps
    /// between its observation and that step (0: computed from the last step's own observation);
    /// `None` before an episode's first step. With naive alignment too this counts from the
    /// observation, not the arrival.
    pub fn newest_chunk_age(&self) -> Option<usize> {
        self.newest_obs_step.map(|t0| (self.t - 1) - t0)
    }

    /// One control step: hands the observation to the inference thread and writes the action for
    /// this step from the chunks that have arrived. Never waits for a query, except on the first
    /// step of an episode (see the module documentation). Allocates nothing.
    ///
    /// Errors: the inputs' errors of [`Policy::step`] (the observation is then not used, and the
    /// chunks already received stay); [`Error::InferenceFailed`] when a query failed or panicked
    /// (the inference thread has stopped; [`AsyncPolicy::failure`] says why).
    pub fn step(&mut self, qpos: &[f32], images: &[&[u8]], action: &mut [f32]) -> Result<()> {
        let a = self.config.action_dim;
        if action.len() != a {
            return Err(Error::InputLength { input: "action_out", expected: a, found: action.len() });
        }
        validate_inputs(&self.config, qpos, images)?;
        {
            let mut obs = lock(&self.shared.obs);
            obs.qpos.copy_from_slice(qpos);
            for (dst, src) in obs.images.iter_mut().zip(images) {
                dst.copy_from_slice(src);
            }
            obs.t = self.t;
            obs.episode = self.episode;
            obs.fresh = true;
        }
        self.shared.obs_ready.notify_one();
        let arrived = {
            let mut res = lock(&self.shared.result);
            if self.blender.newest_start().is_none() {
                // The episode's first chunk: wait for it.
                while res.failure.is_none() && !(res.fresh && res.episode == self.episode) {
                    res = self.shared.result_ready.wait(res).unwrap_or_else(|e| e.into_inner());
                }
            }
            if res.failure.is_some() {
                return Err(Error::InferenceFailed);
            }
            let arrived = res.fresh && res.episode == self.episode;
            if arrived {
                core::mem::swap(&mut self.inbox, &mut res.chunk);
                res.fresh = false;
                Some(res.t)
            } else {
                None
            }
        };
        if let Some(t0) = arrived {
            let start = match self.options.alignment {
                Alignment::Observation => t0,
                Alignment::Arrival => self.t,
            };
            self.blender.push(start, &self.inbox);
            self.newest_obs_step = Some(t0);
            self.stats.chunks += 1;
        }
        self.last_served = self.blender.action(self.t, action);
        match self.last_served {
            Served::Fresh { staleness } => {
                self.stats.staleness_sum += staleness as u64;
                self.stats.staleness_max = self.stats.staleness_max.max(staleness as u64);
            }
            Served::Held => self.stats.held += 1,
            Served::Empty => unreachable!("the first step of an episode waits for its first chunk"),
        }
        self.stats.steps += 1;
        self.t += 1;
        Ok(())
    }

    /// Start a new episode: forget the chunks; a query still running on the previous episode's
    /// observation is discarded when it arrives. The next step waits for the new episode's first
    /// chunk.
    pub fn reset(&mut self) {
        self.episode += 1;
        self.t = 0;
        self.blender.reset();
        self.newest_obs_step = None;
        self.last_served = Served::Empty;
    }

    /// How the last step's action was served: fresh (with its staleness) or held (every chunk
    /// exhausted: the action before it repeated). `Served::Empty` before an episode's first step.
    pub fn last_served(&self) -> Served {
        self.last_served
    }

    /// Why the inference thread stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.result).failure.clone()
    }
}

impl Drop for AsyncPolicy {
    /// Stops the inference thread after its current query and joins it.
    fn drop(&mut self) {
        lock(&self.shared.obs).shutdown = true;
        self.shared.obs_ready.notify_one();
        if let Some(w) = self.worker.take() {
            // A panic inside a query is caught in the loop; a join error cannot carry anything new.
            let _ = w.join();
        }
    }
}

fn inference_loop(mut policy: impl ChunkSource, shared: &Shared, mut local: ObsSlot) {
    let mut chunk = vec![0.0f32; policy.config().chunk_size * policy.config().action_dim];
    loop {
        {
            let mut obs = lock(&shared.obs);
            while !obs.fresh && !obs.shutdown {
                obs = shared.obs_ready.wait(obs).unwrap_or_else(|e| e.into_inner());
            }
            if obs.shutdown {
                return;
            }
            core::mem::swap(&mut obs.qpos, &mut local.qpos);
            core::mem::swap(&mut obs.images, &mut local.images);
            (local.t, local.episode) = (obs.t, obs.episode);
            obs.fresh = false;
        }
        let mut views: [&[u8]; MAX_CAMERAS] = [&[]; MAX_CAMERAS];
        for (v, img) in views.iter_mut().zip(&local.images) {
            *v = img;
        }
        let n = local.images.len();
        let outcome = catch_unwind(AssertUnwindSafe(|| policy.predict(&local.qpos, &views[..n], &mut chunk)));
        let mut res = lock(&shared.result);
        match outcome {
            Ok(Ok(())) => {
                core::mem::swap(&mut res.chunk, &mut chunk);
                (res.t, res.episode, res.fresh) = (local.t, local.episode, true);
            }
            Ok(Err(e)) => res.failure = Some(format!("a query failed: {e}")),
            Err(payload) => res.failure = Some(format!("the inference thread panicked: {}", panic_text(&*payload))),
        }
        let stop = res.failure.is_some();
        drop(res);
        shared.result_ready.notify_all();
        if stop {
            return;
        }
    }
}

/// Cameras a config may name ([`Config`]'s limit).
const MAX_CAMERAS: usize = crate::config::MAX_CAMERAS;

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}
