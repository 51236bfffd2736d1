//! act-sim: simulated bimanual ALOHA on MuJoCo 3.17 (through mujoco-rs) for ACT.
//!
//! - [`scene`]: the project's own MJCF (primitive geoms), generated per task and variant.
//! - [`env`]: [`JointEnv`] (14-d joint actions) and [`EeEnv`] (mocap end-effector actions),
//!   contact rewards after each step, seeded object placement, offscreen camera images.
//! - [`scripted`]: the scripted waypoint policies and the record flow of ACT's
//!   record_sim_episodes.py (EE rollout, joint-space replay).
//! - [`dataset`]: episode files in the original ACT HDF5 layout.
//! - [`video`]: GIF/PNG output of frames.

pub mod dataset;
pub mod env;
pub mod scene;
pub mod scripted;
pub mod eval;
pub mod latency;
pub mod video;
pub mod overlay;
pub mod snapshots;
pub mod stats;

pub use env::{EeEnv, JointEnv, Observation, StepResult};

/// The simulated tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    TransferCube,
    Insertion,
}

impl Task {
    pub const NAMES: [&'static str; 2] = ["sim_transfer_cube_scripted", "sim_insertion_scripted"];

    /// Parse a task name: `sim_transfer_cube_scripted`, `sim_insertion_scripted` (also the
    /// `_human` variants and the short names `transfer_cube`, `insertion`).
    pub fn from_name(name: &str) -> anyhow::Result<Self> {
        match name {
            "sim_transfer_cube_scripted" | "sim_transfer_cube_human" | "transfer_cube" => Ok(Task::TransferCube),
            "sim_insertion_scripted" | "sim_insertion_human" | "insertion" => Ok(Task::Insertion),
            _ => anyhow::bail!("unknown task {name:?}; known tasks: {}", Self::NAMES.join(", ")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::TransferCube => "sim_transfer_cube_scripted",
            Task::Insertion => "sim_insertion_scripted",
        }
    }

    pub fn episode_len(self) -> usize {
        400
    }

    pub fn max_reward(self) -> u32 {
        4
    }

    /// Number of values in env_state (object poses, free-joint qpos).
    pub fn env_state_len(self) -> usize {
        match self {
            Task::TransferCube => 7,
            Task::Insertion => 14,
        }
    }
}

/// Seeded object placement: act-train's SplitMix64 ([`act_train::rng::Rng`]), keyed apart from
/// the trainer's seeds by a constant.
pub struct Rng(act_train::rng::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(act_train::rng::Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.uniform(lo, hi)
    }
}
