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
                write!(f, "tensor `{name}` has dtype {dtype}; act-core reads F32, F16 and BF16")
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
            Error::InferenceFailed => write!(f, "the inference thread stopped after a failed query; open the policy again"),
        }
    }
}

impl core::error::Error for Error {}

pub(crate) fn config_err(field: &str, reason: impl Into<String>) -> Error {
    Error::Config { field: field.into(), reason: reason.into() }
}
