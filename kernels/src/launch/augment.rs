use super::window;
use crate::error::{KernelError, Result};
use crate::params::AugmentParams;
use crate::pipelines::{Access::*, EntryPoint, Kernel};
use crate::uniforms::AugmentUniform;
use crate::{Gpu, GpuBuffer};

const AUGMENT_BATCH: Kernel<AugmentUniform> =
    Kernel::new("augment_batch", &[Read, Read, ReadWrite], [256, 1, 1]);
pub(crate) const ENTRY_POINTS: &[EntryPoint] = &[AUGMENT_BATCH.entry];

/// One augmented, normalised f32 NCHW batch (`p.n()` elements) into `out`, from the packed u8
/// dataset `data` (`p.count` images; see [`crate::cpu::pack_u8`]) and 2 words per sample in
/// `samples` (dataset index, random word; see [`crate::cpu::aug_word`]). The CPU twin is
/// [`crate::cpu::augment_batch`].
///
/// A dataset larger than the storage-binding limit ([`Gpu::max_binding`], 128 MiB on
/// lavapipe) is bound one window of whole images at a time, one dispatch per window, each
/// writing the samples whose images it holds.
pub fn augment_batch(
    gpu: &Gpu,
    p: &AugmentParams,
    data: &GpuBuffer,
    samples: &GpuBuffer,
    out: &GpuBuffer,
) -> Result<()> {
    p.check();
    let (n, chw) = (p.n(), p.chw());
    assert!(
        (p.count as u64) * (chw as u64) <= u32::MAX as u64 && n <= u32::MAX as usize,
        "augment_batch: {} images of {chw} bytes exceed the kernel's 32-bit byte offsets",
        p.count
    );
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    let data_words = (data.len_bytes() / 4) as usize;
    // Images per window: the window may start up to align + 3 bytes before its first image
    // and end up to 3 bytes after its last.
    let room = gpu.max_binding().saturating_sub(align + 8);
    let per = if ((p.count * chw).div_ceil(4) * 4) as u64 <= gpu.max_binding() {
        p.count.max(1)
    } else {
        (room / chw.max(1) as u64) as usize
    };
    if per == 0 {
        return Err(KernelError::BindingTooLarge {
            bytes: chw as u64 + align + 8,
            limit: gpu.max_binding(),
        });
    }
    let mut first = 0;
    loop {
        let last = (first + per).min(p.count);
        let first_word = (first * chw / 4).min(data_words.saturating_sub(1));
        let end_word = (last * chw)
            .div_ceil(4)
            .clamp(first_word + 1, data_words.max(first_word + 1));
        let (win, elem) = window(data, first_word, end_word - first_word, align);
        let byte_base = ((first_word - elem) * 4) as u32;
        let params = AugmentUniform {
            channels: p.channels as u32,
            height: p.height as u32,
            width: p.width as u32,
            pad: p.pad as u32,
            batch: p.batch as u32,
            count: p.count as u32,
            n: n as u32,
            first: first as u32,
            last: last as u32,
            byte_base,
            mean0: p.mean[0],
            mean1: p.mean[1],
            mean2: p.mean[2],
            std0: p.std[0],
            std1: p.std[1],
            std2: p.std[2],
            ..AugmentUniform::default()
        };
        gpu.dispatch(
            &AUGMENT_BATCH,
            &[],
            &params,
            &[win, samples.into(), out.into()],
            AUGMENT_BATCH.groups_for(n),
        )?;
        if last >= p.count {
            return Ok(());
        }
        first = last;
    }
}
