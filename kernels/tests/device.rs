mod common;

/// CI sets WGPU_BACKEND=vulkan: the GPU tests must then really run on Vulkan, not a silent
/// GL fallback.
#[test]
fn gpu_tests_run_on_the_requested_backend() {
    let Some(g) = common::gpu() else { return };
    let backend = g.report().backend;
    if let Ok(want) = std::env::var("WGPU_BACKEND") {
        let want = want.to_ascii_lowercase();
        let ok = match backend {
            autorep_kernels::wgpu::Backend::Vulkan => {
                want.contains("vulkan") || want.contains("vk")
            }
            autorep_kernels::wgpu::Backend::Metal => want.contains("metal"),
            autorep_kernels::wgpu::Backend::Dx12 => want.contains("dx12"),
            autorep_kernels::wgpu::Backend::Gl => want.contains("gl"),
            _ => false,
        };
        assert!(ok, "WGPU_BACKEND={want} but the tests run on {backend:?}");
    }
}

#[test]
fn every_shader_file_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".wgsl") && name != "prelude.wgsl" {
            let shaders = autorep_kernels::shaders::ALL.iter();
            assert!(
                shaders
                    .chain(autorep_kernels::shaders::COOP)
                    .any(|s| s.name == name),
                "{name} is in neither shaders::ALL nor shaders::COOP"
            );
        }
    }
}

#[test]
fn buffers_are_reused_after_release() {
    let Some(g) = common::gpu() else { return };
    for _ in 0..3 {
        let a = g.alloc(1000).unwrap();
        let b = g.alloc(5000).unwrap();
        autorep_kernels::launch::fill(&g, 250, 1.0, &a).unwrap();
        drop((a, b));
    }
    assert_eq!(g.pool_stats().buffers_created, 2);
    // In use at once: 1,024 + 5,120 bytes (sizes round up to 256); a later 8 KiB buffer alone
    // raises the pool's bytes but not that peak beyond its own size.
    assert_eq!(g.pool_stats().peak_live_bytes, 6144);
    drop(g.alloc(8192).unwrap());
    let s = g.pool_stats();
    assert_eq!((s.peak_live_bytes, s.bytes_created), (8192, 6144 + 8192));
}

/// Free buffers given back leave the pool's hold (not its peak), take their cached bind groups
/// with them, and a later request of their size makes a new buffer that works.
#[test]
fn released_free_buffers_leave_the_pool() {
    let Some(g) = common::gpu() else { return };
    let a = g.alloc(1000).unwrap();
    let b = g.alloc(5000).unwrap();
    autorep_kernels::launch::fill(&g, 250, 1.0, &a).unwrap();
    let kept = g.alloc(256).unwrap();
    drop((a, b));
    assert_eq!(g.release_free(), 1024 + 5120);
    assert_eq!(g.release_free(), 0, "nothing is free any more");
    let s = g.pool_stats();
    assert_eq!((s.buffers_free, s.peak_held_bytes), (0, 1024 + 5120 + 256));
    let c = g.alloc(1000).unwrap();
    assert_eq!(
        g.pool_stats().buffers_created,
        4,
        "the released size was made again"
    );
    autorep_kernels::launch::fill(&g, 250, 2.0, &c).unwrap();
    assert_eq!(g.read_f32(&c, 0, 250).unwrap(), vec![2.0; 250]);
    let s = g.pool_stats();
    assert_eq!(
        s.peak_held_bytes,
        1024 + 5120 + 256,
        "held is below its peak"
    );
    // The readback buffer of that read goes too.
    drop(c);
    assert_eq!(g.release_free(), 1024 + 1000);
    drop(kept);
}

/// Scratch of near sizes comes from one power-of-two free list (a split pass's planes of each
/// layer then share a buffer), while the buffer lent is only as long as asked; the census
/// lists the buffers that were on loan at the peak of bytes on loan.
#[test]
fn scratch_shares_power_of_two_buffers_and_the_census_sees_the_peak() {
    let Some(g) = common::gpu() else { return };
    let a = g.alloc_scratch(100_000).unwrap();
    assert_eq!(a.len_bytes(), 100_000);
    drop(a);
    let b = g.alloc_scratch(120_000).unwrap();
    assert_eq!(b.len_bytes(), 120_000);
    assert_eq!(
        g.pool_stats().buffers_created,
        1,
        "near sizes made two buffers"
    );
    // b (128 KiB) and c (1 MiB) on loan together is the peak; d comes after c is returned.
    let c = g.alloc(1 << 20).unwrap();
    drop(c);
    let d = g.alloc(4096).unwrap();
    let census = g.buffer_census();
    let count = |bytes: u64| census.iter().find(|c| c.bytes == bytes).copied();
    let row = |bytes, at_peak, held| autorep_kernels::BufferCount {
        bytes,
        at_peak,
        held,
    };
    assert_eq!(count(1 << 20), Some(row(1 << 20, 1, 1)));
    assert_eq!(count(128 << 10), Some(row(128 << 10, 1, 1)));
    assert_eq!(count(4096), Some(row(4096, 0, 1)));
    assert_eq!(census.len(), 3);
    assert_eq!(
        g.pool_stats().live_bytes,
        (128 << 10) + 4096,
        "b and d are on loan"
    );
    drop((b, d));
    assert_eq!(g.pool_stats().live_bytes, 0);
}

/// A host write into a buffer that queued work still reads is ordered after that work and
/// before the work queued after it, without submitting anything.
#[test]
fn a_write_behind_queued_work_keeps_stream_order_without_a_submit() {
    let Some(g) = common::gpu() else { return };
    let a = g.upload(&[1.0f32; 64]).unwrap();
    let (before_write, after_write) = (g.alloc(256).unwrap(), g.alloc(256).unwrap());
    g.flush().unwrap();
    let submits = g.stream_stats().submits;
    g.copy(&a, 0, &before_write, 0, 256).unwrap();
    g.write(&a, 0, bytemuck::cast_slice(&[2.0f32; 64])).unwrap();
    g.copy(&a, 0, &after_write, 0, 256).unwrap();
    assert_eq!(g.stream_stats().submits, submits, "the write submitted");
    assert_eq!(g.read_f32(&before_write, 0, 64).unwrap(), vec![1.0; 64]);
    assert_eq!(g.read_f32(&after_write, 0, 64).unwrap(), vec![2.0; 64]);
}

/// `bench step --profile` on a GPU: every dispatch timed under its kernel and its launcher's
/// label, without changing what it computes, and more dispatches than one query set holds
/// (2,048) split over submits.
#[test]
fn profiling_times_every_dispatch_under_its_kernel_and_label() {
    use autorep_kernels::{cpu, launch, params::ConvParams};
    let Some(g) = common::gpu() else { return };
    let p = ConvParams {
        n: 2,
        cin: 3,
        h: 6,
        w: 6,
        cout: 5,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    let (xv, wv) = (
        common::rand_vec(1, p.x_len()),
        common::rand_vec(2, p.w_len()),
    );
    let (x, w) = (g.upload(&xv).unwrap(), g.upload(&wv).unwrap());
    let y = g
        .alloc_elems(p.y_len(), autorep_kernels::Dtype::F32)
        .unwrap();
    let mut want = vec![0.0; p.y_len()];
    cpu::conv2d_forward(&p, &xv, &wv, &mut want);

    g.set_profiling(true).unwrap();
    assert!(g.profiling());
    let submits = g.stream_stats().submits;
    launch::conv2d_forward(&g, &p, &x, &w, &y).unwrap();
    let n = 2_100;
    for i in 0..n {
        launch::fill(&g, 4, i as f32, &y).unwrap();
    }
    assert_eq!(
        g.stream_stats().submits,
        submits + 1,
        "one query set's worth submitted"
    );
    g.set_profiling(false).unwrap();
    let profile = g.take_profile().unwrap();
    let label = "conv forward 3x3 3->5 @6 s2";
    assert_eq!(
        profile.flops.get(label),
        Some(&p.flops()),
        "the work counted once per call"
    );
    let rows = profile.rows;
    let conv: Vec<_> = rows
        .iter()
        .filter(|r| r.label.as_deref() == Some(label))
        .collect();
    assert_eq!(conv.len(), 1, "{rows:?}");
    assert!(conv[0].kernel.starts_with("conv_gemm") && conv[0].kernel.ends_with(" f32"));
    assert_eq!(conv[0].calls, 1);
    let fill = rows.iter().find(|r| r.kernel == "fill f32").unwrap();
    assert_eq!((fill.calls, fill.label.as_deref()), (n as u64, None));
    assert!(rows.iter().all(|r| r.secs >= 0.0) && rows.iter().any(|r| r.secs > 0.0));
    assert_eq!(g.take_profile().unwrap(), Default::default(), "taken once");

    // Off again: nothing is recorded, and a profiled dispatch computed what an unprofiled one does.
    launch::conv2d_forward(&g, &p, &x, &w, &y).unwrap();
    assert!(!g.profiling() && g.take_profile().unwrap().rows.is_empty());
    let got = g.read_f32(&y, 0, p.y_len()).unwrap();
    g.set_profiling(true).unwrap();
    launch::conv2d_forward(&g, &p, &x, &w, &y).unwrap();
    g.set_profiling(false).unwrap();
    assert_eq!(g.read_f32(&y, 0, p.y_len()).unwrap(), got);
    assert!(common::rel_err(&got, &want) < 1e-5);
}
