//! The GPU context: a wgpu device and queue, either created here (a high-performance adapter,
//! honouring WGPU_BACKEND and WGPU_ADAPTER_NAME) or wrapped from the caller's.

use std::sync::{Arc, Mutex, OnceLock};

use crate::error::GmmError;
use crate::gpu::layout;
use crate::gpu::pipelines::{InferPipelines, Layouts, Pipelines};
use crate::gpu::precision::{Arith, GpuPrecision};

/// A wgpu device and queue to fit on, with what the kernels need to know about them.
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// Set by the device-lost callback (only on contexts created here).
    lost: Arc<Mutex<Option<String>>>,
    /// The first uncaptured wgpu error (only on contexts created here; wgpu's default handler panics).
    uncaptured: Arc<Mutex<Option<String>>>,
    /// The compute pipelines of each arithmetic (`Arith::index`), built on first use and then
    /// reused by every fit on this context.
    pipelines: Arc<[OnceLock<Pipelines>; Arith::ALL.len()]>,
    /// The inference pipelines of each arithmetic, likewise.
    infer_pipelines: Arc<[OnceLock<InferPipelines>; Arith::ALL.len()]>,
    /// The bind group layouts every arithmetic's pipelines share.
    layouts: Arc<OnceLock<Layouts>>,
    /// Whether the kernels are the portable fallbacks (no subgroups, no fma), whatever the device has.
    fallback: bool,
    /// Whether the exact kernels stay two-float, whatever the device has.
    no_f64: bool,
    /// Whether the device's fma rounds once (probed on first use, shared by clones of this device).
    exact_fma: Arc<OnceLock<bool>>,
    /// The exact kernels' arithmetic on this device: native f64 or two-float (decided on first
    /// use, shared by clones of this device).
    exact_arith: Arc<OnceLock<Arith>>,
}

impl GpuContext {
    /// Creates a context on the best adapter: Vulkan, Metal or DX12 (or the backends named by
    /// WGPU_BACKEND), high-performance first, or the adapter whose name contains WGPU_ADAPTER_NAME.
    /// A software adapter (llvmpipe, WARP, SwiftShader) is taken when nothing else exists: this is
    /// what `BackendKind::Gpu` uses. The device gets the adapter's own limits, so large storage
    /// bindings are available.
    pub fn new() -> Result<Self, GmmError> {
        let (instance, backends) = instance();
        let adapter = match named_adapter(&instance, backends)? {
            Some(adapter) => adapter,
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            }))
            .map_err(|e| GmmError::NoAdapter {
                detail: format!("backends {backends:?}: {e}"),
            })?,
        };
        Self::on_adapter(adapter)
    }

    /// The context `BackendKind::Auto` fits on: the best hardware adapter (discrete, then
    /// integrated, then virtual), never a software one, created once per process and shared by every
    /// `Auto` fit. The error says why there is none (and is cached too).
    pub fn auto() -> Result<&'static GpuContext, GmmError> {
        static AUTO: OnceLock<Result<GpuContext, (String, bool)>> = OnceLock::new();
        let cached = AUTO.get_or_init(|| {
            let (instance, backends) = instance();
            let named = named_adapter(&instance, backends).map_err(|e| (e.to_string(), false))?;
            let adapter = match named {
                Some(a) => a,
                None => {
                    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
                    adapters.sort_by_key(|a| hardware_rank(a.get_info().device_type));
                    adapters.into_iter().next().ok_or_else(|| {
                        (format!("no GPU adapter on backends {backends:?}"), false)
                    })?
                }
            };
            let info = adapter.get_info();
            if info.device_type == wgpu::DeviceType::Cpu {
                return Err((
                    format!(
                        "the only adapter is '{}', a software rasteriser ({:?}), slower than the CPU path; --backend gpu uses it anyway",
                        info.name, info.backend
                    ),
                    true,
                ));
            }
            Self::on_adapter(adapter).map_err(|e| (e.to_string(), false))
        });
        match cached {
            Ok(ctx) => Ok(ctx),
            Err((reason, true)) => Err(GmmError::SoftwareAdapterOnly { detail: reason.clone() }),
            Err((reason, false)) => Err(GmmError::NoAdapter { detail: reason.clone() }),
        }
    }

    /// A context for one rank of a distributed fit, on a node with `local_rank` as its index among
    /// the node's ranks: the adapter WGPU_ADAPTER_NAME names if set, else the GMM_GPU_INDEX-th
    /// adapter if set, else adapter `local_rank` mod the number of adapters, so that ranks on a
    /// node with several GPUs spread over them. Adapters are counted hardware first (discrete,
    /// integrated, virtual), and software ones only where there is no hardware one.
    pub fn for_local_rank(local_rank: usize) -> Result<Self, GmmError> {
        let (instance, backends) = instance();
        if let Some(adapter) = named_adapter(&instance, backends)? {
            return Self::on_adapter(adapter);
        }
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
        adapters.sort_by_key(|a| hardware_rank(a.get_info().device_type));
        if adapters
            .iter()
            .any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
        {
            adapters.retain(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
        }
        if adapters.is_empty() {
            return Err(GmmError::NoAdapter {
                detail: format!("no GPU adapter on backends {backends:?}"),
            });
        }
        let index = match std::env::var("GMM_GPU_INDEX") {
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&i| i < adapters.len())
                .ok_or_else(|| GmmError::NoAdapter {
                    detail: format!(
                        "GMM_GPU_INDEX is '{v}' but there are {} adapters (0 to {})",
                        adapters.len(),
                        adapters.len() - 1
                    ),
                })?,
            Err(_) => local_rank % adapters.len(),
        };
        Self::on_adapter(adapters.swap_remove(index))
    }

    /// Every adapter wgpu finds on the backends WGPU_BACKEND names (else Vulkan, Metal and DX12),
    /// hardware first and software last: what [`GpuContext::new`] and `BackendKind::Auto` choose
    /// from. Empty when there is none.
    pub fn adapters() -> Vec<wgpu::AdapterInfo> {
        let (instance, backends) = instance();
        let mut infos: Vec<wgpu::AdapterInfo> = pollster::block_on(instance.enumerate_adapters(backends))
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect();
        infos.sort_by_key(|info| hardware_rank(info.device_type));
        infos
    }

    /// A context on an adapter the caller chose (one of `wgpu::Instance::enumerate_adapters`, say),
    /// with the device [`GpuContext::new`] would request on it: the adapter's own limits, and its
    /// timestamp queries, subgroups and f64 where it has them. Fails, saying why, where its limits
    /// are below the kernels' needs or the device cannot be had.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self, GmmError> {
        Self::on_adapter(adapter)
    }

    fn on_adapter(adapter: wgpu::Adapter) -> Result<Self, GmmError> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        check_limits(&limits)?;
        // Timestamp queries only serve `gmm bench`'s per-kernel times, subgroups the tree sums'
        // last levels, f64 the native-f64 exact kernels; each taken where the adapter has it.
        let features = adapter.features()
            & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F64);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gmm-gpu device"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GmmError::RequestDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_in_callback = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_in_callback.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let uncaptured_in_handler = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            log::error!("wgpu: {error}");
            if let Ok(mut slot) = uncaptured_in_handler.lock() {
                slot.get_or_insert_with(|| error.to_string());
            }
        }));
        let ctx = Self {
            limits: device.limits(),
            device,
            queue,
            info,
            lost,
            uncaptured,
            pipelines: Arc::default(),
            infer_pipelines: Arc::default(),
            layouts: Arc::default(),
            fallback: false,
            no_f64: false,
            exact_fma: Arc::default(),
            exact_arith: Arc::default(),
        };
        log::info!("GPU context on {}", ctx.adapter_name());
        Ok(ctx)
    }

    /// Wraps the caller's device and queue (for embedding in an existing wgpu program). The device's
    /// own limits are used; `adapter_info` only names the adapter in logs and in fitted models.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: wgpu::AdapterInfo,
    ) -> Result<Self, GmmError> {
        let limits = device.limits();
        check_limits(&limits)?;
        Ok(Self {
            device,
            queue,
            info: adapter_info,
            limits,
            lost: Arc::new(Mutex::new(None)),
            uncaptured: Arc::new(Mutex::new(None)),
            pipelines: Arc::default(),
            infer_pipelines: Arc::default(),
            layouts: Arc::default(),
            fallback: false,
            no_f64: false,
            exact_fma: Arc::default(),
            exact_arith: Arc::default(),
        })
    }

    /// The same device and queue, with the kernels' portable fallbacks: tree sums in workgroup
    /// memory only (no subgroup operations) and error-free products by Dekker's split (no fma).
    /// They give bitwise the same results; for tests and comparisons. Its pipelines are its own,
    /// built on first use.
    pub fn fallback_kernels(&self) -> Self {
        Self {
            fallback: true,
            pipelines: Arc::default(),
            infer_pipelines: Arc::default(),
            layouts: Arc::default(),
            ..self.clone()
        }
    }

    /// The subgroup width the kernels' tree sums use for their last levels
    /// (shaders/tree_subgroup.wgsl): the adapter's smallest subgroup size (up to the workgroup's
    /// 64), where the device has `wgpu::Features::SUBGROUP`; else `None`, and the sums run in
    /// workgroup memory.
    pub fn subgroup_width(&self) -> Option<u32> {
        if !self.fallback && self.device.features().contains(wgpu::Features::SUBGROUP) {
            layout::subgroup_width(self.info.subgroup_min_size)
        } else {
            None
        }
    }

    /// Whether the kernels' error-free products use the device's fma: only where it rounds once,
    /// which a probe kernel checks on this device the first time it is asked (src/gpu/probe.rs);
    /// else Dekker's split. Either way the products are exact, so the results are the same.
    pub fn exact_fma(&self) -> Result<bool, GmmError> {
        if self.fallback {
            return Ok(false);
        }
        if let Some(&exact) = self.exact_fma.get() {
            return Ok(exact);
        }
        let exact = crate::gpu::probe::fma_is_exact(self)?;
        Ok(*self.exact_fma.get_or_init(|| exact))
    }

    /// Whether the device has native f64 in shaders (`wgpu::Features::SHADER_F64`) and the kernels
    /// may use it (not the portable fallbacks).
    pub fn has_f64(&self) -> bool {
        !self.no_f64 && self.device.features().contains(wgpu::Features::SHADER_F64)
    }

    /// The same device and queue, with `GpuPrecision::Exact` in two-float even where the device
    /// has f64 (for tests and comparisons). Its pipelines are its own, built on first use.
    pub fn without_f64(&self) -> Self {
        Self {
            no_f64: true,
            pipelines: Arc::default(),
            infer_pipelines: Arc::default(),
            layouts: Arc::default(),
            exact_arith: Arc::default(),
            ..self.clone()
        }
    }

    /// The arithmetic of `GpuPrecision::Exact` here: native f64 where the device has it and a probe
    /// kernel measures its f64 fma rate above a two-float multiply-add's share of the f32 rate
    /// (src/gpu/rate.rs), else two-float. Decided the first time it is asked.
    pub(crate) fn exact_arith(&self) -> Result<Arith, GmmError> {
        if !self.has_f64() {
            return Ok(Arith::TwoFloat);
        }
        if let Some(&a) = self.exact_arith.get() {
            return Ok(a);
        }
        let share = crate::gpu::rate::f64_share(self)?;
        let arith = if share > 1.0 / crate::gpu::rate::TWO_FLOAT_OPS {
            Arith::F64
        } else {
            Arith::TwoFloat
        };
        Ok(*self.exact_arith.get_or_init(|| arith))
    }

    /// What `GpuPrecision::Exact` runs on this device, as the model's record names it:
    /// "exact (f64)" or "exact (two-float)" (the rate probe's choice, [`GpuContext::has_f64`]
    /// alone does not settle it). Runs the probe the first time it is asked.
    pub fn exact_kernels_name(&self) -> Result<&'static str, GmmError> {
        Ok(self.exact_arith()?.name())
    }

    /// The arithmetic a GPU fit with `precision` starts in here, as the model's record names it
    /// ([`crate::PrecisionRecord::used`]): "fast" for fast and auto (auto may switch to exact
    /// later), and for exact [`GpuContext::exact_kernels_name`]'s choice (which runs the rate
    /// probe the first time it is asked).
    pub fn starting_arithmetic(&self, precision: GpuPrecision) -> Result<&'static str, GmmError> {
        // The GPU backend's choice (the tests below hold it to what fits record); only exact needs
        // the rate probe.
        let exact = match precision {
            GpuPrecision::Exact => Some(self.exact_arith()?),
            GpuPrecision::Fast | GpuPrecision::Auto => None,
        };
        Ok(crate::gpu::precision::starting_arith(precision, exact).name())
    }

    /// Whether the device can time each kernel with timestamp queries (`wgpu::Features::TIMESTAMP_QUERY`).
    pub fn has_timestamps(&self) -> bool {
        self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The bind group layouts, made once per context.
    pub(crate) fn layouts(&self) -> Result<&Layouts, GmmError> {
        match self.layouts.get() {
            Some(l) => Ok(l),
            None => {
                let made = Layouts::new(self)?;
                Ok(self.layouts.get_or_init(|| made))
            }
        }
    }

    /// The pipelines of one arithmetic, built once per context.
    pub(crate) fn pipelines(&self, arith: Arith) -> Result<&Pipelines, GmmError> {
        let slot = &self.pipelines[arith.index()];
        if let Some(p) = slot.get() {
            return Ok(p);
        }
        let built = Pipelines::new(self, self.layouts()?, arith)?;
        Ok(slot.get_or_init(|| built))
    }

    /// The inference pipelines of one arithmetic, built once per context.
    pub(crate) fn infer_pipelines(&self, arith: Arith) -> Result<&InferPipelines, GmmError> {
        let slot = &self.infer_pipelines[arith.index()];
        if let Some(p) = slot.get() {
            return Ok(p);
        }
        let built = InferPipelines::new(self, self.layouts()?, arith)?;
        Ok(slot.get_or_init(|| built))
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter's description.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// "name (backend, device type)", as logged and stored in fitted models.
    pub fn adapter_name(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Fails if the device was lost or wgpu reported an uncaptured error since the last check.
    pub(crate) fn check_health(&self) -> Result<(), GmmError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(GmmError::DeviceLost { reason });
        }
        if let Some(message) = self.uncaptured.lock().ok().and_then(|mut s| s.take()) {
            return Err(classify(&message));
        }
        Ok(())
    }

    /// Waits for the queue to finish; device loss and errors come back typed.
    pub(crate) fn wait(&self) -> Result<(), GmmError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GmmError::DeviceLost { reason: e.to_string() })?;
        self.check_health()
    }

    /// Waits for submission `index` to finish (and its callbacks to run), not for later ones.
    pub(crate) fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<(), GmmError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| GmmError::DeviceLost { reason: e.to_string() })?;
        self.check_health()
    }

    /// Runs `f` inside out-of-memory and validation error scopes, turning what they catch into errors.
    pub(crate) fn scoped<R>(&self, what: &'static str, bytes: u64, f: impl FnOnce() -> R) -> Result<R, GmmError> {
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let out = f();
        if let Some(e) = pollster::block_on(oom.pop()) {
            log::error!("wgpu out of memory: {e}");
            return Err(GmmError::GpuOutOfMemory { what, bytes });
        }
        if let Some(e) = pollster::block_on(validation.pop()) {
            return Err(classify(&e.to_string()));
        }
        Ok(out)
    }
}

/// A wgpu instance on the backends WGPU_BACKEND names (else Vulkan, Metal and DX12).
fn instance() -> (wgpu::Instance, wgpu::Backends) {
    let backends =
        wgpu::Backends::from_env().unwrap_or(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = backends;
    (wgpu::Instance::new(desc), backends)
}

/// The adapter WGPU_ADAPTER_NAME names (a case-insensitive part of its name), if it is set.
fn named_adapter(instance: &wgpu::Instance, backends: wgpu::Backends) -> Result<Option<wgpu::Adapter>, GmmError> {
    let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") else {
        return Ok(None);
    };
    let wanted_lower = wanted.to_lowercase();
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lower))
        .map(Some)
        .ok_or_else(|| GmmError::NoAdapter {
            detail: format!("WGPU_ADAPTER_NAME='{wanted}' matches none of {names:?} on {backends:?}"),
        })
}

/// Auto's order of preference: hardware first, software last.
fn hardware_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// An error's text, typed: out-of-memory is the caller's to fix; an invalid object means the device
/// was lost or destroyed (this crate creates no invalid objects otherwise); anything else is ours.
fn classify(message: &str) -> GmmError {
    let lower = message.to_lowercase();
    if lower.contains("out of memory") {
        GmmError::GpuOutOfMemory {
            what: "a GPU resource",
            bytes: 0,
        }
    } else if lower.contains("invalid") || lower.contains("lost") || lower.contains("destroyed") {
        GmmError::DeviceLost {
            reason: message.lines().collect::<Vec<_>>().join(" "),
        }
    } else {
        GmmError::GpuInternal {
            message: message.to_string(),
        }
    }
}

/// The kernels' needs against the device's limits.
fn check_limits(limits: &wgpu::Limits) -> Result<(), GmmError> {
    // The larger of the two shaders' workgroup arrays.
    // (The tree sums and the lanes' sums are two-float.)
    use layout::{STAGE, T, TRI_CB, TRI_RB, TRI_TS, WG};
    let estep_floats = 2 * (WG + TRI_TS * TRI_RB + TRI_RB * TRI_CB);
    let reduce_floats = STAGE + 2 * WG * T;
    let workgroup_bytes = 4 * u64::from(estep_floats.max(reduce_floats));
    let checks: [(&'static str, u64, u64); 5] = [
        (
            "max_compute_invocations_per_workgroup",
            u64::from(layout::WG),
            u64::from(limits.max_compute_invocations_per_workgroup),
        ),
        (
            "max_compute_workgroup_size_x",
            u64::from(layout::WG),
            u64::from(limits.max_compute_workgroup_size_x),
        ),
        (
            "max_compute_workgroup_storage_size",
            workgroup_bytes,
            u64::from(limits.max_compute_workgroup_storage_size),
        ),
        (
            "max_storage_buffers_per_shader_stage",
            8,
            u64::from(limits.max_storage_buffers_per_shader_stage),
        ),
        (
            "max_storage_buffer_binding_size",
            1 << 20,
            limits.max_storage_buffer_binding_size.min(limits.max_buffer_size),
        ),
    ];
    for (limit, needed, granted) in checks {
        if granted < needed {
            return Err(GmmError::LimitsTooSmall { limit, needed, granted });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CovarianceType, DataView, GmmParams};

    /// `from_adapter` on the adapter `new` chose gives the device `new` gives: the same features
    /// and limits, and the kernel choices each follow from the adapter's own report (the fma probe
    /// run afresh, not read from a cache).
    #[test]
    fn from_adapter_builds_the_device_new_builds() {
        let Some(ctx) = crate::gpu::test_context() else { return };
        let (instance, backends) = instance();
        let adapter = pollster::block_on(instance.enumerate_adapters(backends))
            .into_iter()
            .find(|a| {
                let info = a.get_info();
                info.name == ctx.info.name && info.backend == ctx.info.backend
            })
            .expect("new's adapter is among those enumerated");
        let features = adapter.features();
        let min_subgroup = adapter.get_info().subgroup_min_size;
        let own = GpuContext::from_adapter(adapter).unwrap();
        assert_eq!(own.device.features(), ctx.device.features());
        assert_eq!(own.limits, ctx.limits);
        assert_eq!(own.has_f64(), features.contains(wgpu::Features::SHADER_F64));
        let expected_width = if features.contains(wgpu::Features::SUBGROUP) {
            layout::subgroup_width(min_subgroup)
        } else {
            None
        };
        assert_eq!(own.subgroup_width(), expected_width);
        assert_eq!(own.exact_fma().unwrap(), crate::gpu::probe::fma_is_exact(&own).unwrap());
    }

    /// What `starting_arithmetic` says each precision starts in is what a fit on that context
    /// records as its arithmetic: on well-separated blobs auto never switches, so its record is
    /// its start; on the device as it is and without f64, so that both exact kernels are seen
    /// where the device has f64.
    #[test]
    fn starting_arithmetic_is_what_fits_record() {
        let Some(ctx) = crate::gpu::test_context() else { return };
        // Three unit-spread clusters 10 apart in 2-D: condition numbers near 1.
        let x: Vec<f64> = (0..600)
            .flat_map(|i| {
                let c = (i % 3) as f64 * 10.0;
                let t = i as f64 * 0.618_033_988_75;
                [c + t.fract() - 0.5, c + (t * 7.0).fract() - 0.5]
            })
            .collect();
        let view = DataView::from_f64(&x, 2).unwrap();
        for ctx in [ctx.clone(), ctx.without_f64()] {
            for precision in [GpuPrecision::Auto, GpuPrecision::Fast, GpuPrecision::Exact] {
                let params = GmmParams::builder(3)
                    .covariance_type(CovarianceType::Diag)
                    .max_iter(5)
                    .gpu_precision(precision)
                    .build()
                    .unwrap();
                let model = params.fit_on(&ctx, &view).unwrap();
                let record = model.gpu_precision().expect("a GPU fit records its arithmetic");
                assert!(record.switches.is_empty(), "{precision}: {record:?}");
                assert_eq!(
                    ctx.starting_arithmetic(precision).unwrap(),
                    record.used,
                    "{precision} on {}",
                    ctx.adapter_name()
                );
            }
        }
    }
}
