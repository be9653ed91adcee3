//! ONNX export of a checkpoint's eval-mode network, traced rather than re-described: one
//! forward pass on the CPU records the graph of tensor operations (the same graph backward
//! walks), and each recorded operation becomes its ONNX node(s). What is exported is therefore
//! exactly what `autorep eval` computes. Opset 17, a dynamic batch dimension, f32 throughout.
//!
//! A gated site y = m·ReLU(x) + (1 − m)·P_c(x) becomes `Relu`, the per-channel polynomial
//! `A2·x² + A1·x + A0` (A2 = s₂·c₂, clamped as the network uses it; A1 = s₁·c₁; A0 = c₀) and
//! the blend with the mask m and 1 − m as initializers ([C, H, W] per pixel, [C, 1, 1] per
//! channel). A site whose mask is all ones is a plain `Relu`, all zeros a plain polynomial.

use crate::autorep::Replacement;
use crate::cost::SiteCount;
use crate::error::{Error, Result};
use crate::models::Model;
use crate::nn::ForwardCtx;
use crate::tensor::{Op, Tensor};
use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::collections::HashMap;

pub const OPSET: i64 = 17;
/// ONNX IR version 8 (ONNX 1.13+, the first to carry opset 17 officially).
const IR_VERSION: i64 = 8;
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";

/// What the export says about the network in its metadata properties.
#[derive(Debug, Clone)]
pub struct ExportInfo {
    /// (key, value) pairs: model, dataset, normalisation, ReLU counts, …
    pub props: Vec<(String, String)>,
    /// [C, H, W] of one input image.
    pub input: [usize; 3],
}

/// The graph under construction.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Tensor id → the ONNX value holding it.
    names: HashMap<usize, String>,
    /// The shape of every traced value, batch first (dynamic).
    value_info: Vec<ValueInfoProto>,
    counter: usize,
    /// Gated sites emitted so far; the nodes and initializers of site k are named `site{k}/…`.
    sites: usize,
    prefix: String,
}

fn attr_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

/// The window attributes of convolutions and pools: kernel, square stride, zero padding.
fn window_attrs(kh: usize, kw: usize, stride: usize, pad: usize) -> Vec<AttributeProto> {
    vec![
        attr_ints("kernel_shape", &[kh, kw]),
        attr_ints("strides", &[stride, stride]),
        attr_ints("pads", &[pad, pad, pad, pad]),
    ]
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i: v,
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::FLOAT.into(),
        f: v,
        ..Default::default()
    }
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{}{hint}_{}", self.prefix, self.counter)
    }

    fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: out.clone(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    fn constant(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: bytemuck::cast_slice(values).to_vec(),
            ..Default::default()
        });
        name
    }

    /// An int64 vector (shapes, indices) as a `Constant` node rather than an initializer:
    /// CrypTen turns every initializer into a trainable parameter, which integers cannot be.
    fn constant_i64(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let value = TensorProto {
            dims: vec![values.len() as i64],
            data_type: DataType::INT64 as i32,
            raw_data: bytemuck::cast_slice(values).to_vec(),
            ..Default::default()
        };
        self.nodes.push(NodeProto {
            op_type: "Constant".into(),
            name: name.clone(),
            output: vec![name.clone()],
            attribute: vec![AttributeProto {
                name: "value".into(),
                type_: AttributeType::TENSOR.into(),
                t: Some(value).into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        name
    }

    /// The ONNX value of `t`, emitting its producers first.
    fn value(&mut self, t: &Tensor, input: &Tensor) -> Result<String> {
        if let Some(n) = self.names.get(&t.id()) {
            return Ok(n.clone());
        }
        let name = match &*t.op() {
            None if t.id() == input.id() => INPUT.to_string(),
            None => self.constant("w", t.shape(), &t.to_vec()?),
            Some(op) => {
                let name = self.op(t, op, input)?;
                let mut dims = vec![None];
                dims.extend(t.shape().iter().skip(1).map(|&d| Some(d)));
                self.value_info.push(value_info(&name, &dims));
                name
            }
        };
        self.names.insert(t.id(), name.clone());
        Ok(name)
    }

    fn op(&mut self, t: &Tensor, op: &Op, input: &Tensor) -> Result<String> {
        Ok(match op {
            Op::Axpby(a, alpha, b, beta) => {
                let (a, b) = (self.value(a, input)?, self.value(b, input)?);
                let a = self.scaled(&a, *alpha);
                let b = self.scaled(&b, *beta);
                self.node("Add", &[&a, &b], vec![])
            }
            Op::Mul(a, b) => {
                let (a, b) = (self.value(a, input)?, self.value(b, input)?);
                self.node("Mul", &[&a, &b], vec![])
            }
            Op::ChannelScale { x, s } => {
                let (xv, sv) = (self.value(x, input)?, self.value(s, input)?);
                // [N, C] → [N, C, 1, …] so it broadcasts over the spatial axes.
                let mut shape = vec![0i64, 0];
                shape.extend(std::iter::repeat_n(1, x.shape().len().saturating_sub(2)));
                let dims = self.constant_i64("shape", &shape);
                let sv = self.node("Reshape", &[&sv, &dims], vec![]);
                self.node("Mul", &[&xv, &sv], vec![])
            }
            Op::Scale(a, alpha) => {
                let a = self.value(a, input)?;
                self.scaled(&a, *alpha)
            }
            // Export traces in f32; a cast there changes nothing.
            Op::Cast(a) => self.value(a, input)?,
            Op::Relu(a) => {
                let a = self.value(a, input)?;
                self.node("Relu", &[&a], vec![])
            }
            Op::Sigmoid(a) => {
                let a = self.value(a, input)?;
                self.node("Sigmoid", &[&a], vec![])
            }
            Op::Silu(a) => {
                let a = self.value(a, input)?;
                let s = self.node("Sigmoid", &[&a], vec![]);
                self.node("Mul", &[&a, &s], vec![])
            }
            Op::Matmul { a, b, ta, tb } => {
                let (mut a, mut b) = (self.value(a, input)?, self.value(b, input)?);
                let perm = || vec![attr_ints("perm", &[1, 0])];
                if *ta {
                    a = self.node("Transpose", &[&a], perm());
                }
                if *tb {
                    b = self.node("Transpose", &[&b], perm());
                }
                self.node("MatMul", &[&a, &b], vec![])
            }
            Op::BiasAdd { x, bias, .. } => {
                let xv = self.value(x, input)?;
                // The bias broadcasts over the channel axis (1): trailing unit dims.
                let mut dims = vec![bias.numel()];
                dims.extend(std::iter::repeat_n(1, x.shape().len().saturating_sub(2)));
                let b = self.constant("bias", &dims, &bias.to_vec()?);
                self.node("Add", &[&xv, &b], vec![])
            }
            Op::Reshape(a) => {
                let av = self.value(a, input)?;
                let mut shape = vec![-1i64];
                shape.extend(t.shape().iter().skip(1).map(|&d| d as i64));
                let s = self.constant_i64("shape", &shape);
                self.node("Reshape", &[&av, &s], vec![])
            }
            Op::Conv2d { x, w, p } => {
                let (xv, wv) = (self.value(x, input)?, self.value(w, input)?);
                let mut attrs = window_attrs(p.kh, p.kw, p.stride, p.pad);
                attrs.push(attr_int("group", 1));
                // Explicit although 1 is ONNX's default: CrypTen's importer requires it.
                attrs.push(attr_ints("dilations", &[1, 1]));
                self.node("Conv", &[&xv, &wv], attrs)
            }
            Op::DwConv { x, w, p } => {
                let (xv, wv) = (self.value(x, input)?, self.value(w, input)?);
                let mut attrs = window_attrs(p.kh, p.kw, p.stride, p.pad);
                attrs.push(attr_int("group", p.c as i64));
                attrs.push(attr_ints("dilations", &[1, 1]));
                self.node("Conv", &[&xv, &wv], attrs)
            }
            Op::BatchNorm {
                x,
                gamma,
                beta,
                mean,
                var,
                eps,
                train,
                ..
            } => {
                if *train {
                    return Err(Error::Invalid(
                        "export: a batch norm ran in training mode; export traces eval mode".into(),
                    ));
                }
                let c = mean.numel();
                let xv = self.value(x, input)?;
                let g = match gamma {
                    Some(g) => self.value(g, input)?,
                    None => self.constant("ones", &[c], &vec![1.0; c]),
                };
                let b = match beta {
                    Some(b) => self.value(b, input)?,
                    None => self.constant("zeros", &[c], &vec![0.0; c]),
                };
                let (m, v) = (self.value(mean, input)?, self.value(var, input)?);
                let attrs = vec![attr_float("epsilon", *eps)];
                self.node("BatchNormalization", &[&xv, &g, &b, &m, &v], attrs)
            }
            // Export traces the separate ops (`export_onnx` turns fusion off): ONNX has them.
            Op::BnAct { .. } => {
                return Err(Error::Invalid(
                    "export: the forward pass ran a fused batch norm; export traces the separate ops".into(),
                ))
            }
            Op::AvgPool { x, p } => {
                let xv = self.value(x, input)?;
                let mut attrs = window_attrs(p.k, p.k, p.stride, p.pad);
                attrs.push(attr_int("count_include_pad", 1));
                self.node("AveragePool", &[&xv], attrs)
            }
            Op::MaxPool { x, p, .. } => {
                let xv = self.value(x, input)?;
                let attrs = window_attrs(p.k, p.k, p.stride, p.pad);
                self.node("MaxPool", &[&xv], attrs)
            }
            Op::GlobalAvgPool { x } => {
                let xv = self.value(x, input)?;
                let pooled = self.node("GlobalAveragePool", &[&xv], vec![]);
                self.node("Flatten", &[&pooled], vec![attr_int("axis", 1)])
            }
            Op::Gate {
                x, coef, mask, p, ..
            } => {
                let xv = self.value(x, input)?;
                self.gate(&xv, x.shape(), &mask.to_vec()?, &coef.to_vec()?, p)?
            }
            Op::SumMid { .. } | Op::CrossEntropy { .. } | Op::Distill { .. } => {
                return Err(Error::Invalid(
                    "export: the forward pass holds a reduction or a loss, which an inference graph does not"
                        .into(),
                ))
            }
        })
    }

    /// `v`·alpha, or `v` itself when alpha is 1.
    fn scaled(&mut self, v: &str, alpha: f32) -> String {
        if alpha == 1.0 {
            return v.to_string();
        }
        let a = self.constant("scale", &[], &[alpha]);
        self.node("Mul", &[v, &a], vec![])
    }

    /// A gated site, its nodes and initializers named `site{k}/…` (what [`sites_of_onnx`]
    /// reads back).
    fn gate(
        &mut self,
        x: &str,
        shape: &[usize],
        mask: &[f32],
        coef: &[f32],
        p: &autorep_kernels::params::GateParams,
    ) -> Result<String> {
        self.prefix = format!("site{}/", self.sites);
        self.sites += 1;
        let out = self.gate_nodes(x, shape, mask, coef, p);
        self.prefix.clear();
        out
    }

    /// A gated site. All gates kept: `Relu`. None kept: the per-channel polynomial, broadcast.
    /// Otherwise the ReLUs are evaluated on the kept elements only, as private inference
    /// needs (a framework that runs the graph pays for every `Relu` element): the flattened
    /// input is split by `Gather` into the kept elements (`Relu`) and the replaced ones (the
    /// polynomial, its coefficients per element), joined by `Concat`, and put back in order
    /// by a `Gather` with the inverse permutation; every index set is a public `Constant`
    /// (`site{k}/kept_…` lists the kept elements of one image, channel-major).
    fn gate_nodes(
        &mut self,
        x: &str,
        shape: &[usize],
        mask: &[f32],
        coef: &[f32],
        p: &autorep_kernels::params::GateParams,
    ) -> Result<String> {
        let c = p.channels;
        if mask.iter().all(|&m| m == 1.0) {
            return Ok(self.node("Relu", &[x], vec![]));
        }
        let [a0, a1, a2] = super::polynomial(coef, p);
        let has_x2 = a2.iter().any(|&v| v != 0.0);
        // SNL's linearised elements and the identity ablation: the replaced elements pass
        // through with no multiplication, which a secret coefficient of 1 would cost.
        let identity = !has_x2 && a0.iter().all(|&v| v == 0.0) && a1.iter().all(|&v| v == 1.0);
        // Horner's form, p(x) = (x·A2 + A1)·x + A0: two multiplications by x where the
        // coefficients are secret (CrypTen encrypts every initializer), and no node takes
        // one value twice (CrypTen's graph runner never schedules such a node).
        let poly = |g: &mut Graph, x: &str, dims: &[usize], a0: &[f32], a1: &[f32], a2: &[f32]| {
            if identity {
                return x.to_string();
            }
            let a1v = g.constant("poly_a1", dims, a1);
            let v = if has_x2 {
                let a2v = g.constant("poly_a2", dims, a2);
                let xa2 = g.node("Mul", &[x, &a2v], vec![]);
                let inner = g.node("Add", &[&xa2, &a1v], vec![]);
                g.node("Mul", &[&inner, x], vec![])
            } else {
                g.node("Mul", &[x, &a1v], vec![])
            };
            let a0v = g.constant("poly_a0", dims, a0);
            g.node("Add", &[&v, &a0v], vec![])
        };
        if mask.iter().all(|&m| m == 0.0) {
            // Per-channel constants broadcast as [C, 1, 1] over [B, C, H, W], as [C] over [B, C].
            if identity {
                // A reshape to its own shape: free in every protocol, and a node of the site
                // that `sites_of_onnx` finds (CrypTen's importer has no Identity).
                let mut dims = vec![-1i64];
                dims.extend(shape[1..].iter().map(|&d| d as i64));
                let same = self.constant_i64("shape", &dims);
                return Ok(self.node("Reshape", &[x, &same], vec![]));
            }
            let mut per_channel = vec![c];
            per_channel.extend(std::iter::repeat_n(1, shape.len().saturating_sub(2)));
            return Ok(poly(self, x, &per_channel, &a0, &a1, &a2));
        }
        if let Some(m) = mask.iter().find(|&&m| m != 0.0 && m != 1.0) {
            return Err(Error::Invalid(format!(
                "export: a gated site's mask holds {m}, not 0 or 1: export a network whose mask is binary (AutoReP's best, or SNL's after binarisation)"
            )));
        }
        let n: usize = shape[1..].iter().product();
        let hw = n / c;
        let per_gate = if p.channel_wise { hw } else { 1 };
        let kept = |i: usize| mask[i / per_gate] != 0.0;
        let (keep, rest): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| kept(i));
        let mut position = vec![0i64; n];
        for (at, &i) in keep.iter().chain(&rest).enumerate() {
            position[i] = at as i64;
        }
        let idx = |v: &[usize]| v.iter().map(|&i| i as i64).collect::<Vec<_>>();
        let flat_shape = self.constant_i64("flat_shape", &[-1, n as i64]);
        let flat = self.node("Reshape", &[x, &flat_shape], vec![]);
        let axis1 = || vec![attr_int("axis", 1)];
        let kept_idx = self.constant_i64("kept", &idx(&keep));
        let xk = self.node("Gather", &[&flat, &kept_idx], axis1());
        let relu = self.node("Relu", &[&xk], vec![]);
        let rest_idx = self.constant_i64("replaced", &idx(&rest));
        let xr = self.node("Gather", &[&flat, &rest_idx], axis1());
        let at = |a: &[f32]| rest.iter().map(|&i| a[i / hw]).collect::<Vec<f32>>();
        let replaced = poly(self, &xr, &[rest.len()], &at(&a0), &at(&a1), &at(&a2));
        let joined = self.node("Concat", &[&relu, &replaced], axis1());
        let order = self.constant_i64("order", &position);
        let back = self.node("Gather", &[&joined, &order], axis1());
        let mut dims = vec![-1i64];
        dims.extend(shape[1..].iter().map(|&d| d as i64));
        let out_shape = self.constant_i64("shape", &dims);
        Ok(self.node("Reshape", &[&back, &out_shape], vec![]))
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::FLOAT as i32,
                shape: Some(TensorShapeProto {
                    dim,
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// The ONNX model of `model` (on the CPU) in eval mode, with its gates as they are.
pub fn export_onnx(
    model: &dyn Model,
    rep: Option<&Replacement>,
    info: &ExportInfo,
) -> Result<Vec<u8>> {
    let [c, h, w] = info.input;
    // Two images: batch-norm shapes need no special case, and the graph is batch-agnostic.
    let x = Tensor::zeros(&crate::Device::Cpu, &[2, c, h, w])?;
    let ctx = ForwardCtx {
        fuse: false,
        ..rep.map_or_else(ForwardCtx::eval, Replacement::eval_ctx)
    };
    // Recorded, not run under no_grad: the graph is what gets exported.
    let y = model.forward(&x, &ctx)?;
    if y.op().is_none() {
        return Err(Error::Invalid(
            "export: the forward pass recorded no graph (no trainable parameter reached the output)"
                .into(),
        ));
    }
    let mut g = Graph::default();
    let out = g.value(&y, &x)?;
    let classes = y.shape().get(1).copied().unwrap_or(1);
    // The last node writes `logits` itself (CrypTen's importer has no Identity).
    match g.nodes.iter_mut().rev().find(|n| n.output.contains(&out)) {
        Some(n) => {
            n.output = vec![OUTPUT.into()];
            g.value_info.retain(|v| v.name != out);
        }
        None => g.nodes.push(NodeProto {
            op_type: "Identity".into(),
            name: OUTPUT.into(),
            input: vec![out],
            output: vec![OUTPUT.into()],
            ..Default::default()
        }),
    }
    let graph = GraphProto {
        name: "autorep".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![value_info(INPUT, &[None, Some(c), Some(h), Some(w)])],
        value_info: g.value_info,
        output: vec![value_info(OUTPUT, &[None, Some(classes)])],
        ..Default::default()
    };
    let onnx = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "autorep".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        metadata_props: info
            .props
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    onnx.write_to_bytes()
        .map_err(|e| Error::Invalid(format!("export: encoding the ONNX model: {e}")))
}

/// Op types and counts of an exported model (for `cost --onnx` and tests).
pub fn op_counts(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, usize>> {
    let m = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| Error::Invalid(format!("not an ONNX model: {e}")))?;
    let mut counts = std::collections::BTreeMap::new();
    for n in &m.graph.node {
        *counts.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    Ok(counts)
}

/// The activation sites of an exported model, read from the graph itself: ReLUs kept,
/// activations per image and the degree of the rest, in graph order. Every `Relu` node and
/// every SiLU (`x·Sigmoid(x)`) is a site whose activations all count as kept; a gated site
/// (nodes named `site{k}/…`) keeps as many ReLUs as its `kept` index constant lists, all of
/// them when it is a lone `Relu`, none when it has no `Relu`; the rest are polynomials of
/// degree 2 when the site has x² coefficients (`poly_a2`), 1 when it has only linear ones,
/// and the identity otherwise. Activation counts come from the traced shape of the site's
/// input.
pub fn sites_of_onnx(bytes: &[u8]) -> Result<Vec<SiteCount>> {
    let bad = |why: String| Error::Invalid(format!("ONNX model: {why}"));
    let m = ModelProto::parse_from_bytes(bytes).map_err(|e| {
        Error::Invalid(format!(
            "not an ONNX model ({e}): pass a file written by `autorep export`"
        ))
    })?;
    let g = &m.graph;
    let per_image = |vi: &ValueInfoProto| -> Option<usize> {
        let type_proto::Value::TensorType(t) = vi.type_.value.as_ref()? else {
            return None;
        };
        t.shape
            .dim
            .iter()
            .skip(1)
            .try_fold(1usize, |n, d| match d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) => Some(n * v as usize),
                _ => None,
            })
    };
    let sizes: HashMap<&str, usize> = g
        .input
        .iter()
        .chain(&g.value_info)
        .filter_map(|vi| Some((vi.name.as_str(), per_image(vi)?)))
        .collect();
    let size = |name: &str| {
        sizes.get(name).copied().ok_or_else(|| {
            bad(format!(
                "no shape for {name}: export it with `autorep export`, which records every shape"
            ))
        })
    };
    let site_of = |name: &str| name.split_once('/').map(|(s, _)| s.to_string());
    // site → (activations, kept; None for a gated site until its nodes are read)
    let mut order: Vec<String> = Vec::new();
    let mut sites: HashMap<String, (usize, Option<usize>)> = HashMap::new();
    let mut has_relu: HashMap<String, bool> = HashMap::new();
    // x·Sigmoid(x) is an ungated SiLU site (EfficientNet's baseline activation).
    let sigmoid_of: HashMap<&str, &str> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Sigmoid" && n.input.len() == 1 && n.output.len() == 1)
        .map(|n| (n.output[0].as_str(), n.input[0].as_str()))
        .collect();
    fn input_of(n: &NodeProto) -> Result<&str> {
        n.input
            .first()
            .map(String::as_str)
            .ok_or_else(|| Error::Invalid(format!("ONNX model: {} has no input", n.name)))
    }
    let mut degree: HashMap<String, usize> = HashMap::new();
    for t in &g.initializer {
        if let Some((site, rest)) = t.name.split_once('/') {
            let d = if rest.starts_with("poly_a2") {
                2
            } else if rest.starts_with("poly_a1") {
                1
            } else {
                0
            };
            let e = degree.entry(site.to_string()).or_default();
            *e = (*e).max(d);
        }
    }
    let mut kept_lists: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        if n.op_type == "Constant" {
            if let (Some(site), true) = (site_of(&n.name), n.name.contains("/kept_")) {
                let len = n.attribute.first().map_or(0, |a| a.t.raw_data.len() / 8);
                kept_lists.insert(site, len);
            }
            continue;
        }
        if n.op_type == "Mul" && n.input.len() == 2 {
            let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
            if sigmoid_of.get(b) == Some(&a) || sigmoid_of.get(a) == Some(&b) {
                let total = size(a)?;
                order.push(n.name.clone());
                sites.insert(n.name.clone(), (total, Some(total)));
                continue;
            }
        }
        match site_of(&n.name) {
            Some(site) => {
                // A site's first node reads the site's input x.
                if !sites.contains_key(&site) {
                    order.push(site.clone());
                    sites.insert(site.clone(), (size(input_of(n)?)?, None));
                }
                *has_relu.entry(site).or_default() |= n.op_type == "Relu";
            }
            None if n.op_type == "Relu" => {
                let total = size(input_of(n)?)?;
                order.push(n.name.clone());
                sites.insert(n.name.clone(), (total, Some(total)));
            }
            None => {}
        }
    }
    order
        .into_iter()
        .map(|site| {
            let (total, kept) = sites[&site];
            let kept = kept.unwrap_or_else(|| match kept_lists.get(&site) {
                Some(&k) => k,
                None if has_relu.get(&site) == Some(&true) => total,
                None => 0,
            });
            Ok(SiteCount {
                degree: degree.get(&site).copied().unwrap_or(0),
                name: site,
                relus: kept,
                total,
            })
        })
        .collect()
}
