//! Few-shot splits exactly as GLIP's sampler makes them: [`rng`] (CPython's `random.Random`),
//! [`sampler`] (validity filter, seeded shuffle, greedy image-level k-shot pass), [`write`] (the
//! output file and its marker), [`check`] (comparison with GLIP's prepared files), [`stats`]
//! (images and boxes per category).
//!
//! This module ties them together for one source annotation file and a list of targets
//! (shot, seed, output path), deciding per target whether to write, skip (an odinw file that is
//! up to date) or leave a file alone (one odinw did not write: GLIP's prepared file).
pub mod check;
pub use crate::util::rng;
pub mod sampler;
pub mod stats;
pub mod write;

use crate::data::coco::CocoFile;
use crate::util::rng::Seed;
use anyhow::{Context, Result};
use sampler::SamplingIndex;
use std::path::{Path, PathBuf};
use write::Marker;

/// A source annotation file, read and indexed for sampling.
pub struct Source {
    pub path: PathBuf,
    pub coco: CocoFile,
    pub sha256: String,
    pub index: SamplingIndex,
}

impl Source {
    pub fn load(path: &Path) -> Result<Source> {
        let coco = CocoFile::read(path)?;
        let sha256 = crate::util::hash::sha256_file(path)?;
        let index = SamplingIndex::new(&coco, &path.display().to_string())?;
        Ok(Source {
            path: path.to_path_buf(),
            coco,
            sha256,
            index,
        })
    }

    /// The source's file name, as recorded in the markers of the files made from it.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The marker a file generated from this source for `shot` and `seed` carries.
    pub fn marker(&self, shot: u32, seed: &Seed) -> Marker {
        Marker::new(shot, seed, &self.file_name(), &self.sha256)
    }

    /// The k-shot file for `shot` and `seed`, with its marker, and the kept image ids in GLIP's
    /// selection order.
    pub fn generate(&self, shot: u32, seed: &Seed) -> (CocoFile, Vec<u64>) {
        let kept = self.index.select(shot, seed);
        let marker = self.marker(shot, seed);
        (write::fewshot_file(&self.coco, &kept, Some(&marker)), kept)
    }
}

/// One file to produce: `shot`-shot subset with `seed`, at `path`.
#[derive(Clone, Debug)]
pub struct Target {
    pub shot: u32,
    pub seed: Seed,
    pub path: PathBuf,
}

/// What happened to a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Generated and written.
    Written,
    /// An odinw file with the same marker was already there.
    UpToDate,
    /// A file odinw did not write (GLIP's prepared file) was there; it is used as it is.
    KeptPrepared,
}

/// Makes `target` from `source`: writes it unless an up-to-date odinw file or a file odinw did not
/// write is already there (with `force`, odinw's own files are rewritten; others never are).
/// Returns the outcome and the file now at the path.
pub fn materialise(source: &Source, target: &Target, force: bool) -> Result<(Outcome, CocoFile)> {
    if target.path.exists() {
        let existing = CocoFile::read(&target.path)?;
        match Marker::of(&existing) {
            None => return Ok((Outcome::KeptPrepared, existing)),
            Some(m) if !force && m == source.marker(target.shot, &target.seed) => {
                return Ok((Outcome::UpToDate, existing))
            }
            Some(_) => {}
        }
    }
    let (file, _) = source.generate(target.shot, &target.seed);
    file.write(&target.path)
        .with_context(|| format!("writing the few-shot file {}", target.path.display()))?;
    Ok((Outcome::Written, file))
}

/// The result of checking one existing file against the generator.
pub struct CheckResult {
    /// Whether odinw wrote the file (otherwise it is GLIP's or someone else's).
    pub written_by_odinw: bool,
    pub comparison: check::Comparison,
    /// When the images differ: the variants of the sampler that give exactly the file's images,
    /// as hints to how it was made.
    pub matching_variants: Vec<&'static str>,
}

/// Compares the file at `target.path` (which must exist) with the generator's output. When the
/// images differ, also tries the unshuffled pass (seed 0) and the pass without the validity
/// filter (GLIP's setting for non-training splits), and reports those that match.
pub fn check_target(source: &Source, target: &Target) -> Result<CheckResult> {
    let existing = CocoFile::read(&target.path)?;
    let (generated, _) = source.generate(target.shot, &target.seed);
    let comparison = check::compare(&existing, &generated);
    let mut matching_variants = Vec::new();
    if !comparison.same_images() {
        let holds = |kept: &[u64]| {
            let plain = write::fewshot_file(&source.coco, kept, None);
            check::compare(&existing, &plain).same_images()
        };
        if holds(&source.index.select(target.shot, &Seed::from(0))) {
            matching_variants.push("the unshuffled greedy pass (seed 0)");
        }
        let name = source.path.display().to_string();
        if let Ok(all) = SamplingIndex::without_validity_filter(&source.coco, &name) {
            if holds(&all.select(target.shot, &target.seed)) {
                matching_variants.push("the same seed without the validity filter");
            }
        }
    }
    Ok(CheckResult {
        written_by_odinw: Marker::of(&existing).is_some(),
        comparison,
        matching_variants,
    })
}
