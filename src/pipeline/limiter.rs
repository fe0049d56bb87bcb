//! Monitor mode's rate limits: findings per second per rule and in all,
//! counted in event time so that a replay suppresses what the live run did.

/// Findings per second, per rule and in all, counted in windows of one
/// second of event time that open with the first finding after the last
/// window closed (so a replay suppresses what the live run did).
pub struct Limiter {
    per_rule: u32,
    total: u32,
    window_start: Option<u64>,
    rule_count: Vec<u32>,
    total_count: u32,
    /// Findings suppressed, per rule.
    pub suppressed: Vec<u64>,
}

impl Limiter {
    /// `0` is no limit.
    pub fn new(rules: usize, per_rule: u32, total: u32) -> Limiter {
        Limiter {
            per_rule,
            total,
            window_start: None,
            rule_count: vec![0; rules],
            total_count: 0,
            suppressed: vec![0; rules],
        }
    }

    pub fn allow(&mut self, rule: usize, ts: u64) -> bool {
        if self
            .window_start
            .is_none_or(|start| ts >= start.saturating_add(1_000_000_000))
        {
            self.window_start = Some(ts);
            self.rule_count.iter_mut().for_each(|c| *c = 0);
            self.total_count = 0;
        }
        let over = (self.per_rule > 0 && self.rule_count[rule] >= self.per_rule)
            || (self.total > 0 && self.total_count >= self.total);
        if over {
            self.suppressed[rule] += 1;
            return false;
        }
        self.rule_count[rule] += 1;
        self.total_count += 1;
        true
    }
}
