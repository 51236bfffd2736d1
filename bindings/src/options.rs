//! `act_options` (C) to act-core's `Options`: every field range-checked, with a message naming the
//! field.

use act::{Alignment, Ensembling, Isa, Options};

use crate::handle::{global_fail, Fail};
use crate::types::act_status::*;
use crate::types::{act_isa, act_options};

/// Zero-initialised options, the documented defaults.
pub(crate) fn default_options() -> act_options {
    act_options { threads: 0, ensembling: 0, ensemble_coeff: 0.0, isa: 0, precision: 0, realtime_priority: 0, asynchronous: 0, memory_budget: 0, camera_sizes: [[0; 2]; 16] }
}

/// The load options, and the asynchronous stepper's alignment when `asynchronous` asks for it.
pub(crate) fn parse_options(options: *const act_options) -> Result<(Options, Option<Alignment>), Fail> {
    let o = if options.is_null() {
        default_options()
    } else {
        if !options.is_aligned() {
            return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options pointer is misaligned")));
        }
        // SAFETY: non-NULL, aligned; the caller passes a readable act_options.
        unsafe { *options }
    };
    if o.threads > 256 {
        return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.threads = {} is more than 256", o.threads)));
    }
    let ensembling = match o.ensembling {
        0 => Ensembling::FromConfig,
        1 => Ensembling::Disabled,
        // Any finite coefficient (negative: newer predictions weigh more, as LeRobot allows); its
        // range against chunk_size is checked at load.
        2 if o.ensemble_coeff.is_finite() => Ensembling::Coefficient(o.ensemble_coeff),
        2 => {
            return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.ensemble_coeff = {} must be finite", o.ensemble_coeff)));
        }
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.ensembling = {v} is not an act_ensembling value"))),
    };
    let isa = match o.isa {
        0 => None,
        1 => Some(Isa::Scalar),
        2 => Some(Isa::Avx2),
        3 => Some(Isa::Avx512),
        4 => Some(Isa::Neon),
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.isa = {v} is not an act_isa value"))),
    };
    if let Some(isa) = isa
        && !isa.is_supported()
    {
        return Err(global_fail(ACT_ERR_UNSUPPORTED, format_args!("options.isa: {isa:?} is not supported by this CPU")));
    }
    let (weights, accept) = match o.precision {
        0 | 1 => (act::WeightStorage::F32, act::Accuracy::F32),
        2 => (act::WeightStorage::F16, act::Accuracy::F32),
        3 | 8 => (act::WeightStorage::Bf16, act::Accuracy::F32),
        4 => (act::WeightStorage::F16Compute, act::Accuracy::F32),
        5 | 9 => (act::WeightStorage::Int8, act::Accuracy::F32),
        6 => (act::WeightStorage::F32, act::Accuracy::Bf16),
        7 => (act::WeightStorage::F32, act::Accuracy::Int8),
        v => return Err(global_fail(ACT_ERR_UNSUPPORTED, format_args!("options.precision = {v} is not an act_precision value (0..=9)"))),
    };
    let require_amx = matches!(o.precision, 8 | 9);
    let realtime_priority = match o.realtime_priority {
        0 => None,
        p => Some(u8::try_from(p).map_err(|_| {
            global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.realtime_priority = {p} is not a SCHED_FIFO priority (1..=99 on Linux)"))
        })?),
    };
    let alignment = match o.asynchronous {
        0 => None,
        1 => Some(Alignment::Observation),
        2 => Some(Alignment::Arrival),
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.asynchronous = {v} is not an act_asynchronous value"))),
    };
    let memory_budget = (o.memory_budget != 0).then_some(o.memory_budget);
    let mut camera_sizes = [None; act::config::MAX_CAMERAS];
    for (slot, &[h, w]) in camera_sizes.iter_mut().zip(&o.camera_sizes) {
        match (h, w) {
            (0, 0) => {}
            (0, _) | (_, 0) => {
                return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.camera_sizes: {h} x {w}: set both sides or neither")));
            }
            _ => *slot = Some((h as usize, w as usize)),
        }
    }
    Ok((Options { ensembling, isa, threads: o.threads as usize, weights, accept, require_amx, realtime_priority, memory_budget, camera_sizes, ..Default::default() }, alignment))
}

pub(crate) fn isa_code(isa: Isa) -> u32 {
    match isa {
        Isa::Scalar => act_isa::ACT_ISA_SCALAR as u32,
        Isa::Avx2 => act_isa::ACT_ISA_AVX2 as u32,
        Isa::Avx512 => act_isa::ACT_ISA_AVX512 as u32,
        Isa::Neon => act_isa::ACT_ISA_NEON as u32,
    }
}


/// The `act_precision` code of the compute path a policy runs.
pub(crate) fn precision_code(storage: act::WeightStorage) -> u32 {
    use crate::types::act_precision;
    (match storage {
        act::WeightStorage::F32 => act_precision::ACT_PRECISION_F32,
        act::WeightStorage::F16 => act_precision::ACT_PRECISION_F16_WEIGHTS,
        act::WeightStorage::Bf16 => act_precision::ACT_PRECISION_BF16,
        act::WeightStorage::F16Compute => act_precision::ACT_PRECISION_F16,
        act::WeightStorage::Int8 => act_precision::ACT_PRECISION_INT8,
    }) as u32
}
