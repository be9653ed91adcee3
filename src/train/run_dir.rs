//! A run folder: its lock, its checkpoints and its metrics log. One writer per folder: a run
//! holds an exclusive lock on `OUT/.lock` while it writes (the OS drops it when the process
//! dies, even by SIGKILL), and a run that would silently replace another's checkpoints fails
//! unless told to overwrite or resume.

use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";
pub const PROJECTED: &str = "projected.safetensors";
pub const METRICS: &str = "metrics.jsonl";

/// Whether `input` is one of the checkpoints a run into `out` writes (and `--overwrite`
/// deletes): a run must not start from a file it replaces.
pub fn writes_over(out: &Path, input: &Path) -> bool {
    let named = input
        .file_name()
        .is_some_and(|n| [LAST, BEST, PROJECTED].iter().any(|f| n == *f));
    let dir = |p: &Path| std::fs::canonicalize(p).ok();
    let parent = match input.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return false,
    };
    named && dir(out).is_some() && dir(out) == dir(parent)
}

/// What to do with a folder that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Refuse to start (the default): nothing is lost by accident.
    #[default]
    Refuse,
    /// Continue from `last.safetensors`.
    Resume,
    /// Delete the earlier checkpoints and metrics and start over.
    Overwrite,
}

/// An exclusive lock on a folder, held until dropped.
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Lock `dir` (created if missing), or fail at once naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "output folder {} is a file: choose another --out",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Invalid(format!(
                "cannot create output folder {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(".lock");
        let io = |e: std::io::Error| Error::Invalid(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Invalid(format!(
                "{} is in use by another autorep run{}: wait for it to finish or choose another --out",
                dir.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" ({holder})")
                }
            )));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(FolderLock { _file: file })
    }
}

/// The run folder of one stage.
pub struct RunDir {
    out: PathBuf,
    _lock: FolderLock,
}

impl RunDir {
    /// Lock `out` and apply `existing` to whatever an earlier run left there.
    pub fn open(out: &Path, existing: Existing) -> Result<RunDir> {
        let lock = FolderLock::acquire(out)?;
        let dir = RunDir {
            out: out.to_path_buf(),
            _lock: lock,
        };
        let held: Vec<&str> = [LAST, BEST, PROJECTED]
            .into_iter()
            .filter(|f| dir.out.join(f).exists())
            .collect();
        match existing {
            Existing::Refuse if !held.is_empty() => {
                return Err(Error::Invalid(format!(
                    "{} already holds a run ({}): pass --resume to continue it or --overwrite to start over",
                    out.display(),
                    held.join(", ")
                )))
            }
            Existing::Resume if !dir.last().exists() => {
                no_last_beside_others(out)?;
                // What is left is a killed first epoch's: the run starts over without it.
                for p in [dir.best(), dir.projected()] {
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| {
                            Error::Invalid(format!("cannot remove {}: {e}", p.display()))
                        })?;
                    }
                }
            }
            Existing::Overwrite => {
                for f in [LAST, BEST, PROJECTED, METRICS] {
                    let p = dir.out.join(f);
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| {
                            Error::Invalid(format!("cannot remove {}: {e}", p.display()))
                        })?;
                    }
                }
            }
            _ => {}
        }
        Ok(dir)
    }

    pub fn last(&self) -> PathBuf {
        self.out.join(LAST)
    }
    pub fn best(&self) -> PathBuf {
        self.out.join(BEST)
    }
    pub fn projected(&self) -> PathBuf {
        self.out.join(PROJECTED)
    }

    /// Keep the metrics of the first `epochs` epochs only: lines written after the last
    /// checkpoint (a run killed between the two) would otherwise appear twice after a resume.
    pub fn keep_metrics(&self, epochs: usize) -> Result<()> {
        let path = self.out.join(METRICS);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("epoch")?.as_u64())
                    .is_some_and(|e| (e as usize) < epochs)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if kept.len() == text.len() {
            return Ok(());
        }
        let tmp = self
            .out
            .join(format!("{METRICS}.{}.tmp", std::process::id()));
        let io = |e: std::io::Error| Error::Invalid(format!("{}: {e}", path.display()));
        std::fs::write(&tmp, kept).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Append one JSON line to `metrics.jsonl`.
    pub fn log(&self, line: &serde_json::Value) -> Result<()> {
        let path = self.out.join(METRICS);
        let io = |e: std::io::Error| Error::Invalid(format!("{}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        writeln!(f, "{line}").map_err(io)?;
        f.sync_data().map_err(io)
    }
}

/// Before anything is loaded for `--resume` into `out`: the metadata of the run of stage
/// `stage` there (`None` where the folder holds no run: a fresh one starts), or the one-line
/// reason it cannot be resumed (an unreadable last checkpoint, another stage's, or checkpoints
/// without a last one), so that the error names the run rather than whatever a default the
/// run's own options would have replaced fails on first (its data folder, say).
pub fn resumable(out: &Path, stage: &str) -> Result<Option<crate::train::checkpoint::Meta>> {
    let last = out.join(LAST);
    if !last.exists() {
        no_last_beside_others(out)?;
        return Ok(None);
    }
    let m = crate::train::checkpoint::Checkpoint::read_meta(&last)?;
    if m.config.name() != stage {
        return Err(Error::Invalid(format!(
            "{} was written by stage {}, not {stage}: resume it with `autorep {}`, or --overwrite to start over",
            last.display(),
            m.config.name(),
            m.config.name()
        )));
    }
    Ok(Some(m))
}

/// A folder with a best or projected checkpoint but no last one cannot be resumed, and a fresh
/// run would replace what it holds. Except in one case: the driver writes best before last,
/// so a run of several epochs killed between the two in its first epoch leaves exactly that,
/// and starting over is its resume (it loses that epoch only; [`RunDir::open`] removes the
/// killed epoch's files so that none outlives the new run's first epoch).
fn no_last_beside_others(out: &Path) -> Result<()> {
    let held: Vec<&str> = [BEST, PROJECTED]
        .into_iter()
        .filter(|f| out.join(f).exists() && !killed_in_first_epoch(&out.join(f)))
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{} holds a run ({}) but no {LAST} to resume from: pass --overwrite to start over, or choose another --out",
        out.display(),
        held.join(", ")
    )))
}

/// Whether checkpoint `path` is of a run's first epoch out of several (its header's epoch
/// count and configured epochs), so not of a finished run.
fn killed_in_first_epoch(path: &Path) -> bool {
    crate::train::checkpoint::Checkpoint::read_meta(path).is_ok_and(|m| {
        let epochs = m.config.fields().get("epochs").and_then(|v| v.as_u64());
        let done = m.progress.epochs_done as u64;
        done <= 1 && epochs.is_some_and(|e| done < e)
    })
}

/// [`resumable`] where the caller only adopts options: `None` for a folder without a run of
/// `stage` to resume, whatever the reason (the driver then says what is wrong with it).
pub fn resumed_meta(out: &Path, stage: &str) -> Option<crate::train::checkpoint::Meta> {
    resumable(out, stage).ok().flatten()
}

/// `cfg`, about to resume a run configured as `stored`, takes the run's value of every option
/// `given` says the command or file did not give (`given` is asked by configuration key:
/// `epochs`, `lambda`, `teacher` …). A resumed run is the same job: the stage's defaults may
/// have changed since it started, and `--resume` should not need its options typed again.
/// What was given is kept and must match the run's, which the driver checks. Returns the
/// keys whose value was adopted and differs from the one `cfg` had.
pub fn adopt_resumed_options(
    cfg: &mut crate::train::config::StageConfig,
    stored: &crate::train::config::StageConfig,
    given: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    if stored.name() != cfg.name() {
        return Vec::new();
    }
    let mut ours = cfg.fields();
    let mut adopted = Vec::new();
    for (key, value) in stored.fields() {
        if !given(&key) && ours.get(&key) != Some(&value) {
            ours.insert(key.clone(), value);
            adopted.push(key);
        }
    }
    match cfg.with_fields(ours) {
        Ok(c) => *cfg = c,
        Err(_) => adopted.clear(),
    }
    adopted
}
