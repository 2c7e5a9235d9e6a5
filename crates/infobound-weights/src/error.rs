//! The one error type of the weights crate.

use std::fmt;
use std::path::PathBuf;

/// Why weights could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The network has no PyTorch counterpart with documented key names.
    #[error("{network}: no PyTorch key names are defined for this network ({reason})")]
    UnsupportedNetwork {
        /// The network, as its configuration names it.
        network: String,
        /// What is missing.
        reason: String,
    },
    /// A parameter of the network has no PyTorch key: the configuration given does not describe
    /// this network.
    #[error(
        "parameter {parameter} has no PyTorch key: the configuration does not describe this network"
    )]
    ConfigMismatch {
        /// Our module path of the parameter.
        parameter: String,
    },
    /// The file's extension names no format this crate reads or writes.
    #[error(
        "{}: unknown weights format (use .safetensors, or .pt / .pth for PyTorch's torch.save files)",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Export writes safetensors only (a PyTorch `.pt` file is a pickle, which burn-store reads
    /// but does not write).
    #[error("{}: weights are exported as safetensors only", path.display())]
    ExportFormat {
        /// The requested output file.
        path: PathBuf,
    },
    /// burn-store could not read or write the file (I/O, a malformed container, a missing
    /// top-level key).
    #[error("{}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What burn-store reported.
        message: String,
    },
    /// The file lacks tensors the network needs.
    #[error("{}: {} key(s) missing: {}", path.display(), keys.len(), KeyList(keys))]
    MissingKeys {
        /// The file.
        path: PathBuf,
        /// The PyTorch key names that are absent (after the prefix, if one was given).
        keys: Vec<String>,
    },
    /// The file holds tensors the network has no place for.
    #[error("{}: {} unexpected key(s): {}", path.display(), keys.len(), KeyList(keys))]
    UnexpectedKeys {
        /// The file.
        path: PathBuf,
        /// The keys with no counterpart in the network (after the prefix, if one was given).
        keys: Vec<String>,
    },
    /// A tensor has another shape than the network's parameter.
    #[error(
        "{}: {key} has shape {found:?}, the network needs {expected:?}",
        path.display()
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// The network's shape (PyTorch layout).
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A floating-point tensor of a `.pt` file is not float32 (burn-store's PyTorch reader keeps
    /// the file's dtype; convert with `.float()` before `torch.save`, or use safetensors, which
    /// is cast on load).
    #[error(
        "{}: {key} is {dtype}; PyTorch files must hold float32 weights",
        path.display()
    )]
    DType {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// The dtype found.
        dtype: String,
    },
    /// A key prefix that does not form a pattern (it is escaped, so this is not expected).
    #[error("key prefix {prefix:?}: {message}")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
        /// The regex compiler's message.
        message: String,
    },
    /// Loading a tensor that passed the key and shape checks failed in burn-store.
    #[error("{}: loading failed: {message}", path.display())]
    Apply {
        /// The file.
        path: PathBuf,
        /// burn-store's account of the failures.
        message: String,
    },
}

/// Up to ten keys, comma-separated, then how many more.
struct KeyList<'a>(&'a [String]);

impl fmt::Display for KeyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        let shown: Vec<&str> = self.0.iter().take(SHOWN).map(String::as_str).collect();
        write!(f, "{}", shown.join(", "))?;
        if self.0.len() > SHOWN {
            write!(f, " and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}
