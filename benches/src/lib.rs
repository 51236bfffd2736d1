//! Shared setup for the benchmarks: one random ACT model of a named size, exported once and loaded
//! by both act-core and libtorch, and an observation to run them on.
use act_core::{Options, Policy};
use act_train::model::{normalize_image_u8, randomize_for_tests, Act};
use act_train::random_export::random_stats;
use act_train::{ActConfig, CheckpointForm, ExportOptions, Stats};
use anyhow::{bail, Context, Result};
use tch::{nn::VarStore, Device, Tensor};

/// Named model sizes (DESIGN.md "benches").
pub fn config(size: &str) -> Result<ActConfig> {
    Ok(match size {
        "tiny" => ActConfig::tiny(),
        "small" => ActConfig::small(),
        "default" => ActConfig::default_aloha(),
        "aloha4" => ActConfig::default_aloha().with_cameras(&[
            ("cam_high", 480, 640),
            ("cam_low", 480, 640),
            ("cam_left_wrist", 480, 640),
            ("cam_right_wrist", 480, 640),
        ]),
        other => bail!("unknown size `{other}` (tiny, small, default, aloha4)"),
    })
}

/// Exports the model in `vs` as a single-file checkpoint and loads it with act-core.
fn export_and_open(vs: &VarStore, cfg: &ActConfig, stats: &Stats, options: &Options) -> Result<Policy> {
    static EXPORTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("act-bench-{}-{n}.safetensors", std::process::id()));
    act_train::export::export_checkpoint(CheckpointForm::Single, &path, vs, cfg, stats, &ExportOptions::default())?;
    let policy = Policy::open(&path, options).with_context(|| format!("loading {}", path.display()));
    std::fs::remove_file(&path).ok();
    policy
}

/// Both runtimes on the same weights.
pub struct Pair {
    pub cfg: ActConfig,
    pub policy: Policy,
    pub model: Act,
    pub _vs: VarStore,
    pub stats: Stats,
    pub qpos: Vec<f32>,
    pub images: Vec<Vec<u8>>,
}

impl Pair {
    pub fn new(size: &str, options: &Options) -> Result<Pair> {
        let cfg = config(size)?;
        let vs = VarStore::new(Device::Cpu);
        let model = Act::new(&vs.root(), &cfg)?;
        randomize_for_tests(&vs, 1);
        let stats = random_stats(&cfg, 2);
        let policy = export_and_open(&vs, &cfg, &stats, options)?;
        let qpos = (0..cfg.state_dim()).map(|i| (i as f32 * 0.37).sin()).collect();
        let images = cfg.cameras().iter().map(|(_, h, w)| (0..h * w * 3).map(|i| (i * 7 % 251) as u8).collect()).collect();
        Ok(Pair { cfg, policy, model, _vs: vs, stats, qpos, images })
    }

    /// A further act-core policy on this pair's weights, with other options (weight storage,
    /// threads, scheduling): the same model exported again, no second libtorch model.
    pub fn open_policy(&self, options: &Options) -> Result<Policy> {
        export_and_open(&self._vs, &self.cfg, &self.stats, options)
    }

    /// libtorch on this pair's weights in bf16 (oneDNN runs bf16 convolutions and matmuls on AMX
    /// or AVX-512 BF16 where the CPU has them): a second model, its variables copied and cast.
    pub fn libtorch_bf16(&self) -> Result<(Act, VarStore)> {
        let mut vs = VarStore::new(Device::Cpu);
        let model = Act::new(&vs.root(), &self.cfg)?;
        vs.copy(&self._vs)?;
        vs.bfloat16();
        Ok((model, vs))
    }

    /// `libtorch_predict` on a bf16 model from `libtorch_bf16`: inputs cast to bf16, actions back
    /// to f32.
    pub fn libtorch_bf16_predict(&self, model: &Act) -> Tensor {
        let _guard = tch::no_grad_guard();
        let (qpos, images) = self.libtorch_inputs();
        let bf = tch::Kind::BFloat16;
        let images: Vec<Tensor> = images.iter().map(|t| t.to_kind(bf)).collect();
        let out = model.forward_inference(&qpos.to_kind(bf), &images);
        self.unnormalize(out.actions.to_kind(tch::Kind::Float))
    }

    fn libtorch_inputs(&self) -> (Tensor, Vec<Tensor>) {
        let s = &self.stats;
        let q: Vec<f32> = self.qpos.iter().enumerate().map(|(i, &v)| (v - s.state_mean[i]) / (s.state_std[i] + s.std_eps)).collect();
        let qpos = Tensor::from_slice(&q).view([1, -1]);
        let images = self
            .cfg
            .cameras()
            .iter()
            .zip(&self.images)
            .map(|((_, h, w), img)| normalize_image_u8(&Tensor::from_slice(img).view([*h, *w, 3])))
            .collect();
        (qpos, images)
    }

    fn unnormalize(&self, actions: Tensor) -> Tensor {
        let std = Tensor::from_slice(&self.stats.action_std);
        let mean = Tensor::from_slice(&self.stats.action_mean);
        actions * std + mean
    }

    pub fn act_core_predict(&mut self, out: &mut [f32]) {
        let views: Vec<&[u8]> = self.images.iter().map(|v| v.as_slice()).collect();
        self.policy.predict(&self.qpos, &views, out).expect("predict");
    }

    /// libtorch doing the same work as `predict`: normalise u8 images and qpos, forward in
    /// inference mode, un-normalise the chunk.
    pub fn libtorch_predict(&self) -> Tensor {
        let _guard = tch::no_grad_guard();
        let (qpos, images) = self.libtorch_inputs();
        let out = self.model.forward_inference(&qpos, &images);
        self.unnormalize(out.actions)
    }
}
pub mod control;
pub mod host;
pub mod peak;
pub mod sched;
