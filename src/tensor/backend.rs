//! The backend seam: the one place that decides where an operation runs. Every operation
//! hands its storages to [`place`], which checks that they live on one device and gives back
//! either the GPU and each operand's buffer (the operation then calls its launcher) or `Cpu`
//! (it then calls the kernel's CPU twin on host slices). A mixed-device operation is a typed
//! error naming the operation and both devices, never a panic in a host borrow.

use super::Storage;
use crate::error::{Error, Result};
use autorep_kernels::{Gpu, GpuBuffer};

/// Where all of an operation's operands live.
pub(crate) enum Placed<'a, const N: usize> {
    Gpu(&'a Gpu, [&'a GpuBuffer; N]),
    /// Every operand is host memory: borrow it with `Storage::cpu` / `cpu_mut`.
    Cpu,
}

fn describe(s: &Storage) -> String {
    s.device().describe()
}

/// The device of `storages` (inputs and outputs alike), or an error naming `op` and the first
/// two devices that differ.
pub(crate) fn place<'a, const N: usize>(
    op: &'static str,
    storages: [&'a Storage; N],
) -> Result<Placed<'a, N>> {
    let mismatch = |a: &Storage, b: &Storage| Error::DeviceMismatch {
        op,
        left: describe(a),
        right: describe(b),
    };
    let Some(&first) = storages.first() else {
        return Ok(Placed::Cpu);
    };
    match first {
        Storage::Gpu(gpu, _) => {
            let mut bufs: [Option<&'a GpuBuffer>; N] = [None; N];
            for (slot, &s) in bufs.iter_mut().zip(&storages) {
                match s {
                    Storage::Gpu(g, b) if g.same_device(gpu) => *slot = Some(b),
                    other => return Err(mismatch(first, other)),
                }
            }
            Ok(Placed::Gpu(
                gpu,
                bufs.map(|b| b.expect("every slot filled above")),
            ))
        }
        Storage::Cpu { .. } => match storages.iter().find(|s| matches!(s, Storage::Gpu(..))) {
            Some(other) => Err(mismatch(first, other)),
            None => Ok(Placed::Cpu),
        },
    }
}
