//! The WGSL kernels, one file each under `kernels/`, compiled on first use. Every kernel starts
//! with `common.wgsl` (the parameter block and shared helpers); bindings are declared in each
//! file in the order the backend passes buffers (binding 0 is always the parameters).

use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    GemmF32,
    GemmQ8,
    GemvQ8,
    LayerNorm,
    Softmax,
    Argmax,
    Gelu,
    Add,
    Copy,
    Im2col,
    PatchFinish,
    EmbeddingQ8,
    EmbeddingF32,
}

impl Kernel {
    fn source(self) -> &'static str {
        match self {
            Kernel::GemmF32 => include_str!("kernels/gemm_f32.wgsl"),
            Kernel::GemmQ8 => include_str!("kernels/gemm_q8.wgsl"),
            Kernel::GemvQ8 => include_str!("kernels/gemv_q8.wgsl"),
            Kernel::LayerNorm => include_str!("kernels/layer_norm.wgsl"),
            Kernel::Softmax => include_str!("kernels/softmax.wgsl"),
            Kernel::Argmax => include_str!("kernels/argmax.wgsl"),
            Kernel::Gelu => include_str!("kernels/gelu.wgsl"),
            Kernel::Add => include_str!("kernels/add.wgsl"),
            Kernel::Copy => include_str!("kernels/copy.wgsl"),
            Kernel::Im2col => include_str!("kernels/im2col.wgsl"),
            Kernel::PatchFinish => include_str!("kernels/patch_finish.wgsl"),
            Kernel::EmbeddingQ8 => include_str!("kernels/embedding_q8.wgsl"),
            Kernel::EmbeddingF32 => include_str!("kernels/embedding_f32.wgsl"),
        }
    }
}

pub(super) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(super) struct Kernels {
    compiled: RefCell<HashMap<Kernel, std::rc::Rc<Compiled>>>,
}

impl Kernels {
    pub fn get(&self, device: &wgpu::Device, kernel: Kernel) -> std::rc::Rc<Compiled> {
        if let Some(c) = self.compiled.borrow().get(&kernel) {
            return c.clone();
        }
        let source = format!("{}\n{}", include_str!("kernels/common.wgsl"), kernel.source());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("{kernel:?}")),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&format!("{kernel:?}")),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let compiled = std::rc::Rc::new(Compiled { pipeline, layout });
        self.compiled.borrow_mut().insert(kernel, compiled.clone());
        compiled
    }
}
