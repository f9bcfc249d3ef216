//! Arguments that several subcommands share: which tasks (suite, `--tasks`, `--root`), and the
//! options of a run over them (`eval`, `finetune`), with the run manifest they both write.
use crate::engine::runtime::{self, Device};
use crate::engine::{IoBinding, SessionOptions};
use crate::model::embedded;
use crate::registry::{self, Suite, Task};
use crate::run::{DatasetRecord, FileRecord, ImageIdSet, Manifest, RunStore, RuntimeRecord, Track};
use anyhow::{anyhow, Result};
use std::path::{Path, PathBuf};

/// A suite's tasks, optionally narrowed to some, and where their data lives.
#[derive(clap::Args, Clone)]
pub struct TaskArgs {
    /// Which suite's tasks and prompts.
    #[arg(long, value_enum, default_value = "odinw35")]
    pub suite: Suite,
    /// Only these tasks (comma-separated, case-insensitive), e.g. BCCD,pothole.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Dataset root (default: $ODINW_ROOT, else ./DATASET; the demo suite's bundled data).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

impl TaskArgs {
    /// The selected tasks (all of the suite's without `--tasks`); an unknown name is an error.
    pub fn select(&self) -> Result<Vec<&'static Task>> {
        registry::select(self.suite, &self.tasks)
    }

    /// Where the tasks' data is read from (see [`data_root`]).
    pub fn data_root(&self) -> Result<PathBuf> {
        data_root(self.suite, self.root.as_deref())
    }
}

/// The dataset root a suite is read from: `--root`, else the demo suite's bundled data for
/// `--suite demo`, else `$ODINW_ROOT` or `./DATASET`.
pub fn data_root(suite: Suite, root: Option<&Path>) -> Result<PathBuf> {
    match (root, suite) {
        (Some(r), _) => Ok(r.to_path_buf()),
        (None, Suite::Demo) => embedded::demo_data_root(),
        (None, _) => Ok(registry::data_root(None)),
    }
}

/// The options of a run of a model over tasks, shared by `eval` and `finetune`.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// A model directory (model.json + ONNX graphs; `finetune` also needs its train/ folder), or
    /// `demo` for the embedded tiny model.
    #[arg(long, default_value = "demo")]
    pub model: String,
    #[command(flatten)]
    pub select: TaskArgs,
    /// The split to score: `test` (the challenge's) or `val`/`minival` (GLIP's README numbers).
    #[arg(long, default_value = "test")]
    pub split: String,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// ONNX Runtime threads per operator on CPU (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Keep tensors in the device's memory between graphs, and for `finetune` the parameters
    /// and optimizer state between steps (auto: on for cuda and tensorrt).
    #[arg(long, value_enum, default_value = "auto")]
    pub io_binding: IoBinding,
    /// Plain class names, ignoring the tasks' CAPTION_PROMPTs.
    #[arg(long)]
    pub no_prompt: bool,
    /// Score as if annotation ids started at 1 (see `odinw score --help`).
    #[arg(long)]
    pub fix_id0: bool,
    /// The run folder (default: a folder under runs/ named after the track, suite and split or
    /// shots); re-running resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What a run records about its model besides the arguments.
pub struct ModelRecord<'a> {
    /// Every file the run's results depend on (missing ones are skipped).
    pub files: Vec<PathBuf>,
    pub precision: String,
    pub loaded: &'a runtime::Loaded,
}

impl RunArgs {
    /// How to open the graphs (device, threads, I/O binding).
    pub fn session(&self) -> SessionOptions {
        SessionOptions {
            device: self.device,
            threads: self.threads,
            io_binding: self.io_binding,
            ..SessionOptions::default()
        }
    }

    /// The run folder: `--out`, else `default`.
    pub fn out_dir(&self, default: String) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    /// The run manifest's common part: suite, split, tasks, prompts, model files, runtime and the
    /// hashes of the scored annotation files.
    pub fn manifest(
        &self,
        track: Track,
        tasks: &[&Task],
        root: &Path,
        model: &ModelRecord,
    ) -> Result<Manifest> {
        let suite = self.select.suite;
        let mut m = Manifest::new(
            track,
            suite.name(),
            &self.split,
            tasks.iter().map(|t| t.name.clone()).collect(),
        );
        m.prompts = if self.no_prompt {
            "class-names".into()
        } else {
            suite.name().into()
        };
        m.models = model
            .files
            .iter()
            .filter(|f| f.is_file())
            .map(|f| FileRecord::of(f))
            .collect::<Result<_>>()?;
        m.runtime = Some(RuntimeRecord {
            ort_version: model.loaded.version.clone(),
            execution_provider: format!("{:?}", self.device).to_lowercase(),
            precision: model.precision.clone(),
        });
        m.datasets = tasks
            .iter()
            .map(|t| {
                let ann = t
                    .ann_file(root, &self.split)
                    .ok_or_else(|| anyhow!("task {} has no split '{}'", t.name, self.split))?;
                Ok(DatasetRecord {
                    task: t.name.clone(),
                    files: vec![FileRecord::of(&ann)?],
                })
            })
            .collect::<Result<_>>()?;
        m.provenance.graphs = crate::engine::session::opened_graphs();
        let state = crate::download::state::StateDir::new(root);
        for t in tasks {
            let Some(ann) = t.ann_file(root, &self.split) else {
                continue; // cannot happen: checked above
            };
            let coco = crate::data::coco::CocoFile::read(&ann)?;
            m.provenance.image_ids.insert(
                t.name.clone(),
                ImageIdSet::of(coco.images.iter().map(|i| i.id)),
            );
            let dm = state.manifest(&t.archive);
            if dm.is_file() {
                m.provenance
                    .dataset_manifests
                    .insert(t.name.clone(), FileRecord::of(&dm)?);
            }
        }
        Ok(m)
    }
}

/// Opens the run folder: resumes it when it holds a run with the same manifest, else creates it.
pub fn open_store(out: &Path, manifest: &Manifest) -> Result<RunStore> {
    if out.join("manifest.json").exists() {
        RunStore::resume(out, manifest)
    } else {
        RunStore::create(out, manifest)
    }
}
