//! GLIP's learning-rate schedule and early stopping (protocol §8.4), driven by the AP of each
//! evaluation.
//!
//! [`WarmupReduceLROnPlateau`] is torch's `ReduceLROnPlateau` (mode max, relative threshold)
//! as GLIP wraps it with no warmup: `step(AP)` is only called when the AP is truthy in Python
//! (`elif metrics:`), so an AP of exactly 0.0 is ignored. "Better" means `AP > best·(1 + 1e-4)`;
//! after more than `patience` evaluations that are not better, every group's learning rate
//! becomes `max(lr · 0.1, min_lr)` (left alone when that lowers it by 1e-8 or less).
//! All arithmetic is on f64, like Python's floats.
//!
//! [`EarlyStop`] is `do_train`'s counter: `+1` when `AP < previous_best` (strict, starting from
//! 0.0), otherwise reset to 0 with `previous_best = AP` and the checkpoint saved as the best;
//! training stops when the counter reaches the patience.
use serde::{Deserialize, Serialize};

/// The plateau scheduler's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauConfig {
    /// `SOLVER.GAMMA`.
    pub factor: f64,
    /// `SOLVER.STEP_PATIENCE`.
    pub patience: u32,
    /// torch's relative `threshold`.
    pub threshold: f64,
    /// `SOLVER.MIN_LR`.
    pub min_lr: f64,
    pub cooldown: u32,
    /// torch's `eps`: smaller learning-rate changes are not applied.
    pub eps: f64,
}

impl PlateauConfig {
    /// GLIP's settings: patience 3 for few-shot runs, 2 for full data.
    pub fn glip(full_data: bool) -> Self {
        PlateauConfig {
            factor: 0.1,
            patience: if full_data { 2 } else { 3 },
            threshold: 1e-4,
            min_lr: 1e-6,
            cooldown: 0,
            eps: 1e-8,
        }
    }
}

/// `WarmupReduceLROnPlateau` with `WARMUP_ITERS 0`, per parameter group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarmupReduceLROnPlateau {
    pub cfg: PlateauConfig,
    lrs: Vec<f64>,
    best: f64,
    num_bad_epochs: u32,
    cooldown_counter: u32,
    last_epoch: u64,
}

impl WarmupReduceLROnPlateau {
    /// Starts from the groups' initial learning rates.
    pub fn new(lrs: Vec<f64>, cfg: PlateauConfig) -> Self {
        WarmupReduceLROnPlateau {
            cfg,
            lrs,
            best: f64::NEG_INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        }
    }

    /// The learning rate of each group now.
    pub fn lrs(&self) -> &[f64] {
        &self.lrs
    }

    /// The best AP seen so far (−∞ before any).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Feeds one evaluation's AP; returns true when the learning rates were lowered.
    pub fn step(&mut self, ap: f64) -> bool {
        // GLIP: `elif metrics:` — 0.0 (and -0.0) is falsy and skips the scheduler; NaN is truthy.
        if ap == 0.0 {
            return false;
        }
        self.last_epoch += 1;
        if ap > self.best * (1.0 + self.cfg.threshold) {
            self.best = ap;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.cfg.patience {
            let mut changed = false;
            for lr in &mut self.lrs {
                let new = (*lr * self.cfg.factor).max(self.cfg.min_lr);
                if *lr - new > self.cfg.eps {
                    *lr = new;
                    changed = true;
                }
            }
            self.cooldown_counter = self.cfg.cooldown;
            self.num_bad_epochs = 0;
            return changed;
        }
        false
    }
}

/// `do_train`'s early-stop counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// `SOLVER.AUTO_TERMINATE_PATIENCE`.
    pub patience: u32,
    previous_best: f64,
    counter: u32,
}

/// What one evaluation means for the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOutcome {
    /// Not worse than the previous best: save this checkpoint as the best.
    pub new_best: bool,
    /// The patience is used up: stop training.
    pub stop: bool,
    /// The counter after this evaluation.
    pub counter: u32,
    /// The best AP after this evaluation.
    pub previous_best: f64,
}

impl EarlyStop {
    pub fn new(patience: u32) -> Self {
        EarlyStop {
            patience,
            previous_best: 0.0,
            counter: 0,
        }
    }

    /// GLIP's patience: 8 for few-shot runs, 4 for full data.
    pub fn glip(full_data: bool) -> Self {
        EarlyStop::new(if full_data { 4 } else { 8 })
    }

    /// Feeds one evaluation's AP. Like GLIP, a NaN AP is not `< previous_best`, so it counts
    /// as a new best (and then every later AP does too).
    pub fn observe(&mut self, ap: f64) -> EvalOutcome {
        // Python's `if AP < previous_best` is false for NaN too.
        let worse = ap < self.previous_best;
        let new_best = !worse;
        if new_best {
            self.counter = 0;
            self.previous_best = ap;
        } else {
            self.counter += 1;
        }
        EvalOutcome {
            new_best,
            stop: self.counter >= self.patience,
            counter: self.counter,
            previous_best: self.previous_best,
        }
    }
}

/// Both, in GLIP's order after an evaluation: the scheduler, then the early stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlipSchedule {
    pub plateau: WarmupReduceLROnPlateau,
    pub early_stop: EarlyStop,
}

impl GlipSchedule {
    /// GLIP's settings for groups starting at `lrs`.
    pub fn new(lrs: Vec<f64>, full_data: bool) -> Self {
        GlipSchedule {
            plateau: WarmupReduceLROnPlateau::new(lrs, PlateauConfig::glip(full_data)),
            early_stop: EarlyStop::glip(full_data),
        }
    }

    /// Feeds one evaluation's AP; returns the early-stop outcome and whether the learning
    /// rates ([`WarmupReduceLROnPlateau::lrs`]) were lowered.
    pub fn after_eval(&mut self, ap: f64) -> (EvalOutcome, bool) {
        let reduced = self.plateau.step(ap);
        (self.early_stop.observe(ap), reduced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stop_follows_hand_traces() {
        // (AP, new_best, counter) with patience 3.
        let trace = [
            (0.0, true, 0), // 0.0 is not < 0.0: a "best" (GLIP saves model_best here too)
            (0.2, true, 0),
            (0.1, false, 1),
            (0.2, true, 0), // equal counts as a new best (strict <)
            (0.19, false, 1),
            (0.05, false, 2),
            (0.3, true, 0),
            (0.1, false, 1),
            (0.1, false, 2),
            (0.1, false, 3),
        ];
        let mut es = EarlyStop::new(3);
        for (i, &(ap, best, counter)) in trace.iter().enumerate() {
            let o = es.observe(ap);
            assert_eq!((o.new_best, o.counter), (best, counter), "eval {i}");
            assert_eq!(o.stop, i == trace.len() - 1, "eval {i}");
        }
        assert_eq!(es.observe(0.5).previous_best, 0.5);
        assert_eq!(EarlyStop::glip(false).patience, 8);
        assert_eq!(EarlyStop::glip(true).patience, 4);
    }

    #[test]
    fn plateau_lowers_after_patience_and_ignores_zero() {
        let mut s =
            WarmupReduceLROnPlateau::new(vec![1e-4, 1e-5, 2e-4], PlateauConfig::glip(false));
        assert!(!s.step(0.3));
        // 0.30002 is not > 0.3 * 1.0001; zeros are skipped entirely.
        for ap in [0.30002, 0.0, 0.1, 0.0, 0.2] {
            assert!(!s.step(ap));
        }
        assert!(s.step(0.25)); // fourth bad evaluation > patience 3
        let floor = (1e-5f64 * 0.1).max(1e-6);
        assert_eq!(s.lrs(), &[1e-4 * 0.1, floor, 2e-4 * 0.1]);
        for _ in 0..4 {
            s.step(0.1);
        }
        // 1e-5 -> 1e-6; the second group would drop by less than eps (min_lr): it stays.
        assert_eq!(s.lrs(), &[1e-4 * 0.1 * 0.1, floor, 2e-4 * 0.1 * 0.1]);
        let mut g = GlipSchedule::new(vec![0.05], true);
        assert_eq!(g.plateau.cfg.patience, 2);
        let (o, reduced) = g.after_eval(0.0);
        assert!(o.new_best && !reduced);
    }
}
