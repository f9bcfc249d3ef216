//! One task's record, as stored in `odinw_35/<Task>.json` (built by `scripts/build_registry.py`).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How an archive lays out its splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `<folder>/{train,valid,test[,mini_val]}/annotations_without_background.json`.
    Split,
    /// `<folder>/{train,val,test}_annotations_without_background.json`, images beside them.
    Export,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub supercategory: Option<String>,
}

/// One entry of a CAPTION_PROMPT: the class is rendered as `prefix + name + suffix`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaptionPrompt {
    pub prefix: String,
    pub name: String,
    pub suffix: String,
}

/// One class's entry of an mmdetection `caption_prompt` dict (`to_enhance_text_prompts`): the
/// class is written `prefix + (name or the class name) + suffix`, each part optional as in
/// mmdetection's dict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhancedPrompt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

/// An mmdetection `caption_prompt` dict: class name (as its config's `class_name` spells it,
/// matched after `clean_label_name`) → how the class is written.
pub type EnhancedPrompts = BTreeMap<String, EnhancedPrompt>;

/// Annotation file and image folder of one split, relative to the dataset root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SplitFiles {
    pub ann_file: String,
    pub img_dir: String,
}

/// The RoboFlow project export a task was made from, where its folder name records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoboflowPin {
    pub project: String,
    pub version: u32,
    pub export: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FewShotFiles {
    pub shots: Vec<u32>,
    pub seeds: Vec<u64>,
    /// Split name → path pattern with `{shot}` and `{seed}`, relative to the dataset root.
    pub files: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// Archive name, with `_<variant>` for archives that hold two tasks.
    pub name: String,
    pub suite: String,
    /// Position in GLIP's task list.
    pub index: usize,
    /// GLIP's config this record was made from.
    pub yaml: String,
    /// `<archive>.zip` on the mirror.
    pub archive: String,
    /// Folder under `<root>/odinw/`.
    pub folder: String,
    pub layout: Layout,
    pub in_odinw13: bool,
    /// `train`, `val`, `test` and, for 11 tasks, `minival`.
    pub splits: BTreeMap<String, SplitFiles>,
    pub categories: Vec<Category>,
    pub caption_prompt: Option<Vec<CaptionPrompt>>,
    /// mmdetection's ODinW evaluation of Grounding DINO: the `caption_prompt` its configs pass
    /// to this task's dataset, per model family (`grounding-dino`: configs/grounding_dino/odinw,
    /// `mm-grounding-dino`: configs/mm_grounding_dino/odinw, for this suite). A family that is
    /// absent has none (plain class names). Transcribed in `scripts/build_registry.py`.
    #[serde(default)]
    pub mmdet_caption_prompt: BTreeMap<String, EnhancedPrompts>,
    /// NUM_CLASSES as GLIP's yaml states it (may disagree with the categories: boggleBoards).
    pub num_classes_yaml: u32,
    /// GENERAL_COPY: how many times the training set is repeated per epoch.
    pub general_copy: u32,
    /// The split used for model selection while fine-tuning (`val` or `minival`).
    pub val_split_during_ft: String,
    pub fewshot: FewShotFiles,
    pub roboflow: Option<RoboflowPin>,
}

impl Task {
    /// The split names in a stable order: train, val, minival, test.
    pub fn split_names(&self) -> Vec<&str> {
        ["train", "val", "minival", "test"]
            .into_iter()
            .filter(|s| self.splits.contains_key(*s))
            .collect()
    }

    /// The annotation file of `split` under `root`, if the task has that split.
    pub fn ann_file(&self, root: &Path, split: &str) -> Option<PathBuf> {
        self.splits.get(split).map(|s| root.join(&s.ann_file))
    }

    /// The image folder of `split` under `root`.
    pub fn img_dir(&self, root: &Path, split: &str) -> Option<PathBuf> {
        self.splits.get(split).map(|s| root.join(&s.img_dir))
    }

    /// The annotation file and image folder of `split` under `root`, checked: the task has the
    /// split and its annotation file exists (else the error says how to fetch it).
    pub fn split_files(&self, root: &Path, split: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let (Some(ann), Some(img_dir)) = (self.ann_file(root, split), self.img_dir(root, split))
        else {
            anyhow::bail!(
                "task {} has no {split} split (it has {})",
                self.name,
                self.split_names().join(", ")
            );
        };
        if !ann.is_file() {
            anyhow::bail!(
                "task {}: {} does not exist; fetch it with `odinw download --tasks {} --root {}`",
                self.name,
                ann.display(),
                self.name,
                root.display()
            );
        }
        Ok((ann, img_dir))
    }

    /// The task's folder under `root` (`<root>/odinw/<folder>`).
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join("odinw").join(&self.folder)
    }

    /// GLIP's prepared few-shot file of `split` for `shot` and `seed`, if the task registers one.
    pub fn fewshot_file(&self, root: &Path, split: &str, shot: u32, seed: u64) -> Option<PathBuf> {
        self.fewshot.files.get(split).map(|p| {
            root.join(
                p.replace("{shot}", &shot.to_string())
                    .replace("{seed}", &seed.to_string()),
            )
        })
    }
}
