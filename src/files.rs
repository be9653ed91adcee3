//! Files the user names, read whole or replaced: only regular files. A device or a pipe named
//! as an input (`/dev/zero`, a FIFO) would be read without end, and renaming a freshly written
//! file over one named as an output would replace the device node itself.

use crate::error::{Error, Result};
use std::path::Path;

/// Why `path` is not a regular file, if it exists and is not one (links are followed).
fn not_regular(path: &Path) -> Option<&'static str> {
    let m = std::fs::metadata(path).ok()?;
    if m.is_file() {
        None
    } else if m.is_dir() {
        Some("a folder")
    } else {
        Some("a device, pipe or socket")
    }
}

fn refused(path: &Path) -> Option<std::io::Error> {
    not_regular(path).map(|kind| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file; name a file"),
        )
    })
}

/// Ok for a regular file (or a missing path, which the caller's open reports); an error of
/// kind `InvalidInput` for anything else.
pub fn regular(path: &Path) -> std::io::Result<()> {
    refused(path).map_or(Ok(()), Err)
}

/// `std::fs::read`, refusing anything but a regular file (an error of kind `InvalidInput`).
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    regular(path)?;
    std::fs::read(path)
}

/// `std::fs::read_to_string`, refusing anything but a regular file.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    regular(path)?;
    std::fs::read_to_string(path)
}

/// An output `path` that a temporary file will be renamed over must be absent or a regular
/// file (or a link, which the rename replaces, not its target); `what` names it and `fix` says
/// what to pass instead.
pub fn replaceable(path: &Path, what: &str, fix: &str) -> Result<()> {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match not_regular(path).filter(|_| !link) {
        Some(kind) => Err(Error::Invalid(format!(
            "{what} {} is {kind}, not a regular file: {fix}",
            path.display()
        ))),
        None => Ok(()),
    }
}
