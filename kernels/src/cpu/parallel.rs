//! Work split over the cores for the CPU twins (std threads; no pool is worth its
//! dependencies at a few calls per layer).

pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// Run `work(item, out_chunk)` for every item of `out` split into `chunk`-sized pieces, on
/// all cores; each item owns its output chunk, so no synchronisation is needed.
pub(crate) fn par_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let items: Vec<(usize, &mut [T])> = out.chunks_mut(chunk.max(1)).enumerate().collect();
    if items.len() <= 1 {
        return items.into_iter().for_each(|(i, c)| work(i, c));
    }
    let per = items.len().div_ceil(threads()).max(1);
    let mut groups: Vec<Vec<(usize, &mut [T])>> = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    std::thread::scope(|s| {
        for g in groups {
            let work = &work;
            s.spawn(move || g.into_iter().for_each(|(i, c)| work(i, c)));
        }
    });
}
