//! The memory a policy will hold, computed from its configuration and options before anything is
//! allocated (checked arithmetic: a size past 2^64 bytes saturates), so that a config asking for
//! terabytes is refused with the sizes and fields that cause it instead of aborting the process;
//! and the one allocation helper the load path uses, which turns a refusal by the system into an
//! error (`try_reserve`, no_std included).
use crate::config::Config;
use crate::error::{Bytes, Error, Result};
use crate::kernels::pack::{int8_blocks, packed_b_len, packed_b_len_bf16, packed_b_len_int8, WeightStorage};
use crate::model::backbone::{padded_len, ACT_PAD, FEATURE_CHANNELS, IMAGE_PAD};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Default `Options::memory_budget`: 4 GiB. ACT's largest published configuration (4 cameras at
/// 480x640, 7 encoder layers, dim 512, chunk 100) holds about 0.5 GB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

const F32: u64 = 4;

/// One part of the plan: what it is, its bytes, and the sizes (config fields) that make it.
#[derive(Clone, Debug)]
pub struct Part {
    pub what: &'static str,
    pub bytes: u64,
    pub cause: String,
}

/// Every large buffer of a policy, as `Policy::new` will allocate it.
#[derive(Clone, Debug)]
pub struct Plan {
    pub parts: Vec<Part>,
}

fn mul(factors: &[u64]) -> u64 {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f)).unwrap_or(u64::MAX)
}

fn sum(terms: impl IntoIterator<Item = u64>) -> u64 {
    terms.into_iter().fold(0u64, |acc, t| acc.saturating_add(t))
}

/// ResNet-18's convolutions as GEMM operands (k = kh * kw * cin, n = cout).
const RESNET18_GEMMS: [(usize, usize, usize); 11] = [
    // (k, n, how many)
    (7 * 7 * 3, 64, 1),
    (9 * 64, 64, 4),
    (9 * 64, 128, 1),
    (9 * 128, 128, 3),
    (64, 128, 1),
    (9 * 128, 256, 1),
    (9 * 256, 256, 3),
    (128, 256, 1),
    (9 * 256, 512, 1),
    (9 * 512, 512, 3),
    (256, 512, 1),
];

/// Bytes of one packed k x n weight with `nr`-wide panels in `storage`, plus its f32 bias.
fn packed(k: usize, n: usize, nr: usize, storage: WeightStorage) -> u64 {
    let (len, elt) = match storage {
        WeightStorage::F32 => (packed_b_len(k, n, nr), 4),
        WeightStorage::F16 | WeightStorage::F16Compute => (packed_b_len(k, n, nr), 2),
        WeightStorage::Bf16 => (packed_b_len_bf16(k, n, nr), 2),
        // Bytes, plus per column a scale and one correction per k block.
        WeightStorage::Int8 => (packed_b_len_int8(k, n, nr) + n.div_ceil(nr) * nr * 4 * (1 + int8_blocks(k)), 1),
    };
    sum([mul(&[len as u64, elt]), mul(&[n as u64, F32])])
}

/// The settings besides the config that size a policy.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    pub threads: usize,
    /// GEMM panel width of the chosen kernels.
    pub nr: usize,
    pub storage: WeightStorage,
    pub ensembling: bool,
}

impl Plan {
    pub fn new(cfg: &Config, s: Sizing) -> Plan {
        let (d, ff, chunk, a) = (cfg.dim_model as u64, cfg.dim_feedforward as u64, cfg.chunk_size as u64, cfg.action_dim as u64);
        let tokens = cfg.n_tokens() as u64;
        let rows = tokens.max(chunk);
        let mut parts = Vec::new();
        let mut part = |what: &'static str, bytes: u64, cause: String| parts.push(Part { what, bytes, cause });

        let (dm, f) = (cfg.dim_model, cfg.dim_feedforward);
        // The int8 path keeps conv1 (the first entry), the state projection and the action head in
        // f32 (`Packing::int8_sensitive`).
        let sensitive = if s.storage == WeightStorage::Int8 { WeightStorage::F32 } else { s.storage };
        let conv = sum(RESNET18_GEMMS.iter().enumerate().map(|(i, &(k, n, c))| mul(&[c as u64, packed(k, n, s.nr, if i == 0 { sensitive } else { s.storage })])));
        let encoder_layer = sum([mul(&[4, packed(dm, dm, s.nr, s.storage)]), packed(dm, f, s.nr, s.storage), packed(f, dm, s.nr, s.storage)]);
        let decoder_layer = sum([mul(&[8, packed(dm, dm, s.nr, s.storage)]), packed(dm, f, s.nr, s.storage), packed(f, dm, s.nr, s.storage)]);
        let norms = mul(&[(2 * cfg.n_encoder_layers + 3 * cfg.n_decoder_layers + 1) as u64, 2, d, F32]);
        let weights = sum([
            conv,
            mul(&[cfg.n_encoder_layers as u64, encoder_layer]),
            mul(&[cfg.n_decoder_layers as u64, decoder_layer]),
            packed(FEATURE_CHANNELS, dm, s.nr, s.storage),
            packed(cfg.state_dim, dm, s.nr, sensitive),
            if cfg.env_state_dim > 0 { packed(cfg.env_state_dim, dm, s.nr, s.storage) } else { 0 },
            packed(dm, cfg.action_dim, s.nr, sensitive),
            norms,
            mul(&[d, F32]),
        ]);
        part(
            "weights",
            weights,
            format!(
                "ResNet-18, {} encoder and {} decoder layers of dim_model {dm} and dim_feedforward {f}, {:?}",
                cfg.n_encoder_layers, cfg.n_decoder_layers, s.storage
            ),
        );
        part(
            "position embeddings",
            mul(&[sum([tokens, chunk]), d, F32]),
            format!("(encoder tokens {tokens} + chunk_size {chunk}) x dim_model {d} x 4 bytes"),
        );

        let biggest = cfg.cameras.iter().max_by_key(|c| c.height.saturating_mul(c.width));
        let image = cfg.cameras.iter().map(|c| padded_len(c.height, c.width, 3, IMAGE_PAD) as u64).max().unwrap_or(0);
        let max_h = cfg.cameras.iter().map(|c| c.height).max().unwrap_or(0);
        let max_w = cfg.cameras.iter().map(|c| c.width).max().unwrap_or(0);
        // conv1 (7x7, stride 2, pad 3): the largest activation of the backbone, four buffers of it.
        let (oh, ow) = ((max_h + 2 * 3 - 7) / 2 + 1, (max_w + 2 * 3 - 7) / 2 + 1);
        let camera = biggest.map_or(String::new(), |c| format!("camera `{}` {} x {}", c.name, c.height, c.width));
        part("input image buffer", mul(&[image, F32]), format!("{camera} x 3 channels x 4 bytes"));
        part(
            "backbone activations",
            mul(&[4, padded_len(oh, ow, 64, ACT_PAD) as u64, F32]),
            format!("4 buffers of conv1's output {oh} x {ow} x 64 channels ({camera})"),
        );
        let features = sum(cfg.cameras.iter().map(|c| {
            let (h, w) = Config::feature_size(c.height, c.width);
            mul(&[(h * w) as u64, FEATURE_CHANNELS as u64, F32])
        }));
        part("feature maps", features, format!("{} cameras' layer4 outputs x 512 channels", cfg.cameras.len()));

        // src, tgt, q, k, v, attn, xp, tmp: rows x dim; memory_pos: tokens x dim; decoder_out:
        // chunk x dim; ff: rows x dim_feedforward.
        let stream = sum([mul(&[8, rows, d]), mul(&[tokens, d]), mul(&[chunk, d]), mul(&[rows, ff])]);
        part(
            "transformer buffers",
            mul(&[stream, F32]),
            format!("max(encoder tokens {tokens}, chunk_size {chunk}) rows x (8 x dim_model {d} + dim_feedforward {ff}) x 4 bytes"),
        );
        let hd = cfg.head_dim();
        let r = rows as usize;
        let packed_kv = packed_b_len(hd, r, s.nr).max(packed_b_len(r, hd, s.nr)) as u64;
        part(
            "attention scratch",
            mul(&[s.threads.max(1) as u64, sum([mul(&[rows, rows]), packed_kv]), F32]),
            format!("threads {} x (rows {rows})^2 attention scores x 4 bytes", s.threads.max(1)),
        );
        part(
            "actions",
            mul(&[sum([mul(&[2, chunk, a]), mul(&[3, cfg.state_dim as u64]), mul(&[2, cfg.env_state_dim as u64])]), F32]),
            format!("2 x chunk_size {chunk} x action_dim {a} x 4 bytes"),
        );
        if s.ensembling {
            part(
                "temporal-ensembling history",
                mul(&[sum([mul(&[chunk, chunk, a]), chunk]), F32]),
                format!("chunk_size {chunk} x chunk_size {chunk} x action_dim {a} x 4 bytes"),
            );
        }
        Plan { parts }
    }

    pub fn total(&self) -> u64 {
        sum(self.parts.iter().map(|p| p.bytes))
    }

    /// `Err(MemoryBudget)` naming the largest part when the total exceeds `budget`.
    pub fn check(&self, budget: u64) -> Result<()> {
        let total = self.total();
        if total <= budget {
            return Ok(());
        }
        let largest = self.parts.iter().max_by_key(|p| p.bytes).expect("a plan has parts");
        Err(Error::MemoryBudget {
            needed: total,
            budget,
            largest: format!("{} {} = {}", largest.what, Bytes(largest.bytes), largest.cause),
        })
    }
}

/// `n` default values in a vector allocated with `try_reserve_exact`: a refusal by the system
/// is `Error::AllocationFailed` naming `what`, not an abort.
pub fn zeroed<T: Clone + Default>(n: usize, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::AllocationFailed { what, bytes: mul(&[n as u64, core::mem::size_of::<T>() as u64]) })?;
    v.resize(n, T::default());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_allocation_is_an_error() {
        // More than isize::MAX bytes: refused by the allocator API itself on every platform.
        let e = zeroed::<f32>(usize::MAX / 2, "test buffer").unwrap_err();
        assert!(matches!(e, Error::AllocationFailed { what: "test buffer", .. }), "{e:?}");
    }

    #[test]
    fn sizes_saturate_instead_of_wrapping() {
        assert_eq!(mul(&[u64::MAX, 2]), u64::MAX);
        assert_eq!(sum([u64::MAX, 1]), u64::MAX);
        assert_eq!(mul(&[3, 5, 7]), 105);
    }
}
