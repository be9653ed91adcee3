//! Every tensor op, forward and backward, on the GPU against the CPU backend; and every
//! backward against central finite differences of the op's f64 CPU twin.

mod common;
use autorep::{Device, Tensor};
use common::cases::{cases, Case};
use common::{gpu, rand_vec, rel_err, vals};

fn inputs(c: &Case, device: &Device) -> Vec<Tensor> {
    c.shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut data = rand_vec(100 + i as u64, s.iter().product());
            if c.avoid_zero {
                data.iter_mut().for_each(|v| *v += 0.05 * v.signum());
            }
            Tensor::param(device, s, data).unwrap()
        })
        .collect()
}

/// loss = Σ w ⊙ op(inputs) with fixed weights w, so every output element matters.
fn loss_and_grads(c: &Case, device: &Device) -> (Vec<f32>, Vec<Vec<f32>>) {
    let xs = inputs(c, device);
    let out = (c.forward)(&xs).unwrap();
    let w = Tensor::from_vec(device, out.shape(), rand_vec(7, out.numel())).unwrap();
    out.mul(&w).unwrap().sum().unwrap().backward().unwrap();
    let grads = xs
        .iter()
        .map(|x| vals(&x.grad().expect("gradient reached the input")))
        .collect();
    (vals(&out), grads)
}

#[test]
fn gpu_ops_match_cpu_forward_and_backward() {
    let Some(g) = gpu() else { return };
    for c in cases() {
        let (out_c, grads_c) = loss_and_grads(&c, &Device::Cpu);
        let (out_g, grads_g) = loss_and_grads(&c, &g);
        let e = rel_err(&out_g, &out_c);
        assert!(e <= c.tol, "{}: forward rel err {e}", c.name);
        for (i, (gg, gc)) in grads_g.iter().zip(&grads_c).enumerate() {
            let e = rel_err(gg, gc);
            assert!(
                e <= c.tol.max(1e-4),
                "{}: grad of input {i} rel err {e}",
                c.name
            );
        }
    }
}

#[test]
fn backward_matches_finite_differences_in_f64() {
    for c in cases() {
        let (_, analytic) = loss_and_grads(&c, &Device::Cpu);
        let xs: Vec<Vec<f64>> = inputs(&c, &Device::Cpu)
            .iter()
            .map(|t| vals(t).iter().map(|&v| v as f64).collect())
            .collect();
        let out_len = (c.reference)(&xs).len();
        let w: Vec<f64> = rand_vec(7, out_len).iter().map(|&v| v as f64).collect();
        let loss =
            |xs: &[Vec<f64>]| -> f64 { (c.reference)(xs).iter().zip(&w).map(|(o, w)| o * w).sum() };
        let h = 1e-5;
        for (i, grad) in analytic.iter().enumerate() {
            for (j, &a) in grad.iter().enumerate() {
                let mut p = xs.clone();
                p[i][j] += h;
                let mut m = xs.clone();
                m[i][j] -= h;
                let numeric = (loss(&p) - loss(&m)) / (2.0 * h);
                let err = (a as f64 - numeric).abs() / numeric.abs().max(1.0);
                assert!(
                    err < 1e-4,
                    "{}: d/dx{i}[{j}] analytic {a} vs numeric {numeric}",
                    c.name
                );
            }
        }
    }
}

#[test]
fn gradients_accumulate_across_uses_of_a_tensor() {
    let x = Tensor::param(&Device::Cpu, &[3], vec![1.0, -2.0, 3.0]).unwrap();
    // y = x*x + 3x  →  dy/dx = 2x + 3
    let y = x
        .mul(&x)
        .unwrap()
        .add(&x.scale(3.0).unwrap())
        .unwrap()
        .sum()
        .unwrap();
    y.backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![5.0, -1.0, 9.0]);
    // A second backward adds to the stored gradient until zero_grad.
    let y2 = x.scale(2.0).unwrap().sum().unwrap();
    y2.backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![7.0, 1.0, 11.0]);
    x.zero_grad().unwrap();
    assert!(x.grad().is_none());
}

/// A backward pass consumes its graph (PyTorch's default): differentiating it again is an
/// error, not a silent second accumulation; a fresh forward pass can be differentiated.
#[test]
fn a_graph_is_differentiated_once() {
    let x = Tensor::param(&Device::Cpu, &[2], vec![1.0, 2.0]).unwrap();
    let y = x.mul(&x).unwrap().sum().unwrap();
    y.backward().unwrap();
    let err = y.backward().unwrap_err().to_string();
    assert!(err.contains("run the forward pass again"), "{err}");
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 4.0]);
    // A new loss over part of a consumed graph is refused before any gradient moves.
    let h = x.mul(&x).unwrap();
    h.sum().unwrap().backward().unwrap();
    let err = h.mul(&x).unwrap().sum().unwrap().backward().unwrap_err();
    assert!(err.to_string().contains("already consumed"), "{err}");
    assert_eq!(
        vals(&x.grad().unwrap()),
        vec![4.0, 8.0],
        "the refused pass added"
    );
    x.zero_grad().unwrap();
    x.mul(&x).unwrap().sum().unwrap().backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 4.0]);
}

#[test]
fn no_grad_records_nothing() {
    let x = Tensor::param(&Device::Cpu, &[2], vec![1.0, 2.0]).unwrap();
    let y = autorep::no_grad(|| x.scale(2.0).unwrap().sum().unwrap());
    assert!(!y.requires_grad());
    assert!(y.backward().is_err());
}

#[test]
fn shape_mismatch_is_a_typed_error_naming_both_shapes() {
    let a = Tensor::from_vec(&Device::Cpu, &[2, 3], vec![0.0; 6]).unwrap();
    let b = Tensor::from_vec(&Device::Cpu, &[3, 2], vec![0.0; 6]).unwrap();
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("[2, 3]") && e.contains("[3, 2]"), "{e}");
    let e = a.matmul(&a).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("[2, 3]"), "{e}");
    assert!(a.matmul(&b).is_ok());
    let e = Tensor::from_vec(&Device::Cpu, &[2, 2], vec![0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 2]"), "{e}");
}

#[test]
fn param_group_gradients_land_in_the_flat_buffer() {
    let devices = [Some(Device::Cpu), gpu()];
    for device in devices.into_iter().flatten() {
        let a = Tensor::param(&device, &[3, 5], rand_vec(30, 15)).unwrap();
        let b = Tensor::param(&device, &[70], rand_vec(31, 70)).unwrap();
        let (a0, b0) = (vals(&a), vals(&b));
        let group = autorep::nn::ParamGroup::new(&device, "g", vec![a.clone(), b.clone()]).unwrap();
        // Values moved into the flat buffer unchanged, at aligned offsets.
        assert_eq!(vals(&a), a0);
        assert_eq!(vals(&b), b0);
        let flat = vals(&group.flat);
        assert_eq!(&flat[..15], &a0[..]);
        assert_eq!(&flat[64..134], &b0[..]);
        for _ in 0..2 {
            // loss = Σ a² + 3 Σ b  →  da = 2a, db = 3; twice → accumulated
            let loss = a
                .mul(&a)
                .unwrap()
                .sum()
                .unwrap()
                .add(&b.scale(3.0).unwrap().sum().unwrap())
                .unwrap();
            loss.backward().unwrap();
        }
        let g = vals(&group.grads);
        for i in 0..15 {
            assert!((g[i] - 4.0 * a0[i]).abs() < 1e-5);
        }
        assert!(g[64..134].iter().all(|&v| (v - 6.0).abs() < 1e-5));
        assert!(g[15..64].iter().all(|&v| v == 0.0), "padding stays zero");
        assert_eq!(vals(&a.grad().unwrap()), g[..15].to_vec());
        group.zero_grad().unwrap();
        assert!(vals(&group.grads).iter().all(|&v| v == 0.0));
    }
}

#[test]
fn a_mixed_device_operation_is_a_typed_error_naming_both_devices() {
    let Some(g) = gpu() else { return };
    let cpu = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::from_vec(&Device::Cpu, shape, rand_vec(1, n)).unwrap()
    };
    let on_gpu = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::from_vec(&g, shape, rand_vec(2, n)).unwrap()
    };
    let expect = |r: autorep::Result<Tensor>, op: &str| {
        let e = r.map(|_| ()).unwrap_err();
        assert!(
            matches!(e, autorep::Error::DeviceMismatch { .. }),
            "{op}: {e}"
        );
        let text = e.to_string();
        assert!(text.contains(op) && text.contains("cpu"), "{text}");
    };
    // Operations that used to reach a host borrow of GPU memory.
    expect(
        cpu(&[1, 2, 5, 5]).conv2d(&on_gpu(&[3, 2, 3, 3]), 1, 1, "c"),
        "conv2d",
    );
    let (mean, var) = (on_gpu(&[2]), on_gpu(&[2]));
    expect(
        cpu(&[2, 2, 3, 3]).batch_norm(None, &mean, &var, true, Default::default(), "bn"),
        "batch_norm",
    );
    expect(cpu(&[4, 3]).distill(&on_gpu(&[4, 3]), 4.0), "distill");
    let p = cpu(&[5]);
    let e = p.adam_step_(
        &on_gpu(&[5]),
        &cpu(&[5]),
        &cpu(&[5]),
        &autorep_kernels::params::AdamParams::new(1e-3),
        &cpu(&[4]),
    );
    assert!(
        matches!(e, Err(autorep::Error::DeviceMismatch { .. })),
        "{e:?}"
    );
}
