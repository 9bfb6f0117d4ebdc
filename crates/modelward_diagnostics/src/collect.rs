//! The one per-rule cap on facts. Every parser reports through a [`FactCollector`], so memory
//! stays bounded whatever a file repeats, and the cap a user sets (`max-findings-per-rule`,
//! `ScanLimits::max_findings_per_rule`) is the cap of every format.

use crate::{Fact, Severity};
use std::collections::HashMap;

/// Facts, at most `cap` per rule; the rest of a rule are counted (the most severe of them
/// kept as the sample) and become one summary fact (`Fact::more`) when the collector finishes.
#[derive(Debug, Clone)]
pub struct FactCollector {
    cap: usize,
    facts: Vec<Fact>,
    kept: HashMap<&'static str, usize>,
    /// Per rule, in order of first overflow: how many were dropped, and the most severe.
    dropped: Vec<(usize, Fact)>,
}

impl Default for FactCollector {
    fn default() -> FactCollector {
        FactCollector::new(FactCollector::DEFAULT_CAP)
    }
}

impl FactCollector {
    /// The cap when none is given: `ScanLimits::max_findings_per_rule`'s default.
    pub const DEFAULT_CAP: usize = 100;

    /// A collector keeping at most `cap` facts per rule (at least one).
    pub fn new(cap: usize) -> FactCollector {
        FactCollector {
            cap: cap.max(1),
            facts: Vec::new(),
            kept: HashMap::new(),
            dropped: Vec::new(),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Adds a fact (or counts it, past the cap of its rule). A fact that is itself a summary
    /// (`more > 0`, from another collector) adds its count.
    pub fn push(&mut self, fact: Fact) {
        let kept = self.kept.entry(fact.rule).or_insert(0);
        if fact.more == 0 && *kept < self.cap {
            *kept += 1;
            self.facts.push(fact);
            return;
        }
        let n = fact.more.max(1);
        let rank = |f: &Fact| f.severity.unwrap_or(Severity::Info);
        match self.dropped.iter_mut().find(|(_, f)| f.rule == fact.rule) {
            Some((count, sample)) => {
                *count += n;
                if rank(&fact) > rank(sample) {
                    *sample = fact;
                }
            }
            None => self.dropped.push((n, fact)),
        }
    }

    /// Facts kept so far.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty() && self.dropped.is_empty()
    }

    /// The facts, then one summary fact per rule that went over the cap.
    pub fn finish(self) -> Vec<Fact> {
        let cap = self.cap;
        let mut out = self.facts;
        for (n, sample) in self.dropped {
            let mut summary = Fact::new(
                sample.rule,
                format!(
                    "{n} more {} findings are not listed (at most {cap} per rule are)",
                    sample.rule
                ),
            );
            summary.severity = sample.severity;
            summary.confidence = sample.confidence;
            summary.more = n;
            out.push(summary);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_rule_and_summarises_once() {
        let mut c = FactCollector::new(3);
        for i in 0..10 {
            c.push(Fact::new("AAA101", format!("a {i}")));
        }
        c.push(Fact::new("BBB101", "b"));
        let f = c.finish();
        assert_eq!(f.iter().filter(|f| f.rule == "AAA101").count(), 4);
        let summary = f.iter().find(|f| f.more > 0).expect("summary");
        assert_eq!(summary.more, 7);
        assert!(
            summary.message.starts_with("7 more AAA101"),
            "{}",
            summary.message
        );
        assert_eq!(f.iter().filter(|f| f.rule == "BBB101").count(), 1);
    }

    #[test]
    fn a_summary_from_another_collector_adds_its_count() {
        let mut inner = FactCollector::new(1);
        for _ in 0..5 {
            inner.push(Fact::new("AAA101", "a"));
        }
        let mut outer = FactCollector::new(1);
        for f in inner.finish() {
            outer.push(f);
        }
        let f = outer.finish();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].more, 4);
    }
}
