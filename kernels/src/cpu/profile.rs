//! Wall-clock profile of the CPU twins, for `autorep bench step --profile`: time per kernel
//! name, counted on the thread that enabled it, outermost call only (a convolution's inner
//! GEMMs and its worker threads count as the convolution). Off by default; a disabled span
//! costs one thread-local read.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

thread_local! {
    /// Whether this thread records, and how many spans are open on it.
    static STATE: Cell<(bool, u32)> = const { Cell::new((false, 0)) };
}

/// (calls, seconds) per kernel name.
static TABLE: Mutex<BTreeMap<&'static str, (u64, f64)>> = Mutex::new(BTreeMap::new());

/// Start (or stop) recording on the calling thread.
pub fn enable(on: bool) {
    STATE.with(|s| s.set((on, 0)));
}

/// The recorded (name, calls, seconds), most time first, clearing the table.
pub fn take() -> Vec<(&'static str, u64, f64)> {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = std::mem::take(&mut *t)
        .into_iter()
        .map(|(name, (calls, secs))| (name, calls, secs))
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    rows
}

pub(crate) struct Span {
    name: &'static str,
    start: Option<Instant>,
}

/// Time the rest of the enclosing scope under `name`.
pub(crate) fn span(name: &'static str) -> Span {
    let start = STATE.with(|s| {
        let (on, depth) = s.get();
        if !on {
            return None;
        }
        s.set((on, depth + 1));
        (depth == 0).then(Instant::now)
    });
    Span { name, start }
}

impl Drop for Span {
    fn drop(&mut self) {
        let on = STATE.with(|s| {
            let (on, depth) = s.get();
            if on {
                s.set((on, depth.saturating_sub(1)));
            }
            on
        });
        if let (true, Some(t)) = (on, self.start) {
            let secs = t.elapsed().as_secs_f64();
            let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
            let e = table.entry(self.name).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += secs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outermost_spans_on_the_enabled_thread_only() {
        enable(true);
        {
            let _a = span("outer");
            let _b = span("inner");
            std::thread::spawn(|| drop(span("worker"))).join().unwrap();
        }
        drop(span("outer"));
        enable(false);
        drop(span("after"));
        let rows = take();
        let names: Vec<_> = rows.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(names, vec![("outer", 2)]);
    }
}
