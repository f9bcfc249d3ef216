//! `odinw doctor`: what odinw finds on this machine: ONNX Runtime (version, path, how it was
//! found), its execution providers, the GPU and TensorRT.
use crate::engine::runtime::{self, Device};
use anyhow::Result;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct Args {
    /// The device whose runtime to look for (CUDA and TensorRT need onnxruntime-gpu).
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = runtime::ensure_loaded(args.device);
    let providers = match &loaded {
        Ok(_) => runtime::available_providers().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let gpu = gpu_name();
    let tensorrt = tensorrt_library();
    if args.json {
        let v = serde_json::json!({
            "odinw": env!("CARGO_PKG_VERSION"),
            "onnxruntime": match &loaded {
                Ok(l) => serde_json::json!({"ok": true, "version": l.version, "path": l.path, "source": l.source}),
                Err(e) => serde_json::json!({"ok": false, "error": format!("{e:#}")}),
            },
            "providers": providers,
            "gpu": gpu,
            "tensorrt": tensorrt,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("odinw {}", env!("CARGO_PKG_VERSION"));
        match &loaded {
            Ok(l) => {
                println!(
                    "onnxruntime  {} ({:?}) {}",
                    l.version,
                    l.source,
                    l.path.display()
                );
                println!("providers    {}", providers.join(", "));
            }
            Err(e) => println!("onnxruntime  not available: {e:#}"),
        }
        println!(
            "gpu          {}",
            gpu.as_deref().unwrap_or("none found (nvidia-smi)")
        );
        println!(
            "tensorrt     {}",
            tensorrt.as_deref().unwrap_or("libnvinfer.so.10 not found")
        );
    }
    Ok(if loaded.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn gpu_name() -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn tensorrt_library() -> Option<String> {
    // SAFETY: probing whether the TensorRT library can be loaded; it is unloaded at once.
    unsafe { libloading::Library::new("libnvinfer.so.10") }
        .ok()
        .map(|_| "libnvinfer.so.10 loadable".to_string())
}
