//! ACT's inference graph, one module per layer kind; `load` functions mirror the checkpoint keys.
pub mod backbone;
pub mod layers;
pub mod pos_embed;
pub mod transformer;
