//! Files the user names. A device named as an input (`/dev/zero`, a disk) may never end, so it
//! is refused before it is read whole (a pipe is read: it ends when its writer closes, and
//! `<(…)` is one); and a freshly written file is never renamed over anything but a regular file
//! named as an output, which would replace a device node or a pipe with the file.

use crate::error::{Error, Result};
use std::path::Path;

/// What `path` is, if it exists and is not a regular file (links are followed).
fn kind(path: &Path) -> Option<&'static str> {
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if is_device(&t) {
        Some("a device")
    } else {
        Some("a pipe or socket")
    }
}

#[cfg(unix)]
fn is_device(t: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    t.is_char_device() || t.is_block_device()
}

#[cfg(not(unix))]
fn is_device(_: &std::fs::FileType) -> bool {
    false
}

/// Why `path` cannot be opened as a file, for a message "{what} {path} {why}: {fix}": "not
/// found", "is a folder", "is a device, not a regular file", or `None` for a regular file.
pub fn not_a_file(path: &Path) -> Option<String> {
    match (path.exists(), kind(path)) {
        (false, _) => Some("not found".into()),
        (true, Some("a folder")) => Some("is a folder".into()),
        (true, Some(k)) => Some(format!("is {k}, not a regular file")),
        (true, None) => None,
    }
}

/// Ok unless `path` is a device (a missing path is left to the caller's open to report).
pub fn readable(path: &Path) -> std::io::Result<()> {
    match kind(path) {
        Some(k @ "a device") => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {k}, not a regular file; name a file"),
        )),
        _ => Ok(()),
    }
}

/// `std::fs::read`, refusing a device (an error of kind `InvalidInput`).
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    readable(path)?;
    std::fs::read(path)
}

/// `std::fs::read_to_string`, refusing a device.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    readable(path)?;
    std::fs::read_to_string(path)
}

/// Whether `a` and `b` are one file: the same path once links are followed, or two hard links
/// to one inode (which a path comparison cannot see, and writing one truncates the other).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

/// An output `path` that a temporary file will be renamed over must be absent or a regular
/// file (or a link, which the rename replaces, not its target); `what` names it and `fix` says
/// what to pass instead.
pub fn replaceable(path: &Path, what: &str, fix: &str) -> Result<()> {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match kind(path).filter(|_| !link) {
        Some(k) => Err(Error::Invalid(format!(
            "{what} {} is {k}, not a regular file: {fix}",
            path.display()
        ))),
        None => Ok(()),
    }
}
