//! The memory-bound training kernels on a model's activation shapes.

use super::conv::KernelTiming;
use super::{ramp, time_cpu, time_gpu};
use crate::{Device, Result};
use autorep_kernels::cpu::BnActSlices;
use autorep_kernels::launch::BnActInputs;
use autorep_kernels::params::{BnAct, FusedAct};
use autorep_kernels::{cpu, launch, Gpu};

/// Queues one kernel launch on a GPU.
type GpuLaunch<'a> = Box<dyn Fn(&Gpu) -> Result<()> + 'a>;

/// A memory-bound kernel: its name, the floats it reads plus writes, a GPU launch, a CPU run.
struct MemKernel<'a> {
    name: &'static str,
    floats: usize,
    gpu: GpuLaunch<'a>,
    cpu: Box<dyn FnMut() + 'a>,
}

/// Memory-bound kernels (elementwise, batch norm, pooling, the AutoReP gate, optimizers,
/// losses) at resnet18_in's first-stage size: [batch, 64, 32, 32].
pub fn memory_kernels(device: &Device, batch: usize, reps: usize) -> Result<Vec<KernelTiming>> {
    use autorep_kernels::params::{AdamParams, BnShape, GateParams, PoolParams, SgdParams};
    let (c, hw) = (64, 32 * 32);
    let n = batch * c * hw;
    let s = BnShape {
        n: batch,
        channels: c,
        hw,
    };
    let pool = PoolParams {
        n: batch,
        c,
        h: 32,
        w: 32,
        k: 2,
        stride: 2,
        pad: 0,
    };
    let gp = GateParams {
        batch,
        channels: c,
        hw,
        channel_wise: false,
        s1: 1.0,
        s2: 0.1,
        clip2: 0.0,
    };
    let params = 11_173_962; // resnet18_in on CIFAR-10
    let (rows, classes) = (batch, 100);
    let x = ramp(n, 7);
    let y = ramp(n, 5);
    let ch = ramp(c, 3);
    let mask: Vec<f32> = (0..c * hw).map(|i| (i % 3 != 0) as u8 as f32).collect();
    let coef = ramp(3 * c, 5);
    let pv = ramp(params, 9);
    let logits = ramp(rows * classes, 13);
    let labels: Vec<u32> = (0..rows as u32).map(|i| i % classes as u32).collect();
    let shape = format!("n{batch}x64x32x32");
    let mut out = Vec::new();
    let mut push = |k: MemKernel<'_>, shape: &str| -> Result<()> {
        let secs = match device {
            Device::Gpu(g) => time_gpu(g, reps, || (k.gpu)(g))?,
            Device::Cpu => {
                let mut f = k.cpu;
                time_cpu(reps, &mut *f)
            }
        };
        out.push(KernelTiming::bytes(
            k.name,
            shape.to_string(),
            secs,
            (k.floats * 4) as f64,
        ));
        Ok(())
    };
    // Device copies of every input, made once (GPU) — the CPU closures use the host vectors.
    let g = match device {
        Device::Gpu(g) => Some(g.clone()),
        Device::Cpu => None,
    };
    let up = |v: &[f32]| -> Result<Option<autorep_kernels::GpuBuffer>> {
        g.as_ref()
            .map(|g| g.upload(v))
            .transpose()
            .map_err(Into::into)
    };
    let alloc = |floats: usize| -> Result<Option<autorep_kernels::GpuBuffer>> {
        g.as_ref()
            .map(|g| g.alloc(floats as u64 * 4))
            .transpose()
            .map_err(Into::into)
    };
    let (bx, by, bo) = (up(&x)?, up(&y)?, alloc(n)?);
    let (bm, bv, bg, bb) = (
        up(&ch)?,
        up(&ch.iter().map(|v| v.abs() + 1.0).collect::<Vec<_>>())?,
        up(&ch)?,
        up(&ch)?,
    );
    let (bmask, bcoef, bgates, bdcoef) = (up(&mask)?, up(&coef)?, alloc(c * hw)?, alloc(3 * c)?);
    let (bdg, bdb) = (alloc(c)?, alloc(c)?);
    let (bp, bgrad, bs1, bs2) = (up(&pv)?, up(&pv)?, up(&pv)?, up(&pv)?);
    let bamp = up(&launch::AMP_NONE)?;
    let (bl, bcorrect, bloss) = (up(&logits)?, alloc(rows)?, alloc(rows)?);
    let blabels = g.as_ref().map(|g| g.upload(&labels)).transpose()?;
    let bidx = alloc(n / 4)?;
    let u = |b: &Option<autorep_kernels::GpuBuffer>| b.as_ref().expect("gpu buffer").clone();
    let mut host = vec![0f32; n];
    let mut small = vec![0f32; 3 * c];
    let var: Vec<f32> = ch.iter().map(|v| v.abs() + 1.0).collect();

    push(
        MemKernel {
            name: "relu",
            floats: 2 * n,
            gpu: Box::new(|g| Ok(launch::relu(g, n, &u(&bx), &u(&bo))?)),
            cpu: Box::new(|| cpu::relu(&x, &mut host)),
        },
        &shape,
    )?;
    let mut host2 = vec![0f32; n];
    push(
        MemKernel {
            name: "add (axpby)",
            floats: 3 * n,
            gpu: Box::new(|g| Ok(launch::axpby(g, n, 1.0, &u(&bx), 1.0, &u(&by), &u(&bo))?)),
            cpu: Box::new(|| cpu::axpby(1.0, &x, 1.0, &y, &mut host2)),
        },
        &shape,
    )?;
    let (mut m1, mut v1) = (vec![0f32; c], vec![0f32; c]);
    push(
        MemKernel {
            name: "bn_stats",
            floats: 2 * n,
            gpu: Box::new(|g| Ok(launch::bn_stats(g, s, &u(&bx), &u(&bm), &u(&bv))?)),
            cpu: Box::new(|| cpu::bn_stats(s, &x, &mut m1, &mut v1)),
        },
        &shape,
    )?;
    let mut host3 = vec![0f32; n];
    push(
        MemKernel {
            name: "bn_forward",
            floats: 2 * n,
            gpu: Box::new(|g| {
                Ok(launch::bn_forward(
                    g,
                    s,
                    1e-5,
                    &u(&bx),
                    &u(&bm),
                    &u(&bv),
                    Some((&u(&bg), &u(&bb))),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::bn_forward(s, 1e-5, &x, &ch, &var, Some((&ch, &ch)), &mut host3)),
        },
        &shape,
    )?;
    let (mut dg, mut db, mut host4) = (vec![0f32; c], vec![0f32; c], vec![0f32; n]);
    push(
        MemKernel {
            name: "bn_backward",
            floats: 5 * n,
            gpu: Box::new(|g| {
                Ok(launch::bn_backward(
                    g,
                    s,
                    1e-5,
                    &u(&bx),
                    &u(&bm),
                    &u(&bv),
                    Some(&u(&bg)),
                    &u(&by),
                    &u(&bdg),
                    &u(&bdb),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| {
                cpu::bn_backward(
                    s,
                    1e-5,
                    &x,
                    &ch,
                    &var,
                    Some(&ch),
                    &y,
                    &mut dg,
                    &mut db,
                    &mut host4,
                )
            }),
        },
        &shape,
    )?;
    // The fused op of a ResNet block's second site: batch norm, the residual and the gate.
    let a = BnAct {
        s,
        eps: 1e-5,
        residual: true,
        train: true,
        act: FusedAct::Gate(gp),
    };
    let mut fold = vec![0f32; 4 * c];
    cpu::bn_fold(s, 1e-5, &ch, &var, &ch, &ch, &mut fold);
    let (bfold, bsums, bdy) = (up(&fold)?, alloc(a.sums_len())?, alloc(n)?);
    let inputs = || BnActInputs {
        x: bx.as_ref().expect("gpu buffer"),
        r: by.as_ref(),
        fold: bfold.as_ref().expect("gpu buffer"),
        gate: bmask.as_ref().zip(bcoef.as_ref()),
    };
    let slices = || BnActSlices {
        x: &x,
        r: Some(&y),
        fold: &fold,
        gate: Some((&mask, &coef)),
    };
    let mut host6 = vec![0f32; n];
    push(
        MemKernel {
            name: "bn_act_forward",
            floats: 3 * n,
            gpu: Box::new(|g| Ok(launch::bn_act_forward(g, &a, &inputs(), &u(&bo))?)),
            cpu: Box::new(|| cpu::bn_act_forward(&a, &slices(), &mut host6)),
        },
        &shape,
    )?;
    let (mut sums, mut dy6, mut dx6, mut dm6) = (
        vec![0f32; a.sums_len()],
        vec![0f32; n],
        vec![0f32; n],
        vec![0f32; c * hw],
    );
    push(
        MemKernel {
            // dL/ds stored for the residual, dx, and the gate's dL/dm (its dL/dc rides along).
            name: "bn_act backward",
            floats: 10 * n,
            gpu: Box::new(|g| {
                let (inp, sums, dy) = (inputs(), u(&bsums), u(&bdy));
                let st = a.stride() as u64 * 4;
                let (db, dg) = (sums.view(0, c as u64 * 4), sums.view(st, c as u64 * 4));
                launch::bn_act_backward_reduce(g, &a, &inp, &u(&by), &sums, Some(&dy), &u(&bo))?;
                let (m, v, ga) = (u(&bm), u(&bv), u(&bg));
                launch::bn_backward_input(
                    g,
                    s,
                    1e-5,
                    inp.x,
                    &m,
                    &v,
                    Some(&ga),
                    &dy,
                    &dg,
                    &db,
                    &u(&bo),
                )?;
                Ok(launch::bn_act_grad_mask(g, &a, &inp, &u(&by), &u(&bgates))?)
            }),
            cpu: Box::new(|| {
                let inp = slices();
                cpu::bn_act_backward_reduce(&a, &inp, &y, &mut sums, Some(&mut dy6));
                cpu::bn_act_backward_input(&a, &inp, &y, &sums, &mut dx6);
                cpu::bn_act_grad_mask(&a, &inp, &y, &mut dm6);
            }),
        },
        &shape,
    )?;
    let (mut host5, mut idx5) = (vec![0f32; n / 4], vec![0u32; n / 4]);
    push(
        MemKernel {
            name: "max_pool2d 2x2",
            floats: n + n / 2,
            gpu: Box::new(|g| {
                Ok(launch::max_pool2d_forward(
                    g,
                    &pool,
                    &u(&bx),
                    &u(&bo),
                    &u(&bidx),
                )?)
            }),
            cpu: Box::new(|| cpu::max_pool2d_forward(&pool, &x, &mut host5, &mut idx5)),
        },
        &shape,
    )?;
    let mut host6 = vec![0f32; n];
    push(
        MemKernel {
            name: "gate_forward",
            floats: 3 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_forward(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_forward(&gp, &x, &mask, &coef, &mut host6)),
        },
        &shape,
    )?;
    let mut host7 = vec![0f32; n];
    push(
        MemKernel {
            name: "gate_grad_x",
            floats: 4 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_x(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bo),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_x(&gp, &x, &y, &mask, &coef, &mut host7)),
        },
        &shape,
    )?;
    let mut host8 = vec![0f32; c * hw];
    push(
        MemKernel {
            name: "gate_grad_mask",
            floats: 2 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_mask(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bcoef),
                    &u(&bgates),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_mask(&gp, &x, &y, &coef, &mut host8)),
        },
        &shape,
    )?;
    push(
        MemKernel {
            name: "gate_grad_coef",
            floats: 3 * n,
            gpu: Box::new(|g| {
                Ok(launch::gate_grad_coef(
                    g,
                    &gp,
                    &u(&bx),
                    &u(&by),
                    &u(&bmask),
                    &u(&bcoef),
                    &u(&bdcoef),
                )?)
            }),
            cpu: Box::new(|| cpu::gate_grad_coef(&gp, &x, &y, &mask, &coef, &mut small)),
        },
        &shape,
    )?;
    // Depthwise convolution at EfficientNet's windows (3x3 stride 1, 5x5 stride 2) on the same
    // activations: memory-bound, so in GB/s like the rest.
    for (k, stride) in [(3usize, 1usize), (5, 2)] {
        let dp = autorep_kernels::params::DwConvParams {
            n: batch,
            c,
            h: 32,
            w: 32,
            kh: k,
            kw: k,
            stride,
            pad: k / 2,
        };
        let (xl, yl, wl) = (dp.x_len(), dp.y_len(), dp.w_len());
        let wt = ramp(wl, 11);
        let (bw, bdy, bdx, bdw) = (up(&wt)?, alloc(yl)?, alloc(xl)?, alloc(wl)?);
        let dshape = format!("n{batch}x64x32x32 {k}x{k} s{stride}");
        let (mut hy, mut hdx, mut hdw) = (vec![0f32; yl], vec![0f32; xl], vec![0f32; wl]);
        let dyv = &x[..yl];
        push(
            MemKernel {
                name: "dwconv forward",
                floats: xl + yl + wl,
                gpu: Box::new(|g| {
                    Ok(launch::dwconv2d_forward(
                        g,
                        &dp,
                        &u(&bx),
                        &u(&bw),
                        &u(&bdy),
                    )?)
                }),
                cpu: Box::new(|| cpu::dwconv2d_forward(&dp, &x, &wt, &mut hy)),
            },
            &dshape,
        )?;
        push(
            MemKernel {
                name: "dwconv input grad",
                floats: xl + yl + wl,
                gpu: Box::new(|g| {
                    Ok(launch::dwconv2d_input_grad(
                        g,
                        &dp,
                        &u(&bdy),
                        &u(&bw),
                        &u(&bdx),
                    )?)
                }),
                cpu: Box::new(|| cpu::dwconv2d_input_grad(&dp, dyv, &wt, &mut hdx)),
            },
            &dshape,
        )?;
        push(
            MemKernel {
                name: "dwconv weight grad",
                floats: xl + yl + wl,
                gpu: Box::new(|g| {
                    Ok(launch::dwconv2d_weight_grad(
                        g,
                        &dp,
                        &u(&bx),
                        &u(&bdy),
                        &u(&bdw),
                    )?)
                }),
                cpu: Box::new(|| cpu::dwconv2d_weight_grad(&dp, &x, dyv, &mut hdw)),
            },
            &dshape,
        )?;
    }
    let pshape = format!("{params} params (resnet18_in)");
    let sgd = SgdParams {
        momentum: 0.9,
        weight_decay: 5e-4,
        first: false,
        ..SgdParams::new(0.1)
    };
    let (mut p1, mut b1) = (pv.clone(), pv.clone());
    push(
        MemKernel {
            name: "sgd_step (momentum)",
            floats: 5 * params,
            gpu: Box::new(|g| {
                Ok(launch::sgd_step(
                    g,
                    params,
                    &sgd,
                    &u(&bgrad),
                    &u(&bp),
                    Some(&u(&bs1)),
                    &u(&bamp),
                )?)
            }),
            cpu: Box::new(|| cpu::sgd_step(&sgd, &pv, &mut p1, Some(&mut b1), &launch::AMP_NONE)),
        },
        &pshape,
    )?;
    let adam = AdamParams::new(1e-3).at_step(10);
    let (mut p2, mut m2, mut v2) = (
        pv.clone(),
        pv.clone(),
        pv.iter().map(|v| v.abs()).collect::<Vec<_>>(),
    );
    push(
        MemKernel {
            name: "adam_step",
            floats: 7 * params,
            gpu: Box::new(|g| {
                Ok(launch::adam_step(
                    g,
                    params,
                    &adam,
                    &u(&bgrad),
                    &u(&bp),
                    &u(&bs1),
                    &u(&bs2),
                    &u(&bamp),
                )?)
            }),
            cpu: Box::new(|| {
                cpu::adam_step(&adam, &pv, &mut p2, &mut m2, &mut v2, &launch::AMP_NONE)
            }),
        },
        &pshape,
    )?;
    let lshape = format!("{rows}x{classes} logits");
    let (mut l1, mut c1) = (vec![0f32; rows], vec![0f32; rows]);
    push(
        MemKernel {
            name: "cross_entropy fwd",
            floats: rows * classes + 3 * rows,
            gpu: Box::new(|g| {
                Ok(launch::ce_forward(
                    g,
                    rows,
                    classes,
                    0.0,
                    &u(&bl),
                    &u(&blabels),
                    &u(&bloss),
                    &u(&bcorrect),
                )?)
            }),
            cpu: Box::new(|| cpu::ce_forward(&logits, &labels, classes, 0.0, &mut l1, &mut c1)),
        },
        &lshape,
    )?;
    let mut l2 = vec![0f32; rows];
    push(
        MemKernel {
            name: "kd fwd (T=4)",
            floats: 2 * rows * classes + rows,
            gpu: Box::new(|g| {
                Ok(launch::kd_forward(
                    g,
                    rows,
                    classes,
                    4.0,
                    &u(&bl),
                    &u(&bl),
                    &u(&bloss),
                )?)
            }),
            cpu: Box::new(|| cpu::kd_forward(&logits, &logits, classes, 4.0, &mut l2)),
        },
        &lshape,
    )?;
    Ok(out)
}
