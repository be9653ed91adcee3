//! Batch norm fused with the activation after it (and a residual add): a training step of
//! every model family through the fused op gives the loss, the gradients and the running
//! statistics of the unfused ops, with ReLU, SiLU and every kind of gate (lavapipe, f32 and
//! f16), and the op's CPU path agrees with the unfused ops as well.

mod common;
use autorep::autorep::{Granularity, Method, ReplaceConfig, Replacement};
use autorep::models::{build, Model, WideResNet};
use autorep::nn::ForwardCtx;
use autorep::tensor::{BnConfig, BnParams, GateState, ReluCounter, SiteAct};
use autorep::{Device, Dtype, Labels, Tensor};
use common::{rand_vec, rel_err};
use std::rc::Rc;

/// What one training step leaves behind.
struct Step {
    loss: f32,
    /// Every parameter's gradient (the model's, then the sites'), by name.
    grads: Vec<(String, Vec<f32>)>,
    /// Batch-norm running statistics and the sites' DaPa statistics.
    buffers: Vec<(String, Vec<f32>)>,
}

#[derive(Clone, Copy, Debug)]
enum Family {
    ResNet,
    Wrn,
    EfficientNet,
}

fn model(net: Family, dev: &Device) -> Box<dyn Model> {
    match net {
        Family::ResNet => build("small", dev, 3, 8, 4, 7).unwrap(),
        // WRN-10-1: the pre-activation blocks of wrn22_8 at a size lavapipe trains quickly.
        Family::Wrn => Box::new(WideResNet::new(dev, 10, 1, 3, 8, 4, 7).unwrap()),
        Family::EfficientNet => build("efficientnet_b2", dev, 3, 8, 4, 7).unwrap(),
    }
}

/// A gated network in which every gate is off: each site is its polynomial, so the step is a
/// smooth function of its inputs (see the f16 test).
const ALL_OFF: f32 = -1.0;

fn step(
    dev: &Device,
    net: Family,
    gate: Option<(Method, Granularity)>,
    fuse: bool,
    dtype: Dtype,
) -> Step {
    step_with(dev, net, gate, fuse, dtype, None)
}

fn step_with(
    dev: &Device,
    net: Family,
    gate: Option<(Method, Granularity)>,
    fuse: bool,
    dtype: Dtype,
    h_value: Option<f32>,
) -> Step {
    let mut m = model(net, dev);
    let mut rep = gate.map(|(method, granularity)| {
        let cfg = ReplaceConfig {
            method,
            granularity,
            clip_x2: 0.4,
            ..ReplaceConfig::autorep(10)
        };
        let rep = Replacement::install(m.as_mut(), cfg, dev).unwrap();
        // Mixed masks (SNL: fractional α) and coefficients away from the identity.
        for (k, site) in m.sites().iter().enumerate() {
            let autorep::nn::SiteMode::Gated(g) = &site.mode else {
                unreachable!()
            };
            let n = g.gate.numel();
            let h: Vec<f32> = rand_vec(100 + k as u64, n);
            let h = match (method, h_value) {
                (_, Some(v)) => vec![v; n],
                (Method::Snl, None) => h.iter().map(|v| v.abs()).collect(),
                _ => h,
            };
            g.gate.copy_from_host(&h).unwrap();
            if g.coef.requires_grad() {
                let c = rand_vec(200 + k as u64, g.coef.numel());
                g.coef.copy_from_host(&c).unwrap();
            }
        }
        rep
    });
    let mut ctx = match &mut rep {
        Some(r) => r.begin_forward(m.as_ref(), true).unwrap(),
        None => ForwardCtx::train(),
    };
    ctx.fuse = fuse;
    // EfficientNet reaches 1x1 planes at 8x8 inputs, where a batch norm over two images maps
    // every value to ±1 by the sign of a difference that rounding decides: it takes eight.
    let batch = match net {
        Family::EfficientNet => 8,
        _ => 2,
    };
    let x = Tensor::from_vec(dev, &[batch, 3, 8, 8], rand_vec(1, batch * 3 * 64)).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 3 + 1) % 4).collect();
    let labels = Rc::new(Labels::new(dev, &labels).unwrap());
    let logits = m.forward(&x.cast(dtype).unwrap(), &ctx).unwrap();
    // f16 gradients are scaled as mixed-precision training scales them (without it they
    // underflow in f16 and the comparison measures the underflow).
    let scale = if dtype == Dtype::F16 { 1024.0 } else { 1.0 };
    let loss = logits
        .cast(Dtype::F32)
        .unwrap()
        .cross_entropy(&labels, 0.0)
        .unwrap()
        .loss
        .mean()
        .unwrap();
    let seed = Tensor::from_vec(dev, &[1], vec![scale]).unwrap();
    loss.backward_from(seed).unwrap();
    let unscale =
        |g: Tensor| -> Vec<f32> { g.to_vec().unwrap().iter().map(|v| v / scale).collect() };
    let mut grads: Vec<(String, Vec<f32>)> = m
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.grad().map_or(vec![], unscale)))
        .collect();
    let mut buffers: Vec<(String, Vec<f32>)> = m
        .named_buffers()
        .into_iter()
        .map(|(n, b)| (n, b.to_vec().unwrap()))
        .collect();
    for site in m.sites() {
        for (k, p) in site.params().iter().enumerate() {
            let g = p.grad().map_or(vec![], unscale);
            grads.push((format!("{} param {k}", site.name), g));
        }
        if let autorep::nn::SiteMode::Gated(g) = &site.mode {
            for (k, t) in g.stats.iter().flat_map(|(m, v)| [m, v]).enumerate() {
                buffers.push((format!("{} stats {k}", site.name), t.to_vec().unwrap()));
            }
        }
    }
    Step {
        loss: loss.to_vec().unwrap()[0],
        grads,
        buffers,
    }
}

/// Each gradient agrees to `tol` relative to its largest magnitude, or to a thousandth of the
/// step's largest gradient where that is more (a batch norm's β before another batch norm
/// has a gradient that is 0 but for rounding); statistics (means near 0 at initialisation,
/// variances near 1) to `tol` relative to 1 at least.
fn assert_same(fused: &Step, unfused: &Step, tol: f32, what: &str) {
    let d = (fused.loss - unfused.loss).abs();
    assert!(
        d <= tol * unfused.loss.abs(),
        "{what}: loss {} vs {}",
        fused.loss,
        unfused.loss
    );
    let all = unfused.grads.iter().flat_map(|(_, g)| g);
    let largest = all.fold(0f32, |m, v| m.max(v.abs()));
    for (a, b, floor) in [
        (&fused.grads, &unfused.grads, 1e-3 * largest),
        (&fused.buffers, &unfused.buffers, 1.0),
    ] {
        assert_eq!(a.len(), b.len(), "{what}");
        for ((name, x), (_, y)) in a.iter().zip(b) {
            assert_eq!(x.len(), y.len(), "{what} {name}: one side has no gradient");
            let scale = y.iter().fold(floor, |m: f32, v| m.max(v.abs())).max(1e-12);
            let e = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale;
            assert!(e <= tol, "{what} {name}: rel err {e} > {tol}");
        }
    }
}

fn compare(dev: &Device, net: Family, gate: Option<(Method, Granularity)>, dtype: Dtype, tol: f32) {
    let what = format!("{net:?} {gate:?} {dtype:?}");
    let fused = step(dev, net, gate, true, dtype);
    let unfused = step(dev, net, gate, false, dtype);
    assert_same(&fused, &unfused, tol, &what);
}

#[test]
fn a_fused_training_step_matches_the_unfused_ops() {
    let Some(dev) = common::gpu() else { return };
    let gates = [
        None,
        Some((Method::AutoRep, Granularity::Pixel)),
        Some((Method::AutoRep, Granularity::Channel)),
        Some((Method::Snl, Granularity::Pixel)),
        Some((Method::Identity, Granularity::Pixel)),
    ];
    for gate in gates {
        compare(&dev, Family::ResNet, gate, Dtype::F32, 1e-4);
    }
    compare(&dev, Family::Wrn, None, Dtype::F32, 1e-4);
    compare(&dev, Family::Wrn, gates[1], Dtype::F32, 1e-4);
}

/// EfficientNet-B2's sites (SiLU after every batch norm): an evaluation-mode forward pass of
/// one model through the fused op and through the separate ops. Its backward is the op's,
/// tested with SiLU in `the_fused_op_matches_the_unfused_ops`, and training-mode statistics
/// are compared on ResNet and WRN above; EfficientNet-B2 itself is slow on lavapipe.
#[test]
fn efficientnet_forward_passes_match_the_unfused_ops() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::from_vec(&dev, &[2, 3, 8, 8], rand_vec(1, 2 * 3 * 64)).unwrap();
    let m = model(Family::EfficientNet, &dev);
    // Every batch norm different (at initialisation they are all the identity, so a site
    // paired with the wrong one would pass).
    for (k, (name, t)) in m
        .named_params()
        .iter()
        .chain(&m.named_buffers())
        .enumerate()
    {
        let v = rand_vec(300 + k as u64, t.numel());
        let v: Vec<f32> = match name {
            n if n.ends_with("running_var") => v.iter().map(|v| v.abs() + 0.5).collect(),
            n if n.ends_with("running_mean") => v.iter().map(|v| 0.3 * v).collect(),
            _ if t.shape().len() == 1 => v.iter().map(|v| 1.0 + 0.3 * v).collect(),
            _ => continue,
        };
        t.copy_from_host(&v).unwrap();
    }
    let logits = |fuse: bool| {
        let ctx = ForwardCtx {
            fuse,
            ..ForwardCtx::eval()
        };
        autorep::no_grad(|| m.forward(&x, &ctx))
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let (f, u) = (logits(true), logits(false));
    let e = rel_err(&f, &u);
    assert!(e <= 1e-4, "logits rel err {e}: {f:?} vs {u:?}");
}

/// In f16 the unfused ops round the normalised tensor and the sum to f16 where the fused op
/// keeps them in f32, so a value near 0 may take the other side of a ReLU in one of them, and
/// in a network this small one such flip moves whole gradients by tens of percent (both
/// paths are then equally far from f32). The network here has every gate off, so each site
/// is its polynomial and the comparison is of rounding alone; the ReLU and the gates are
/// compared in f16 op by op (`the_fused_op_matches_the_unfused_ops`) and kernel by kernel.
#[test]
fn a_fused_f16_training_step_matches_the_unfused_ops() {
    let Some(dev) = common::gpu() else { return };
    let Device::Gpu(g) = &dev else { unreachable!() };
    if !g.report().f16 {
        eprintln!("skipped: the adapter has no SHADER_F16");
        return;
    }
    for gran in [Granularity::Pixel, Granularity::Channel] {
        let gate = Some((Method::AutoRep, gran));
        let run = |fuse| step_with(&dev, Family::ResNet, gate, fuse, Dtype::F16, Some(ALL_OFF));
        assert_same(&run(true), &run(false), 1e-2, &format!("{gran:?} f16"));
    }
}

/// The op against batch norm + add + activation on `dev` in `dtype`: the output, the running
/// statistics and every input's gradient, as relative errors by name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Relu,
    Silu,
    Gate,
}

fn op_errors(
    dev: &Device,
    dtype: Dtype,
    kind: Act,
    train: bool,
    (n, c, h, wd): (usize, usize, usize, usize),
) -> Vec<(&'static str, f32)> {
    let hw = h * wd;
    let len = n * c * hw;
    let shape = [n, c, h, wd];
    let p = autorep_kernels::params::GateParams {
        batch: n,
        channels: c,
        hw,
        channel_wise: false,
        s1: 0.8,
        s2: 0.2,
        clip2: 0.0,
    };
    let param = |seed, shape: &[usize], shift: f32| {
        let k = shape.iter().product();
        let v = rand_vec(seed, k).iter().map(|v| v + shift).collect();
        Tensor::param(dev, shape, v).unwrap()
    };
    let run = |fused: bool| -> Vec<Vec<f32>> {
        let x = param(1, &shape, 0.5);
        let r = param(2, &shape, 0.0);
        let (gamma, beta) = (param(3, &[c], 1.5), param(4, &[c], 0.0));
        // Running statistics away from (0, 1), which evaluation normalises with.
        let rv_v: Vec<f32> = rand_vec(10, c).iter().map(|v| v.abs() + 0.5).collect();
        let (rm, rv) = (
            Tensor::from_vec(dev, &[c], rand_vec(9, c)).unwrap(),
            Tensor::from_vec(dev, &[c], rv_v).unwrap(),
        );
        let h = param(5, &[c * hw], 0.0);
        let mask_v: Vec<f32> = rand_vec(6, c * hw)
            .iter()
            .map(|v| (*v > 0.0) as u8 as f32)
            .collect();
        let mask = Tensor::from_vec(dev, &[c * hw], mask_v).unwrap();
        let coef = param(7, &[3 * c], 0.0);
        let counter = Rc::new(ReluCounter::new(dev).unwrap());
        let grad = autorep_kernels::params::GateGrad::Ste {
            penalty: 0.01,
            budget: 0,
        };
        counter.add(&p, &mask, 0.5).unwrap();
        let cfg = BnConfig::default();
        // In f16 only the residual is f16: the op takes both in f16, as `add` does.
        let (xc, rc) = (x.clone(), r.cast(dtype).unwrap());
        let z = if fused {
            let bn = BnParams {
                gamma: &gamma,
                beta: &beta,
                running_mean: &rm,
                running_var: &rv,
                cfg,
            };
            let act = match kind {
                Act::Gate => SiteAct::Gate(GateState {
                    mask: mask.clone(),
                    coef: coef.clone(),
                    gate: h.clone(),
                    p,
                    grad,
                    counter: counter.clone(),
                }),
                Act::Relu => SiteAct::Relu,
                Act::Silu => SiteAct::Silu,
            };
            xc.batch_norm_act(bn, Some(&rc), act, train, None, "bn")
                .unwrap()
        } else {
            let y = xc
                .batch_norm(Some((&gamma, &beta)), &rm, &rv, train, cfg, "bn")
                .unwrap()
                .add(&rc)
                .unwrap();
            match kind {
                Act::Gate => y.gate(&mask, &coef, &h, p, grad, &counter).unwrap(),
                Act::Relu => y.relu().unwrap(),
                Act::Silu => y.silu().unwrap(),
            }
        };
        let w = Tensor::from_vec(dev, &shape, rand_vec(8, len)).unwrap();
        let z = z.cast(Dtype::F32).unwrap();
        z.mul(&w).unwrap().mean().unwrap().backward().unwrap();
        let mut out = vec![
            z.to_vec().unwrap(),
            rm.to_vec().unwrap(),
            rv.to_vec().unwrap(),
        ];
        let mut params = vec![&x, &r, &gamma, &beta];
        if kind == Act::Gate {
            params.extend([&h, &coef]);
        }
        for t in params {
            out.push(t.grad().unwrap().to_vec().unwrap());
        }
        out
    };
    let (fused, unfused) = (run(true), run(false));
    let names = [
        "z",
        "running mean",
        "running var",
        "dx",
        "dr",
        "dgamma",
        "dbeta",
        "dh",
        "dcoef",
    ];
    fused
        .iter()
        .zip(&unfused)
        .zip(names)
        .map(|((f, u), name)| (name, rel_err(f, u)))
        .collect()
}

/// The op on the CPU device (its twins) and on the GPU, with each activation, with batch
/// statistics and with running ones (gradients flowing in evaluation mode too).
#[test]
fn the_fused_op_matches_the_unfused_ops() {
    let mut runs = vec![(Device::Cpu, Dtype::F32, 1e-5)];
    if let Some(g) = common::gpu() {
        runs.push((g.clone(), Dtype::F32, 1e-5));
        runs.push((g, Dtype::F16, 5e-3));
    }
    for (dev, dtype, tol) in runs {
        for kind in [Act::Relu, Act::Silu, Act::Gate] {
            for train in [true, false] {
                for (name, e) in op_errors(&dev, dtype, kind, train, (3, 4, 2, 3)) {
                    let what = format!("{} {dtype:?} {kind:?} train {train}", dev.describe());
                    assert!(e <= tol, "{what} {name}: rel err {e}");
                }
            }
        }
    }
}
