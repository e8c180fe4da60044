//! ReduceLROnPlateau as PyTorch defines it (mode `max`, relative threshold 1e-4, no cooldown):
//! burn 0.21 has no metric-driven scheduler, and UniRec steps one on validation NDCG@10 after
//! each epoch (spec §2.3).

use serde::{Deserialize, Serialize};

/// The scheduler and its state (serialisable so checkpoints resume it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    pub lr: f64,
    pub factor: f64,
    pub patience: usize,
    pub threshold: f64,
    pub min_lr: f64,
    best: Option<f64>,
    bad_epochs: usize,
}

impl ReduceLrOnPlateau {
    pub fn new(lr: f64, factor: f64, patience: usize) -> Self {
        ReduceLrOnPlateau {
            lr,
            factor,
            patience,
            threshold: 1e-4,
            min_lr: 0.0,
            best: None,
            bad_epochs: 0,
        }
    }

    /// Feeds one epoch's metric (higher is better) and returns the learning rate to use next.
    pub fn step(&mut self, metric: f64) -> f64 {
        let improved = match self.best {
            None => true,
            Some(best) => metric > best * (1.0 + self.threshold),
        };
        if improved {
            self.best = Some(metric);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.patience {
            self.lr = (self.lr * self.factor).max(self.min_lr);
            self.bad_epochs = 0;
        }
        self.lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_after_patience_is_exceeded() {
        let mut s = ReduceLrOnPlateau::new(1.0, 0.1, 1);
        assert_eq!(s.step(0.5), 1.0);
        assert_eq!(s.step(0.6), 1.0);
        assert_eq!(s.step(0.6), 1.0); // one bad epoch: within patience
        assert!((s.step(0.59) - 0.1).abs() < 1e-12); // second bad epoch: reduce
        assert!((s.step(0.58) - 0.1).abs() < 1e-12); // counter was reset
        assert!((s.step(0.6) - 0.01).abs() < 1e-12); // no relative improvement over 0.6
    }
}
