//! The contract between launchers and shaders, checked with naga: every entry point a launcher
//! dispatches exists, has the workgroup size the launcher sizes its grid by, uses exactly the
//! bindings the launcher binds (binding 0: the parameter block; 1, 2, …: storage buffers with
//! the declared access), and reads a parameter block whose WGSL struct matches the launcher's
//! `#[repr(C)]` struct field by field. Every entry point of every shader is dispatched by some
//! launcher.

use autorep_kernels::uniforms::{Scalar, UniformLayout};
use autorep_kernels::{launch, Access, Dtype, EntryPoint, Shader};
use naga::{AddressSpace, ScalarKind, StorageAccess, TypeInner};

/// The f32 variant (the f16 one differs only in the alias `act`; translate.rs validates it).
fn parse(s: &Shader) -> (naga::Module, naga::valid::ModuleInfo) {
    parse_variant(s, Dtype::F32, naga::valid::Capabilities::empty())
}

fn parse_variant(
    s: &Shader,
    dtype: Dtype,
    capabilities: naga::valid::Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let source = s.variant(dtype);
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, s.name)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, s.name)));
    (module, info)
}

/// The WGSL struct `ty` against the Rust layout: names, scalar types, offsets, nothing more or
/// less.
fn check_struct(m: &naga::Module, ty: naga::Handle<naga::Type>, u: &UniformLayout, at: &str) {
    let t = &m.types[ty];
    assert_eq!(
        t.name.as_deref(),
        Some(u.wgsl_name),
        "{at}: binding 0 is a `{:?}`, the launcher passes {}",
        t.name,
        u.wgsl_name
    );
    let TypeInner::Struct { members, span } = &t.inner else {
        panic!("{at}: binding 0 is not a struct");
    };
    let wgsl: Vec<(String, Scalar, usize)> = members
        .iter()
        .map(|f| {
            let name = f.name.clone().unwrap_or_default();
            let scalar = match m.types[f.ty].inner {
                TypeInner::Scalar(naga::Scalar {
                    kind: ScalarKind::Uint,
                    width: 4,
                }) => Scalar::U32,
                TypeInner::Scalar(naga::Scalar {
                    kind: ScalarKind::Float,
                    width: 4,
                }) => Scalar::F32,
                ref other => panic!("{at}: field {name} has type {other:?}: only u32 and f32"),
            };
            (name, scalar, f.offset as usize)
        })
        .collect();
    let rust: Vec<(String, Scalar, usize)> = u
        .fields
        .iter()
        .map(|f| (f.name.to_string(), f.scalar, f.offset))
        .collect();
    assert_eq!(
        wgsl, rust,
        "{at}: WGSL struct {} (left) and its Rust twin (right) differ",
        u.wgsl_name
    );
    assert!(
        u.size <= *span as usize,
        "{at}: the Rust struct ({} bytes) is larger than the WGSL one ({span})",
        u.size
    );
}

fn check_entry(m: &naga::Module, info: &naga::valid::ModuleInfo, e: &EntryPoint) {
    let at = format!("{}::{}", e.shader.name, e.name);
    let (index, ep) = m
        .entry_points
        .iter()
        .enumerate()
        .find(|(_, ep)| ep.name == e.name)
        .unwrap_or_else(|| panic!("{at}: no such entry point"));
    assert_eq!(
        ep.workgroup_size, e.workgroup,
        "{at}: workgroup size in the shader (left) and the launcher (right)"
    );
    let uses = info.get_entry_point(index);
    let mut storage_seen = vec![false; e.bindings.len()];
    for (h, g) in m.global_variables.iter() {
        if uses[h].is_empty() {
            continue;
        }
        let Some(b) = &g.binding else { continue };
        assert_eq!(b.group, 0, "{at}: {:?} is in group {}", g.name, b.group);
        match g.space {
            AddressSpace::Uniform => {
                assert_eq!(b.binding, 0, "{at}: a uniform at binding {}", b.binding);
                check_struct(m, g.ty, &e.uniform, &at);
            }
            AddressSpace::Storage { access } => {
                let k = b.binding as usize;
                assert!(
                    (1..=e.bindings.len()).contains(&k),
                    "{at}: {:?} uses binding {k}, the launcher binds 1..={}",
                    g.name,
                    e.bindings.len()
                );
                let want = if access.contains(StorageAccess::STORE) {
                    Access::ReadWrite
                } else {
                    Access::Read
                };
                assert_eq!(
                    e.bindings[k - 1],
                    want,
                    "{at}: binding {k} ({:?}) access in the launcher (left) and the shader (right)",
                    g.name
                );
                storage_seen[k - 1] = true;
            }
            ref s => panic!("{at}: {:?} in address space {s:?}", g.name),
        }
    }
    // A binding the launcher declares but the entry point never touches is allowed only when
    // it is read-only (the family's shared layout); a write nobody makes is a mistake.
    for (k, seen) in storage_seen.iter().enumerate() {
        assert!(
            *seen || e.bindings[k] == Access::Read,
            "{at}: binding {} is declared read-write but the shader never uses it",
            k + 1
        );
    }
}

#[test]
fn every_launcher_matches_its_shader() {
    check_shaders(autorep_kernels::shaders::ALL, launch::entry_points(), |s| {
        parse(s)
    });
}

/// The cooperative-matrix shaders exist in their f16 variant only.
#[test]
fn every_coop_launcher_matches_its_shader() {
    let caps =
        naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::COOPERATIVE_MATRIX;
    check_shaders(
        autorep_kernels::shaders::COOP,
        launch::coop_entry_points(),
        |s| parse_variant(s, Dtype::F16, caps),
    );
}

fn check_shaders(
    shaders: &[Shader],
    entries: Vec<EntryPoint>,
    parse: impl Fn(&Shader) -> (naga::Module, naga::valid::ModuleInfo),
) {
    for s in shaders {
        let (m, info) = parse(s);
        let mine: Vec<&EntryPoint> = entries.iter().filter(|e| e.shader.name == s.name).collect();
        for e in &mine {
            check_entry(&m, &info, e);
        }
        for ep in &m.entry_points {
            assert!(
                mine.iter().any(|e| e.name == ep.name),
                "{}::{} has no launcher in launch::entry_points()",
                s.name,
                ep.name
            );
        }
    }
}

/// The check itself: a parameter block with one field changed is caught.
#[test]
#[should_panic(expected = "differ")]
fn a_changed_field_fails_the_contract() {
    let e = launch::entry_points()
        .into_iter()
        .find(|e| e.name == "gate_forward")
        .unwrap();
    let (m, info) = parse(&e.shader);
    let mut fields = e.uniform.fields.to_vec();
    fields.swap(8, 9); // s1 and s2 trade places
    let fields: &'static [_] = Box::leak(fields.into_boxed_slice());
    let e = EntryPoint {
        uniform: UniformLayout {
            fields,
            ..e.uniform
        },
        ..e
    };
    check_entry(&m, &info, &e);
}
