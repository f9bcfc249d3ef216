//! Fine-tuning one task with one seed (GLIP's `tools/finetune.py` loop, §8): epochs over the
//! k-shot training set wrapped GENERAL_COPY times, batches shuffled and augmented from a seeded
//! RNG (so runs are reproducible; GLIP's are not), ATSS targets per augmented image, a step
//! graph for loss and gradients, AdamW with gradient clipping; evaluation on the few-shot val
//! split after each epoch driving ReduceLROnPlateau and early stopping; the best parameters
//! scored on the test split. Each training batch is zero-padded as GLIP's
//! `to_image_list(size_divisible=32)` pads it (the batch's largest resized width and height,
//! each rounded up to 32; [`augment::batch_canvas`]), with the anchor grid and ATSS targets of
//! that canvas (grids cached per canvas); validation and test images run one by one on GLIP's
//! test canvas, grouped by canvas as `odinw eval` does ([`Batcher`]). Frozen features of the
//! cached tracks are computed once per image variant (scale, flip, canvas). Progress is
//! checkpointed after every epoch, so an interrupted run resumes where it stopped and gives the
//! same result.
use super::augment::{self, AugmentPlan};
use super::batch::{self, Grid};
use super::dataset::{self, Sample};
use super::fewshot::{self, RunSplits};
use super::graphs::{SampleInputs, TrackGraphs};
use super::manifest::TrainTrack;
use super::on_device::OnDevice;
use super::optimizer::{AdamW, ParamGroup};
use super::params::Params;
use super::schedule::{EarlyStop, GlipSchedule, PlateauConfig, WarmupReduceLROnPlateau};
use super::targets::ImageTargets;
use super::text::TaskText;
use crate::engine::{SessionOptions, Tensor};
use crate::eval::{self, Detections, GroundTruth};
use crate::model::canvas::{Batcher, CanvasMode, Planned};
use crate::model::io::postprocess_outputs;
use crate::model::ModelSpec;
use crate::postprocess::CocoDetection;
use crate::postprocess::{to_coco, PostprocessConfig};
use crate::prompt::{task_caption, PromptTokenizer};
use crate::registry::Task;
use crate::run::{FinetuneRecord, Metrics, RunStore, UnitRecord, UnitReport};
use crate::util::fs::write_json_atomic;
use crate::util::reporter::Progress;
use crate::util::rng::{PyRandom, Seed};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to fine-tune (the CLI's options).
#[derive(Clone, Debug)]
pub struct Options {
    pub shots: u32,
    /// GENERAL_COPY: README recipe, the task's yaml value, or a number.
    pub general_copy: fewshot::CopyChoice,
    pub max_epochs: usize,
    /// ReduceLROnPlateau patience (GLIP: 3; 2 with full data).
    pub step_patience: usize,
    /// Early-stop patience in evaluations (GLIP: 8; 4 with full data).
    pub stop_patience: usize,
    /// Overrides the manifest's base learning rate (all groups scaled alike).
    pub base_lr: Option<f32>,
    pub use_prompt: bool,
    pub fix_id0: bool,
    pub test_split: String,
    /// Print one line per epoch.
    pub verbose: bool,
    /// Where the status (updated every step) and the per-epoch lines go; the CLI shows them on
    /// the terminal.
    pub progress: Progress,
}

/// One epoch's record in `train/state.json` and the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: usize,
    pub skipped_batches: usize,
    pub loss: f64,
    pub loss_token: f64,
    pub loss_reg: f64,
    pub loss_centerness: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub val_ap: f64,
    pub seconds: f64,
}

/// Everything needed to resume, written after every epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    pub schedule: GlipSchedule,
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    /// Val AP of the parameters before training (epoch 0); a reference, not a candidate.
    pub initial_val_ap: f64,
    pub history: Vec<EpochRecord>,
}

/// What one (task, seed) run gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stats: [f64; 12],
    pub initial_val_ap: f64,
    pub best_val_ap: f64,
    pub best_epoch: Option<usize>,
    pub epochs: usize,
    pub seconds: f64,
    /// The split checkpoints were selected on (`val` or `minival`).
    pub val_split: String,
    /// GENERAL_COPY used.
    pub general_copy: u32,
}

impl UnitReport for Outcome {
    fn line(&self) -> String {
        format!(
            "test AP {:5.1}  ({} AP {:5.1} -> {:5.1}, best epoch {}, {} epochs, copy ×{}, {:.1} s)",
            self.stats[0] * 100.0,
            self.val_split,
            self.initial_val_ap * 100.0,
            self.best_val_ap * 100.0,
            self.best_epoch
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            self.epochs,
            self.general_copy,
            self.seconds
        )
    }
}

/// The model-level things every run of a track shares.
pub struct RunContext<'a> {
    pub spec: &'a ModelSpec,
    /// The execution provider; with I/O binding on, parameters and optimizer state stay in its
    /// memory during training ([`OnDevice`]).
    pub session: &'a SessionOptions,
    pub tokenizer: &'a PromptTokenizer,
    pub post: &'a PostprocessConfig,
    pub initial: &'a Params,
}

/// Fine-tunes `task` with `seed` and writes its unit of the run (`RUN/<task>/seed<S>/`).
pub fn run_task(
    ctx: &RunContext,
    graphs: &mut TrackGraphs,
    task: &Task,
    root: &Path,
    seed: u64,
    opts: &Options,
    store: &RunStore,
) -> Result<Outcome> {
    let started = Instant::now();
    let unit = store.task_dir(&task.name, Some(seed));
    let work = unit.join("train");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let splits = fewshot::resolve(task, root, opts.shots, seed, &opts.test_split, &work)?;

    let mut category_ids: Vec<u64> = task.categories.iter().map(|c| c.id).collect();
    category_ids.sort_unstable();
    let caption = task_caption(task, opts.use_prompt)?;
    let sep = *ctx
        .spec
        .text
        .special_tokens
        .get("sep")
        .ok_or_else(|| anyhow!("model.json text.special_tokens has no sep"))?;
    let text = TaskText::new(&caption, ctx.tokenizer, ctx.spec.text.max_text_len, sep)?;
    graphs.set_text(&text)?;

    let train = dataset::load(&splits.train.ann, &splits.train.img_dir, &category_ids)?;
    let (val, val_gt) =
        dataset::load_with_truth(&splits.val.ann, &splits.val.img_dir, &category_ids)?;
    if train.is_empty() {
        anyhow::bail!(
            "task {}: the training split {} has no images",
            task.name,
            splits.train.ann.display()
        );
    }
    let mut log = header_log(task, seed, opts, &splits, &text, train.len(), val.len());

    let mut run = Run::new(ctx, graphs, &text, &category_ids, opts);
    run.label = format!("{} seed {seed}", task.name);
    log.push_str(&run.canvas_line());
    opts.progress.set_message(format!(
        "{}: frozen features and the initial val AP",
        run.label
    ));
    let mut val_inputs: Option<Vec<SampleInputs>> = None;

    // Resume or start.
    let state_path = work.join("state.json");
    let params_path = work.join("params.bin");
    let best_path = work.join("best.bin");
    let opt_path = work.join("optimizer.bin");
    let (mut state, mut params, mut adamw) = if state_path.is_file() {
        let state: TrainState =
            serde_json::from_slice(&std::fs::read(&state_path)?).with_context(|| {
                format!(
                    "{}: unreadable training state; delete {} to start over",
                    state_path.display(),
                    work.display()
                )
            })?;
        let params = Params::read(&params_path, &ctx.initial.specs)?;
        let mut adamw = run.new_optimizer();
        adamw.load(&opt_path)?;
        log.push_str(&format!("resumed after epoch {}\n", state.epochs_done));
        (state, params, adamw)
    } else {
        let params = ctx.initial.clone();
        let adamw = run.new_optimizer();
        let vi = run.base_inputs(&val)?;
        let initial_val_ap = run.score(Weights::Host(&params), &val, &vi, &val_gt)?;
        val_inputs = Some(vi);
        let mut plateau = PlateauConfig::glip(opts.shots == 0);
        plateau.patience = opts.step_patience as u32;
        let state = TrainState {
            epochs_done: 0,
            schedule: GlipSchedule {
                plateau: WarmupReduceLROnPlateau::new(adamw.lrs().to_vec(), plateau),
                early_stop: EarlyStop::new(opts.stop_patience as u32),
            },
            best_epoch: None,
            stopped_early: false,
            initial_val_ap,
            history: Vec::new(),
        };
        (state, params, adamw)
    };
    adamw.set_lrs(state.schedule.plateau.lrs())?;
    let val_inputs = match val_inputs {
        Some(v) => v,
        None => run.base_inputs(&val)?,
    };

    let (copies, _) = fewshot::general_copy(task, opts.shots, opts.general_copy);
    let copies = copies as usize;
    let mut on_device = if ctx.session.io_binding.enabled(ctx.session.device)
        && state.epochs_done < opts.max_epochs
        && !state.stopped_early
    {
        Some(OnDevice::upload(ctx.session, &params, &adamw)?)
    } else {
        None
    };
    while state.epochs_done < opts.max_epochs && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let t0 = Instant::now();
        let mut rec = match on_device.as_mut() {
            Some(d) => {
                run.train_epoch(Stepper::Device(d), &mut adamw, &train, copies, seed, epoch)?
            }
            None => run.train_epoch(
                Stepper::Host(&mut params),
                &mut adamw,
                &train,
                copies,
                seed,
                epoch,
            )?,
        };
        if let Some(d) = &on_device {
            d.download(&mut params, &mut adamw)?;
        }
        opts.progress
            .set_message(format!("{} epoch {epoch}: val AP", run.label));
        let weights = match &on_device {
            Some(d) => Weights::Device(d),
            None => Weights::Host(&params),
        };
        let ap = run.score(weights, &val, &val_inputs, &val_gt)?;
        rec.val_ap = ap;
        rec.seconds = t0.elapsed().as_secs_f64();
        let (outcome, _reduced) = state.schedule.after_eval(ap);
        adamw.set_lrs(state.schedule.plateau.lrs())?;
        let new_best = outcome.new_best;
        if new_best {
            state.best_epoch = Some(epoch);
            params.write(&best_path)?;
        }
        state.stopped_early = outcome.stop;
        state.epochs_done = epoch;
        if opts.verbose {
            opts.progress.println(format!(
                "  {} seed {seed} epoch {epoch:3}: loss {:.4} (token {:.4} reg {:.4} ctr {:.4}) val AP {:5.1}{}",
                task.name,
                rec.loss,
                rec.loss_token,
                rec.loss_reg,
                rec.loss_centerness,
                ap * 100.0,
                if new_best { " *" } else { "" }
            ));
        }
        state.history.push(rec);
        // Parameters and optimizer first, then the state that points at them.
        params.write(&params_path)?;
        adamw.save(&opt_path)?;
        write_json_atomic(&state_path, &state)?;
    }

    let best = if best_path.is_file() {
        Params::read(&best_path, &ctx.initial.specs)?
    } else {
        params.clone()
    };
    let best_val_ap = state
        .best_epoch
        .and_then(|e| state.history.get(e - 1))
        .map(|r| r.val_ap)
        .unwrap_or(state.initial_val_ap);

    // Test.
    let (test, test_gt) =
        dataset::load_with_truth(&splits.test.ann, &splits.test.img_dir, &category_ids)?;
    drop(on_device);
    opts.progress
        .set_message(format!("{}: test AP of the best epoch", run.label));
    let results = run.predict_all(Weights::Host(&best), &test, None)?;
    let test_dt = detections(&test_gt, &results, &task.name)?;
    let scored = eval::report::score(&test_gt, &test_dt, opts.fix_id0);
    let (copy_count, copy_origin) = fewshot::general_copy(task, opts.shots, opts.general_copy);
    let mut metrics = Metrics::scored(&scored, &test_gt, &test_dt, &text.caption, &splits.test.ann);
    metrics.finetune = Some(FinetuneRecord {
        track: graphs.manifest.track.name().to_string(),
        shots: opts.shots,
        seed,
        train_file: splits.train.ann.display().to_string(),
        train_origin: splits.train.origin.clone(),
        val_split: splits.val_split.clone(),
        val_file: splits.val.ann.display().to_string(),
        val_origin: splits.val.origin.clone(),
        general_copy: copy_count,
        general_copy_origin: copy_origin,
        epochs: state.epochs_done,
        best_epoch: state.best_epoch,
        best_val_ap,
        initial_val_ap: state.initial_val_ap,
        stopped_early: state.stopped_early,
        best_params: best_path.display().to_string(),
    });
    for r in &state.history {
        log.push_str(&format!(
            "epoch {:3} steps {:3} skipped {:2} loss {:.5} token {:.5} reg {:.5} ctr {:.5} |g| {:.4} lr {:.3e} val AP {:.4} {:.1}s\n",
            r.epoch, r.steps, r.skipped_batches, r.loss, r.loss_token, r.loss_reg, r.loss_centerness, r.grad_norm, r.lr, r.val_ap, r.seconds
        ));
    }
    log.push_str(&format!(
        "initial val AP {:.4}; best epoch {:?} val AP {:.4}; test:\n{}",
        state.initial_val_ap,
        state.best_epoch,
        best_val_ap,
        scored.main.summary()
    ));
    let seconds = started.elapsed().as_secs_f64();
    let unit = UnitRecord {
        predictions: &results,
        metrics: &metrics,
        log: &log,
    };
    store.record_unit(&task.name, Some(seed), &unit, seconds)?;
    Ok(Outcome {
        stats: scored.main.stats,
        initial_val_ap: state.initial_val_ap,
        best_val_ap,
        best_epoch: state.best_epoch,
        epochs: state.epochs_done,
        seconds,
        val_split: splits.val_split.clone(),
        general_copy: copy_count,
    })
}

fn header_log(
    task: &Task,
    seed: u64,
    opts: &Options,
    splits: &RunSplits,
    text: &TaskText,
    n_train: usize,
    n_val: usize,
) -> String {
    let copy = fewshot::general_copy(task, opts.shots, opts.general_copy);
    format!(
        "task {}\nseed {seed}\nshots {}\ngeneral copy {} ({})\ntrain {} ({n_train} images; {})\nmodel selection on {}: {} ({n_val} images; {})\ntest {}\ncaption {:?}\nclass tokens {:?}\n",
        task.name,
        opts.shots,
        copy.0,
        copy.1,
        splits.train.ann.display(),
        splits.train.origin,
        splits.val_split,
        splits.val.ann.display(),
        splits.val.origin,
        splits.test.ann.display(),
        text.caption,
        text.classes.tokens
    )
}

fn detections(gt: &GroundTruth, results: &[CocoDetection], task: &str) -> Result<Detections> {
    let records: Vec<eval::Detection> = results.iter().map(Into::into).collect();
    Detections::from_records(gt, &records).with_context(|| format!("scoring task {task}"))
}

/// A cached training image: sample index, short side, flip, canvas `(width, height)`.
type Key = (usize, u32, bool, u32, u32);

/// The per-run machinery: graphs, prompt, anchors, caches.
struct Run<'a, 'g> {
    ctx: &'a RunContext<'a>,
    /// `<task> seed <S>`, for the progress line.
    label: String,
    graphs: &'g mut TrackGraphs,
    text: &'a TaskText,
    category_ids: &'a [u64],
    opts: &'a Options,
    /// The anchor grid of each training canvas met so far.
    grids: HashMap<(u32, u32), Grid>,
    scales: Vec<u32>,
    cache: HashMap<Key, SampleInputs>,
    targets: HashMap<Key, ImageTargets>,
}

impl<'a, 'g> Run<'a, 'g> {
    fn new(
        ctx: &'a RunContext<'a>,
        graphs: &'g mut TrackGraphs,
        text: &'a TaskText,
        category_ids: &'a [u64],
        opts: &'a Options,
    ) -> Self {
        Run {
            ctx,
            label: String::new(),
            graphs,
            text,
            category_ids,
            opts,
            grids: HashMap::new(),
            scales: augment::train_scales(ctx.spec.preprocess.resize.min_size),
            cache: HashMap::new(),
            targets: HashMap::new(),
        }
    }

    fn groups(&self) -> Vec<ParamGroup> {
        let m = &self.graphs.manifest;
        let factor = self
            .opts
            .base_lr
            .map(|lr| lr / m.optimizer.base_lr)
            .unwrap_or(1.0);
        m.params
            .iter()
            .map(|p| ParamGroup {
                name: p.name.clone(),
                lr: p.lr * factor,
                weight_decay: p.weight_decay,
            })
            .collect()
    }

    fn new_optimizer(&self) -> AdamW {
        let o = &self.graphs.manifest.optimizer;
        AdamW::new(self.groups(), (o.betas[0], o.betas[1]), o.eps)
    }

    fn base_plan(&self) -> AugmentPlan {
        AugmentPlan {
            min_size: self.ctx.spec.preprocess.resize.min_size,
            flip: false,
        }
    }

    /// Whether the graphs take GLIP's canvases (a dynamic-canvas model and training graphs)
    /// rather than the model's fixed `input_size`.
    fn dynamic_canvas(&self) -> bool {
        self.graphs.manifest.dynamic_canvas() && self.ctx.spec.dynamic_canvas()
    }

    /// The log's line on the canvases the run trains and scores on.
    fn canvas_line(&self) -> String {
        if self.dynamic_canvas() {
            "canvas: GLIP's (training: each batch's largest resized size rounded up to 32; \
             val and test: each image's own)\n"
                .to_string()
        } else {
            let (w, h) = self.fixed_canvas();
            format!(
                "canvas: fixed {h}x{w} (the {} track's training graphs are for one size)\n",
                self.graphs.manifest.track.name()
            )
        }
    }

    /// The model's fixed canvas `(width, height)` (`input_size`).
    fn fixed_canvas(&self) -> (u32, u32) {
        batch::fixed_canvas(self.ctx.spec)
    }

    /// The canvas of a training batch whose images resize to `sizes`: GLIP's
    /// `to_image_list(size_divisible=32)` with dynamic-canvas graphs, else the fixed canvas.
    fn batch_canvas(&self, sizes: &[(u32, u32)]) -> (u32, u32) {
        batch::training_canvas(self.ctx.spec, sizes, self.dynamic_canvas())
    }

    /// The resized `(width, height)` of `sample` under `plan`.
    fn resized(&self, sample: &Sample, plan: &AugmentPlan) -> (u32, u32) {
        augment::resized_size(
            sample.image.width,
            sample.image.height,
            plan,
            &self.ctx.spec.preprocess,
        )
    }

    /// The normalised `[1,3,H,W]` image of `sample` under `plan` on `canvas` (`(W, H)`), and
    /// its resized size.
    fn canvas(
        &self,
        sample: &Sample,
        plan: &AugmentPlan,
        canvas: (u32, u32),
    ) -> Result<(Tensor, (u32, u32))> {
        batch::canvas_image(self.ctx.spec, sample, plan, canvas)
    }

    /// The test-time batches of `samples`: each image on GLIP's test canvas (its resize
    /// rounded up to 32), images with equal canvases together, exactly as `odinw eval` forms
    /// them (the pipeline's [`Batcher`]); the fixed canvas with fixed-canvas graphs.
    fn test_batches(&self, samples: &[Sample]) -> Vec<Planned> {
        let mode = if self.dynamic_canvas() {
            CanvasMode::PerImage
        } else {
            CanvasMode::Fixed
        };
        let plan = self.base_plan();
        let mut batcher = Batcher::new(self.ctx.spec, mode, self.graphs.batch());
        let mut out = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            out.extend(batcher.push(i, self.resized(s, &plan)));
        }
        out.extend(batcher.finish());
        out
    }

    /// The cacheable inputs of the images `items` of `samples`, at the test-time size, not
    /// flipped, on `canvas` (one batch of [`Run::test_batches`]).
    fn test_inputs(
        &mut self,
        samples: &[Sample],
        items: &[usize],
        canvas: (u32, u32),
    ) -> Result<Vec<SampleInputs>> {
        let plan = self.base_plan();
        let canvases = items
            .iter()
            .map(|&i| Ok(self.canvas(&samples[i], &plan, canvas)?.0))
            .collect::<Result<Vec<_>>>()?;
        self.graphs.sample_inputs(&canvases, self.text)
    }

    /// Inputs of every sample at the test-time size, not flipped, on its test canvas (val and
    /// test), in `samples`' order.
    fn base_inputs(&mut self, samples: &[Sample]) -> Result<Vec<SampleInputs>> {
        let mut out: Vec<Option<SampleInputs>> = vec![None; samples.len()];
        for planned in self.test_batches(samples) {
            let inputs = self.test_inputs(samples, &planned.items, planned.canvas)?;
            for (&i, v) in planned.items.iter().zip(inputs) {
                out[i] = Some(v);
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| anyhow!("an image was left out of every test batch")))
            .collect()
    }

    /// Detections of `samples` (COCO results in original pixels) with `params`, in
    /// `samples`' order; `inputs` are [`Run::base_inputs`] when cached.
    fn predict_all(
        &mut self,
        params: Weights,
        samples: &[Sample],
        inputs: Option<&[SampleInputs]>,
    ) -> Result<Vec<CocoDetection>> {
        let plan = self.base_plan();
        let mut per_image: Vec<Vec<CocoDetection>> = vec![Vec::new(); samples.len()];
        for planned in self.test_batches(samples) {
            let sizes: Vec<(u32, u32)> = planned
                .items
                .iter()
                .map(|&i| self.resized(&samples[i], &plan))
                .collect();
            let owned;
            let ins: Vec<&SampleInputs> = match inputs {
                Some(all) => planned.items.iter().map(|&i| &all[i]).collect(),
                None => {
                    owned = self.test_inputs(samples, &planned.items, planned.canvas)?;
                    owned.iter().collect()
                }
            };
            let outputs = match params {
                Weights::Host(p) => self.graphs.predict(p, &ins, self.text)?,
                Weights::Device(d) => self.graphs.predict_on_device(d.params(), &ins, self.text)?,
            };
            let dets = postprocess_outputs(
                self.ctx.spec,
                self.ctx.post,
                &outputs,
                &sizes,
                planned.canvas,
                &self.text.classes,
            )?;
            for ((&i, size), d) in planned.items.iter().zip(&sizes).zip(dets) {
                let s = &samples[i];
                let original = (s.image.width, s.image.height);
                per_image[i] = to_coco(&d, *size, original, s.id, self.category_ids)?;
            }
        }
        Ok(per_image.into_iter().flatten().collect())
    }

    /// bbox AP (stats[0]) of `params` on a split.
    fn score(
        &mut self,
        params: Weights,
        samples: &[Sample],
        inputs: &[SampleInputs],
        gt: &GroundTruth,
    ) -> Result<f64> {
        let results = self.predict_all(params, samples, Some(inputs))?;
        let dt = detections(gt, &results, "val")?;
        let scored = eval::report::score(gt, &dt, self.opts.fix_id0);
        Ok(scored.main.stats[0].max(0.0))
    }

    /// Cached inputs and targets of each `(sample index, plan)` of a batch on `canvas`.
    fn ensure(
        &mut self,
        train: &[Sample],
        keys: &[(usize, AugmentPlan)],
        canvas: (u32, u32),
    ) -> Result<()> {
        let track = self.graphs.manifest.track;
        if !self.grids.contains_key(&canvas) {
            self.grids
                .insert(canvas, batch::grid(self.ctx.spec, canvas));
        }
        let mut missing = Vec::new();
        let mut canvases = Vec::new();
        for (i, plan) in keys {
            let key = (*i, plan.min_size, plan.flip, canvas.0, canvas.1);
            let need_inputs = track == TrainTrack::Full || !self.cache.contains_key(&key);
            if !need_inputs && self.targets.contains_key(&key) {
                continue;
            }
            let s = &train[*i];
            let (image, resized) = self.canvas(s, plan, canvas)?;
            if !self.targets.contains_key(&key) {
                let grid = &self.grids[&canvas];
                let t = batch::image_targets(self.ctx.spec, self.text, s, plan, resized, grid)?;
                self.targets.insert(key, t);
            }
            if need_inputs {
                missing.push(key);
                canvases.push(image);
            }
        }
        if !missing.is_empty() {
            let inputs = self.graphs.sample_inputs(&canvases, self.text)?;
            for (k, v) in missing.into_iter().zip(inputs) {
                self.cache.insert(k, v);
            }
        }
        Ok(())
    }

    fn train_epoch(
        &mut self,
        mut params: Stepper,
        adamw: &mut AdamW,
        train: &[Sample],
        copies: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<EpochRecord> {
        let b = self.graphs.batch();
        let mut order: Vec<usize> = (0..train.len() * copies).map(|i| i % train.len()).collect();
        let mut rng = PyRandom::new(&Seed::from(
            seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
        ));
        rng.shuffle(&mut order);
        let mut rec = EpochRecord {
            epoch,
            steps: 0,
            skipped_batches: 0,
            loss: 0.0,
            loss_token: 0.0,
            loss_reg: 0.0,
            loss_centerness: 0.0,
            grad_norm: 0.0,
            lr: 0.0,
            val_ap: 0.0,
            seconds: 0.0,
        };
        let full = self.graphs.manifest.track == TrainTrack::Full;
        for batch in order.chunks_exact(b) {
            let keys: Vec<(usize, AugmentPlan)> = batch
                .iter()
                .map(|&i| (i, augment::plan(&mut rng, &self.scales)))
                .collect();
            let sizes: Vec<(u32, u32)> = keys
                .iter()
                .map(|(i, p)| self.resized(&train[*i], p))
                .collect();
            let canvas = self.batch_canvas(&sizes);
            self.ensure(train, &keys, canvas)?;
            let key = |(i, p): &(usize, AugmentPlan)| (*i, p.min_size, p.flip, canvas.0, canvas.1);
            // GLIP skips a batch where more than 10% of the images have no boxes.
            let empty = keys
                .iter()
                .filter(|k| self.targets[&key(k)].num_positive == 0 && train[k.0].boxes.is_empty())
                .count();
            if empty as f64 > 0.1 * b as f64 {
                rec.skipped_batches += 1;
                continue;
            }
            let inputs: Vec<&SampleInputs> = keys.iter().map(|k| &self.cache[&key(k)]).collect();
            let tgs: Vec<&ImageTargets> = keys.iter().map(|k| &self.targets[&key(k)]).collect();
            let clip = self.graphs.manifest.optimizer.clip_grad_norm;
            let (losses, norm) = match &mut params {
                Stepper::Host(p) => {
                    let mut out = self.graphs.step(p, &inputs, self.text, &tgs)?;
                    check_loss(out.losses.loss, epoch)?;
                    let norm = adamw.try_step(&mut p.values, &mut out.grads, clip)?;
                    (out.losses, norm)
                }
                Stepper::Device(d) => {
                    let out = self
                        .graphs
                        .step_on_device(d.params(), &inputs, self.text, &tgs)?;
                    check_loss(out.losses.loss, epoch)?;
                    (out.losses, d.step(adamw, &out.grads, clip)?)
                }
            };
            rec.steps += 1;
            self.opts.progress.set_message(format!(
                "{} epoch {epoch} step {}/{} loss {:.4}",
                self.label,
                rec.steps + rec.skipped_batches,
                order.len() / b,
                losses.loss
            ));
            rec.loss += losses.loss as f64;
            rec.loss_token += losses.loss_token as f64;
            rec.loss_reg += losses.loss_reg as f64;
            rec.loss_centerness += losses.loss_centerness as f64;
            rec.grad_norm += norm as f64;
            if full {
                for k in &keys {
                    self.cache.remove(&key(k));
                }
            }
        }
        if rec.steps > 0 {
            let n = rec.steps as f64;
            rec.loss /= n;
            rec.loss_token /= n;
            rec.loss_reg /= n;
            rec.loss_centerness /= n;
            rec.grad_norm /= n;
        }
        rec.lr = adamw.lrs().first().copied().unwrap_or(0.0);
        Ok(rec)
    }
}

/// The parameters a prediction reads.
#[derive(Clone, Copy)]
enum Weights<'p> {
    Host(&'p Params),
    Device(&'p OnDevice),
}

/// The parameters a training epoch updates, with where the optimizer runs.
enum Stepper<'p> {
    Host(&'p mut Params),
    Device(&'p mut OnDevice),
}

fn check_loss(loss: f32, epoch: usize) -> Result<()> {
    if !loss.is_finite() {
        anyhow::bail!("epoch {epoch}: the loss is {loss} (diverged); try a lower --lr");
    }
    Ok(())
}

/// Where a run keeps a unit's training files.
pub fn work_dir(store: &RunStore, task: &str, seed: u64) -> PathBuf {
    store.task_dir(task, Some(seed)).join("train")
}
