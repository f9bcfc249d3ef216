//! `RUN/manifest.json`: what a run evaluated (track, suite, split, the expected tasks and seeds)
//! and with what (odinw version, command line, model files, ONNX Runtime, datasets, prompts),
//! plus per-task timings and the run's [`Provenance`] (git commit, image-id sets, dataset
//! manifests, the execution providers of each graph). Fields other engineers add later survive
//! in `extra`.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The benchmark track a run belongs to; it decides the submission format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Track {
    /// No training on the task: `odinw eval`.
    ZeroShot,
    /// Fine-tuned on k-shot subsets, one per seed: results per seed.
    FewShot,
    /// Fine-tuned on the whole training split.
    FullShot,
}

impl Track {
    pub fn name(self) -> &'static str {
        match self {
            Track::ZeroShot => "zero-shot",
            Track::FewShot => "few-shot",
            Track::FullShot => "full-shot",
        }
    }
}

/// A file the run depended on, with its SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

impl FileRecord {
    /// Hashes `path` now.
    pub fn of(path: &Path) -> Result<Self> {
        let bytes = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok(Self {
            path: path.display().to_string(),
            sha256: crate::util::hash::sha256_file(path)?,
            bytes,
        })
    }
}

/// The inference runtime: ONNX Runtime version, execution provider, precision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    pub ort_version: String,
    pub execution_provider: String,
    pub precision: String,
}

/// One task's dataset files (annotation files and, when known, the dataset manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub task: String,
    pub files: Vec<FileRecord>,
}

/// What lets a number be traced back: the odinw build, what was evaluated and what ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The git commit odinw was built from; `unknown` for a build outside a git checkout.
    pub odinw_commit: String,
    /// Whether tracked files differed from that commit at build time; `None` when unknown.
    pub odinw_dirty: Option<bool>,
    /// Per task: the image ids evaluated (every image of the split's annotation file).
    #[serde(default)]
    pub image_ids: BTreeMap<String, ImageIdSet>,
    /// Per task: the download manifest (`.odinw/manifests/<archive>.json`) of its data, when the
    /// data came from `odinw download`.
    #[serde(default)]
    pub dataset_manifests: BTreeMap<String, FileRecord>,
    /// Every ONNX graph the run opened and the execution providers ONNX Runtime accepted for it.
    #[serde(default)]
    pub graphs: Vec<crate::engine::session::GraphProviders>,
}

impl Provenance {
    /// For manifests without the field: nothing known.
    fn absent() -> Self {
        Self {
            odinw_commit: "unknown".into(),
            odinw_dirty: None,
            ..Self::default()
        }
    }
}

impl Default for Provenance {
    /// This build's commit and dirty flag, nothing else yet.
    fn default() -> Self {
        let commit = env!("ODINW_GIT_COMMIT");
        Self {
            odinw_commit: commit.to_string(),
            odinw_dirty: match env!("ODINW_GIT_DIRTY") {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            image_ids: BTreeMap::new(),
            dataset_manifests: BTreeMap::new(),
            graphs: Vec::new(),
        }
    }
}

/// A set of image ids, identified by its size and the SHA-256 of the ids in ascending order,
/// each written in decimal and followed by `\n` (`sha256("1\n2\n10\n")`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageIdSet {
    pub count: usize,
    pub sha256: String,
}

impl ImageIdSet {
    /// The set of `ids` (duplicates count once).
    pub fn of(ids: impl IntoIterator<Item = u64>) -> Self {
        use sha2::{Digest, Sha256};
        let ids: std::collections::BTreeSet<u64> = ids.into_iter().collect();
        let mut h = Sha256::new();
        for id in &ids {
            h.update(format!("{id}\n").as_bytes());
        }
        Self {
            count: ids.len(),
            sha256: crate::util::hash::hex(&h.finalize()),
        }
    }
}

/// Wall-clock times: start and end of the run, seconds per unit (`task` or `task/seed<S>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub started_unix: u64,
    #[serde(default)]
    pub finished_unix: Option<u64>,
    #[serde(default)]
    pub units: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this file's layout.
    pub format: u32,
    pub odinw_version: String,
    /// The command line that made the run.
    pub command: Vec<String>,
    pub track: Track,
    /// `odinw35` or `odinw13`.
    pub suite: String,
    /// The evaluated split: `test`, `val` or `minival`.
    pub split: String,
    /// The prompt set: `odinw35`, `odinw13` (the registry's prompts of that suite) or a name.
    pub prompts: String,
    /// The tasks the run is expected to evaluate, in order.
    pub tasks: Vec<String>,
    /// k of k-shot, for few-shot runs.
    #[serde(default)]
    pub shots: Option<u32>,
    /// The seeds: each task is evaluated once per seed (`RUN/<task>/seed<S>/`). Empty: once.
    #[serde(default)]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub models: Vec<FileRecord>,
    #[serde(default)]
    pub runtime: Option<RuntimeRecord>,
    #[serde(default)]
    pub datasets: Vec<DatasetRecord>,
    #[serde(default)]
    pub timings: Timings,
    /// Fine-tuning runs: per task, the split checkpoints are selected on and GENERAL_COPY.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finetune_tasks: BTreeMap<String, FinetuneTask>,
    /// Absent in manifests written before it existed (read as unknown commit, no records).
    #[serde(default = "Provenance::absent")]
    pub provenance: Provenance,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How one task is fine-tuned: GLIP's model-selection split (the registry's
/// `val_split_during_ft`: `val`, or `minival` for 11 tasks) and its GENERAL_COPY.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneTask {
    pub selection_split: String,
    pub general_copy: u32,
    /// Where the GENERAL_COPY came from (GLIP's README recipe, the task's yaml, the option).
    pub general_copy_origin: String,
}

impl Manifest {
    /// A manifest for `tasks` of `suite` on `split`, stamped with this odinw's version, the
    /// current command line and the current time. Seeds are set for few-shot runs.
    pub fn new(track: Track, suite: &str, split: &str, tasks: Vec<String>) -> Self {
        Self {
            format: 1,
            odinw_version: env!("CARGO_PKG_VERSION").to_string(),
            command: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            track,
            suite: suite.to_string(),
            split: split.to_string(),
            prompts: suite.to_string(),
            tasks,
            shots: None,
            seeds: Vec::new(),
            models: Vec::new(),
            runtime: None,
            datasets: Vec::new(),
            timings: Timings {
                started_unix: now_unix(),
                ..Timings::default()
            },
            finetune_tasks: BTreeMap::new(),
            provenance: Provenance::default(),
            extra: Map::new(),
        }
    }

    /// The seeds a task is evaluated with: `[None]` for one evaluation per task.
    pub fn seed_slots(&self) -> Vec<Option<u64>> {
        if self.seeds.is_empty() {
            vec![None]
        } else {
            self.seeds.iter().map(|s| Some(*s)).collect()
        }
    }

    /// Checks what the rest of odinw relies on: known track/seeds combination, unique tasks.
    pub fn validate(&self) -> Result<()> {
        if self.tasks.is_empty() {
            bail!("the manifest lists no tasks");
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.tasks {
            if t.is_empty() || t.contains(['/', '\\']) || t == "." || t == ".." {
                bail!("task name {t:?} cannot be a folder name");
            }
            if !seen.insert(t.to_ascii_lowercase()) {
                bail!("task {t} is listed twice");
            }
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            bail!("a seed is listed twice: {:?}", self.seeds);
        }
        if self.track == Track::FewShot && self.seeds.is_empty() {
            bail!("a few-shot run needs its seeds (e.g. 3, 30, 300)");
        }
        Ok(())
    }

    /// Reads `path`; errors name the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let m: Self = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid run manifest", path.display()))?;
        m.validate()
            .with_context(|| format!("{} is not a valid run manifest", path.display()))?;
        Ok(m)
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key of one evaluation unit in timings and in `missing`: `task` or `task/seed<S>`.
pub fn unit_key(task: &str, seed: Option<u64>) -> String {
    match seed {
        Some(s) => format!("{task}/seed{s}"),
        None => task.to_string(),
    }
}
