//! Running means of the logged terms over one log interval.

use super::log::insert_number;

/// Sums of the named terms of every step since the last log line.
#[derive(Debug, Default)]
pub struct IntervalStats {
    names: Vec<String>,
    sums: Vec<f64>,
    counts: Vec<usize>,
    steps: usize,
}

impl IntervalStats {
    /// Adds one step's terms (a name not seen before joins the table).
    pub fn add(&mut self, terms: &[(String, f64)]) {
        for (name, value) in terms {
            let index = match self.names.iter().position(|n| n == name) {
                Some(index) => index,
                None => {
                    self.names.push(name.clone());
                    self.sums.push(0.0);
                    self.counts.push(0);
                    self.names.len() - 1
                }
            };
            self.sums[index] += value;
            self.counts[index] += 1;
        }
        self.steps += 1;
    }

    /// Steps added since the interval began.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Mean of `name` over the interval, if it was logged.
    pub fn mean(&self, name: &str) -> Option<f64> {
        let index = self.names.iter().position(|n| n == name)?;
        (self.counts[index] > 0).then(|| self.sums[index] / self.counts[index] as f64)
    }

    /// Every mean, in first-seen order, as a JSON row.
    pub fn means(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut row = serde_json::Map::new();
        for ((name, sum), count) in self.names.iter().zip(&self.sums).zip(&self.counts) {
            insert_number(&mut row, name, sum / (*count).max(1) as f64);
        }
        row
    }

    /// A short summary for the progress bar (`name value | ...`), without `grad_norm`.
    pub fn short(&self) -> String {
        self.names
            .iter()
            .filter(|n| n.as_str() != "grad_norm")
            .filter_map(|n| self.mean(n).map(|m| format!("{n} {m:.3}")))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_are_per_term_over_the_steps_that_logged_them() {
        let mut stats = IntervalStats::default();
        stats.add(&[("loss".into(), 1.0)]);
        stats.add(&[("loss".into(), 3.0), ("probe".into(), 0.5)]);
        assert_eq!(stats.steps(), 2);
        assert_eq!(stats.mean("loss"), Some(2.0));
        assert_eq!(stats.mean("probe"), Some(0.5));
        assert_eq!(stats.mean("missing"), None);
        assert_eq!(stats.means()["loss"], serde_json::json!(2.0));
        assert!(stats.short().contains("loss 2.000"));
    }
}
