//! The one error type of act-core. Load-time variants carry names; the variants that `predict`
//! and `step` can return carry only static data, so reporting them allocates nothing.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The file ends before the header or the tensor data it declares.
    Truncated { what: String },
    /// The safetensors header is not valid (bad length prefix, JSON, offsets).
    BadHeader { what: String },
    /// A tensor the model needs is absent.
    MissingTensor { name: String },
    /// A tensor has the wrong shape.
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor is stored in a dtype act-core does not read (only F32, F16, BF16).
    UnsupportedDtype { name: String, dtype: String },
    /// The configuration is missing, malformed, or out of the supported range.
    Config { field: String, reason: String },
    /// A statistics or weight value is NaN or infinite.
    NonFiniteWeight { name: String },
    /// An input has the wrong number of elements.
    InputLength { input: &'static str, expected: usize, found: usize },
    /// An input holds NaN or infinity.
    NonFiniteInput { input: &'static str, index: usize },
    /// A file could not be read (std only).
    Io { path: String, message: String },
    /// Two tensors of the checkpoint name the same model weight once names are mapped (e.g.
    /// `model.action_head.weight` and `action_head.weight`): which one to use would be a guess.
    DuplicateTensor { first: String, second: String },
    /// A normalisation statistic or a folded scale is outside its documented range (negative
    /// std or variance, a divisor below `MIN_DIVISOR`, ...): `name` is the tensor or field.
    BadStatistic { name: String, reason: String },
    /// The policy would hold more memory than the budget (`Options::memory_budget`, default
    /// `DEFAULT_MEMORY_BUDGET`): `needed` bytes in all, of which `largest` names the biggest part
    /// and the configuration fields that size it.
    MemoryBudget { needed: u64, budget: u64, largest: String },
    /// The system refused an allocation of `bytes` for `what` (computed within the budget).
    AllocationFailed { what: &'static str, bytes: u64 },
    /// The model produced NaN or infinity (index into `output`): extreme weights, statistics or
    /// inputs. The actions are not handed out.
    NonFiniteOutput { output: &'static str, index: usize },
    /// The asynchronous stepper's inference thread stopped: a query failed or panicked
    /// (`AsyncPolicy::failure` says which). The policy cannot produce new chunks.
    InferenceFailed,
}

pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what } => write!(f, "checkpoint is truncated: {what}"),
            Error::BadHeader { what } => write!(f, "checkpoint header is invalid: {what}"),
            Error::MissingTensor { name } => write!(f, "checkpoint has no tensor `{name}`"),
            Error::ShapeMismatch { name, expected, found } => {
                write!(f, "tensor `{name}` has shape {found:?}, expected {expected:?}")
            }
            Error::UnsupportedDtype { name, dtype } => {
                write!(f, "tensor `{name}` has dtype {dtype}; act-core reads F32, F16, BF16, and I8 with per-row scales")
            }
            Error::Config { field, reason } => write!(f, "config `{field}`: {reason}"),
            Error::NonFiniteWeight { name } => write!(f, "tensor `{name}` holds NaN or infinity"),
            Error::InputLength { input, expected, found } => {
                write!(f, "input `{input}` has {found} elements, expected {expected}")
            }
            Error::NonFiniteInput { input, index } => {
                write!(f, "input `{input}` holds NaN or infinity at index {index}")
            }
            Error::Io { path, message } => write!(f, "cannot read `{path}`: {message}"),
            Error::DuplicateTensor { first, second } => {
                write!(f, "tensors `{first}` and `{second}` both name the same model weight; keep one of them")
            }
            Error::BadStatistic { name, reason } => write!(f, "statistic `{name}`: {reason}"),
            Error::MemoryBudget { needed, budget, largest } => write!(
                f,
                "the policy would hold {} (largest part: {largest}), more than the memory budget of {} (Options::memory_budget)",
                Bytes(*needed),
                Bytes(*budget)
            ),
            Error::AllocationFailed { what, bytes } => write!(f, "the system refused {} for {what}", Bytes(*bytes)),
            Error::NonFiniteOutput { output, index } => {
                write!(f, "the model produced NaN or infinity in `{output}` at index {index} (extreme weights, statistics or inputs)")
            }
            Error::InferenceFailed => write!(f, "the inference thread stopped after a failed query; open the policy again"),
        }
    }
}

impl core::error::Error for Error {}

/// A byte count for people: "6.55 TB", "412.3 MB", "17 bytes" (decimal units).
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b == u64::MAX {
            return f.write_str("more than 2^64 bytes");
        }
        let units = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
        for (scale, unit) in units {
            if b as f64 >= scale {
                return write!(f, "{:.2} {unit} ({b} bytes)", b as f64 / scale);
            }
        }
        write!(f, "{b} bytes")
    }
}

pub(crate) fn config_err(field: &str, reason: impl Into<String>) -> Error {
    Error::Config { field: field.into(), reason: reason.into() }
}
