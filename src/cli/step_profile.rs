//! What `autorep bench step` prints beyond its headline: where a step's time goes.

use autorep::bench::StepTiming;
use autorep_kernels::{BufferCount, Profile, ProfileRow};
use std::collections::BTreeMap;

/// The host's and the device's share of a step, the back-to-back pace and the memory (printed
/// just before the headline).
pub fn print_split(t: &StepTiming) {
    let ms = |s: f64| s * 1e3;
    match t.device_secs {
        Some(d) => println!(
            "per step (medians): host {:.1} ms recording, then device {:.1} ms (first command to last); the rest is submit and wait",
            ms(t.host_secs),
            ms(d)
        ),
        None => println!("per step (median): host {:.1} ms recording", ms(t.host_secs)),
    }
    if let Some(b) = t.back_to_back_secs {
        println!(
            "back to back (each step submitted without waiting, as training runs): {:.1} ms/step, {:.1} images/s",
            ms(b),
            t.images_per_s * t.secs / b
        );
    }
    if let (Some(pool), Some(live)) = (t.device_bytes, t.live_bytes) {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "device memory: the buffer pool held at most {:.1} MiB; at most {:.1} MiB were in use at once",
            mib(pool),
            mib(live)
        );
    }
}

/// `--memory`: the storage buffers by size, largest first (the pool lends a buffer only to
/// requests of its size, or of its power-of-two class for scratch; the held figure above also
/// counts the few readback buffers).
pub fn print_buffers(buffers: &[BufferCount]) {
    const SHOWN: usize = 16;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "storage buffers by size: how many at the memory peak / held by the pool, and their MiB"
    );
    let row = |label: String, at_peak: u64, peak_bytes: u64, held: u64, held_bytes: u64| {
        println!(
            "{label:>16}  {at_peak:>5} {:>9.1}  / {held:>5} {:>9.1}",
            mib(peak_bytes),
            mib(held_bytes)
        )
    };
    for c in buffers.iter().take(SHOWN) {
        let label = match c.bytes {
            b if b >= 1 << 20 => format!("{:.2} MiB", mib(b)),
            b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
            b => format!("{b} B"),
        };
        row(
            label,
            c.at_peak,
            c.bytes * c.at_peak,
            c.held,
            c.bytes * c.held,
        );
    }
    let rest = buffers.get(SHOWN..).unwrap_or_default();
    if !rest.is_empty() {
        let sum = |f: fn(&BufferCount) -> u64| rest.iter().map(f).sum::<u64>();
        row(
            format!("{} smaller sizes", rest.len()),
            sum(|c| c.at_peak),
            sum(|c| c.bytes * c.at_peak),
            sum(|c| c.held),
            sum(|c| c.bytes * c.held),
        );
    }
}

/// `--profile`: the CPU backend's time per kernel, or a GPU's device time per kernel and
/// per labelled layer pass.
pub fn print(t: &StepTiming, steps: usize) {
    if t.profiled_steps > 0 {
        print_gpu(&t.gpu_profile, t.profiled_steps, t.device_secs);
    } else {
        print_cpu(t, steps);
    }
}

/// Time per CPU kernel per step, and the rest (graph, allocation, the Linear layer's host
/// work) as "other".
fn print_cpu(t: &StepTiming, steps: usize) {
    let per = |secs: f64| secs / steps as f64 * 1e3;
    println!(
        "{:<26} {:>9} {:>11} {:>7}",
        "kernel", "calls", "ms/step", "share"
    );
    let mut covered = 0.0;
    for (name, calls, secs) in &t.profile {
        covered += secs;
        println!(
            "{name:<26} {:>9.1} {:>11.2} {:>6.1}%",
            *calls as f64 / steps as f64,
            per(*secs),
            100.0 * secs / t.timed_secs
        );
    }
    let other = (t.timed_secs - covered).max(0.0);
    println!(
        "{:<26} {:>9} {:>11.2} {:>6.1}%",
        "other (host, graph)",
        "",
        per(other),
        100.0 * other / t.timed_secs
    );
}

/// Rows summed per kernel over their labels, most time first: (kernel, calls, seconds).
fn by_kernel(rows: &[ProfileRow]) -> Vec<(&str, u64, f64)> {
    let mut by: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(&r.kernel).or_default();
        e.0 += r.calls;
        e.1 += r.secs;
    }
    let mut out: Vec<_> = by.into_iter().map(|(k, (c, s))| (k, c, s)).collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

/// Device time per kernel (entry point and variant), then per labelled layer pass (a
/// convolution's pass and shape, a GEMM's sizes) with its rate and the kernels that ran it.
fn print_gpu(profile: &Profile, steps: usize, device_secs: Option<f64>) {
    let rows = &profile.rows;
    let total: f64 = rows.iter().map(|r| r.secs).sum();
    let line = |name: &str, calls: u64, secs: f64, width: usize| {
        println!(
            "{name:<width$} {:>9.1} {:>9.3} {:>6.1}%",
            calls as f64 / steps as f64,
            secs / steps as f64 * 1e3,
            100.0 * secs / total.max(f64::MIN_POSITIVE)
        );
    };
    println!(
        "device time per kernel (mean of {steps} profiled step{}, each dispatch in a pass of its own):",
        if steps == 1 { "" } else { "s" }
    );
    println!(
        "{:<34} {:>9} {:>9} {:>7}",
        "kernel", "calls", "ms/step", "share"
    );
    for (k, calls, secs) in by_kernel(rows) {
        line(k, calls, secs, 34);
    }
    let kernels_ms = total / steps as f64 * 1e3;
    println!("{:<34} {:>9} {:>9.3}", "all kernels", "", kernels_ms);
    if let Some(d) = device_secs {
        // The unprofiled step's device time less the kernels' own: what the device spends
        // between dispatches (barriers, launches, copies), roughly (profiling adds passes).
        println!(
            "{:<34} {:>9} {:>9.3}",
            "between kernels (approx.)",
            "",
            (d * 1e3 - kernels_ms).max(0.0)
        );
    }
    print_passes(profile, steps, total);
}

/// One row per labelled layer pass: its device time (every kernel it ran, split-K reductions
/// included), its rate from the work its launcher counted, and its kernels.
fn print_passes(profile: &Profile, steps: usize, total: f64) {
    let mut by: BTreeMap<&str, (f64, Vec<&str>)> = BTreeMap::new();
    for r in &profile.rows {
        if let Some(l) = &r.label {
            let e = by.entry(l).or_default();
            e.0 += r.secs;
            e.1.push(&r.kernel);
        }
    }
    if by.is_empty() {
        return;
    }
    let mut passes: Vec<_> = by.into_iter().collect();
    passes.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!("per layer pass (share of all kernels):");
    println!(
        "{:<40} {:>9} {:>9} {:>7}  kernels",
        "pass", "ms/step", "GFLOP/s", "share"
    );
    for (label, (secs, kernels)) in passes {
        let flops = profile.flops.get(label).copied().unwrap_or(0.0);
        let rate = if flops > 0.0 && secs > 0.0 {
            format!("{:.1}", flops / secs / 1e9)
        } else {
            "-".to_string()
        };
        println!(
            "{label:<40} {:>9.3} {rate:>9} {:>6.1}%  {}",
            secs / steps as f64 * 1e3,
            100.0 * secs / total.max(f64::MIN_POSITIVE),
            kernels.join(" + ")
        );
    }
}
