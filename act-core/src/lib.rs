//! act-core: inference for ACT (Action Chunking with Transformers) policies.
//!
//! `#![no_std]` + `alloc`: [`Policy::new`] parses a checkpoint from byte slices, prepacks the
//! weights and allocates every buffer once; [`Policy::predict`] and [`Policy::step`] then run
//! without allocating. The `std` feature adds [`Policy::open`] for checkpoint files and LeRobot
//! checkpoint directories (read, not mapped: see `fs`).
//!
//! Layout after llama2.c: [`Config`] is the blueprint, the model modules hold the weights, the
//! workspace holds every activation, and `forward` only reads and writes them.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod async_policy;
pub mod blend;
pub mod checkpoint;
pub mod config;
pub mod dispatch;
pub mod ensemble;
pub mod error;
#[cfg(feature = "std")]
mod handoff;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod normalize;
pub mod policy;
mod weights;

#[cfg(feature = "std")]
pub mod fs;
#[cfg(feature = "std")]
pub mod realtime;

#[cfg(feature = "std")]
pub use async_policy::{AsyncOptions, AsyncPolicy, ChunkSource};
pub use blend::{Alignment, AsyncStats, Blend, ChunkBlender, Served};
pub use dispatch::{Accuracy, KernelChoice};
pub use config::{Activation, Camera, Config, NormMapping, NormMode, ProcessorSettings};
pub use normalize::{FeatureNorm, Normalization};
pub use ensemble::TemporalEnsembler;
pub use error::{Error, Result};
pub use kernels::{Isa, WeightStorage};
pub use memory::DEFAULT_MEMORY_BUDGET;
pub use policy::{Ensembling, Intermediates, Options, Policy};
