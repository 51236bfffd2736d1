//! What a handle runs: the synchronous policy, or the asynchronous stepper that owns it on an
//! inference thread (`act_options.asynchronous`). The C calls see one interface.
use act::{AsyncPolicy, Config, Isa, KernelChoice, Policy};

// One per handle, which is boxed anyway: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Runner {
    Sync(Policy),
    Async {
        policy: AsyncPolicy,
        /// Read from the policy before it moved onto the inference thread.
        kernels: KernelChoice,
        ensemble_coeff: Option<f32>,
        memory_bytes: u64,
    },
}

impl Runner {
    pub(crate) fn config(&self) -> &Config {
        match self {
            Runner::Sync(p) => p.config(),
            Runner::Async { policy, .. } => policy.config(),
        }
    }

    pub(crate) fn isa(&self) -> Isa {
        match self {
            Runner::Sync(p) => p.isa(),
            Runner::Async { kernels, .. } => kernels.isa,
        }
    }

    pub(crate) fn kernels(&self) -> &KernelChoice {
        match self {
            Runner::Sync(p) => p.kernels(),
            Runner::Async { kernels, .. } => kernels,
        }
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        match self {
            Runner::Sync(p) => p.memory_bytes(),
            Runner::Async { memory_bytes, .. } => *memory_bytes,
        }
    }

    pub(crate) fn ensemble_coefficient(&self) -> Option<f32> {
        match self {
            Runner::Sync(p) => p.ensemble_coefficient(),
            Runner::Async { ensemble_coeff, .. } => *ensemble_coeff,
        }
    }

    pub(crate) fn step(&mut self, qpos: &[f32], images: &[&[u8]], action: &mut [f32]) -> act::Result<()> {
        match self {
            Runner::Sync(p) => p.step(qpos, images, action),
            Runner::Async { policy, .. } => policy.step(qpos, images, action),
        }
    }

    pub(crate) fn reset(&mut self) {
        match self {
            Runner::Sync(p) => p.reset(),
            Runner::Async { policy, .. } => policy.reset(),
        }
    }
}
