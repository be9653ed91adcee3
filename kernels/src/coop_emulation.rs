//! The tensor-core shaders (cooperative matrices) rewritten into plain WGSL, so that their
//! indexing — tile origins, strides, staging, epilogues, split-K planes — runs and is tested on
//! adapters without cooperative matrices (lavapipe in CI). `AUTOREP_COOP=emulate` or
//! [`crate::Gpu::open_emulating_coop`] turns it on; it is a check of our shaders, never a fast
//! path.
//!
//! A 16x16 matrix belongs to a subgroup of 32 invocations (parts/coop_tile.wgsl's layout:
//! subgroup s is invocations 32s..32s+31). Each of them holds a share of an accumulator (C), as
//! the hardware does: invocation `lane` owns row lane / 2, columns (lane % 2)·8 .. +8
//! (`array<f32, 8>`), so a multiply-add needs no other invocation's values. An A or B fragment
//! is where it was loaded from (`EmuA`/`EmuB`: which array, offset, stride, layout), and the
//! multiply-add reads the lane's row of A and columns of B from there (fragments held as
//! values, private arrays of 16 and 128 floats per invocation, made lavapipe's compiler
//! several times slower, minutes per wide tile with bounds checks). This assumes what our
//! shaders do: a fragment is multiplied before the memory it came from is written again (the next
//! slice is staged after a barrier). Loads and stores use the layout the call names:
//! `coopLoadT`/`coopStoreT` row-major (element (r, c) at p + r·stride + c), `coopLoad`/`coopStore`
//! column-major (p + c·stride + r), as naga lowers them. Products of f16 values are exact in f32
//! and the sums are f32, as on the tensor cores; only the order of the additions may differ. The
//! three roles have three different types, so a fragment used in the wrong role fails naga's
//! validation instead of computing something else.
//!
//! The rewrite is textual and knows the forms our shaders use: every load and store names a
//! module-scope array element (`&NAME[index]`) and passes a stride, and every entry point has
//! a `@builtin(local_invocation_index)` parameter (the lane). Anything else is an error naming
//! the construct.

use std::collections::BTreeSet;
use std::fmt::Write;

/// `source` (a shader's full variant, its `enable` lines included) without cooperative-matrix
/// types or calls.
pub(crate) fn emulate_coop(source: &str) -> Result<String, String> {
    // Comments go (WGSL has no strings, so `//` always starts one): they name the calls.
    let source: String = source
        .replace("enable wgpu_cooperative_matrix;", "")
        .lines()
        .map(|l| l.split("//").next().unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let mut needs = Needs::default();
    let body = rewrite_calls(&source, &mut needs)?;
    let mut out = set_lane_at_entry(&body)?;
    out.push_str(&helpers(&needs));
    Ok(out)
}

/// What the rewritten calls need: the arrays A and B fragments come from (a fragment names
/// its array by its index here), and the accumulator loads and stores (array, row-major).
#[derive(Default)]
struct Needs {
    a: Vec<String>,
    b: Vec<String>,
    c_loads: BTreeSet<(String, bool)>,
    c_stores: BTreeSet<(String, bool)>,
}

impl Needs {
    /// The index of `array` among the sources of `role` fragments.
    fn source(&mut self, role: char, array: String) -> usize {
        let list = if role == 'A' {
            &mut self.a
        } else {
            &mut self.b
        };
        list.iter().position(|a| *a == array).unwrap_or_else(|| {
            list.push(array);
            list.len() - 1
        })
    }
}

/// Replace every `coopLoad[T]<coop_mat16x16<E, R>>(&NAME[I], S)`, `coopStore[T](V, &NAME[I], S)`
/// and `coopMultiplyAdd(` with calls of the helpers, recording which helpers are needed.
fn rewrite_calls(src: &str, needed: &mut Needs) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("coop") {
        out.push_str(&rest[..at]);
        let here = &rest[at..];
        if let Some(after) = here.strip_prefix("coopMultiplyAdd(") {
            out.push_str("emu_mma(");
            rest = after;
        } else if let Some(after) = here.strip_prefix("coopLoad") {
            let (row_major, after) = match after.strip_prefix('T') {
                Some(a) => (true, a),
                None => (false, after),
            };
            let after = after
                .strip_prefix("<coop_mat16x16<")
                .ok_or_else(|| format!("a load without its matrix type: {}", line_of(here)))?;
            let close = after
                .find(">>")
                .ok_or_else(|| format!("an unclosed matrix type: {}", line_of(here)))?;
            let role = match after[..close].rsplit(',').next().map(str::trim) {
                Some(r @ ("A" | "B" | "C")) => r.chars().next().unwrap(),
                _ => return Err(format!("an unknown matrix role: {}", line_of(here))),
            };
            let (args, after) = call_args(&after[close + 2..], here, needed)?;
            let [pointer, stride] = <[String; 2]>::try_from(args)
                .map_err(|_| format!("a load needs a pointer and a stride: {}", line_of(here)))?;
            let (array, index) = element(&pointer, here)?;
            if role == 'C' {
                let m = major(row_major);
                write!(out, "emu_load_C_{array}_{m}({index}, {stride})").unwrap();
                needed.c_loads.insert((array, row_major));
            } else {
                let src = needed.source(role, array);
                write!(out, "Emu{role}({src}u, {index}, {stride}, {row_major})").unwrap();
            }
            rest = after;
        } else if let Some(after) = here.strip_prefix("coopStore") {
            let (row_major, after) = match after.strip_prefix('T') {
                Some(a) => (true, a),
                None => (false, after),
            };
            let (args, after) = call_args(after, here, needed)?;
            let [value, pointer, stride] = <[String; 3]>::try_from(args).map_err(|_| {
                format!(
                    "a store needs a value, a pointer and a stride: {}",
                    line_of(here)
                )
            })?;
            let (array, index) = element(&pointer, here)?;
            write!(
                out,
                "emu_store_{array}_{}({value}, {index}, {stride})",
                major(row_major)
            )
            .unwrap();
            needed.c_stores.insert((array, row_major));
            rest = after;
        } else if here.starts_with("coop_mat") {
            return Err(format!(
                "a cooperative matrix type outside a load: {}",
                line_of(here)
            ));
        } else {
            out.push_str("coop");
            rest = &here[4..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn major(row_major: bool) -> &'static str {
    if row_major {
        "rm"
    } else {
        "cm"
    }
}

/// The first line of `text`, to name a construct in an error.
fn line_of(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

/// The top-level, comma-separated arguments of the call whose `(` starts `text`, each
/// rewritten in turn, and the text after its `)`.
fn call_args<'a>(
    text: &'a str,
    at: &str,
    needed: &mut Needs,
) -> Result<(Vec<String>, &'a str), String> {
    let inner = text
        .strip_prefix('(')
        .ok_or_else(|| format!("a call without arguments: {}", line_of(at)))?;
    let mut depth = 0usize;
    let mut args = Vec::new();
    let mut start = 0;
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ')' => {
                args.push(rewrite_calls(inner[start..i].trim(), needed)?);
                return Ok((args, &inner[i + 1..]));
            }
            ',' if depth == 0 => {
                args.push(rewrite_calls(inner[start..i].trim(), needed)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    Err(format!("an unclosed call: {}", line_of(at)))
}

/// `&NAME[INDEX]` as (NAME, INDEX).
fn element(pointer: &str, at: &str) -> Result<(String, String), String> {
    let bad = || {
        format!(
            "a pointer that is not `&array[index]`: {pointer} in {}",
            line_of(at)
        )
    };
    let p = pointer.strip_prefix('&').ok_or_else(bad)?.trim();
    let open = p.find('[').ok_or_else(bad)?;
    let name = p[..open].trim();
    let index = p[open + 1..].strip_suffix(']').ok_or_else(bad)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad());
    }
    Ok((name.to_string(), index.trim().to_string()))
}

/// Insert `emu_lane = ID % 32u;` at the start of every entry point, ID being its
/// `@builtin(local_invocation_index)` parameter.
fn set_lane_at_entry(src: &str) -> Result<String, String> {
    const BUILTIN: &str = "@builtin(local_invocation_index)";
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("@compute") {
        let sig_end = rest[at..]
            .find('{')
            .map(|i| at + i)
            .ok_or_else(|| format!("an entry point without a body: {}", line_of(&rest[at..])))?;
        let signature = &rest[at..sig_end];
        let id = signature
            .find(BUILTIN)
            .map(|i| &signature[i + BUILTIN.len()..])
            .and_then(|s| s.trim_start().split(':').next())
            .map(str::trim)
            .ok_or_else(|| {
                format!(
                    "an entry point without a {BUILTIN} parameter: {}",
                    line_of(&signature[signature.find("fn").unwrap_or(0)..])
                )
            })?;
        out.push_str(&rest[..=sig_end]);
        write!(
            out,
            "\n    emu_lane = {id} % 32u;\n    emu_depth_w = 16u;\n    emu_depth = workgroupUniformLoad(&emu_depth_w);"
        )
        .unwrap();
        rest = &rest[sig_end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The helpers the rewritten calls use.
fn helpers(needs: &Needs) -> String {
    let mut out = String::from(
        "
// ---- cooperative matrices emulated (kernels/src/coop_emulation.rs) ----
var<private> emu_lane: u32;

// 16, the depth of a fragment, read from workgroup memory behind a barrier so that the compiler
// cannot unroll the multiply-add's loop: unrolled, the wide tile's sixteen multiply-adds per
// step took Mesa's llvmpipe minutes to compile.
var<workgroup> emu_depth_w: u32;
var<private> emu_depth: u32;

fn emu_row() -> u32 { return emu_lane / 2u; }
fn emu_col0() -> u32 { return (emu_lane % 2u) * 8u; }

struct EmuA { src: u32, at: u32, stride: u32, row_major: bool }
struct EmuB { src: u32, at: u32, stride: u32, row_major: bool }

// Element (r, k) of an A fragment and (k, c) of a B fragment.
fn emu_a(f: EmuA, r: u32, k: u32) -> f32 {
    return emu_read_A(f.src, select(f.at + k * f.stride + r, f.at + r * f.stride + k, f.row_major));
}
fn emu_b(f: EmuB, k: u32, c: u32) -> f32 {
    return emu_read_B(f.src, select(f.at + c * f.stride + k, f.at + k * f.stride + c, f.row_major));
}

fn emu_mma(a: EmuA, b: EmuB, c: array<f32, 8>) -> array<f32, 8> {
    var d = c;
    let r = emu_row();
    let c0 = emu_col0();
    for (var k = 0u; k < emu_depth; k++) {
        let x = emu_a(a, r, k);
        for (var j = 0u; j < 8u; j++) { d[j] += x * emu_b(b, k, c0 + j); }
    }
    return d;
}
",
    );
    for (role, sources) in [('A', &needs.a), ('B', &needs.b)] {
        // Parameters and locals are prefixed: they must not shadow the arrays they index.
        writeln!(
            out,
            "fn emu_read_{role}(emu_src: u32, emu_i: u32) -> f32 {{\n    switch emu_src {{"
        )
        .unwrap();
        for (k, name) in sources.iter().enumerate() {
            writeln!(out, "        case {k}u: {{ return f32({name}[emu_i]); }}").unwrap();
        }
        writeln!(out, "        default: {{ return 0.0; }}\n    }}\n}}").unwrap();
    }
    let at = |row_major: bool| {
        if row_major {
            "emu_at + emu_row() * emu_stride + emu_col0() + emu_j"
        } else {
            "emu_at + (emu_col0() + emu_j) * emu_stride + emu_row()"
        }
    };
    for (name, rm) in &needs.c_loads {
        write!(
            out,
            "fn emu_load_C_{name}_{m}(emu_at: u32, emu_stride: u32) -> array<f32, 8> {{
    var emu_f: array<f32, 8>;
    for (var emu_j = 0u; emu_j < 8u; emu_j++) {{ emu_f[emu_j] = f32({name}[{i}]); }}
    return emu_f;
}}
",
            m = major(*rm),
            i = at(*rm),
        )
        .unwrap();
    }
    for (name, rm) in &needs.c_stores {
        write!(
            out,
            "fn emu_store_{name}_{m}(emu_v: array<f32, 8>, emu_at: u32, emu_stride: u32) {{
    for (var emu_j = 0u; emu_j < 8u; emu_j++) {{ {name}[{i}] = emu_v[emu_j]; }}
}}
",
            m = major(*rm),
            i = at(*rm),
        )
        .unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{shaders, Dtype};

    fn validate(name: &str, source: &str) {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(source, name)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::SHADER_FLOAT16,
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(source, name)));
    }

    /// Every tensor-core shader rewrites into WGSL that naga accepts without the cooperative
    /// matrix capability, and keeps none of its cooperative-matrix calls.
    #[test]
    fn every_tensor_core_shader_emulates_into_valid_plain_wgsl() {
        for shader in shaders::COOP {
            let source = emulate_coop(&shader.variant(Dtype::F16)).unwrap();
            assert!(!source.contains("coop_mat") && !source.contains("coopLoad"));
            assert!(!source.contains("coopStore") && !source.contains("coopMultiplyAdd"));
            validate(shader.name, &source);
        }
    }

    /// Loads and stores keep their layout, and a fragment in the wrong role is refused by
    /// validation, not computed.
    #[test]
    fn layouts_and_roles_are_kept() {
        let src = "enable f16;\nenable wgpu_cooperative_matrix;\n
var<workgroup> X: array<f16, 512>;
var<workgroup> Y: array<f32, 256>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
    let a = coopLoad<coop_mat16x16<f16, A>>(&X[16u], 20u);
    let b = coopLoadT<coop_mat16x16<f16, B>>(&X[(lid / 32u) * 2u], 24u);
    let c = coopLoadT<coop_mat16x16<f32, C>>(&Y[0], 16u);
    coopStoreT(coopMultiplyAdd(a, b, c), &Y[0], 16u);
}
";
        let out = emulate_coop(src).unwrap();
        assert!(out.contains("EmuA(0u, 16u, 20u, false)"), "{out}");
        assert!(
            out.contains("EmuB(0u, (lid / 32u) * 2u, 24u, true)"),
            "{out}"
        );
        assert!(
            out.contains("emu_store_Y_rm(emu_mma(a, b, c), 0, 16u)"),
            "{out}"
        );
        assert!(out.contains("emu_lane = lid % 32u;"), "{out}");
        assert!(out.contains("case 0u: { return f32(X[emu_i]); }"), "{out}");
        assert!(
            out.contains("Y[emu_at + emu_row() * emu_stride + emu_col0() + emu_j] = emu_v[emu_j]")
        );
        validate("layouts", &out);
        let swapped = src.replace("coopMultiplyAdd(a, b, c)", "coopMultiplyAdd(b, a, c)");
        let module = naga::front::wgsl::parse_str(&emulate_coop(&swapped).unwrap());
        let refused = module.map_or(true, |m| {
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::SHADER_FLOAT16,
            )
            .validate(&m)
            .is_err()
        });
        assert!(refused, "a B fragment passed as A must not validate");
    }

    #[test]
    fn forms_it_cannot_rewrite_are_named() {
        let no_stride = "@compute @workgroup_size(32)\nfn f(@builtin(local_invocation_index) l: u32) { let a = coopLoadT<coop_mat16x16<f16, A>>(&X[0]); }";
        assert!(emulate_coop(no_stride)
            .unwrap_err()
            .contains("a pointer and a stride"));
        let by_pointer = "fn g(p: ptr<workgroup, array<f16, 4>>) { let a = coopLoadT<coop_mat16x16<f16, A>>(p, 4u); }";
        assert!(emulate_coop(by_pointer)
            .unwrap_err()
            .contains("&array[index]"));
        let no_lane =
            "@compute @workgroup_size(32)\nfn f(@builtin(global_invocation_id) g: vec3<u32>) {}";
        assert!(emulate_coop(no_lane)
            .unwrap_err()
            .contains("local_invocation_index"));
    }
}
