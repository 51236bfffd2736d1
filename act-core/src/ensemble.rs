//! Temporal ensembling (ACT_SPEC.md section 5): every step's chunk is kept for `chunk` steps; the
//! action for time t averages every stored prediction for t with weights `exp(-m * i)`, i = 0 for
//! the OLDEST prediction, normalised to sum to one. Fixed capacity; `push` never allocates.
use crate::error::Result;
use crate::memory::zeroed;
use alloc::vec::Vec;

/// LeRobot accepts any coefficient (negative: newer predictions weigh more); the weights
/// `exp(-m i)`, i < chunk, must stay finite in f32 for the normalisation to mean anything.
pub fn check_coefficient(m: f32, chunk: usize) -> Result<f32> {
    let largest = -m * chunk.saturating_sub(1) as f32;
    if !m.is_finite() || largest > 60.0 {
        return Err(crate::error::config_err(
            "temporal_ensemble_coeff",
            alloc::format!("{m}: the weight exp(-m * (chunk_size - 1)) = exp({largest}) overflows f32 (need -m * (chunk_size - 1) <= 60)"),
        ));
    }
    Ok(m)
}

pub struct TemporalEnsembler {
    coeff: f32,
    chunk: usize,
    action_dim: usize,
    /// Ring of the last `chunk` predicted chunks, slot `s % chunk` for the query at time s.
    history: Vec<f32>,
    /// `exp(-m * i)` for i in 0..chunk.
    weights: Vec<f32>,
    t: usize,
}

impl TemporalEnsembler {
    /// Panics where [`TemporalEnsembler::try_new`] returns an error.
    pub fn new(coeff: f32, chunk: usize, action_dim: usize) -> TemporalEnsembler {
        TemporalEnsembler::try_new(coeff, chunk, action_dim).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The history (`chunk x chunk x action_dim` floats) allocated with `try_reserve`; a size
    /// past `usize` or a refusal by the system is an error.
    pub fn try_new(coeff: f32, chunk: usize, action_dim: usize) -> Result<TemporalEnsembler> {
        let n = chunk.checked_mul(chunk).and_then(|n| n.checked_mul(action_dim)).unwrap_or(usize::MAX);
        Ok(TemporalEnsembler {
            coeff,
            chunk,
            action_dim,
            history: zeroed(n, "temporal-ensembling history")?,
            weights: zeroed(chunk, "temporal-ensembling history")?.into_iter().enumerate().map(|(i, _): (usize, f32)| libm::expf(-coeff * i as f32)).collect(),
            t: 0,
        })
    }

    /// Bytes of history and weights.
    pub fn bytes(&self) -> usize {
        4 * (self.history.len() + self.weights.len())
    }

    pub fn coefficient(&self) -> f32 {
        self.coeff
    }

    pub fn reset(&mut self) {
        self.t = 0;
    }

    /// The time step the next `push` belongs to.
    pub fn time(&self) -> usize {
        self.t
    }

    /// Record the chunk predicted at the current time (`chunk x action_dim`) and write the
    /// ensembled action for the current time to `out`; then advance time.
    pub fn push(&mut self, prediction: &[f32], out: &mut [f32]) {
        let (c, a) = (self.chunk, self.action_dim);
        let t = self.t;
        let slot = t % c;
        self.history[slot * c * a..(slot + 1) * c * a].copy_from_slice(&prediction[..c * a]);
        out[..a].fill(0.0);
        let mut total = 0.0;
        let oldest = (t + 1).saturating_sub(c);
        for (i, s) in (oldest..=t).enumerate() {
            let w = self.weights[i];
            let row = &self.history[((s % c) * c + (t - s)) * a..][..a];
            for (o, &v) in out[..a].iter_mut().zip(row) {
                *o += w * v;
            }
            total += w;
        }
        for o in &mut out[..a] {
            *o /= total;
        }
        self.t += 1;
    }
}
