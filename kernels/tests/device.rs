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
