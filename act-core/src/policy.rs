//! The policy: weights loaded and prepacked once (`Policy::new`), every buffer allocated once
//! (`Workspace`), and `predict` / `step` that only read and write them (ACT_SPEC.md section 1).
use crate::checkpoint::TensorStore;
use crate::config::Config;
use crate::ensemble::TemporalEnsembler;
use crate::dispatch::{choose_among, Accuracy, KernelChoice};
use crate::error::{config_err, Error, Result};
use crate::kernels::exec::Executor;
use crate::kernels::pack::{zero_border, Packing, WeightStorage};
use crate::kernels::Isa;
use crate::memory::{zeroed, Plan, Sizing, DEFAULT_MEMORY_BUDGET};
use crate::model::backbone::{padded_len, BackboneBuffers, FEATURE_CHANNELS, IMAGE_PAD};
use crate::model::transformer::Buffers;
use crate::normalize::Normalization;
use crate::weights::{load_weights, Weights};
use alloc::format;
use alloc::vec::Vec;

/// How `step` turns chunks into actions.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Ensembling {
    /// `temporal_ensemble_coeff` of the config: ensembling if set, chunk execution otherwise.
    #[default]
    FromConfig,
    /// Query every `n_action_steps` and execute the chunk's actions in order.
    Disabled,
    /// Query every step and ensemble with this coefficient.
    Coefficient(f32),
}

/// Load-time options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub ensembling: Ensembling,
    /// Force an instruction set (must be supported by this CPU); `None` picks the best.
    pub isa: Option<Isa>,
    /// How GEMM and convolution weights are kept: f32; f16 (half the memory, widened to f32
    /// inside the kernels; computation stays f32); or bf16, the bf16 compute path (half the
    /// memory; the inputs of every weight GEMM and convolution are rounded to bf16 and products
    /// accumulate in f32; AVX-512 BF16 or Arm BF16 only, relative error near 1e-2 instead of 1e-6);
    /// or f16 compute (Arm FP16 arithmetic only: weights and GEMM / convolution inputs in f16,
    /// products accumulated in f16 over each k block of 256 and in f32 across blocks; twice the
    /// multiply-adds per instruction of f32; relative error near 1e-2; activations, products and
    /// the partial sums within a k block must stay within f16's range, 65504, or the actions
    /// become non-finite).
    pub weights: WeightStorage,
    /// The lowest precision accepted for the weight GEMMs and convolutions (default f32). With
    /// `Bf16` or `Int8` the policy measures, at load, the paths this CPU has within it and runs
    /// the fastest (a lower precision only where it is at least 10 % faster); see
    /// [`Policy::kernels`]. Exclusive with a `weights` other than f32.
    pub accept: Accuracy,
    /// Linux x86_64 with `std`: the bf16 / int8 path must run on AMX tiles (Intel Xeon 4th
    /// generation and later), with `weights` Bf16 or Int8 (forced) or `accept` Bf16 or Int8 (the
    /// faster AMX path, f32 not a candidate). Where the tiles cannot run, the load fails naming why
    /// (not in this CPU, an `isa` other than Avx512, not enabled by the OS, the OS refused the
    /// permission and its errno) instead of falling back to the AVX-512 kernels. Every GEMM of
    /// fewer than 16 rows runs on AVX-512 either way: the state and latent projections, and the
    /// decoder and action head when `chunk_size` < 16, ResNet's last layers on small frames. The
    /// process-wide `kernels::amx::set_amx_allowed(false)`, meant for comparisons, overrides it.
    pub require_amx: bool,
    /// Threads for one step (0 or 1: the calling thread only). With `std`, `threads - 1`
    /// workers are started at load and kept until the policy is dropped.
    pub threads: usize,
    /// With `std` on Unix: run the worker threads under `SCHED_FIFO` at this priority (1..=99 on
    /// Linux), so the kernel's time-sharing cannot preempt them mid-step. The thread that calls
    /// `step` is the application's: give it the same priority
    /// ([`crate::realtime::set_current_thread_priority`]). `None`: workers inherit the policy of
    /// the thread that loads the policy. Needs root, `CAP_SYS_NICE` or `ulimit -r`; a refusal is a
    /// load error. See `crate::realtime` for the 95 % real-time budget a busy loop must respect.
    pub realtime_priority: Option<u8>,
    /// Without ensembling, query every this many steps (1..=chunk_size); `None`: the config's
    /// `n_action_steps`.
    pub n_action_steps: Option<usize>,
    /// The most memory the policy may hold, in bytes; `None`: [`DEFAULT_MEMORY_BUDGET`] (4 GiB).
    /// The need is computed from the config before anything is allocated (`Error::MemoryBudget`
    /// names the largest part and the fields that size it); `Policy::open` also refuses a file
    /// larger than the budget. [`Policy::memory_bytes`] reports what a policy holds.
    pub memory_budget: Option<u64>,
    /// Per camera in config order: load for frames of this (height, width) instead of the config's
    /// `[3, H, W]` (ResNet-18 is fully convolutional, as in LeRobot; the encoder gets as many tokens
    /// as the frames give). Each side 32..=8192. Frames of another size stay an input error.
    pub camera_sizes: [Option<(usize, usize)>; crate::config::MAX_CAMERAS],
}

struct Workspace {
    image: Vec<f32>,
    backbone: BackboneBuffers,
    /// Per camera: layer4 output, NHWC [fh, fw, 512].
    features: Vec<Vec<f32>>,
    feature_sizes: Vec<(usize, usize)>,
    state: Vec<f32>,
    /// The environment state as last set (raw), and normalised.
    env_raw: Vec<f32>,
    env_set: bool,
    env: Vec<f32>,
    /// Encoder stream, then its output (memory). [rows, dim].
    src: Vec<f32>,
    memory_pos: Vec<f32>,
    tgt: Vec<f32>,
    decoder_out: Vec<f32>,
    actions_norm: Vec<f32>,
    layers: Buffers,
    /// Serial, or a thread pool made at load (std).
    exec: alloc::boxed::Box<dyn Executor + Send + Sync>,
}

enum Stepper {
    Ensemble(TemporalEnsembler),
    Chunk { t: usize, chunk: Vec<f32> },
}

pub struct Policy {
    config: Config,
    norm: Normalization,
    isa: Isa,
    kernels: KernelChoice,
    weights: Weights,
    ws: Workspace,
    stepper: Stepper,
    /// What the weights, workspace and stepper hold, counted after allocation.
    memory_bytes: u64,
}

/// Views into the last `predict`/`step` computation, for tests and debugging.
pub struct Intermediates<'a> {
    /// Per camera: ResNet-18 layer4 output, NHWC [fh, fw, 512], and (fh, fw).
    pub backbone_features: Vec<(&'a [f32], (usize, usize))>,
    /// Encoder output, [tokens, dim], tokens in the order latent, state, camera 0 (row-major), ...
    pub encoder_memory: &'a [f32],
    /// Decoder output after its final LayerNorm, [chunk, dim].
    pub decoder_output: &'a [f32],
    /// Actions before un-normalisation, [chunk, action_dim].
    pub actions_normalized: &'a [f32],
}

impl Policy {
    /// Build a policy from a parsed configuration and the checkpoint's safetensors buffers (model
    /// weights first, then any processor files with statistics). All allocation happens here.
    pub fn new(config: Config, buffers: &[(&[u8], &str)], options: &Options) -> Result<Policy> {
        let isa = match options.isa {
            Some(isa) if !isa.is_supported() => return Err(config_err("isa", format!("{isa:?} is not supported by this CPU"))),
            Some(isa) => isa,
            None => Isa::detect(),
        };
        let threads = match options.threads {
            0 | 1 => 1,
            n if cfg!(feature = "std") && n <= 256 => n,
            n if cfg!(feature = "std") => return Err(config_err("threads", format!("{n} threads is more than 256"))),
            n => return Err(config_err("threads", format!("{n} threads need act-core's std feature"))),
        };
        match options.realtime_priority {
            #[cfg(feature = "std")]
            Some(p) => crate::realtime::check(p)?,
            #[cfg(not(feature = "std"))]
            Some(_) => return Err(config_err("realtime_priority", "worker threads need act-core's std feature")),
            None => {}
        }
        let mut config = config;
        if let Some(k) = options.n_action_steps {
            if k == 0 || k > config.chunk_size {
                return Err(config_err("n_action_steps", format!("{k} is outside 1..={}", config.chunk_size)));
            }
            config.n_action_steps = k;
        }
        for (i, size) in options.camera_sizes.iter().enumerate() {
            let Some((h, w)) = *size else { continue };
            let Some(cam) = config.cameras.get_mut(i) else {
                return Err(config_err("camera_sizes", format!("a size for camera {i}, but the config has {} cameras", config.cameras.len())));
            };
            if !(32..=8192).contains(&h) || !(32..=8192).contains(&w) {
                return Err(config_err("camera_sizes", format!("{h} x {w} for camera `{}`: each side must be 32..=8192", cam.name)));
            }
            (cam.height, cam.width) = (h, w);
        }
        let coeff = match options.ensembling {
            Ensembling::FromConfig => config.temporal_ensemble_coeff,
            Ensembling::Disabled => None,
            Ensembling::Coefficient(c) => Some(crate::ensemble::check_coefficient(c, config.chunk_size)?),
        };
        if options.accept != Accuracy::F32 && options.weights != WeightStorage::F32 {
            return Err(config_err("accept", format!("{:?} with weights {:?}: give either a storage to force or the accuracy to accept", options.accept, options.weights)));
        }
        if options.require_amx {
            // Checked before measuring: bf16 stands for whichever path `accept` admits.
            let path = if options.accept == Accuracy::F32 { options.weights } else { WeightStorage::Bf16 };
            if let Some(why) = crate::dispatch::amx_refusal(isa, path) {
                return Err(config_err("require_amx", why));
            }
        }
        let kernels = match (options.accept, options.weights) {
            (Accuracy::F32, storage @ (WeightStorage::Int8 | WeightStorage::Bf16)) => {
                let kernel = if storage == WeightStorage::Int8 { isa.int8_kernel_name() } else { isa.bf16_kernel_name() };
                let note = format!("{storage:?} weights, as given in Options::weights ({kernel} kernel){}", crate::dispatch::amx_note(isa));
                KernelChoice { isa, storage, note }
            }
            (Accuracy::F32, storage) => KernelChoice { isa, storage, note: format!("{storage:?} weights, as given in Options::weights") },
            // An accepted accuracy comes with f32 weights (checked above).
            (accept, _) => {
                let dim = config.dim_model;
                let tokens = config.n_tokens().clamp(32, 300);
                // A 3x3 convolution of ResNet-18's layer2 and the first feed-forward layer.
                choose_among(isa, accept, options.require_amx, &[(240, 9 * 128, 128), (tokens, dim, config.dim_feedforward.min(1024))])
            }
        };
        let options = &Options { weights: kernels.storage, ..*options };
        // Everything this policy will hold, before any of it is allocated.
        let plan = Plan::new(&config, Sizing { threads, nr: isa.nr(), storage: options.weights, ensembling: coeff.is_some() });
        plan.check(options.memory_budget.unwrap_or(DEFAULT_MEMORY_BUDGET))?;
        let store = TensorStore::parse(buffers)?;
        let norm = Normalization::load(&store, &config)?;
        if options.weights == WeightStorage::F16 && !isa.supports_f16() {
            return Err(config_err("weights", format!("f16 weights need F16C, which this CPU lacks for {isa:?}")));
        }
        if options.weights == WeightStorage::Bf16 && !isa.supports_bf16() {
            return Err(config_err(
                "weights",
                format!("the bf16 compute path needs AVX-512 BF16 (vdpbf16ps) or the Arm BF16 extension (BFDOT); the {isa:?} kernels on this CPU lack it"),
            ));
        }
        if options.weights == WeightStorage::F16Compute && !isa.supports_f16_compute() {
            return Err(config_err(
                "weights",
                format!("the fp16 compute path needs Arm FP16 arithmetic (FMLA .8H); the {isa:?} kernels on this CPU lack it"),
            ));
        }
        if options.weights == WeightStorage::Int8 && !isa.supports_int8() {
            return Err(config_err(
                "weights",
                format!("the int8 compute path needs {}; the {isa:?} kernels on this CPU lack it", Isa::INT8_REQUIREMENT),
            ));
        }
        let weights = load_weights(&store, &config, Packing { isa, storage: options.weights })?;
        let ws = Workspace::new(&config, isa, &weights, threads, options.realtime_priority)?;
        let stepper = match coeff {
            Some(c) => Stepper::Ensemble(TemporalEnsembler::try_new(c, config.chunk_size, config.action_dim)?),
            None => Stepper::Chunk { t: 0, chunk: zeroed(config.chunk_size * config.action_dim, "chunk execution buffer")? },
        };
        let stepper_bytes = match &stepper {
            Stepper::Ensemble(e) => e.bytes(),
            Stepper::Chunk { chunk, .. } => chunk.len() * 4,
        };
        let memory_bytes = (weights.bytes() + ws.bytes() + stepper_bytes) as u64;
        Ok(Policy { config, norm, isa, kernels, weights, ws, stepper, memory_bytes })
    }

    /// A single-file checkpoint (config in the safetensors metadata, docs/CHECKPOINT.md).
    pub fn from_bytes(bytes: &[u8], options: &Options) -> Result<Policy> {
        let store = TensorStore::parse(&[(bytes, "checkpoint")])?;
        let text = store.metadata("config").ok_or_else(|| {
            config_err("__metadata__.config", "missing: a single-file checkpoint carries config.json in its metadata")
        })?;
        let config = Config::from_json(text)?;
        drop(store);
        Policy::new(config, &[(bytes, "checkpoint")], options)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The kernels chosen at load: instruction set, weight storage (compute path) and a line on
    /// why (with `Options::accept`, the speeds measured on this CPU).
    pub fn kernels(&self) -> &KernelChoice {
        &self.kernels
    }

    /// Bytes of prepacked GEMM and convolution weights.
    pub fn weight_bytes(&self) -> usize {
        self.weights.packed_bytes()
    }

    /// Bytes the policy holds: packed weights, position embeddings, every buffer of the workspace
    /// and the stepper (what `Options::memory_budget` bounds; the checkpoint's bytes are not kept).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Threads a step runs on.
    pub fn threads(&self) -> usize {
        self.ws.exec.parts()
    }

    pub fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// The temporal-ensembling coefficient `step` uses, or `None` for chunk execution.
    pub fn ensemble_coefficient(&self) -> Option<f32> {
        match &self.stepper {
            Stepper::Ensemble(e) => Some(e.coefficient()),
            Stepper::Chunk { .. } => None,
        }
    }

    /// Predict one chunk: raw `qpos` (state_dim) and one u8 HWC RGB image per camera in config
    /// order in, un-normalised actions (chunk_size x action_dim, row-major) out. Allocates nothing.
    pub fn predict(&mut self, qpos: &[f32], images: &[&[u8]], out: &mut [f32]) -> Result<()> {
        let n = self.config.chunk_size * self.config.action_dim;
        check_len("actions_out", n, out.len())?;
        self.forward(qpos, images)?;
        let a = self.config.action_dim;
        for (row_out, row) in out.chunks_exact_mut(a).zip(self.ws.actions_norm.chunks_exact(a)) {
            self.unnormalize(row, row_out);
        }
        check_finite("actions", out)
    }

    /// One control step: the action for the current time, with temporal ensembling (query every
    /// step) or chunk execution (query every n_action_steps). Allocates nothing.
    pub fn step(&mut self, qpos: &[f32], images: &[&[u8]], action: &mut [f32]) -> Result<()> {
        let a = self.config.action_dim;
        check_len("action_out", a, action.len())?;
        match &mut self.stepper {
            Stepper::Ensemble(_) => {
                self.forward(qpos, images)?;
                let Stepper::Ensemble(e) = &mut self.stepper else { unreachable!() };
                e.push(&self.ws.actions_norm, action);
            }
            Stepper::Chunk { t, .. } => {
                let k = *t % self.config.n_action_steps;
                if k == 0 {
                    self.forward(qpos, images)?;
                } else {
                    validate_inputs(&self.config, qpos, images)?;
                }
                let Stepper::Chunk { t, chunk } = &mut self.stepper else { unreachable!() };
                if k == 0 {
                    chunk.copy_from_slice(&self.ws.actions_norm);
                }
                *t += 1;
                action.copy_from_slice(&chunk[k * a..(k + 1) * a]);
            }
        }
        let n = &self.norm;
        for (i, v) in action.iter_mut().enumerate() {
            *v = n.action.unnormalize(i, *v, n.action_eps);
        }
        check_finite("action", action)
    }

    /// Start a new episode: forget ensembling history and restart chunk execution.
    pub fn reset(&mut self) {
        match &mut self.stepper {
            Stepper::Ensemble(e) => e.reset(),
            Stepper::Chunk { t, .. } => *t = 0,
        }
    }

    /// Intermediate results of the last forward pass.
    pub fn intermediates(&self) -> Intermediates<'_> {
        let dim = self.config.dim_model;
        let tokens = self.config.n_tokens();
        Intermediates {
            backbone_features: self
                .ws
                .features
                .iter()
                .zip(&self.ws.feature_sizes)
                .map(|(f, &(h, w))| (&f[..h * w * FEATURE_CHANNELS], (h, w)))
                .collect(),
            encoder_memory: &self.ws.src[..tokens * dim],
            decoder_output: &self.ws.decoder_out[..self.config.chunk_size * dim],
            actions_normalized: &self.ws.actions_norm,
        }
    }

    fn unnormalize(&self, row: &[f32], out: &mut [f32]) {
        let n = &self.norm;
        for i in 0..row.len() {
            out[i] = n.action.unnormalize(i, row[i], n.action_eps);
        }
    }

    /// Sets `observation.environment_state` (raw, env_state_dim values) for the following
    /// `predict` and `step` calls, until set again; a model with an environment state refuses to
    /// run before it is set. Allocates nothing.
    pub fn set_environment_state(&mut self, env: &[f32]) -> Result<()> {
        let d = self.config.env_state_dim;
        if d == 0 {
            return Err(Error::InputLength { input: "environment_state (the model has none)", expected: 0, found: env.len() });
        }
        check_len("environment_state", d, env.len())?;
        if let Some(index) = env.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput { input: "environment_state", index });
        }
        self.ws.env_raw.copy_from_slice(env);
        self.ws.env_set = true;
        Ok(())
    }

    fn forward(&mut self, qpos: &[f32], images: &[&[u8]]) -> Result<()> {
        validate_inputs(&self.config, qpos, images)?;
        let (cfg, w, ws, isa, norm) = (&self.config, &self.weights, &mut self.ws, self.isa, &self.norm);
        let dim = cfg.dim_model;
        let eps = norm.eps;

        // Tokens 0 and 1: the latent (z = 0) and the projected normalised state.
        ws.src[..dim].copy_from_slice(&w.latent_token);
        for (i, (&q, s)) in qpos.iter().zip(ws.state.iter_mut()).enumerate() {
            *s = norm.state.normalize(i, q, eps);
            if !s.is_finite() {
                // Finite but so far from the statistics that normalising overflows f32.
                return Err(Error::NonFiniteInput { input: "qpos (after normalisation: (qpos - mean) / (std + eps) overflows)", index: i });
            }
        }
        w.state_proj.forward(isa, &ws.state, 1, &mut ws.src[dim..2 * dim], None, false, &*ws.exec);
        // Token 2 (LeRobot's order: latent, state, environment state, images).
        if let Some(env_proj) = &w.env_proj {
            if !ws.env_set {
                return Err(Error::InputLength { input: "environment_state (call set_environment_state first)", expected: ws.env.len(), found: 0 });
            }
            for (i, (&x, e)) in ws.env_raw.iter().zip(ws.env.iter_mut()).enumerate() {
                *e = norm.env.normalize(i, x, eps);
                if !e.is_finite() {
                    return Err(Error::NonFiniteInput { input: "environment_state (after normalisation)", index: i });
                }
            }
            env_proj.forward(isa, &ws.env, 1, &mut ws.src[2 * dim..3 * dim], None, false, &*ws.exec);
        }

        // Image tokens, camera by camera.
        let mut row = cfg.n_1d_tokens();
        for (c, cam) in cfg.cameras.iter().enumerate() {
            let (h, wd) = (cam.height, cam.width);
            let st = &norm.images[c];
            let mut scale = [0.0f32; 3];
            let mut shift = [0.0f32; 3];
            for ch in 0..3 {
                (scale[ch], shift[ch]) = st.pixel_affine(ch, eps);
            }
            // Normalise into the interior of the zero-padded input buffer.
            let wp = wd + 2 * IMAGE_PAD;
            zero_border(&mut ws.image, h, wd, 3, IMAGE_PAD);
            for y in 0..h {
                let src = &images[c][y * wd * 3..(y + 1) * wd * 3];
                let dst = &mut ws.image[((y + IMAGE_PAD) * wp + IMAGE_PAD) * 3..][..wd * 3];
                for (px, out) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
                    for ch in 0..3 {
                        out[ch] = px[ch] as f32 * scale[ch] - shift[ch];
                    }
                }
            }
            let (fh, fw) = w.backbone.forward(isa, &ws.image, h, wd, &mut ws.backbone, &mut ws.features[c], &*ws.exec);
            w.img_proj.forward(isa, &ws.features[c], fh * fw, &mut ws.src[row * dim..], None, false, &*ws.exec);
            row += fh * fw;
        }
        let tokens = row;

        for layer in &w.encoder {
            layer.forward(isa, cfg.feedforward_activation, &mut ws.src, &w.encoder_pos, tokens, &mut ws.layers, &*ws.exec);
        }
        let m = tokens * dim;
        for ((o, &x), &p) in ws.memory_pos[..m].iter_mut().zip(&ws.src[..m]).zip(&w.encoder_pos[..m]) {
            *o = x + p;
        }

        let chunk = cfg.chunk_size;
        ws.tgt[..chunk * dim].fill(0.0);
        for layer in &w.decoder {
            layer.forward(isa, cfg.feedforward_activation, &mut ws.tgt, &w.query_pos, chunk, &ws.src, &ws.memory_pos, tokens, &mut ws.layers, &*ws.exec);
        }
        ws.decoder_out.copy_from_slice(&ws.tgt[..chunk * dim]);
        w.decoder_norm.forward(&mut ws.decoder_out);
        w.action_head.forward(isa, &ws.decoder_out, chunk, &mut ws.actions_norm, None, false, &*ws.exec);
        // Checked before a stepper records the chunk, so NaN never enters ensembling history.
        check_finite("actions (normalised)", &ws.actions_norm)
    }
}

fn check_len(input: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected != found {
        return Err(Error::InputLength { input, expected, found });
    }
    Ok(())
}

fn check_finite(output: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFiniteOutput { output, index }),
        None => Ok(()),
    }
}

pub(crate) fn validate_inputs(cfg: &Config, qpos: &[f32], images: &[&[u8]]) -> Result<()> {
    check_len("qpos", cfg.state_dim, qpos.len())?;
    if let Some(index) = qpos.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteInput { input: "qpos", index });
    }
    check_len("images (one per camera)", cfg.cameras.len(), images.len())?;
    for (cam, img) in cfg.cameras.iter().zip(images) {
        check_len("image (height x width x 3 bytes)", cam.height * cam.width * 3, img.len())?;
    }
    Ok(())
}


impl Workspace {
    fn new(cfg: &Config, isa: Isa, w: &Weights, threads: usize, priority: Option<u8>) -> Result<Workspace> {
        let dim = cfg.dim_model;
        let tokens = cfg.n_tokens();
        let rows = tokens.max(cfg.chunk_size);
        let max_h = cfg.cameras.iter().map(|c| c.height).max().unwrap_or(0);
        let max_w = cfg.cameras.iter().map(|c| c.width).max().unwrap_or(0);
        let feature_sizes: Vec<(usize, usize)> = cfg.cameras.iter().map(|c| Config::feature_size(c.height, c.width)).collect();
        let features =
            feature_sizes.iter().map(|&(h, w)| zeroed(h * w * FEATURE_CHANNELS, "feature maps")).collect::<Result<Vec<_>>>()?;
        Ok(Workspace {
            image: zeroed(cfg.cameras.iter().map(|c| padded_len(c.height, c.width, 3, IMAGE_PAD)).max().unwrap_or(0), "input image buffer")?,
            // conv1's output size grows with each side, so the largest sides bound every camera.
            backbone: w.backbone.buffers(max_h, max_w)?,
            features,
            feature_sizes,
            state: zeroed(cfg.state_dim, "state buffer")?,
            env_raw: zeroed(cfg.env_state_dim, "state buffer")?,
            env_set: false,
            env: zeroed(cfg.env_state_dim, "state buffer")?,
            src: zeroed(rows * dim, "transformer buffers")?,
            memory_pos: zeroed(tokens * dim, "transformer buffers")?,
            tgt: zeroed(rows * dim, "transformer buffers")?,
            decoder_out: zeroed(cfg.chunk_size * dim, "transformer buffers")?,
            actions_norm: zeroed(cfg.chunk_size * cfg.action_dim, "actions")?,
            layers: Buffers::new(isa, rows, dim, cfg.dim_feedforward, cfg.n_heads, threads)?,
            exec: make_executor(threads, priority)?,
        })
    }
}

impl Workspace {
    fn bytes(&self) -> usize {
        let floats = self.image.len()
            + self.features.iter().map(Vec::len).sum::<usize>()
            + self.state.len()
            + self.env_raw.len()
            + self.env.len()
            + self.src.len()
            + self.memory_pos.len()
            + self.tgt.len()
            + self.decoder_out.len()
            + self.actions_norm.len();
        floats * 4 + self.backbone.bytes() + self.layers.bytes()
    }
}


fn make_executor(threads: usize, priority: Option<u8>) -> Result<alloc::boxed::Box<dyn Executor + Send + Sync>> {
    #[cfg(feature = "std")]
    if threads > 1 {
        return Ok(alloc::boxed::Box::new(crate::kernels::exec::ThreadPool::with_priority(threads, priority)?));
    }
    let _ = (threads, priority);
    Ok(alloc::boxed::Box::new(crate::kernels::exec::Serial))
}

impl core::fmt::Debug for Policy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Policy").field("config", &self.config).field("isa", &self.isa).finish_non_exhaustive()
    }
}

