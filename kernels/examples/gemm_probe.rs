//! GFLOP/s of the GEMM launcher on two squares and a ResNet-like im2col shape whose A
//! (131072x576, 302 MB) exceeds the usual 128 MiB storage-binding limit, so it is chunked.
use autorep_kernels::{launch, params::GemmParams, Gpu};

fn main() {
    let g = Gpu::open().unwrap();
    for &(m, n, k) in &[(256, 256, 256), (1024, 1024, 1024), (131072, 64, 576)] {
        let p = GemmParams::dense(m, n, k, false, false);
        let a = g.upload(&vec![0.5f32; m * k]).unwrap();
        let b = g.upload(&vec![0.25f32; k * n]).unwrap();
        let c = g.alloc((m * n) as u64 * 4).unwrap();
        launch::gemm(&g, &p, &a, &b, None, &c).unwrap();
        g.wait().unwrap();
        let mut ts = vec![];
        for _ in 0..3 {
            let t = std::time::Instant::now();
            launch::gemm(&g, &p, &a, &b, None, &c).unwrap();
            g.wait().unwrap();
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let want = 0.125 * k as f32;
        for got in [
            g.read_f32(&c, 0, 1).unwrap()[0],
            g.read_f32(&c, m * n - 1, 1).unwrap()[0],
        ] {
            assert!(
                (got - want).abs() <= 1e-4 * want,
                "{m}x{n}x{k}: C holds {got}, want {want}"
            );
        }
        println!(
            "{m}x{n}x{k}: {:.2} GFLOP/s ({:.1} ms)",
            p.flops() / ts[1] / 1e9,
            ts[1] * 1e3
        );
    }
}
