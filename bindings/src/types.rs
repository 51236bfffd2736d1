//! The C-visible types, shared with the tests (tests/c_abi.rs includes this file) so that both
//! sides of the ABI use one definition.
#![allow(non_camel_case_types, dead_code)]
use core::ffi::c_char;

/// Status code returned by every `act_*` call. `ACT_OK` is 0; every other value is an error whose
/// text is in `act_policy_last_error` (calls on a handle) or `act_last_error` (opens, NULL handles).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum act_status {
    /// Success.
    ACT_OK = 0,
    /// A required pointer argument is NULL (including a NULL policy handle, e.g. after a failed open).
    ACT_ERR_NULL_POINTER = 1,
    /// An argument is out of range: an unknown option value, a camera index past the end, a
    /// misaligned `float` pointer, an output buffer that overlaps an input.
    ACT_ERR_INVALID_ARGUMENT = 2,
    /// The checkpoint file or directory cannot be read, or is not a regular file (a FIFO, a device,
    /// a directory where a file belongs), or exceeds its size limit.
    ACT_ERR_IO = 3,
    /// The checkpoint is malformed: truncated, bad header, missing tensor, wrong shape,
    /// unsupported dtype, NaN or infinite weight, a statistic out of range (negative std or
    /// variance, a divisor near zero), two tensors naming the same weight.
    ACT_ERR_CHECKPOINT = 4,
    /// The checkpoint's configuration is missing, malformed or out of the supported range.
    ACT_ERR_CONFIG = 5,
    /// The option is valid but not available here (an instruction set this CPU lacks, a compute
    /// precision act-core does not implement).
    ACT_ERR_UNSUPPORTED = 6,
    /// An input or output has the wrong size: qpos length, number of images, an image's height or
    /// width, the action buffer's length.
    ACT_ERR_INPUT_SIZE = 7,
    /// qpos holds NaN or infinity.
    ACT_ERR_NON_FINITE_INPUT = 8,
    /// An internal error (a Rust panic, caught at the boundary). The handle is unusable afterwards:
    /// every later call on it returns this status; free it and open a new one.
    ACT_ERR_INTERNAL = 9,
    /// The model produced NaN or infinity (extreme weights, statistics or inputs); the action
    /// buffer holds no usable action and must not be sent to a robot.
    ACT_ERR_NON_FINITE_OUTPUT = 10,
    /// The policy would hold more memory than `act_options.memory_budget` allows (the message
    /// names the largest part and the config fields that size it), or the system refused an
    /// allocation. Nothing was allocated for the policy.
    ACT_ERR_OUT_OF_MEMORY = 11,
}

/// `act_options.ensembling`: how `act_policy_step` turns predicted chunks into actions.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum act_ensembling {
    /// Use the checkpoint's `temporal_ensemble_coeff`: temporal ensembling if it is set, chunk
    /// execution otherwise. The default (0).
    ACT_ENSEMBLING_FROM_CONFIG = 0,
    /// Chunk execution: predict every `n_action_steps` steps and execute the chunk's actions in order.
    ACT_ENSEMBLING_DISABLED = 1,
    /// Temporal ensembling with `act_options.ensemble_coeff` (any finite value; negative: newer
    /// predictions weigh more; -m * (chunk_size - 1) <= 60): predict every step.
    ACT_ENSEMBLING_COEFFICIENT = 2,
}

/// `act_options.isa`: the instruction set of the numeric kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum act_isa {
    /// The best one this CPU supports (the default, 0).
    ACT_ISA_AUTO = 0,
    /// Portable code, any CPU.
    ACT_ISA_SCALAR = 1,
    /// x86_64 AVX2 + FMA.
    ACT_ISA_AVX2 = 2,
    /// x86_64 AVX-512F.
    ACT_ISA_AVX512 = 3,
    /// aarch64 Advanced SIMD (NEON).
    ACT_ISA_NEON = 4,
}

/// `act_options.precision`: the compute precision.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum act_precision {
    /// The default (0): currently f32.
    ACT_PRECISION_DEFAULT = 0,
    /// f32 compute (weights stored as f16/bf16 are widened at load). Any value not listed here
    /// returns `ACT_ERR_UNSUPPORTED`.
    ACT_PRECISION_F32 = 1,
    /// f32 compute with weights stored as f16 (half the weight memory, same speed on CPUs with
    /// AVX-512 or F16C; results within about 1e-3 of f32).
    ACT_PRECISION_F16_WEIGHTS = 2,
    /// bf16 compute: weights stored as bf16, the inputs of every weight GEMM and convolution
    /// rounded to bf16, products accumulated in f32 (`vdpbf16ps` / `BFDOT`). Needs AVX-512 BF16 or
    /// the Arm BF16 extension; on a CPU without either opening fails with `ACT_ERR_CONFIG`. Results
    /// within about 1e-2 of f32.
    ACT_PRECISION_BF16 = 3,
    /// fp16 compute: weights stored as f16, the inputs of every weight GEMM and convolution
    /// rounded to f16, products accumulated in f16 over each k block of 256 and in f32 across
    /// blocks (`FMLA .8H`, twice the multiply-adds per instruction of f32). Needs Arm FP16
    /// arithmetic (Cortex-A76/A78, Neoverse N1 and later); elsewhere opening fails with
    /// `ACT_ERR_CONFIG`. Results within about 1e-2 of f32; activations, products and partial sums
    /// must stay within f16's range (65504), or the actions become non-finite.
    ACT_PRECISION_F16 = 4,
    /// int8 compute: weights rounded to int8 per output channel, the inputs of every weight GEMM
    /// and convolution rounded to unsigned bytes over their range per row and k block of 256 at
    /// run time, products summed exactly in int32 (`vpdpbusd`, or `vpmaddwd` on AVX2 CPUs without
    /// VNNI); ResNet's first convolution, the state projection and the action head stay f32. Needs
    /// AVX-512 VNNI or AVX2; elsewhere opening fails with `ACT_ERR_CONFIG`.
    /// Results within a few 1e-2 of f32.
    ACT_PRECISION_INT8 = 5,
    /// The fastest of f32 and bf16 compute on this CPU, measured when the policy is opened (bf16
    /// only where it is at least 10 % faster); `act_policy_kernels` says which runs and why.
    ACT_PRECISION_FASTEST_BF16 = 6,
    /// The fastest of f32, bf16 and int8 compute on this CPU, measured when the policy is opened.
    ACT_PRECISION_FASTEST_INT8 = 7,
    /// `ACT_PRECISION_BF16` on AMX tiles (`tdpbf16ps`; Intel Xeon 4th generation and later), or
    /// fail: where the tiles cannot run (not in this CPU, not enabled by the OS, the OS refused
    /// the permission, `isa` other than AVX-512) opening fails with `ACT_ERR_CONFIG` and a message
    /// naming why, instead of running the AVX-512 kernels. GEMMs of fewer than 16 rows run on
    /// AVX-512 either way. `ACT_PRECISION_BF16` itself uses AMX where it can and AVX-512 BF16
    /// otherwise.
    ACT_PRECISION_AMX_BF16 = 8,
    /// `ACT_PRECISION_INT8` on AMX tiles (`tdpbusd`), or fail, as `ACT_PRECISION_AMX_BF16`. (There
    /// is no C form of a measured choice among the AMX paths: pick one.)
    ACT_PRECISION_AMX_INT8 = 9,
}

/// Which kernels a policy runs (`act_policy_kernels`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct act_kernels {
    /// The `act_isa` of the kernels (never `ACT_ISA_AUTO`).
    pub isa: u32,
    /// The `act_precision` of the compute path that runs: `ACT_PRECISION_F32`,
    /// `ACT_PRECISION_F16_WEIGHTS`, `ACT_PRECISION_BF16`, `ACT_PRECISION_F16` or
    /// `ACT_PRECISION_INT8` (never DEFAULT, a FASTEST or an AMX value: `ACT_PRECISION_AMX_BF16`
    /// reports `ACT_PRECISION_BF16`, and the note names the AMX kernel).
    pub precision: u32,
}

/// Load-time options. A zero-initialised struct (`act_options o = {0};`) means the defaults, the
/// same as passing NULL or `act_options_default()`. Enumerated fields are plain integers so that any
/// value a C caller writes is checked, never undefined behaviour.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct act_options {
    /// Threads per step: 0 or 1 = the calling thread only; N > 1 starts N - 1 worker threads at
    /// open, kept until act_policy_free (a step then wakes them; it still allocates nothing).
    pub threads: u32,
    /// An `act_ensembling` value.
    pub ensembling: u32,
    /// The temporal-ensembling coefficient, used when `ensembling == ACT_ENSEMBLING_COEFFICIENT`.
    pub ensemble_coeff: f32,
    /// An `act_isa` value.
    pub isa: u32,
    /// An `act_precision` value.
    pub precision: u32,
    /// 0: worker threads keep the scheduling policy of the thread that opens the policy. 1..=99
    /// (Linux): workers run under SCHED_FIFO at this priority, so time-sharing cannot preempt them
    /// mid-step; give the thread that calls act_policy_step the same priority
    /// (pthread_setschedparam). Needs root, CAP_SYS_NICE or `ulimit -r`; a refusal fails the open
    /// with ACT_ERR_CONFIG. A real-time loop must leave > 5 % of each second idle (Linux's
    /// sched_rt_runtime_us), or the kernel pauses it for the rest of that second.
    pub realtime_priority: u32,
    /// An `act_asynchronous` value: 0 (the default) = `act_policy_step` runs the model itself;
    /// otherwise queries run on an inference thread started at open and `act_policy_step` never
    /// waits for them (except on an episode's first step, for the first chunk).
    pub asynchronous: u32,
    /// The most memory the policy may hold, in bytes; 0 = the default, 4 GiB. Computed from the
    /// config before anything is allocated; a checkpoint file larger than it is not read.
    pub memory_budget: u64,
    /// Per camera in config order: {height, width} of the frames to load for instead of the
    /// config's `[3, H, W]` (ResNet-18 runs any size, as in LeRobot); {0, 0} = the config's. Each
    /// side 32..=8192; frames of another size than the loaded one stay ACT_ERR_INPUT_SIZE.
    pub camera_sizes: [[u32; 2]; 16],
}

/// `act_options.asynchronous`: who runs the model, and how a late chunk is placed in time.
///
/// Asynchronous: an inference thread (plus `threads - 1` workers) runs a query whenever it is free,
/// on the newest observation `act_policy_step` handed over; `act_policy_step` copies the
/// observation in and returns at once with the action for the current step from the chunks that
/// have arrived: temporal ensembling over every chunk covering the step (ensembling
/// `COEFFICIENT`, or `FROM_CONFIG` when the checkpoint sets a coefficient), else the newest chunk
/// alone. An episode's first step (after open or `act_policy_reset`) waits for its first chunk.
/// When every chunk is exhausted (queries slower than a chunk lasts) the last action is repeated.
/// `act_policy_async_status` says how old the newest chunk is and whether the last action was held;
/// `act_policy_predict_chunk` is refused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum act_asynchronous {
    /// Synchronous: `act_policy_step` runs the model in the calling thread (0, the default).
    ACT_ASYNC_OFF = 0,
    /// Asynchronous, a chunk aligned to the step of its observation: at step t a chunk from step
    /// t0's observation contributes its action t - t0 (the stale head is skipped).
    ACT_ASYNC_ALIGNED = 1,
    /// Asynchronous, a chunk played from its first action when it arrives (a plain queue, late by
    /// the query time; for comparison).
    ACT_ASYNC_NAIVE = 2,
}

/// What a policy expects and produces (`act_policy_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct act_info {
    /// Length of qpos for step and predict.
    pub state_dim: usize,
    /// Length of one action (step's output).
    pub action_dim: usize,
    /// Actions per predicted chunk (predict_chunk writes chunk_size * action_dim floats).
    pub chunk_size: usize,
    /// Actions executed per chunk when ensembling is off.
    pub n_action_steps: usize,
    /// Number of cameras: images per step, in camera order (`act_policy_camera`).
    pub n_cameras: usize,
    /// `ACT_ENSEMBLING_COEFFICIENT` (temporal ensembling) or `ACT_ENSEMBLING_DISABLED` (chunk
    /// execution): what `act_policy_step` does, with the options resolved.
    pub ensembling: u32,
    /// The ensembling coefficient in use; 0 when ensembling is disabled.
    pub ensemble_coeff: f32,
    /// The `act_isa` the kernels run on (never `ACT_ISA_AUTO`).
    pub isa: u32,
    /// The `act_asynchronous` value the policy was opened with.
    pub asynchronous: u32,
    /// Bytes the policy holds (weights and every buffer), as bounded by `act_options.memory_budget`.
    pub memory_bytes: u64,
    /// Length of `observation.environment_state` (`act_policy_set_environment_state`); 0 when the
    /// model has none.
    pub env_state_dim: usize,
    /// Input features of the checkpoint's config the model does not read (e.g. a real ALOHA's
    /// `observation.effort`): they are not passed to act_policy_step.
    pub n_ignored_inputs: usize,
}

/// Where an asynchronous policy's actions come from (`act_policy_async_status`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct act_async_status {
    /// Steps between the observation of the newest chunk received this episode and the last step
    /// (0: computed from the last step's own observation); -1 before an episode's first step.
    pub newest_chunk_age: i64,
    /// 1 when the last step repeated the action before it because every chunk was exhausted
    /// (queries slower than a chunk lasts), else 0.
    pub last_step_held: u32,
    /// Since open: steps served, chunks received, steps that held the action before them.
    pub steps: u64,
    pub chunks: u64,
    pub held_steps: u64,
}

/// One camera of the policy (`act_policy_camera`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct act_camera {
    /// The camera's name (`<cam>` of `observation.images.<cam>`), NUL-terminated, owned by the
    /// policy: valid until `act_policy_free`.
    pub name: *const c_char,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

/// One camera image: `height * width * 3` bytes, u8 RGB, row-major HWC, tightly packed. `height`
/// and `width` must equal the camera's (`act_policy_camera`); act-core does not resize.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct act_image {
    pub data: *const u8,
    pub height: usize,
    pub width: usize,
}

/// Cameras per policy, at most (act-core's config limit): `act_info.n_cameras <= ACT_MAX_CAMERAS`.
pub const ACT_MAX_CAMERAS: usize = 16;

