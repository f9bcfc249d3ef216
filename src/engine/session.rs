//! One ONNX graph on one execution provider: CPU with a thread count, CUDA, or TensorRT with
//! fp16 and engine/timing caches keyed by model hash, GPU and TensorRT version. Inputs and
//! outputs are host tensors ([`Tensor`]), or, through ONNX Runtime's I/O binding, tensors left
//! in the device's memory ([`DeviceTensor`]) so that one graph's outputs feed the next graph
//! without a round trip through host memory. The caller names inputs and outputs.
//!
//! The providers a device asks for are registered one by one: TensorRT and CUDA must be accepted
//! (a refusal fails the graph, naming the library that could not be loaded); for TensorRT, CUDA
//! is a fallback for the nodes TensorRT does not take. What ONNX Runtime accepted for each graph
//! is kept for the run manifest ([`opened_graphs`]).
use super::runtime::{self, Device};
use anyhow::{anyhow, bail, Context, Result};
use ort::ep::{self, ExecutionProviderDispatch};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::{
    DynTensor, DynTensorValueType, DynValue, TensorElementType, TensorValueTypeMarker, Value,
    ValueType,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One graph and the execution providers ONNX Runtime accepted for it, in priority order (the
/// CPU provider, always last, runs what the others do not take).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GraphProviders {
    pub graph: String,
    pub providers: Vec<String>,
}

static OPENED: Mutex<Vec<GraphProviders>> = Mutex::new(Vec::new());

/// Every graph this process opened so far, with its providers (for run manifests).
pub fn opened_graphs() -> Vec<GraphProviders> {
    OPENED.lock().map(|g| g.clone()).unwrap_or_default()
}

/// A host tensor: row-major data with its shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    I64 { shape: Vec<usize>, data: Vec<i64> },
    Bool { shape: Vec<usize>, data: Vec<bool> },
}

impl Tensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32 { shape, .. } | Tensor::I64 { shape, .. } | Tensor::Bool { shape, .. } => {
                shape
            }
        }
    }

    /// The data as f32, or an error naming the actual type.
    pub fn as_f32(&self) -> Result<&[f32]> {
        match self {
            Tensor::F32 { data, .. } => Ok(data),
            other => bail!(
                "expected an f32 tensor, got {:?}",
                std::mem::discriminant(other)
            ),
        }
    }

    pub(crate) fn to_value(&self) -> Result<DynValue> {
        let shape = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
        Ok(match self {
            Tensor::F32 { shape: s, data } => {
                ort::value::Tensor::from_array((shape(s), data.clone()))?.into_dyn()
            }
            Tensor::I64 { shape: s, data } => {
                ort::value::Tensor::from_array((shape(s), data.clone()))?.into_dyn()
            }
            Tensor::Bool { shape: s, data } => {
                ort::value::Tensor::from_array((shape(s), data.clone()))?.into_dyn()
            }
        })
    }

    pub(crate) fn from_value<V: TensorValueTypeMarker + ?Sized>(
        name: &str,
        value: &Value<V>,
    ) -> Result<Self> {
        let ValueType::Tensor { ty, .. } = value.dtype() else {
            bail!("output {name} is not a tensor");
        };
        let dims = |s: &ort::value::Shape| s.iter().map(|&d| d as usize).collect::<Vec<_>>();
        Ok(match ty {
            TensorElementType::Float32 => {
                let (s, d) = value.try_extract_tensor::<f32>()?;
                Tensor::F32 {
                    shape: dims(s),
                    data: d.to_vec(),
                }
            }
            TensorElementType::Int64 => {
                let (s, d) = value.try_extract_tensor::<i64>()?;
                Tensor::I64 {
                    shape: dims(s),
                    data: d.to_vec(),
                }
            }
            TensorElementType::Bool => {
                let (s, d) = value.try_extract_tensor::<bool>()?;
                Tensor::Bool {
                    shape: dims(s),
                    data: d.to_vec(),
                }
            }
            other => bail!("output {name} has element type {other:?}, which odinw does not read"),
        })
    }
}

/// How to run a graph.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub device: Device,
    /// CPU threads inside one operator (0 = ONNX Runtime's default).
    pub threads: usize,
    /// TensorRT: build fp16 engines.
    pub fp16: bool,
    /// GPU ordinal for CUDA and TensorRT.
    pub device_id: i32,
    /// Where TensorRT engine and timing caches live.
    pub cache_dir: Option<PathBuf>,
    /// Whether pipelines keep intermediate tensors in the device's memory between graphs.
    pub io_binding: IoBinding,
}

/// Keeping tensors in the device's memory between graphs (ONNX Runtime's I/O binding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IoBinding {
    /// On for CUDA and TensorRT, off on CPU (where it gains nothing).
    #[default]
    Auto,
    On,
    /// Every graph reads and writes host memory.
    Off,
}

impl IoBinding {
    /// Whether to bind on `device`.
    pub fn enabled(self, device: Device) -> bool {
        match self {
            IoBinding::Auto => device != Device::Cpu,
            IoBinding::On => true,
            IoBinding::Off => false,
        }
    }
}

/// A tensor that ONNX Runtime holds in the memory of a graph's device (GPU memory for CUDA and
/// TensorRT, host memory on CPU), produced by [`Graph::run_on_device`] or [`Graph::upload`] and
/// fed to a graph as [`Input::Device`] without a copy.
pub struct DeviceTensor {
    value: DynTensor,
    shape: Vec<usize>,
}

impl DeviceTensor {
    fn new(name: &str, value: DynValue) -> Result<Self> {
        let ValueType::Tensor { shape, .. } = value.dtype() else {
            bail!("output {name} is not a tensor");
        };
        let shape = shape.iter().map(|&d| d as usize).collect();
        let value = value
            .downcast::<DynTensorValueType>()
            .map_err(|e| anyhow!("output {name}: {e}"))?;
        Ok(DeviceTensor { value, shape })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Copies the tensor into host memory.
    pub fn to_host(&self) -> Result<Tensor> {
        if self.value.memory_info().is_cpu_accessible() {
            return Tensor::from_value("device tensor", &self.value);
        }
        let host = self
            .value
            .to(AllocationDevice::CPU, 0)
            .map_err(|e| anyhow!("copying a device tensor to the host: {e}"))?;
        Tensor::from_value("device tensor", &host)
    }
}

/// A graph input: host data (copied to the device by ONNX Runtime) or a tensor already there.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    Host(&'a Tensor),
    Device(&'a DeviceTensor),
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            device: Device::Cpu,
            threads: 0,
            fp16: false,
            device_id: 0,
            cache_dir: None,
            io_binding: IoBinding::Auto,
        }
    }
}

/// A loaded graph.
pub struct Graph {
    session: Session,
    path: PathBuf,
    device: Device,
    device_id: i32,
}

impl Graph {
    /// Loads `path` for `opts.device`, loading ONNX Runtime first if needed.
    pub fn open(path: &Path, opts: &SessionOptions) -> Result<Self> {
        Self::open_profiled(path, opts, None)
    }

    /// [`Graph::open`] with a TensorRT optimisation profile for the graph's dynamic inputs (the
    /// other execution providers ignore it); engines are cached per profile.
    pub fn open_profiled(
        path: &Path,
        opts: &SessionOptions,
        profile: Option<&TrtProfile>,
    ) -> Result<Self> {
        runtime::ensure_loaded(opts.device)?;
        if !path.is_file() {
            bail!("model graph {} does not exist", path.display());
        }
        let mut builder = Self::builder(path, opts, profile)?;
        let session = builder
            .commit_from_file(path)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Self::new(session, path, opts))
    }

    /// Loads a graph held in memory (`name` stands for its path in messages).
    pub fn from_bytes(name: &str, bytes: &[u8], opts: &SessionOptions) -> Result<Self> {
        let path = Path::new(name);
        let mut builder = Self::builder(path, opts, None)?;
        let session = builder
            .commit_from_memory(bytes)
            .with_context(|| format!("loading {name}"))?;
        Ok(Self::new(session, path, opts))
    }

    fn builder(
        path: &Path,
        opts: &SessionOptions,
        profile: Option<&TrtProfile>,
    ) -> Result<ort::session::builder::SessionBuilder> {
        runtime::ensure_loaded(opts.device)?;
        let env = runtime::environment()?;
        let mut builder = Session::builder(env)?;
        if opts.threads > 0 {
            builder = builder
                .with_intra_threads(opts.threads)
                .map_err(ort::Error::<()>::from)?;
        }
        let mut accepted = Vec::new();
        for p in execution_providers(path, opts, profile)? {
            builder = match builder.with_execution_providers([p.dispatch.error_on_failure()]) {
                Ok(b) => {
                    accepted.push(p.name.to_string());
                    b
                }
                Err(e) if !p.required => e.recover(),
                Err(e) => {
                    let why = provider_library_problem(p.name).unwrap_or_default();
                    bail!(
                        "ONNX Runtime could not create {} for {} \
                         (--device {}): {e}{why}",
                        p.name,
                        path.display(),
                        format!("{:?}", opts.device).to_lowercase()
                    );
                }
            };
        }
        accepted.push("CPUExecutionProvider".to_string());
        if let Ok(mut g) = OPENED.lock() {
            g.push(GraphProviders {
                graph: path.display().to_string(),
                providers: accepted,
            });
        }
        Ok(builder)
    }

    fn new(session: Session, path: &Path, opts: &SessionOptions) -> Self {
        Graph {
            session,
            path: path.to_path_buf(),
            device: opts.device,
            device_id: opts.device_id,
        }
    }

    /// The graph's file (its name in messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn input_names(&self) -> Vec<String> {
        self.session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect()
    }

    /// Each input's name, whether it is an int64 tensor, and its shape (-1 for dynamic axes).
    pub fn input_specs(&self) -> Vec<(String, bool, Vec<i64>)> {
        self.session
            .inputs()
            .iter()
            .filter_map(|i| match i.dtype() {
                ValueType::Tensor { ty, shape, .. } => Some((
                    i.name().to_string(),
                    *ty == TensorElementType::Int64,
                    shape.iter().copied().collect(),
                )),
                _ => None,
            })
            .collect()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    }

    /// Runs the graph on named inputs; returns every output by name, in the graph's order.
    pub fn run(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Vec<(String, Tensor)>> {
        let values = inputs
            .iter()
            .map(|(n, t)| Ok((std::borrow::Cow::from(n.to_string()), t.to_value()?.into())))
            .collect::<Result<Vec<(std::borrow::Cow<str>, ort::session::SessionInputValue)>>>()?;
        let names = self.output_names();
        let path = self.path.clone();
        let outputs = self
            .session
            .run(values)
            .with_context(|| format!("running {}", path.display()))?;
        names
            .into_iter()
            .map(|n| {
                let t = Tensor::from_value(&n, &outputs[n.as_str()])?;
                Ok((n, t))
            })
            .collect()
    }
}

impl Graph {
    /// Where this graph's execution provider keeps tensors: the GPU for CUDA and TensorRT.
    fn location(&self) -> (AllocationDevice<'static>, i32) {
        match self.device {
            Device::Cpu => (AllocationDevice::CPU, 0),
            Device::Cuda | Device::Tensorrt => (AllocationDevice::CUDA, self.device_id),
        }
    }

    fn device_memory(&self) -> Result<MemoryInfo<'static>> {
        let (device, id) = self.location();
        MemoryInfo::new(device, id, AllocatorType::Device, MemoryType::Default)
            .map_err(|e| anyhow!("memory info for {:?}: {e}", self.device))
    }

    fn host_memory() -> Result<MemoryInfo<'static>> {
        MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(|e| anyhow!("host memory info: {e}"))
    }

    /// Copies a host tensor into this graph's device memory once, to be fed to many runs.
    pub fn upload(&self, tensor: &Tensor) -> Result<DeviceTensor> {
        let (device, id) = self.location();
        let value = tensor
            .to_value()?
            .downcast::<DynTensorValueType>()
            // The error keeps the value it failed on; keep its code and message, a typed error.
            .map_err(|e| ort::Error::new_with_code(e.code(), e.message()))?
            .to(device, id)
            .map_err(|e| anyhow!("copying a tensor to {:?} memory: {e}", self.device))?;
        DeviceTensor::new("upload", value.into_dyn())
    }

    /// Runs the graph with its outputs left in the device's memory (I/O binding).
    pub fn run_on_device(
        &mut self,
        inputs: &[(&str, Input)],
    ) -> Result<Vec<(String, DeviceTensor)>> {
        let names = self.output_names();
        let memory = self.device_memory()?;
        self.run_bound(inputs, &names, &memory)?
            .into_iter()
            .map(|(n, v)| Ok((n.clone(), DeviceTensor::new(&n, v)?)))
            .collect()
    }

    /// Runs the graph through I/O binding (inputs may be device tensors) and copies the
    /// `outputs` named (the graph computes only those) into host memory.
    pub fn run_to_host(
        &mut self,
        inputs: &[(&str, Input)],
        outputs: &[&str],
    ) -> Result<Vec<(String, Tensor)>> {
        let names: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        let memory = Self::host_memory()?;
        self.run_bound(inputs, &names, &memory)?
            .into_iter()
            .map(|(n, v)| Ok((n.clone(), Tensor::from_value(&n, &v)?)))
            .collect()
    }

    fn run_bound(
        &mut self,
        inputs: &[(&str, Input)],
        outputs: &[String],
        memory: &MemoryInfo,
    ) -> Result<Vec<(String, DynValue)>> {
        let path = self.path.clone();
        let context = || format!("running {} with bound inputs and outputs", path.display());
        let mut binding = self.session.create_binding().with_context(context)?;
        for (name, input) in inputs {
            match input {
                Input::Host(t) => binding.bind_input(*name, &t.to_value()?),
                Input::Device(t) => binding.bind_input(*name, &t.value),
            }
            .with_context(|| format!("{}: binding input {name}", path.display()))?;
        }
        for name in outputs {
            binding
                .bind_output_to_device(name.as_str(), memory)
                .with_context(|| format!("{}: binding output {name}", path.display()))?;
        }
        let mut values = self.session.run_binding(&binding).with_context(context)?;
        outputs
            .iter()
            .map(|n| {
                let v = values
                    .remove(n.as_str())
                    .ok_or_else(|| anyhow!("{}: no output {n}", path.display()))?;
                Ok((n.clone(), v))
            })
            .collect()
    }
}

/// One provider to register: ONNX Runtime's name for it, and whether the graph fails without it.
struct Provider {
    name: &'static str,
    dispatch: ExecutionProviderDispatch,
    required: bool,
}

/// A TensorRT optimisation profile: for each dynamic input, the smallest, the optimised-for and
/// the largest shape, in ONNX Runtime's `name:AxBxC,name:...` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrtProfile {
    pub min: String,
    pub opt: String,
    pub max: String,
}

fn execution_providers(
    path: &Path,
    opts: &SessionOptions,
    profile: Option<&TrtProfile>,
) -> Result<Vec<Provider>> {
    // cuDNN's heuristic choice of convolution algorithms: ONNX Runtime's default (exhaustive)
    // benchmarks every algorithm for each new input shape, and per-image canvases give many.
    let cuda = || {
        ep::CUDA::default()
            .with_device_id(opts.device_id)
            .with_conv_algorithm_search(ep::cuda::ConvAlgorithmSearch::Heuristic)
            .build()
    };
    Ok(match opts.device {
        Device::Cpu => Vec::new(),
        Device::Cuda => vec![Provider {
            name: "CUDAExecutionProvider",
            dispatch: cuda(),
            required: true,
        }],
        Device::Tensorrt => {
            let mut cache = tensorrt_cache_dir(path, opts)?;
            if let Some(p) = profile {
                cache = profile_cache_dir(&cache, p);
            }
            std::fs::create_dir_all(&cache)
                .with_context(|| format!("creating {}", cache.display()))?;
            let cache = cache.display().to_string();
            let mut trt = ep::TensorRT::default()
                .with_device_id(opts.device_id)
                .with_fp16(opts.fp16)
                .with_engine_cache(true)
                .with_engine_cache_path(&cache)
                .with_timing_cache(true)
                .with_timing_cache_path(&cache);
            if let Some(p) = profile {
                trt = trt
                    .with_profile_min_shapes(&p.min)
                    .with_profile_opt_shapes(&p.opt)
                    .with_profile_max_shapes(&p.max);
            }
            vec![
                Provider {
                    name: "TensorrtExecutionProvider",
                    dispatch: trt.build(),
                    required: true,
                },
                Provider {
                    name: "CUDAExecutionProvider",
                    dispatch: cuda(),
                    required: false,
                },
            ]
        }
    })
}

/// Why a provider's library does not load, for the error message: ONNX Runtime keeps each GPU
/// provider in `libonnxruntime_providers_<name>.so` beside `libonnxruntime`, which in turn needs
/// CUDA / TensorRT libraries (`libnvinfer.so.10`, ...); loading it names the first missing one.
fn provider_library_problem(provider: &str) -> Option<String> {
    let file = match provider {
        "TensorrtExecutionProvider" => "libonnxruntime_providers_tensorrt.so",
        "CUDAExecutionProvider" => "libonnxruntime_providers_cuda.so",
        _ => return None,
    };
    let loaded = runtime::ensure_loaded(Device::Cpu).ok()?;
    let lib = loaded.path.parent()?.join(file);
    if !lib.is_file() {
        return Some(format!(
            "; could not load {}: no such file (the ONNX Runtime at {} has no such provider: \
             it is not an onnxruntime-gpu build; point ORT_DYLIB_PATH at one, or use --device cpu)",
            lib.display(),
            loaded.path.display()
        ));
    }
    // SAFETY: loading a provider library runs no initialisers with preconditions; ONNX Runtime
    // loads the same file itself when it creates the provider.
    match unsafe { libloading::Library::new(&lib) } {
        Ok(l) => {
            std::mem::forget(l);
            None
        }
        Err(e) => Some(format!("; could not load {}: {e}", lib.display())),
    }
}

/// `<cache>/tensorrt/<model sha256[..16]>-<gpu>-trt<version>-<fp16|fp32>`: engines built for
/// another model, GPU or TensorRT are never reused. (ONNX Runtime's engine file names also
/// encode the input shapes.)
fn tensorrt_cache_dir(path: &Path, opts: &SessionOptions) -> Result<PathBuf> {
    let root = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => runtime::cache_dir()?,
    };
    let hash = crate::util::hash::sha256_file(path)?;
    let gpu = gpu_slug(opts.device_id);
    let trt = tensorrt_version().unwrap_or_else(|| "unknown".into());
    let precision = if opts.fp16 { "fp16" } else { "fp32" };
    Ok(root
        .join("tensorrt")
        .join(format!("{}-{gpu}-trt{trt}-{precision}", &hash[..16])))
}

/// `<model cache>/profile-<sha256 of min|opt|max, 12 hex>`: one engine folder per optimisation
/// profile, so a run with another batch or resize rule never overwrites another's engines.
fn profile_cache_dir(cache: &Path, p: &TrtProfile) -> PathBuf {
    let key = format!("{}|{}|{}", p.min, p.opt, p.max);
    let hash = crate::util::hash::hex(&<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    cache.join(format!("profile-{}", &hash[..12]))
}

fn gpu_slug(device_id: i32) -> String {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name",
            "--format=csv,noheader",
            &format!("--id={device_id}"),
        ])
        .output();
    let name = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "gpu".into());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// TensorRT's version from `getInferLibVersion` (e.g. 10.13.0 → "101300"), if loadable.
pub fn tensorrt_version() -> Option<String> {
    // SAFETY: `int32_t getInferLibVersion()` takes no arguments and has no preconditions.
    unsafe {
        let lib = libloading::Library::new("libnvinfer.so.10").ok()?;
        let f: libloading::Symbol<unsafe extern "C" fn() -> i32> =
            lib.get(b"getInferLibVersion").ok()?;
        Some(f().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(max: &str) -> TrtProfile {
        TrtProfile {
            min: "images:1x3x32x32".into(),
            opt: "images:1x3x800x1344".into(),
            max: max.into(),
        }
    }

    #[test]
    fn each_profile_has_its_own_engine_folder_under_the_models() {
        let base = Path::new("/cache/tensorrt/abcd-gpu-trt101300-fp32");
        let a = profile_cache_dir(base, &profile("images:4x3x1344x1344"));
        assert_eq!(a, profile_cache_dir(base, &profile("images:4x3x1344x1344")));
        assert_ne!(a, profile_cache_dir(base, &profile("images:8x3x1344x1344")));
        assert_eq!(a.parent(), Some(base));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("profile-") && name.len() == "profile-".len() + 12,
            "{name}"
        );
    }

    #[test]
    fn engine_folders_differ_by_model_and_precision() {
        let dir = tempfile::tempdir().unwrap();
        let (m1, m2) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
        std::fs::write(&m1, b"graph a").unwrap();
        std::fs::write(&m2, b"graph b").unwrap();
        let opts = |fp16| SessionOptions {
            device: Device::Tensorrt,
            threads: 0,
            fp16,
            device_id: 0,
            cache_dir: Some(dir.path().join("cache")),
            io_binding: IoBinding::Auto,
        };
        let a32 = tensorrt_cache_dir(&m1, &opts(false)).unwrap();
        assert!(
            a32.starts_with(dir.path().join("cache").join("tensorrt")),
            "{a32:?}"
        );
        assert!(a32.to_str().unwrap().ends_with("-fp32"), "{a32:?}");
        assert_eq!(a32, tensorrt_cache_dir(&m1, &opts(false)).unwrap());
        assert_ne!(a32, tensorrt_cache_dir(&m1, &opts(true)).unwrap());
        assert_ne!(a32, tensorrt_cache_dir(&m2, &opts(false)).unwrap());
    }
}
