//! act-train: the ACT model in tch (libtorch) with LeRobot's parameter names, and export to the
//! checkpoint forms act-core reads (docs/CHECKPOINT.md); the trainer: its command line ([`cli`]),
//! loop ([`train`]), loss ([`loss`]), checkpoints ([`checkpoint`]), data pipeline ([`data`], [`loader`], [`augment`]),
//! optimizer ([`optim`]), random numbers ([`rng`]), weight average ([`ema`]), curves ([`plot`]) and throughput benchmark ([`bench`]).

pub mod augment;
pub mod backbone_weights;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod loader;
pub mod ema;
pub mod export;
pub mod loss;
pub mod model;
pub mod names;
pub mod optim;
pub mod plot;
pub mod quantize;
pub mod random_export;
pub mod reference;
pub mod rng;
pub mod synthetic;
pub mod train;

pub use config::ActConfig;
pub use export::{CheckpointForm, ExportOptions, KeyNames, Stats, WeightDtype};
pub use model::{Act, ActOutputs};
