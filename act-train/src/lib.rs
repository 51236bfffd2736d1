//! act-train: the ACT model in tch (libtorch) with LeRobot's parameter names, and export to the
//! checkpoint forms act-core reads (docs/CHECKPOINT.md).

pub mod config;
pub mod export;
pub mod model;
pub mod names;
pub mod random_export;

pub use config::ActConfig;
pub use export::{CheckpointForm, ExportOptions, KeyNames, Stats, WeightDtype};
pub use model::{Act, ActOutputs};
