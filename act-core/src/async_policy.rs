//! A control step that never waits for inference (std): queries run on a background thread, and
//! `step` serves the current action from the chunks that have arrived ([`crate::blend`]).
//!
//! Threads and buffers:
//! - the **caller** (the control loop) calls [`AsyncPolicy::step`] once per control period. It
//!   validates the observation, copies it into its back buffer of the observation triple buffer
//!   (`qpos` and every image, preallocated) and publishes it, wakes the inference thread, takes the
//!   newest chunk from the result triple buffer if one arrived (the blender copies it into its
//!   ring), and blends.
//! - the **inference thread** (started at construction, joined on drop) takes the newest published
//!   observation, runs [`Policy::predict`] (on the policy's worker threads too, when it has them)
//!   into its back buffer of the result triple buffer, and publishes it. It runs a query whenever
//!   it is free, always on the newest observation; observations that arrive during a query are
//!   superseded, not queued. With nothing new it sleeps (`park`) until `step` wakes it.
//!
//! What blocks when: the hand-offs are lock-free triple buffers ([`crate::handoff`]), so a step
//! never waits for the inference thread, however the kernel schedules it (no priority inversion
//! under a real-time control loop). The one exception is the first step of an episode, which
//! waits for its first chunk (the robot cannot act before one exists; after `reset` that can
//! include finishing a query of the previous episode, which is discarded). When every chunk is
//! exhausted (a query took longer than a chunk lasts), the last action is held and
//! [`AsyncStats::held`] counts it.
//!
//! Alignment: a chunk computed from the observation of step t0 that arrives at step t1 is placed at
//! t0 (aligned: at step t it contributes its action t - t0) or at t1 (naive: played from action 0,
//! t1 - t0 steps late), see [`Alignment`].
use crate::blend::{Alignment, AsyncStats, Blend, ChunkBlender, Served};
use crate::config::Config;
use crate::error::{config_err, Error, Result};
use crate::handoff::{Reader, TripleBuffer, Writer};
use crate::policy::{validate_inputs, Policy};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Options of the asynchronous stepper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsyncOptions {
    pub blend: Blend,
    pub alignment: Alignment,
}

/// An observation handed to the inference thread.
struct Observation {
    qpos: Vec<f32>,
    images: Vec<Vec<u8>>,
    /// Step and episode it belongs to.
    t: usize,
    episode: u64,
}

/// A chunk handed back, with the step and episode of its observation.
struct Chunk {
    actions: Vec<f32>,
    t: usize,
    episode: u64,
}

struct Shared {
    observations: TripleBuffer<Observation>,
    chunks: TripleBuffer<Chunk>,
    shutdown: AtomicBool,
    /// Set (after `failure`) when a query failed or panicked; the inference thread has stopped.
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Only for an episode's first step, which waits for a chunk: the inference thread takes the
    /// lock and notifies after each publication, the waiting step checks under the lock.
    arrival: Mutex<()>,
    arrived: Condvar,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (a message, or nothing).
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
    /// The step side's ends of the two triple buffers.
    obs_writer: Writer,
    chunk_reader: Reader,
    config: Config,
    options: AsyncOptions,
    blender: ChunkBlender,
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
        let config = policy.config().clone();
        if config.env_state_dim > 0 {
            return Err(config_err(
                "observation.environment_state",
                "the asynchronous stepper does not pass an environment state to its queries yet; step the Policy itself",
            ));
        }
        if let Blend::Ensemble(m) = options.blend {
            crate::ensemble::check_coefficient(m, config.chunk_size)?;
        }
        let (c, a) = (config.chunk_size, config.action_dim);
        let (observations, obs_writer, obs_reader) = TripleBuffer::new(|| Observation {
            qpos: vec![0.0; config.state_dim],
            images: config.cameras.iter().map(|cam| vec![0u8; cam.height * cam.width * 3]).collect(),
            t: 0,
            episode: 0,
        });
        let (chunks, chunk_writer, chunk_reader) = TripleBuffer::new(|| Chunk { actions: vec![0.0; c * a], t: 0, episode: 0 });
        let shared = Arc::new(Shared {
            observations,
            chunks,
            shutdown: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            arrival: Mutex::new(()),
            arrived: Condvar::new(),
        });
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("act-core-inference".into())
                .spawn(move || inference_loop(policy, &shared, obs_reader, chunk_writer))
                .map_err(|e| config_err("asynchronous", format!("cannot start the inference thread: {e}")))?
        };
        Ok(AsyncPolicy {
            shared,
            worker: Some(worker),
            obs_writer,
            chunk_reader,
            blender: ChunkBlender::new(options.blend, c, a),
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
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(Error::InferenceFailed);
        }
        let obs = self.shared.observations.back(&mut self.obs_writer);
        obs.qpos.copy_from_slice(qpos);
        for (dst, src) in obs.images.iter_mut().zip(images) {
            dst.copy_from_slice(src);
        }
        (obs.t, obs.episode) = (self.t, self.episode);
        self.shared.observations.publish(&mut self.obs_writer);
        if let Some(w) = &self.worker {
            w.thread().unpark();
        }
        if self.blender.newest_start().is_none() {
            self.wait_for_first_chunk()?;
        }
        self.receive();
        self.last_served = self.blender.action(self.t, action);
        assert!(self.last_served != Served::Empty, "the first step of an episode waits for its first chunk");
        self.stats.record(self.last_served);
        self.t += 1;
        Ok(())
    }

    /// Takes the newest published chunk into the blender if it belongs to this episode (one of the
    /// previous episode, a query that finished after `reset`, is dropped); returns whether it did.
    fn receive(&mut self) -> bool {
        let Some(chunk) = self.shared.chunks.take(&mut self.chunk_reader) else { return false };
        if chunk.episode != self.episode {
            return false;
        }
        self.blender.push(self.options.alignment.start(chunk.t, self.t), &chunk.actions);
        self.newest_obs_step = Some(chunk.t);
        self.stats.chunks += 1;
        true
    }

    /// Blocks until a chunk of this episode has been published (or the inference thread failed).
    fn wait_for_first_chunk(&mut self) -> Result<()> {
        // A second handle (an atomic increment, no allocation): the guard borrows it while
        // `receive` borrows `self` mutably.
        let shared = Arc::clone(&self.shared);
        let mut guard = lock(&shared.arrival);
        loop {
            if shared.failed.load(Ordering::Acquire) {
                return Err(Error::InferenceFailed);
            }
            if self.receive() {
                return Ok(());
            }
            // A chunk of the previous episode was dropped: look again before sleeping.
            if shared.chunks.has_fresh() {
                continue;
            }
            guard = shared.arrived.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How the last step's action was served: fresh (with its staleness) or held (every chunk
    /// exhausted: the action before it repeated). `Served::Empty` before an episode's first step.
    pub fn last_served(&self) -> Served {
        self.last_served
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

    /// Why the inference thread stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.failure).clone()
    }
}

impl Drop for AsyncPolicy {
    /// Stops the inference thread after its current query and joins it.
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        if let Some(w) = self.worker.take() {
            w.thread().unpark();
            // A panic inside a query is caught in the loop; a join error cannot carry anything new.
            let _ = w.join();
        }
    }
}

fn inference_loop(mut policy: impl ChunkSource, shared: &Shared, mut obs_reader: Reader, mut chunk_writer: Writer) {
    loop {
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let Some(obs) = shared.observations.take(&mut obs_reader) else {
            // Woken by `step` (unpark) after it publishes, or by drop; a wake-up before the park
            // is kept by the thread's token, so none is lost.
            std::thread::park();
            continue;
        };
        let mut views: [&[u8]; MAX_CAMERAS] = [&[]; MAX_CAMERAS];
        for (v, img) in views.iter_mut().zip(&obs.images) {
            *v = img;
        }
        let n = obs.images.len();
        let out = shared.chunks.back(&mut chunk_writer);
        let outcome = catch_unwind(AssertUnwindSafe(|| policy.predict(&obs.qpos, &views[..n], &mut out.actions)));
        let failure = match outcome {
            Ok(Ok(())) => {
                (out.t, out.episode) = (obs.t, obs.episode);
                shared.chunks.publish(&mut chunk_writer);
                None
            }
            Ok(Err(e)) => Some(format!("a query failed: {e}")),
            Err(payload) => Some(format!("the inference thread panicked: {}", panic_text(&*payload))),
        };
        let stop = failure.is_some();
        if stop {
            *lock(&shared.failure) = failure;
            shared.failed.store(true, Ordering::Release);
        }
        // A step waiting for an episode's first chunk checks under this lock; taking it here
        // (after publishing) means the wake-up cannot fall between its check and its wait.
        drop(lock(&shared.arrival));
        shared.arrived.notify_all();
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
