//! The specialist review queue's order and its SLA clocks.
//!
//! Order: citizenship questions first (they get the highest priority), then people in custody,
//! then the oldest. Each item's SLA runs from receipt.

use super::policy::LescPolicy;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    pub query_id: String,
    pub received_at: DateTime<Utc>,
    pub in_custody: bool,
    pub citizenship: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    OnTime,
    /// Less than a fifth of the time is left.
    DueSoon,
    Breached,
}

/// Sorts the queue in working order.
pub fn working_order(items: &mut [QueueItem]) {
    items.sort_by(|a, b| {
        b.citizenship
            .cmp(&a.citizenship)
            .then(b.in_custody.cmp(&a.in_custody))
            .then(a.received_at.cmp(&b.received_at))
            .then_with(|| a.query_id.cmp(&b.query_id))
    });
}

pub fn due_at(item: &QueueItem, policy: &LescPolicy) -> DateTime<Utc> {
    let minutes = if item.in_custody {
        policy.sla_minutes_in_custody
    } else {
        policy.sla_minutes_not_in_custody
    };
    item.received_at + Duration::minutes(minutes)
}

pub fn sla_state(item: &QueueItem, now: DateTime<Utc>, policy: &LescPolicy) -> SlaState {
    let due = due_at(item, policy);
    match now.cmp(&due) {
        Ordering::Greater | Ordering::Equal => SlaState::Breached,
        Ordering::Less => {
            let total = due - item.received_at;
            if (due - now) * 5 < total {
                SlaState::DueSoon
            } else {
                SlaState::OnTime
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(
        id: &str,
        minutes_ago: i64,
        custody: bool,
        citizenship: bool,
        now: DateTime<Utc>,
    ) -> QueueItem {
        QueueItem {
            query_id: id.into(),
            received_at: now - Duration::minutes(minutes_ago),
            in_custody: custody,
            citizenship,
        }
    }

    #[test]
    fn citizenship_then_custody_then_oldest() {
        let now = Utc::now();
        let mut q = vec![
            item("old-free", 100, false, false, now),
            item("new-custody", 1, true, false, now),
            item("old-custody", 50, true, false, now),
            item("citizen", 0, false, true, now),
        ];
        working_order(&mut q);
        let ids: Vec<&str> = q.iter().map(|i| i.query_id.as_str()).collect();
        assert_eq!(ids, ["citizen", "old-custody", "new-custody", "old-free"]);
    }

    #[test]
    fn sla_states_follow_the_clock() {
        let p = LescPolicy::embedded().expect("policy");
        let now = Utc::now();
        assert_eq!(
            sla_state(&item("a", 1, true, false, now), now, &p),
            SlaState::OnTime
        );
        assert_eq!(
            sla_state(&item("a", 27, true, false, now), now, &p),
            SlaState::DueSoon
        );
        assert_eq!(
            sla_state(&item("a", 30, true, false, now), now, &p),
            SlaState::Breached
        );
        assert_eq!(
            sla_state(&item("a", 30, false, false, now), now, &p),
            SlaState::OnTime
        );
    }
}
