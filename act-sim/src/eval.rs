//! Policy evaluation in the joint-space environment (ACT_SPEC.md section 5): rollouts from seeded
//! object placements, success per reward stage, average return, and latency per policy query.
//! The policy runs through act-core (what robots link) or, for cross-checks, libtorch.
use crate::env::{CameraRenderer, JointEnv};
use crate::overlay::{Caption, STRIP_HEIGHT, captioned};
use crate::stats::rate_with_interval;
use crate::video::{VideoWriter, ffmpeg_available};
use crate::Task;
use act_core::{Ensembling, Normalization, Options, Policy, TemporalEnsembler};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A policy that turns observations into actions, one control step at a time.
pub trait Backend {
    /// (name, height, width) per camera, in the order `step` takes images.
    fn cameras(&self) -> Vec<(String, usize, usize)>;
    fn reset(&mut self);
    /// Write the action for this step; returns whether the policy network ran (a query).
    fn step(&mut self, qpos: &[f32; 14], images: &[&[u8]], action: &mut [f32; 14]) -> Result<bool>;
    /// A line about how actions were served, printed after the table (latency simulation).
    fn summary(&self) -> Option<String> {
        None
    }
}

/// When a backend queries its network.
#[derive(Clone, Copy, Debug)]
pub enum Querying {
    /// Every step, temporal ensembling with this coefficient.
    Ensemble(f32),
    /// Every `k` steps, executing the chunk's actions in order.
    Every(usize),
}

pub(crate) fn check_dims(state_dim: usize, action_dim: usize) -> Result<()> {
    if state_dim != 14 || action_dim != 14 {
        bail!("the checkpoint has state_dim {state_dim} and action_dim {action_dim}; the simulated ALOHA needs 14 and 14");
    }
    Ok(())
}

/// The policy through act-core.
pub struct ActCoreBackend {
    policy: Policy,
    querying: Querying,
    t: usize,
}

impl ActCoreBackend {
    pub fn open(ckpt: &Path, querying: Querying) -> Result<Self> {
        Self::open_with(ckpt, querying, Options::default())
    }

    /// As `open`, on top of `base` (the compute path: `weights`, `accept`, `isa`).
    pub fn open_with(ckpt: &Path, querying: Querying, base: Options) -> Result<Self> {
        let options = match querying {
            Querying::Ensemble(m) => Options { ensembling: Ensembling::Coefficient(m), ..base },
            Querying::Every(k) => Options { ensembling: Ensembling::Disabled, n_action_steps: Some(k), ..base },
        };
        let policy = Policy::open(ckpt, &options).with_context(|| format!("loading {}", ckpt.display()))?;
        check_dims(policy.config().state_dim, policy.config().action_dim)?;
        Ok(Self { policy, querying, t: 0 })
    }
}

impl ActCoreBackend {
    /// The kernels act-core chose at load (instruction set, compute path, why).
    pub fn kernels(&self) -> &act_core::KernelChoice {
        self.policy.kernels()
    }
}

impl Backend for ActCoreBackend {
    fn cameras(&self) -> Vec<(String, usize, usize)> {
        self.policy.config().cameras.iter().map(|c| (c.name.clone(), c.height, c.width)).collect()
    }
    fn reset(&mut self) {
        self.policy.reset();
        self.t = 0;
    }
    fn step(&mut self, qpos: &[f32; 14], images: &[&[u8]], action: &mut [f32; 14]) -> Result<bool> {
        let queried = match self.querying {
            Querying::Ensemble(_) => true,
            Querying::Every(k) => self.t.is_multiple_of(k),
        };
        self.policy.step(qpos, images, action)?;
        self.t += 1;
        Ok(queried)
    }
}

/// The same policy in libtorch (act-train's tch model) on the checkpoint's weights.
pub struct TchBackend {
    model: act_train::Act,
    _vs: tch::nn::VarStore,
    cfg: act_train::ActConfig,
    norm: Normalization,
    querying: Querying,
    ensembler: Option<TemporalEnsembler>,
    chunk: Vec<f32>,
    t: usize,
}

impl TchBackend {
    pub fn open(ckpt: &Path, querying: Querying) -> Result<Self> {
        // act-core parses the config and statistics; libtorch gets the weights.
        let core = Policy::open(ckpt, &Options::default()).with_context(|| format!("loading {}", ckpt.display()))?;
        check_dims(core.config().state_dim, core.config().action_dim)?;
        let cfg_text = if ckpt.is_dir() {
            act_core::fs::read_json_file(&ckpt.join("config.json"))?
        } else {
            let bytes = act_core::fs::read_regular_file(ckpt, act_core::DEFAULT_MEMORY_BUDGET, "the memory budget")?;
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
            meta.metadata().as_ref().and_then(|m| m.get("config").cloned()).context("checkpoint has no config metadata")?
        };
        let cfg = act_train::ActConfig::from_json(&cfg_text)?;
        // One intra-op thread, as act-core runs: libgomp's spinning workers otherwise fight the
        // renderer's threads on a small CPU (measured: 1.3 s instead of 17 ms per query).
        tch::set_num_threads(1);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let model = act_train::Act::new(&vs.root(), &cfg)?;
        act_train::export::load_weights(&vs, ckpt)?;
        let (c, a) = (cfg.chunk_size as usize, cfg.action_dim() as usize);
        let ensembler = match querying {
            Querying::Ensemble(m) => Some(TemporalEnsembler::new(m, c, a)),
            Querying::Every(_) => None,
        };
        Ok(Self { model, _vs: vs, cfg, norm: core.normalization().clone(), querying, ensembler, chunk: vec![0.0; c * a], t: 0 })
    }

    fn forward(&self, qpos: &[f32; 14], images: &[&[u8]]) -> Vec<f32> {
        use tch::{Kind, Tensor};
        let _g = tch::no_grad_guard();
        let (n, eps) = (&self.norm, self.norm.eps);
        let q: Vec<f32> = qpos.iter().enumerate().map(|(i, &v)| n.state.normalize(i, v, eps)).collect();
        let q = Tensor::from_slice(&q).view([1, -1]);
        let imgs: Vec<Tensor> = self
            .cfg
            .cameras()
            .iter()
            .zip(images)
            .zip(&n.images)
            .map(|(((_, h, w), img), st)| {
                // The normalisation folded for u8 pixels, per channel: px * scale - shift.
                let x = Tensor::from_slice(img).view([1, *h, *w, 3]).permute([0, 3, 1, 2]).to_kind(Kind::Float);
                let (scale, shift): (Vec<f32>, Vec<f32>) = (0..3).map(|c| st.pixel_affine(c, eps)).unzip();
                x * Tensor::from_slice(&scale).view([1, 3, 1, 1]) - Tensor::from_slice(&shift).view([1, 3, 1, 1])
            })
            .collect();
        let out = self.model.forward_inference(&q, &imgs);
        Vec::<f32>::try_from(out.actions.contiguous().view([-1])).expect("actions to vec")
    }
}

impl Backend for TchBackend {
    fn cameras(&self) -> Vec<(String, usize, usize)> {
        self.cfg.cameras().into_iter().map(|(n, h, w)| (n, h as usize, w as usize)).collect()
    }
    fn reset(&mut self) {
        if let Some(e) = &mut self.ensembler {
            e.reset();
        }
        self.t = 0;
    }
    fn step(&mut self, qpos: &[f32; 14], images: &[&[u8]], action: &mut [f32; 14]) -> Result<bool> {
        let queried = match self.querying {
            Querying::Ensemble(_) => {
                let pred = self.forward(qpos, images);
                self.ensembler.as_mut().expect("ensembler").push(&pred, action);
                true
            }
            Querying::Every(k) => {
                let j = self.t % k;
                if j == 0 {
                    self.chunk = self.forward(qpos, images);
                }
                action.copy_from_slice(&self.chunk[j * 14..(j + 1) * 14]);
                j == 0
            }
        };
        for (i, v) in action.iter_mut().enumerate() {
            *v = self.norm.action.unnormalize(i, *v, self.norm.action_eps);
        }
        if let Some(i) = action.iter().position(|v| !v.is_finite()) {
            bail!("the policy produced NaN or infinity (action[{i}] at step {}): extreme weights, statistics or inputs", self.t);
        }
        self.t += 1;
        Ok(queried)
    }
}

/// The outcome of one rollout.
#[derive(Clone, Debug)]
pub struct Rollout {
    pub seed: u64,
    pub max_reward: u32,
    pub episode_return: u32,
}

#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub rollouts: Vec<Rollout>,
    /// Seconds per network query.
    pub query_seconds: Vec<f64>,
}

/// What each reward stage means, as ACT's paper reports it.
pub fn stage_names(task: Task) -> [&'static str; 4] {
    match task {
        Task::TransferCube => ["touched (right gripper)", "lifted", "handed over (left gripper)", "transferred"],
        Task::Insertion => ["grasped (both)", "lifted (both)", "peg touches socket", "inserted"],
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

impl EvalReport {
    /// Rollouts whose highest reward reached `stage` (1..=4; stage 4 is success).
    pub fn reached(&self, stage: u32) -> usize {
        self.rollouts.iter().filter(|r| r.max_reward >= stage).count()
    }

    pub fn success_rate(&self) -> f64 {
        self.reached(4) as f64 / self.rollouts.len().max(1) as f64
    }

    /// (median, p99) latency per query in milliseconds.
    pub fn latency_ms(&self) -> (f64, f64) {
        let mut s: Vec<f64> = self.query_seconds.iter().map(|x| x * 1e3).collect();
        s.sort_by(f64::total_cmp);
        (percentile(&s, 0.5), percentile(&s, 0.99))
    }

    /// A markdown table: reward stage, rollouts reaching it, rate; then return and latency.
    pub fn table(&self, task: Task) -> String {
        let n = self.rollouts.len();
        let mut out = String::from("| stage | reached | rate |\n|---|---|---|\n");
        for (i, name) in stage_names(task).iter().enumerate() {
            let k = self.reached(i as u32 + 1);
            out.push_str(&format!("| {} {} | {k}/{n} | {:.1} % |\n", i + 1, name, 100.0 * k as f64 / n.max(1) as f64));
        }
        let avg_return = self.rollouts.iter().map(|r| r.episode_return as f64).sum::<f64>() / n.max(1) as f64;
        let (med, p99) = self.latency_ms();
        let k = self.reached(4);
        out.push_str(&format!(
            "\nsuccess {}, average return {avg_return:.1}, latency per query: median {med:.2} ms, p99 {p99:.2} ms ({} queries)\n",
            rate_with_interval(k, n),
            self.query_seconds.len()
        ));
        out
    }
}

/// How rollout videos look: rendered from their own camera at a viewing size, independent of
/// the policy's inputs, with a caption strip under each frame.
#[derive(Clone, Debug)]
pub struct VideoSpec {
    pub camera: String,
    pub height: usize,
    pub width: usize,
    /// File extension: "mp4" (through ffmpeg) or "gif".
    pub ext: &'static str,
}

impl Default for VideoSpec {
    /// The `angle` camera (both arms and the objects, from the side) at 480x640, MP4 where ffmpeg
    /// runs, else GIF.
    fn default() -> Self {
        VideoSpec { camera: "angle".into(), height: 480, width: 640, ext: if ffmpeg_available() { "mp4" } else { "gif" } }
    }
}

/// Evaluation settings.
pub struct EvalConfig {
    pub task: Task,
    pub num_rollouts: usize,
    pub seed: u64,
    pub video_dir: Option<PathBuf>,
    pub num_videos: usize,
    pub video: VideoSpec,
    pub max_steps: Option<usize>,
}

/// Run `num_rollouts` rollouts; `on_rollout` is called after each (for progress output).
pub fn evaluate(backend: &mut dyn Backend, ec: &EvalConfig, mut on_rollout: impl FnMut(usize, &Rollout)) -> Result<EvalReport> {
    let cams = backend.cameras();
    let (h, w) = (cams[0].1, cams[0].2);
    if cams.iter().any(|c| c.1 != h || c.2 != w) {
        bail!("the simulator renders every camera at one size; the checkpoint's cameras differ: {cams:?}");
    }
    let names: Vec<String> = cams.iter().map(|c| c.0.clone()).collect();
    let mut env = JointEnv::new(ec.task, &names, h, w).context("creating the simulation (are the checkpoint's camera names scene cameras?)")?;
    let steps = ec.max_steps.unwrap_or(ec.task.episode_len());
    let mut report = EvalReport::default();
    let mut viewer = None;
    if let Some(dir) = &ec.video_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating video directory {}", dir.display()))?;
        if ec.num_videos > 0 && ec.num_rollouts > 0 {
            let v = &ec.video;
            viewer = Some(CameraRenderer::new(env.sim.model(), std::slice::from_ref(&v.camera), v.height, v.width).context("the video camera")?);
        }
    }
    let stages = stage_names(ec.task);
    for i in 0..ec.num_rollouts {
        let seed = ec.seed + i as u64;
        let mut obs = env.reset(seed)?;
        backend.reset();
        let vs = &ec.video;
        let mut video = match &ec.video_dir {
            Some(dir) if i < ec.num_videos => {
                let p = dir.join(format!("rollout_{i}_seed{seed}_{}.{}", vs.camera, vs.ext));
                Some((VideoWriter::create(&p, vs.width, vs.height + STRIP_HEIGHT, 50.0)?, p))
            }
            _ => None,
        };
        let (mut max_reward, mut ret) = (0u32, 0u32);
        let mut action = [0.0f32; 14];
        for t in 0..steps {
            if let (Some((v, _)), Some(r)) = (&mut video, &mut viewer) {
                // The frame shows the state the policy observes at step t, and the stage reached before it.
                let frame = r.render_all(&mut env.sim.data)?.remove(0).1;
                let caption = Caption { seed, step: t, steps, max_reward, stages: &stages };
                v.push(&captioned(&frame, vs.height, vs.width, &caption)?)?;
            }
            let images: Vec<&[u8]> = obs.images.iter().map(|(_, img)| img.as_slice()).collect();
            let start = Instant::now();
            let queried = backend.step(&obs.qpos, &images, &mut action)?;
            if queried {
                report.query_seconds.push(start.elapsed().as_secs_f64());
            }
            let r = env.step(&action)?;
            max_reward = max_reward.max(r.reward);
            ret += r.reward;
            obs = r.obs;
        }
        if let Some((v, _)) = video {
            v.finish()?;
        }
        let rollout = Rollout { seed, max_reward, episode_return: ret };
        on_rollout(i, &rollout);
        report.rollouts.push(rollout);
    }
    Ok(report)
}
