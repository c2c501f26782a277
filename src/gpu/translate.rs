//! Every kernel, in every build (subgroups or not, fma or Dekker, each arithmetic), translated by
//! naga to each backend's language without an adapter: SPIR-V for Vulkan (checked by `spirv-val`),
//! MSL for Metal and HLSL for DX12, each validated with that backend's own capabilities.
//!
//! Resources are bound as wgpu's backends bind them (group → space or argument buffer slot, binding →
//! register or slot), so that no binding is faked.

use naga::valid::{Capabilities, ModuleInfo, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

use super::layout::{Build, probe_source, sources};
use super::precision::Arith;

/// The capabilities a build needs: subgroups where it uses them, f64 for the f64 kernels.
fn needs(build: Build) -> Capabilities {
    let mut caps = Capabilities::empty();
    if build.subgroup.is_some() {
        caps |= Capabilities::SUBGROUP;
    }
    if build.arith == Arith::F64 {
        caps |= Capabilities::FLOAT64;
    }
    caps
}

/// Validates `module` as a device with `caps` would (wgpu validates with the device's own).
fn validate(module: &naga::Module, caps: Capabilities) -> Result<ModuleInfo, String> {
    let mut validator = Validator::new(ValidationFlags::all(), caps);
    if caps.contains(Capabilities::SUBGROUP) {
        validator
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::all());
    }
    validator.validate(module).map_err(|e| format!("{e:?}"))
}

/// Every global's (group, binding), in declaration order.
fn bindings(module: &naga::Module) -> Vec<naga::ResourceBinding> {
    module.global_variables.iter().filter_map(|(_, g)| g.binding).collect()
}

/// The modules to translate: every kernel in every build, the fma probe, and the f64 rate probe
/// (built only where the device has f64, so as an f64 build).
fn modules() -> Vec<(String, naga::Module, Build)> {
    let mut all: Vec<(String, String, Build)> = sources();
    all.push(("probe.wgsl".into(), probe_source(), Build::default()));
    let f64_build = Build {
        arith: Arith::F64,
        ..Build::default()
    };
    all.push(("rate.wgsl".into(), super::rate::source(), f64_build));
    all.into_iter()
        .map(|(name, source, build)| {
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
            (name, module, build)
        })
        .collect()
}

/// `spirv-val`'s verdict on `words` for Vulkan 1.1 (SPIR-V 1.3, the subgroup operations' floor):
/// None where the tool is missing, which fails under CI (`.ci/run` installs spirv-tools).
fn spirv_val(name: &str, words: &[u32]) -> Option<Result<(), String>> {
    let file = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let path = std::env::temp_dir().join(format!("gmm-{}-{file}.spv", std::process::id()));
    std::fs::write(&path, bytemuck::cast_slice::<u32, u8>(words)).unwrap();
    let out = std::process::Command::new("spirv-val")
        .args(["--target-env", "vulkan1.1"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(o) if o.status.success() => Some(Ok(())),
        Ok(o) => Some(Err(String::from_utf8_lossy(&o.stderr).into_owned())),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("spirv-val is required under CI (Debian: spirv-tools): {e}")
        }
        Err(_) => None,
    }
}

/// Every entry point of `module` was written, as `{prefix} {name}(`, under the name the backend
/// gave it (naga renames some: `chain_f32` becomes `chain_f32_` in HLSL).
fn assert_every_entry_point_written<E: std::fmt::Display>(
    name: &str,
    module: &naga::Module,
    written: &[Result<String, E>],
    text: &str,
    prefix: &str,
) {
    assert_eq!(written.len(), module.entry_points.len(), "{name}");
    for (ep, as_written) in module.entry_points.iter().zip(written) {
        let as_written = as_written
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", ep.name));
        assert!(
            text.contains(&format!("{prefix} {as_written}(")),
            "{name}: no entry point {}",
            ep.name
        );
    }
}

#[test]
fn every_kernel_translates_to_spirv_and_spirv_val_accepts_it() {
    let mut unchecked = 0;
    for (name, module, build) in modules() {
        let caps = needs(build) & naga::back::spv::supported_capabilities();
        assert_eq!(caps, needs(build), "{name}: Vulkan lacks a capability it needs");
        let info = validate(&module, caps).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Group → descriptor set, binding → binding, as wgpu's Vulkan backend maps them.
        let binding_map = bindings(&module)
            .into_iter()
            .map(|rb| {
                let info = naga::back::spv::BindingInfo {
                    descriptor_set: rb.group,
                    binding: rb.binding,
                    binding_array_size: None,
                };
                (rb, info)
            })
            .collect();
        let options = naga::back::spv::Options {
            lang_version: (1, 3),
            binding_map,
            fake_missing_bindings: false,
            ..Default::default()
        };
        let words =
            naga::back::spv::write_vec(&module, &info, &options, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        match spirv_val(&name, &words) {
            Some(Ok(())) => {}
            Some(Err(e)) => panic!("{name}: spirv-val: {e}"),
            None => unchecked += 1,
        }
    }
    if unchecked > 0 {
        eprintln!("spirv-val not found: {unchecked} SPIR-V modules written but not checked (install spirv-tools)");
    }
}

#[test]
fn every_kernel_but_f64_translates_to_msl_and_metal_never_gets_f64() {
    use naga::back::msl;
    for (name, module, build) in modules() {
        let caps = needs(build) & msl::supported_capabilities();
        if build.arith == Arith::F64 {
            // Metal has no f64, so wgpu never reports SHADER_F64 there and the f64 prelude is
            // never offered: without FLOAT64 the module does not even validate.
            assert!(!caps.contains(Capabilities::FLOAT64));
            assert!(validate(&module, caps).is_err(), "{name}: validated without FLOAT64");
            continue;
        }
        assert_eq!(caps, needs(build), "{name}: Metal lacks a capability it needs");
        let info = validate(&module, caps).unwrap_or_else(|e| panic!("{name}: {e}"));
        // One argument slot per binding, as wgpu's Metal backend lays out a pipeline's buffers,
        // and a sizes buffer after them for runtime-sized arrays.
        let resources: msl::BindingMap = bindings(&module)
            .into_iter()
            .enumerate()
            .map(|(slot, rb)| {
                let target = msl::BindTarget {
                    buffer: Some(slot as msl::Slot),
                    mutable: true,
                    ..Default::default()
                };
                (rb, target)
            })
            .collect();
        let sizes = resources.len() as msl::Slot;
        let per_entry_point_map = module
            .entry_points
            .iter()
            .map(|ep| {
                let res = msl::EntryPointResources {
                    resources: resources.clone(),
                    immediates_buffer: None,
                    sizes_buffer: Some(sizes),
                };
                (ep.name.clone(), res)
            })
            .collect();
        let options = msl::Options {
            // Metal 2.4 (macOS 12, iOS 15): what wgpu asks for on current Apple GPUs; subgroup
            // (SIMD-group) operations need 2.1.
            lang_version: (2, 4),
            per_entry_point_map,
            fake_missing_bindings: false,
            ..Default::default()
        };
        let (text, translation) = msl::write_string(&module, &info, &options, &msl::PipelineOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_every_entry_point_written(&name, &module, &translation.entry_point_names, &text, "kernel void");
    }
}

#[test]
fn every_kernel_translates_to_hlsl() {
    use naga::back::hlsl;
    for (name, module, build) in modules() {
        let caps = needs(build) & hlsl::supported_capabilities();
        assert_eq!(caps, needs(build), "{name}: DX12 lacks a capability it needs");
        let info = validate(&module, caps).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Group → register space, binding → register, as wgpu's DX12 backend assigns them.
        let binding_map = bindings(&module)
            .into_iter()
            .map(|rb| {
                let target = hlsl::BindTarget {
                    space: rb.group as u8,
                    register: rb.binding,
                    ..Default::default()
                };
                (rb, target)
            })
            .collect();
        let options = hlsl::Options {
            // Shader model 6.0: wave (subgroup) intrinsics and doubles, as DXC compiles for wgpu.
            shader_model: hlsl::ShaderModel::V6_0,
            binding_map,
            fake_missing_bindings: false,
            ..Default::default()
        };
        let mut text = String::new();
        let pipeline = hlsl::PipelineOptions { entry_point: None };
        let reflection = hlsl::Writer::new(&mut text, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_every_entry_point_written(&name, &module, &reflection.entry_point_names, &text, "void");
    }
}

#[test]
fn spirv_val_rejects_a_broken_module() {
    // The checker itself bites: a SPIR-V header with nothing after it is not a module.
    let header = [0x0723_0203, 0x0001_0300, 0, 1, 0];
    if let Some(verdict) = spirv_val("broken", &header) {
        assert!(verdict.is_err());
    }
}
