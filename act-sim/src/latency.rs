//! Evaluation under inference latency, deterministically: a query on the observation of step t
//! delivers its chunk at step t + K (the simulator does not pause meanwhile), and the robot acts
//! from the chunks that have arrived, as act-core's `AsyncPolicy` does on a real robot. The chunk
//! is computed at once (so results do not depend on this machine's speed) and held back K steps.
//!
//! When a query starts: with ensembling or latest-chunk blending, whenever the (simulated)
//! inference thread is free and a newer observation exists, as `AsyncPolicy` runs them; with
//! chunk execution, when the newest chunk has at most K of its `n_action_steps` actions left, so
//! the next chunk arrives as this one runs out (LeRobot's async queue threshold). The first chunk
//! of an episode is waited for (the episode starts when it arrives). K = 0 is today's synchronous
//! evaluation, action for action.
use crate::eval::{check_dims, Backend};
use act_core::{Alignment, AsyncStats, Blend, ChunkBlender, Options, Policy, Served};
use anyhow::{Context, Result};
use std::path::Path;

/// How chunks become actions, and when queries start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Blending {
    /// Temporal ensembling over every chunk covering the step; queries back to back.
    Ensemble(f32),
    /// The newest chunk alone; queries back to back.
    Latest,
    /// The newest chunk alone, n_action_steps actions each; the next query starts K steps before
    /// the current chunk's n actions run out.
    Chunk(usize),
}

pub struct LatencyBackend {
    policy: Policy,
    blending: Blending,
    alignment: Alignment,
    k: usize,
    blender: ChunkBlender,
    /// The query in flight: its chunk, observation step and arrival step.
    pending: Vec<f32>,
    in_flight: Option<(usize, usize)>,
    /// The observation step of the last query started this episode.
    last_query: Option<usize>,
    t: usize,
    /// Served-step counters over all rollouts.
    stats: AsyncStats,
}

impl LatencyBackend {
    pub fn open(ckpt: &Path, blending: Blending, alignment: Alignment, latency_steps: usize) -> Result<Self> {
        let policy = Policy::open(ckpt, &Options::default()).with_context(|| format!("loading {}", ckpt.display()))?;
        Self::new(policy, blending, alignment, latency_steps)
    }

    pub fn new(policy: Policy, blending: Blending, alignment: Alignment, latency_steps: usize) -> Result<Self> {
        let cfg = policy.config();
        check_dims(cfg.state_dim, cfg.action_dim)?;
        let (c, a) = (cfg.chunk_size, cfg.action_dim);
        if let Blending::Chunk(n) = blending {
            anyhow::ensure!(n >= 1 && n <= c, "query every {n} steps: must be 1..={c} (the chunk size)");
        }
        let blend = match blending {
            Blending::Ensemble(m) => Blend::Ensemble(m),
            Blending::Latest | Blending::Chunk(_) => Blend::Latest,
        };
        Ok(Self {
            blender: ChunkBlender::new(blend, c, a),
            pending: vec![0.0; c * a],
            policy,
            blending,
            alignment,
            k: latency_steps,
            in_flight: None,
            last_query: None,
            t: 0,
            stats: AsyncStats::default(),
        })
    }

    pub fn stats(&self) -> AsyncStats {
        self.stats
    }

    fn deliver(&mut self, t0: usize) {
        self.blender.push(self.alignment.start(t0, self.t), &self.pending);
        self.stats.chunks += 1;
    }

    fn wants_query(&self) -> bool {
        if self.last_query.is_some_and(|q| q >= self.t) {
            return false; // no observation newer than the last query's
        }
        match (self.blending, self.blender.newest_start()) {
            (_, None) => true,
            (Blending::Chunk(n), Some(s)) => s + n <= self.t + self.k,
            (_, Some(_)) => true,
        }
    }
}

impl Backend for LatencyBackend {
    fn cameras(&self) -> Vec<(String, usize, usize)> {
        self.policy.config().cameras.iter().map(|c| (c.name.clone(), c.height, c.width)).collect()
    }

    fn reset(&mut self) {
        self.blender.reset();
        self.in_flight = None;
        self.last_query = None;
        self.t = 0;
    }

    fn step(&mut self, qpos: &[f32; 14], images: &[&[u8]], action: &mut [f32; 14]) -> Result<bool> {
        if let Some((t0, arrival)) = self.in_flight
            && arrival == self.t
        {
            self.deliver(t0);
            self.in_flight = None;
        }
        let mut queried = false;
        if self.in_flight.is_none() && self.wants_query() {
            self.policy.predict(qpos, images, &mut self.pending)?;
            queried = true;
            self.last_query = Some(self.t);
            // The episode's first chunk is waited for; with K = 0 every chunk is on time.
            if self.k == 0 || self.blender.newest_start().is_none() {
                self.deliver(self.t);
            } else {
                self.in_flight = Some((self.t, self.t + self.k));
            }
        }
        let served = self.blender.action(self.t, action);
        assert!(served != Served::Empty, "the first chunk of an episode is delivered at once");
        self.stats.record(served);
        self.t += 1;
        Ok(queried)
    }

    fn summary(&self) -> Option<String> {
        let s = self.stats;
        let fresh = (s.steps - s.held).max(1);
        Some(format!(
            "latency {} steps ({:?}, {:?}): {} chunks, {:.1} steps per chunk, {} of {} steps held the last action ({:.1} %), mean staleness {:.1} steps",
            self.k,
            self.blending,
            self.alignment,
            s.chunks,
            s.steps as f64 / s.chunks.max(1) as f64,
            s.held,
            s.steps,
            100.0 * s.held as f64 / s.steps.max(1) as f64,
            s.staleness_sum as f64 / fresh as f64
        ))
    }
}

/// K for `--latency-steps auto`: act-core's median query time on this machine (1 thread, the
/// checkpoint's image size, after a warm-up) in control periods of `period_s`, rounded up.
pub fn measured_latency_steps(ckpt: &Path, period_s: f64) -> Result<(usize, f64)> {
    let mut policy = Policy::open(ckpt, &Options::default()).with_context(|| format!("loading {}", ckpt.display()))?;
    let cfg = policy.config().clone();
    let images: Vec<Vec<u8>> = cfg.cameras.iter().map(|c| vec![128u8; c.height * c.width * 3]).collect();
    let views: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
    let qpos = vec![0.0f32; cfg.state_dim];
    let mut out = vec![0.0f32; cfg.chunk_size * cfg.action_dim];
    policy.predict(&qpos, &views, &mut out)?;
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = std::time::Instant::now();
            policy.predict(&qpos, &views, &mut out).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<act_core::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(((median / period_s).ceil().max(1.0) as usize, median))
}
