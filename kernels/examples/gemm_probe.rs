// TEMPORARY experiment harness (restored to a plain probe at the end).
use autorep_kernels::{cpu, cpu::GemmParams, launch, Access, Gpu, Kernel, Shader};

fn rnd(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn run(g: &Gpu, k: Option<&(Kernel, usize, usize)>, p: &GemmParams, a: &autorep_kernels::GpuBuffer, b: &autorep_kernels::GpuBuffer, bias: &autorep_kernels::GpuBuffer, c: &autorep_kernels::GpuBuffer) {
    match k {
        None => launch::gemm(g, p, a, b, Some(bias), c).unwrap(),
        Some((kern, bm, bn)) => {
            let flags = p.bias_off.is_some() as u32 | (p.accumulate as u32) << 1;
            let params = [
                p.m, p.n, p.k, flags as usize, p.a.off, p.a.rs, p.a.cs, p.a.bs, p.b.off, p.b.rs, p.b.cs, p.b.bs, p.c.off,
                p.c.rs, p.c.bs, p.bias_off.unwrap_or(0),
            ]
            .map(|v| v as u32);
            let mut all = params.to_vec();
            all.push(p.alpha.to_bits());
            let groups = [p.n.div_ceil(*bn) as u32, p.m.div_ceil(*bm) as u32, p.batch as u32];
            g.dispatch(kern, &[], &all, &[a.into(), b.into(), bias.into(), c.into()], groups).unwrap();
        }
    }
}

fn main() {
    let g = Gpu::open().unwrap();
    let custom = std::env::var("GEMM_WGSL").ok().map(|path| {
        let src: &'static str = Box::leak(std::fs::read_to_string(&path).unwrap().into_boxed_str());
        let name: &'static str = Box::leak(path.clone().into_boxed_str());
        let bm: usize = std::env::var("BM").map(|v| v.parse().unwrap()).unwrap_or(64);
        let bn: usize = std::env::var("BN").map(|v| v.parse().unwrap()).unwrap_or(bm);
        let m = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&m)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
        (Kernel { shader: Shader { name, source: src }, entry: "gemm", bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite] }, bm, bn)
    });
    let k = custom.as_ref();
    // correctness
    if std::env::var("NOCHECK").is_err() {
        let mut cases = vec![];
        for &(m, n, k) in &[(1, 1, 1), (7, 33, 129), (129, 7, 33), (33, 129, 7), (65, 63, 17), (100, 1, 300), (131, 260, 70)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    cases.push(GemmParams::dense(m, n, k, ta, tb));
                }
            }
        }
        let mut p = GemmParams::dense(33, 65, 17, false, true);
        p.bias_off = Some(3);
        p.alpha = 0.5;
        cases.push(p);
        p.accumulate = true;
        cases.push(p);
        for p in &cases {
            let (ea, eb, ec) = p.extents();
            let (a, b, c0, bias) = (rnd(1, ea), rnd(2, eb), rnd(3, ec), rnd(4, p.bias_off.map_or(1, |o| o + p.n)));
            let (ba, bb, bc, bbias) = (g.upload(&a).unwrap(), g.upload(&b).unwrap(), g.upload(&c0).unwrap(), g.upload(&bias).unwrap());
            run(&g, k, p, &ba, &bb, &bbias, &bc);
            let got = g.read_f32(&bc, 0, ec).unwrap();
            let mut want = c0.clone();
            cpu::gemm(p, &a, &b, &bias, &mut want);
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let e = got.iter().zip(&want).fold(0f32, |m, (g, w)| m.max((g - w).abs())) / scale;
            assert!(e <= 1e-4, "{p:?}: rel err {e}");
        }
        println!("correctness ok ({} cases)", cases.len());
    }
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("SHAPES") {
        Ok(s) => s.split(',').map(|t| {
            let v: Vec<usize> = t.split('x').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        }).collect(),
        Err(_) => vec![(256, 256, 256), (1024, 1024, 1024), (16384, 64, 576)],
    };
    for &(m, n, kk) in &shapes {
        let p = GemmParams::dense(m, n, kk, false, false);
        let a = g.upload(&vec![0.5f32; m * kk]).unwrap();
        let b = g.upload(&vec![0.25f32; kk * n]).unwrap();
        let c = g.alloc((m * n) as u64 * 4).unwrap();
        run(&g, k, &p, &a, &b, &a, &c);
        g.wait().unwrap();
        let mut ts = vec![];
        for _ in 0..3 {
            let t = std::time::Instant::now();
            run(&g, k, &p, &a, &b, &a, &c);
            g.wait().unwrap();
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let got = g.read_f32(&c, 0, 1).unwrap()[0];
        assert!((got - 0.125 * kk as f32).abs() < 1e-3 * kk as f32, "value {got}");
        println!("{m}x{n}x{kk}: {:.2} GFLOP/s ({:.1} ms)", p.flops() / ts[1] / 1e9, ts[1] * 1e3);
    }
}
