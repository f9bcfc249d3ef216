//! The manifest a run starts with: suite, split, tasks and prompts, the model's files (hashed),
//! the runtime, the scored annotation files (hashed) and the provenance of the data (image-id
//! sets, download manifests, the graphs opened so far). `eval` and `finetune` build theirs here.
use super::{DatasetRecord, FileRecord, ImageIdSet, Manifest, RuntimeRecord, Track};
use crate::engine::runtime::{self, Device};
use crate::registry::{Suite, Task};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What a run records about its model.
pub struct ModelRecord<'a> {
    /// Every file the run's results depend on (missing ones are skipped).
    pub files: Vec<PathBuf>,
    pub precision: String,
    pub loaded: &'a runtime::Loaded,
}

/// What a run evaluates: which tasks of which suite, on which split, with which prompts.
pub struct RunSetup<'a> {
    pub track: Track,
    pub suite: Suite,
    pub split: &'a str,
    /// Plain class names instead of the suite's prompts.
    pub class_names: bool,
    pub device: Device,
    pub tasks: &'a [&'a Task],
    pub root: &'a Path,
}

impl RunSetup<'_> {
    /// The run manifest's common part: suite, split, tasks, prompts, model files, runtime and
    /// the hashes of the scored annotation files.
    pub fn manifest(&self, model: &ModelRecord) -> Result<Manifest> {
        let (suite, root) = (self.suite, self.root);
        let mut m = Manifest::new(
            self.track,
            suite.name(),
            self.split,
            self.tasks.iter().map(|t| t.name.clone()).collect(),
        );
        m.prompts = if self.class_names {
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
        m.provenance.graphs = crate::engine::session::opened_graphs();
        let state = crate::download::state::StateDir::new(root);
        for t in self.tasks {
            // A task whose annotation file is absent or unreadable is not recorded here: it
            // fails alone when it runs, its error.json naming the split or file.
            let Some(ann) = t.ann_file(root, self.split).filter(|a| a.is_file()) else {
                continue;
            };
            let (Ok(file), Ok(coco)) = (
                FileRecord::of(&ann),
                crate::data::coco::CocoFile::read(&ann),
            ) else {
                continue;
            };
            m.datasets.push(DatasetRecord {
                task: t.name.clone(),
                files: vec![file],
            });
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
