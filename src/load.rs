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
        match read_bounded(Path::new(path), MAX_SIDE_FILE_BYTES) {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(format!(
                "{path:?} is larger than {} KiB",
                MAX_SIDE_FILE_BYTES >> 10
            )),
            Err(e) => Err(format!("cannot read {path:?}: {e}")),
        }
    }
}

/// The text of `path`, or `None` when it is longer than `limit` bytes
/// (found without reading more than one byte past it).
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Option<String>> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= limit).then_some(text))
}

/// Compiles a policy text, reading the files it names from disk.
pub fn compile(text: &str) -> Result<Snapshot, CompileErrors> {
    Snapshot::compile(text, &Disk)
}

/// Compiles a policy text, reading the files it names from disk and the
/// trusted roots refreshed over TUF from `roots`.
pub fn compile_with_roots(
    text: &str,
    roots: &crate::verify::tuf::TufRoots,
) -> Result<Snapshot, CompileErrors> {
    let inputs = crate::verify::tuf::WithTufRoots {
        files: &Disk,
        roots,
    };
    Snapshot::compile(text, &inputs)
}

/// Reads a policy file, refusing one larger than [`MAX_POLICY_BYTES`]
/// without reading it all (the same limit and message for every command).
pub fn read_policy_file(path: &Path) -> Result<String, PolicyFileError> {
    match read_bounded(path, MAX_POLICY_BYTES as u64) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(PolicyFileError::TooLarge {
            path: path.to_owned(),
        }),
        Err(source) => Err(PolicyFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
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
