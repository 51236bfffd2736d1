//! Actions from chunks that arrive late: each chunk is placed at the step it starts at, and the
//! action for step t is taken from the chunks that cover t. With a chunk arriving every step and
//! starting at that step, `Blend::Ensemble` is ACT's temporal ensembling (ACT_SPEC.md section 5;
//! [`crate::TemporalEnsembler`]); with one chunk every n steps, `Blend::Latest` is chunk execution.
//!
//! Where a chunk starts is the caller's choice. An asynchronous stepper that *aligns* chunks places
//! a chunk at the step its observation was taken, so a chunk computed from step t0's observation
//! and arriving at step t1 contributes its action t - t0 at step t (the actions for t0..t1 are
//! already in the past). A *naive* queue places it at its arrival step and plays it from action 0,
//! K steps late. Fixed capacity; nothing here allocates after `new`.
use alloc::vec;
use alloc::vec::Vec;

/// How the chunks covering a step make its action.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Blend {
    /// ACT's temporal ensembling over every chunk covering the step: weights `exp(-m * i)`,
    /// i = 0 for the oldest covering chunk, normalised to sum to one (m finite, as for
    /// `Ensembling::Coefficient`).
    Ensemble(f32),
    /// The newest chunk that covers the step, alone.
    Latest,
}

/// Where an action came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// From the chunks covering the step; `staleness` = steps since the newest of them started
    /// (since its observation, for aligned chunks).
    Fresh { staleness: usize },
    /// No chunk covers the step (every chunk exhausted): the last action served is repeated.
    Held,
    /// No chunk and no earlier action yet (before the first chunk of an episode): `out` untouched.
    Empty,
}

/// Where a late chunk is placed in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Alignment {
    /// At the step its observation was taken: the stale head of the chunk is skipped.
    #[default]
    Observation,
    /// At the step it arrives, played from its first action (a plain queue; for comparison).
    Arrival,
}

impl Alignment {
    /// The start step of a chunk observed at step `observed` and received at step `arrived`.
    pub fn start(self, observed: usize, arrived: usize) -> usize {
        match self {
            Alignment::Observation => observed,
            Alignment::Arrival => arrived,
        }
    }
}

/// Counters of served steps (the asynchronous stepper's, and act-sim's latency simulation's).
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

impl AsyncStats {
    /// Counts one served step.
    pub fn record(&mut self, served: Served) {
        match served {
            Served::Fresh { staleness } => {
                self.staleness_sum += staleness as u64;
                self.staleness_max = self.staleness_max.max(staleness as u64);
            }
            Served::Held => self.held += 1,
            Served::Empty => {}
        }
        self.steps += 1;
    }
}

pub struct ChunkBlender {
    blend: Blend,
    chunk: usize,
    action_dim: usize,
    /// Ring of the last `chunk` chunks pushed, slot `k % chunk` for the k-th push.
    chunks: Vec<f32>,
    starts: Vec<usize>,
    pushed: usize,
    /// `exp(-m * i)` for i in 0..chunk.
    weights: Vec<f32>,
    last: Vec<f32>,
    have_last: bool,
}

impl ChunkBlender {
    /// A blender for chunks of `chunk` actions of `action_dim` values. At most `chunk` chunks can
    /// cover one step when starts are distinct, so the ring holds `chunk` of them.
    pub fn new(blend: Blend, chunk: usize, action_dim: usize) -> ChunkBlender {
        let m = match blend {
            Blend::Ensemble(m) => m,
            Blend::Latest => 0.0,
        };
        ChunkBlender {
            blend,
            chunk,
            action_dim,
            chunks: vec![0.0; chunk * chunk * action_dim],
            starts: vec![0; chunk],
            pushed: 0,
            weights: (0..chunk).map(|i| libm::expf(-m * i as f32)).collect(),
            last: vec![0.0; action_dim],
            have_last: false,
        }
    }

    pub fn blend(&self) -> Blend {
        self.blend
    }

    /// Forget every chunk and the last action (a new episode).
    pub fn reset(&mut self) {
        self.pushed = 0;
        self.have_last = false;
    }

    /// The start step of the newest chunk, if any.
    pub fn newest_start(&self) -> Option<usize> {
        (self.pushed > 0).then(|| self.starts[(self.pushed - 1) % self.chunk])
    }

    /// Add a chunk (`chunk x action_dim`, row-major) starting at step `start`. Starts must not
    /// decrease; a chunk with the newest chunk's start replaces it. An older start is ignored and
    /// `false` returned (a chunk that arrives out of order is never newer than what is there).
    pub fn push(&mut self, start: usize, chunk: &[f32]) -> bool {
        let (c, a) = (self.chunk, self.action_dim);
        let slot = match self.newest_start() {
            Some(s) if start < s => return false,
            Some(s) if start == s => (self.pushed - 1) % c,
            _ => {
                self.pushed += 1;
                (self.pushed - 1) % c
            }
        };
        self.starts[slot] = start;
        self.chunks[slot * c * a..(slot + 1) * c * a].copy_from_slice(&chunk[..c * a]);
        true
    }

    /// Write the action for step `t` (t at least the newest start, so every stored chunk started
    /// at or before it) into `out[..action_dim]`.
    pub fn action(&mut self, t: usize, out: &mut [f32]) -> Served {
        let (c, a) = (self.chunk, self.action_dim);
        let stored = self.pushed.min(c);
        // Stored chunks in push order (oldest first), keeping those that cover t.
        let mut covering = (self.pushed - stored..self.pushed).map(|k| k % c).filter(|&s| self.starts[s] <= t && t < self.starts[s] + c);
        let row = |s: usize| (s * c + (t - self.starts[s])) * a;
        let mut newest = None;
        match self.blend {
            Blend::Latest => {
                if let Some(s) = covering.next_back() {
                    out[..a].copy_from_slice(&self.chunks[row(s)..][..a]);
                    newest = Some(self.starts[s]);
                }
            }
            Blend::Ensemble(_) => {
                let mut total = 0.0;
                for (i, s) in covering.enumerate() {
                    if i == 0 {
                        out[..a].fill(0.0);
                    }
                    let w = self.weights[i];
                    for (o, &v) in out[..a].iter_mut().zip(&self.chunks[row(s)..][..a]) {
                        *o += w * v;
                    }
                    total += w;
                    newest = Some(self.starts[s]);
                }
                if newest.is_some() {
                    for o in &mut out[..a] {
                        *o /= total;
                    }
                }
            }
        }
        match newest {
            Some(start) => {
                self.last.copy_from_slice(&out[..a]);
                self.have_last = true;
                Served::Fresh { staleness: t - start }
            }
            None if self.have_last => {
                out[..a].copy_from_slice(&self.last);
                Served::Held
            }
            None => Served::Empty,
        }
    }
}
