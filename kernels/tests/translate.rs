//! Portability, as far as it can be shown without the hardware: every shader module
//! translates through naga (the translator wgpu itself uses) to SPIR-V (Vulkan), MSL (Metal)
//! and HLSL (DX12). The SPIR-V is read back with naga's SPIR-V front end and validated by
//! `spirv-val` (SPIRV-Tools: Debian's `spirv-tools`, or the Vulkan SDK) for Vulkan 1.1; CI
//! installs it and sets `AUTOREP_REQUIRE_SPIRV_VAL=1`, so there a missing validator fails.
//! Both variants of every shader are translated: `act` = f32 and `act` = f16 (HLSL's f16 needs
//! shader model 6.2).

use autorep_kernels::{Dtype, Shader};
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

const VARIANTS: [Dtype; 2] = [Dtype::F32, Dtype::F16];

fn parse(s: &Shader, dtype: Dtype) -> (naga::Module, ModuleInfo) {
    let source = s.variant(dtype);
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, s.name)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::SHADER_FLOAT16)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{} ({}): {e:?}", s.name, dtype.name()));
    (module, info)
}

/// Every shader in both variants, with a name for messages and files (see [`settings`]).
fn modules() -> impl Iterator<Item = (String, naga::Module, ModuleInfo)> {
    autorep_kernels::shaders::ALL.iter().flat_map(|s| {
        VARIANTS.into_iter().flat_map(move |d| {
            let (m, info) = parse(s, d);
            settings(&format!("{}.{}", s.name, d.name()), &m, &info)
        })
    })
}

/// A module once per setting of its pipeline-overridable constants that a launcher uses (the
/// defaults, and each constant at 1), with the constants substituted as wgpu does before
/// translating.
fn settings(
    name: &str,
    m: &naga::Module,
    info: &ModuleInfo,
) -> Vec<(String, naga::Module, ModuleInfo)> {
    use naga::back::{pipeline_constants::process_overrides, PipelineConstants};
    let mut settings = vec![(String::new(), PipelineConstants::default())];
    for (_, o) in m.overrides.iter() {
        let name = o.name.clone().expect("overrides are named");
        settings.push((format!(".{name}=1"), [(name, 1.0)].into_iter().collect()));
    }
    settings
        .into_iter()
        .map(|(tag, constants)| {
            let (pm, pinfo) = process_overrides(m, info, None, &constants)
                .unwrap_or_else(|e| panic!("{name}{tag}: {e}"));
            (format!("{name}{tag}"), pm.into_owned(), pinfo.into_owned())
        })
        .collect()
}

#[test]
fn every_shader_translates_to_spirv_and_reads_back() {
    for (name, m, info) in modules() {
        let words = spv::write_vec(&m, &info, &spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{} to SPIR-V: {e}", name));
        assert_eq!(words[0], 0x0723_0203, "{}: SPIR-V magic number", name);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        // Parsed, not validated again: naga's SPIR-V reader keeps vector logical operations
        // that its own IR validator only accepts on scalars. It does not read the 16-bit
        // storage capabilities, so the f16 variants are checked by spirv-val alone.
        if name.ends_with("f32") {
            let back = naga::front::spv::parse_u8_slice(&bytes, &Default::default())
                .unwrap_or_else(|e| panic!("{name}: SPIR-V read back: {e:?}"));
            assert_eq!(
                back.entry_points.len(),
                m.entry_points.len(),
                "{name}: entry points lost in SPIR-V"
            );
        }
        spirv_val(&name, &bytes);
    }
}

/// `spirv-val` where it is installed; an error where it is not and
/// `AUTOREP_REQUIRE_SPIRV_VAL=1`.
fn spirv_val(name: &str, bytes: &[u8]) {
    let present = std::process::Command::new("spirv-val")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("AUTOREP_REQUIRE_SPIRV_VAL").as_deref() != Ok("1"),
            "AUTOREP_REQUIRE_SPIRV_VAL=1 but spirv-val is not on the PATH (apt-get install spirv-tools)"
        );
        return;
    }
    let path = std::env::temp_dir().join(format!("autorep-{}-{name}.spv", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("spirv-val")
        .args(["--target-env", "vulkan1.1"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "spirv-val rejects {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_shader_translates_to_msl() {
    let options = msl::Options {
        lang_version: (2, 4),
        ..Default::default()
    };
    for (name, m, info) in modules() {
        let (text, _) = msl::write_string(&m, &info, &options, &msl::PipelineOptions::default())
            .unwrap_or_else(|e| panic!("{} to MSL: {e}", name));
        for ep in &m.entry_points {
            assert!(
                text.contains(&ep.name),
                "{}: {} missing in MSL",
                name,
                ep.name
            );
        }
    }
}

#[test]
fn every_shader_translates_to_hlsl() {
    for (name, m, info) in modules() {
        let options = hlsl::Options {
            shader_model: if name.ends_with("f16") {
                hlsl::ShaderModel::V6_2
            } else {
                hlsl::ShaderModel::V6_0
            },
            ..Default::default()
        };
        let mut text = String::new();
        hlsl::Writer::new(&mut text, &options, &hlsl::PipelineOptions::default())
            .write(&m, &info, None)
            .unwrap_or_else(|e| panic!("{} to HLSL: {e}", name));
        for ep in &m.entry_points {
            assert!(
                text.contains(&ep.name),
                "{}: {} missing in HLSL",
                name,
                ep.name
            );
        }
    }
}

/// The cooperative-matrix shaders (f16 variant only) validate in naga and translate to SPIR-V,
/// the one backend whose adapters offer the 16x16x16 f16 shape through wgpu (NVIDIA's Vulkan
/// driver). Not through spirv-val: CI's (Debian 12's SPIRV-Tools) predates
/// SPV_KHR_cooperative_matrix and rejects its capability; the driver compiles it on a GPU
/// (kernels/tests/coop.rs).
#[test]
fn cooperative_matrix_shaders_translate_to_spirv() {
    for s in autorep_kernels::shaders::COOP {
        let source = s.variant(Dtype::F16);
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, s.name)));
        let caps = Capabilities::SHADER_FLOAT16 | Capabilities::COOPERATIVE_MATRIX;
        let info = Validator::new(ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {e:?}", s.name));
        let options = spv::Options {
            lang_version: (1, 6),
            ..Default::default()
        };
        for (name, m, info) in settings(s.name, &module, &info) {
            let words = spv::write_vec(&m, &info, &options, None)
                .unwrap_or_else(|e| panic!("{name} to SPIR-V: {e}"));
            assert_eq!(words[0], 0x0723_0203, "{name}: SPIR-V magic number");
        }
    }
}
