//! act-train: the ACT model in tch (libtorch) with LeRobot's parameter names, and export to the
//! checkpoint forms act-core reads (docs/CHECKPOINT.md); the trainer ([`train`]) with its data
//! pipeline ([`data`]) and optimizer ([`optim`]).

pub mod config;
pub mod data;
pub mod export;
pub mod model;
pub mod names;
pub mod optim;
pub mod plot;
pub mod random_export;
pub mod reference;
pub mod synthetic;
pub mod train;

pub use config::ActConfig;
pub use export::{CheckpointForm, ExportOptions, KeyNames, Stats, WeightDtype};
pub use model::{Act, ActOutputs};
