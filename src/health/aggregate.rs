//! Worst-of aggregation of many resources' health into one (an Application's).

use super::HealthStatus;

/// The worst status in Argo CD's order (Healthy < Suspended < Progressing < Missing < Degraded < Unknown);
/// Healthy when there is nothing to aggregate.
pub fn aggregate<'a>(items: impl IntoIterator<Item = &'a HealthStatus>) -> HealthStatus {
    items
        .into_iter()
        .copied()
        .max()
        .unwrap_or(HealthStatus::Healthy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;

    #[test]
    fn worst_status_wins() {
        assert_eq!(aggregate(&[]), Healthy);
        assert_eq!(aggregate(&[Healthy, Healthy]), Healthy);
        assert_eq!(aggregate(&[Healthy, Suspended]), Suspended);
        assert_eq!(aggregate(&[Suspended, Progressing, Healthy]), Progressing);
        assert_eq!(aggregate(&[Progressing, Missing]), Missing);
        assert_eq!(aggregate(&[Degraded, Missing, Progressing]), Degraded);
        assert_eq!(aggregate(&[Unknown, Degraded, Healthy]), Unknown);
        let statuses = [Healthy, Degraded];
        assert_eq!(aggregate(statuses.iter()), Degraded);
    }
}
