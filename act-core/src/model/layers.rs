//! Linear and LayerNorm layers with their weights prepacked for the GEMM kernel.
use crate::checkpoint::TensorStore;
use crate::error::Result;
use crate::kernels::exec::Executor;
use crate::kernels::gemm::{gemm, Epilogue};
use crate::kernels::norm::layer_norm;
use crate::kernels::pack::{MatrixA, PackedB, RowMap};
use crate::kernels::pack::Packing;
use crate::kernels::Isa;
use alloc::format;
use alloc::vec::Vec;

/// `y = x W^T + b` (PyTorch nn.Linear).
pub struct Linear {
    pub w: PackedB,
    pub b: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Linear {
    pub fn load(store: &TensorStore<'_>, prefix: &str, n_in: usize, n_out: usize, isa: Packing) -> Result<Linear> {
        let w = store.model(&format!("{prefix}.weight"), &[n_out, n_in])?;
        let b = store.model(&format!("{prefix}.bias"), &[n_out])?;
        Ok(Linear::from_parts(&w, b, n_in, n_out, isa))
    }

    pub fn from_parts(w: &[f32], b: Vec<f32>, n_in: usize, n_out: usize, isa: Packing) -> Linear {
        Linear { w: PackedB::from_weight_t(w, n_out, n_in, isa.nr(), isa.storage), b, n_in, n_out }
    }

    /// `out[rows x n_out] = x[rows x n_in] W^T + b (+ residual) (ReLU)`; x and out token-major.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        isa: Isa,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        residual: Option<&[f32]>,
        relu: bool,
        exec: &dyn Executor,
    ) {
        let a = MatrixA { data: x, ld: self.n_in, m: rows, k: self.n_in };
        let epi = Epilogue { bias: Some(&self.b), residual, relu };
        gemm(isa, &a, self.w.as_ref(), out, RowMap::Strided { ld: self.n_out }, epi, exec);
    }
}

/// LayerNorm with PyTorch's default eps.
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

pub const LAYER_NORM_EPS: f32 = 1e-5;

impl LayerNorm {
    pub fn load(store: &TensorStore<'_>, prefix: &str, dim: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: store.model(&format!("{prefix}.weight"), &[dim])?,
            beta: store.model(&format!("{prefix}.bias"), &[dim])?,
        })
    }

    pub fn forward(&self, x: &mut [f32]) {
        layer_norm(x, self.gamma.len(), &self.gamma, &self.beta, LAYER_NORM_EPS);
    }
}
