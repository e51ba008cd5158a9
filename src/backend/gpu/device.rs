//! Finding an adapter and opening a device with the adapter's own limits (never more), plus the
//! error state: wgpu reports validation errors and device loss through callbacks, which would
//! panic by default; here they are recorded and surfaced by the next op or read as an `Error` the
//! app can act on (fall back to the CPU backend).

use std::sync::{Arc, Mutex};

use crate::{Error, Result};

pub(super) fn gpu_err(message: impl Into<String>) -> Error {
    Error::Backend { backend: "gpu", message: message.into() }
}

/// The first error the device reported, if any; sticky, since a device that failed once cannot
/// be trusted with the rest of the caption.
#[derive(Clone, Default)]
pub(super) struct ErrorSlot(Arc<Mutex<Option<String>>>);

impl ErrorSlot {
    fn set(&self, message: String) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(message);
        }
    }

    pub fn check(&self) -> Result<()> {
        match self.0.lock().ok().and_then(|s| s.clone()) {
            Some(message) => Err(gpu_err(message)),
            None => Ok(()),
        }
    }
}

/// What the adapter is, for `--json` output and benchmarks.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// PCI vendor id where the platform gives one (Apple: 0x106b); 0 in the browser.
    pub vendor: u32,
}

pub(super) struct Opened {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pub limits: wgpu::Limits,
    pub errors: ErrorSlot,
}

pub(super) async fn open(options: &super::GpuOptions) -> Result<Opened> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| gpu_err(format!("no GPU adapter: {e}")))?;
    let info = adapter.get_info();
    // The spec's defaults are what the smallest WebGPU device guarantees: every kernel must work
    // within them, and `--gpu-limits default` proves it on any machine.
    let limits = match options.limits {
        super::GpuLimits::Adapter => adapter.limits(),
        super::GpuLimits::Default => wgpu::Limits::default(),
    };
    let timing = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    let features =
        if options.profile && adapter.features().contains(timing) { timing } else { wgpu::Features::empty() };
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("edgecap"),
            required_features: features,
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        })
        .await
        .map_err(|e| gpu_err(format!("the GPU adapter {} refused a device: {e}", info.name)))?;
    let errors = ErrorSlot::default();
    let slot = errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| slot.set(format!("GPU error: {e}"))));
    let slot = errors.clone();
    device
        .set_device_lost_callback(move |reason, message| slot.set(format!("GPU device lost ({reason:?}): {message}")));
    let summary = AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: format!("{:?}", info.device_type),
        vendor: info.vendor,
    };
    Ok(Opened { device, queue, summary, limits, errors })
}
