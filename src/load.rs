//! Reading a policy from disk: the policy file itself, bounded by
//! [`MAX_POLICY_BYTES`], and the key, CA and credential files it names
//! ([`Disk`], bounded by [`MAX_SIDE_FILE_BYTES`]). The one place where the
//! policy's inputs meet the file system; the policy core stays pure.

use std::io::Read as _;
use std::path::Path;

use crate::policy::{
    CompileErrors, MAX_POLICY_BYTES, MAX_SIDE_FILE_BYTES, SideFiles, Snapshot, too_large_message,
};

/// The files a policy names, read from disk (relative paths from the
/// working directory), each refused past [`MAX_SIDE_FILE_BYTES`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl SideFiles for Disk {
    fn read(&self, path: &str) -> Result<String, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        let mut text = String::new();
        file.take(MAX_SIDE_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {path:?}: {e}"))?;
        if text.len() as u64 > MAX_SIDE_FILE_BYTES {
            return Err(format!(
                "{path:?} is larger than {} KiB",
                MAX_SIDE_FILE_BYTES >> 10
            ));
        }
        Ok(text)
    }
}

/// Compiles a policy text, reading the files it names from disk.
pub fn compile(text: &str) -> Result<Snapshot, CompileErrors> {
    Snapshot::compile(text, &Disk)
}

/// Reads a policy file, refusing one larger than [`MAX_POLICY_BYTES`]
/// without reading it all (the same limit and message for every command).
pub fn read_policy_file(path: &Path) -> Result<String, PolicyFileError> {
    let read_error = |source| PolicyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// Why a policy file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read (or is not UTF-8).
    #[error("cannot read policy file {}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("{}: {}", path.display(), too_large_message())]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
    },
}
