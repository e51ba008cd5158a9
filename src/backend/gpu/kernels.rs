//! The WGSL kernels, one or more files each under `kernels/`, compiled on first use per set of
//! override constants. A kernel's source is its `Params` struct (generated, see `params.rs`), then
//! `common.wgsl`, then its files (a shared part first, see `kernels!`). Binding 0 is the
//! parameters (a uniform with a dynamic offset into the recorder's arena); bindings 1.. are the
//! storage buffers in the order the backend passes them, read-only or read-write as the files
//! declare them.
//!
//! Natively the kernels are compiled without wgpu's runtime checks (index clamping and loop
//! bounding) unless `checked` is set: every kernel bounds its own accesses, and the checks cost
//! a third of a GEMM's speed on lavapipe (naga keeps bounded loops from unrolling). Browsers keep
//! their own checks whatever we ask, which is why no kernel relies on them being off.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::params::{self, Params};

/// A kernel: its WGSL file and its parameter struct (a mismatch is a compile error).
pub(super) trait Kernel {
    type Params: Params;
    const NAME: &'static str;
    const SOURCE: &'static str;
}

macro_rules! kernels {
    ($($name:ident: [$($file:literal),+], $params:ty;)*) => {
        $(
            pub(super) struct $name;
            impl Kernel for $name {
                type Params = $params;
                const NAME: &'static str = stringify!($name);
                const SOURCE: &'static str = concat!($(include_str!(concat!("kernels/", $file)), "\n"),+);
            }
        )*
        /// Every kernel's name and full source, for tests that inspect the WGSL.
        #[cfg(test)]
        pub(super) fn all_sources() -> Vec<(&'static str, String)> {
            vec![$(($name::NAME, full_source::<$name>())),*]
        }
    };
}

// A kernel is one or more files: a shared part (the linear kernels' bindings and epilogue, the
// GEMM's tiling, the GEMV's reduction, the gather) and the file that supplies what differs.
kernels! {
    Gemm: ["linear_out.wgsl", "gemm_tile.wgsl", "gemm.wgsl"], params::Linear;
    Gemv: ["linear_out.wgsl", "gemv_reduce.wgsl", "gemv.wgsl"], params::Linear;
    GemmQ4: ["linear_out.wgsl", "gemm_tile.wgsl", "gemm_q4.wgsl"], params::Linear;
    GemvQ4: ["linear_out.wgsl", "gemv_reduce.wgsl", "gemv_q4.wgsl"], params::Linear;
    Attention: ["attention.wgsl"], params::Attention;
    AttentionSplit: ["attention_split.wgsl"], params::Attention;
    AttentionMerge: ["attention_merge.wgsl"], params::Attention;
    CachedAttention: ["attention_cached.wgsl"], params::CachedAttention;
    LayerNorm: ["layer_norm.wgsl"], params::LayerNorm;
    Argmax: ["argmax.wgsl"], params::Argmax;
    Gelu: ["gelu.wgsl"], params::Elementwise;
    Add: ["add.wgsl"], params::Elementwise;
    Copy: ["copy.wgsl"], params::Copy;
    Im2col: ["im2col.wgsl"], params::Im2col;
    PatchFinish: ["patch_finish.wgsl"], params::PatchFinish;
    EmbeddingQ8: ["embedding.wgsl", "embedding_q8.wgsl"], params::Embedding;
    EmbeddingQ4: ["embedding.wgsl", "embedding_q4.wgsl"], params::Embedding;
    EmbeddingF32: ["embedding.wgsl", "embedding_f32.wgsl"], params::Embedding;
}

pub(super) fn full_source<K: Kernel>() -> String {
    format!("{}\n{}\n{}", K::Params::WGSL, include_str!("kernels/common.wgsl"), K::SOURCE)
}

/// Override constants a pipeline is specialised with (name, value).
pub(super) type Constants<'a> = &'a [(&'static str, f64)];

pub(super) struct Compiled {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Storage buffers the kernel binds (bindings 1..=storage).
    pub storage: usize,
    /// A small number naming this pipeline in bind-group keys and profiles.
    pub id: u32,
}

/// A kernel compiled for one set of pipeline-overridable constants: (kernel name, constants).
type KernelKey = (&'static str, Vec<(&'static str, u64)>);

pub(super) struct Kernels {
    compiled: RefCell<HashMap<KernelKey, Rc<Compiled>>>,
    checked: bool,
}

impl Kernels {
    pub fn new(checked: bool) -> Self {
        Self { compiled: RefCell::default(), checked }
    }

    pub fn get<K: Kernel>(&self, device: &wgpu::Device, constants: Constants<'_>) -> Rc<Compiled> {
        let key = (K::NAME, constants.iter().map(|(n, v)| (*n, v.to_bits())).collect::<Vec<_>>());
        if let Some(c) = self.compiled.borrow().get(&key) {
            return c.clone();
        }
        let source = full_source::<K>();
        let bindings = storage_bindings(&source);
        let label = format!("{}{constants:?}", K::NAME);
        let descriptor =
            wgpu::ShaderModuleDescriptor { label: Some(&label), source: wgpu::ShaderSource::Wgsl(source.into()) };
        let module = if self.checked {
            device.create_shader_module(descriptor)
        } else {
            // SAFETY: every kernel bounds its own buffer and array accesses and every loop has a
            // bound the kernel computes itself; the browser build ignores this and checks anyway.
            unsafe { device.create_shader_module_trusted(descriptor, wgpu::ShaderRuntimeChecks::unchecked()) }
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<K::Params>() as u64),
            },
            count: None,
        }];
        entries.extend(bindings.iter().enumerate().map(|(i, &read_only)| wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }));
        let layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(K::NAME), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(K::NAME),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let id = self.compiled.borrow().len() as u32;
        let compiled = Rc::new(Compiled { name: K::NAME, pipeline, layout, storage: bindings.len(), id });
        self.compiled.borrow_mut().insert(key, compiled.clone());
        compiled
    }
}

/// The storage bindings a kernel declares, in binding order: `true` for read-only. Bindings must
/// run 1, 2, 3, … (checked by a test over every kernel).
pub(super) fn storage_bindings(source: &str) -> Vec<bool> {
    let mut found: Vec<(u32, bool)> = source
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("@group(0) @binding(")?;
            let (n, rest) = rest.split_once(')')?;
            let n: u32 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            let read_only = if rest.contains("var<storage, read_write>") {
                false
            } else if rest.contains("var<storage, read>") || rest.contains("var<storage>") {
                true
            } else {
                return None;
            };
            Some((n, read_only))
        })
        .collect();
    found.sort_by_key(|b| b.0);
    found.into_iter().map(|b| b.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_run_from_one_without_gaps() {
        for (name, source) in all_sources() {
            let declared: Vec<u32> = source
                .lines()
                .filter_map(|l| l.trim().strip_prefix("@group(0) @binding(")?.split_once(')')?.0.parse().ok())
                .filter(|&n| n > 0)
                .collect();
            let expected: Vec<u32> = (1..=declared.len() as u32).collect();
            let mut sorted = declared.clone();
            sorted.sort();
            assert_eq!(sorted, expected, "{name}: storage bindings must be 1..=n");
            assert_eq!(storage_bindings(&source).len(), declared.len(), "{name}: every binding is a storage buffer");
        }
    }

    /// Lines of `source` that declare an array inside a function (a `var`/`let` of array type;
    /// module-scope `var<workgroup>` arrays are shared memory and fine).
    fn local_arrays(source: &str) -> Vec<String> {
        let mut depth = 0i32;
        let mut found = Vec::new();
        for line in source.lines() {
            let code = line.split("//").next().unwrap_or("");
            let declares_array =
                (code.contains("var ") || code.contains("let ")) && code.contains("array<") && !code.contains("var<");
            if depth > 0 && declares_array {
                found.push(line.trim().to_string());
            }
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
        }
        found
    }

    /// Function-local arrays indexed at run time live in memory, not registers, on most GPU
    /// compilers (and naga and browsers clamp every index into them): no kernel declares one,
    /// in a loop or anywhere else in a function, so the hot loops cannot use one by accident.
    #[test]
    fn no_kernel_declares_a_function_local_array() {
        let bad = "var<workgroup> ok: array<f32, 4>;\nfn f() {\n    for (var i = 0u; i < 4u; i++) {\n        var acc: array<f32, 8>;\n    }\n}\n";
        assert_eq!(local_arrays(bad), vec!["var acc: array<f32, 8>;"], "the check finds a local array");
        for (name, source) in all_sources() {
            assert_eq!(local_arrays(&source), Vec::<String>::new(), "{name} declares function-local arrays");
        }
    }
}
