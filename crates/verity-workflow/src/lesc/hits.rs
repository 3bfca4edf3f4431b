//! NCIC hit confirmation (YQ/YR): an agency that hits an ICE record in NCIC asks the LESC to
//! confirm it. Priority U (the hit is the only basis to hold the person) must be answered
//! within 10 minutes, R (routine) within an hour; a valid answer confirms, or says by when a
//! confirmation will come. Unanswered requests escalate to a supervisor.

use super::policy::LescPolicy;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HitPriority {
    /// Urgent: the hit is the only basis to hold the person.
    U,
    /// Routine.
    R,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HitAnswer {
    Confirmed {
        by: String,
    },
    NotConfirmed {
        by: String,
        reason: String,
    },
    /// A YR that promises a confirmation by a time.
    WillConfirmBy {
        by: String,
        until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitRequest {
    pub id: String,
    pub priority: HitPriority,
    pub received_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answer: Option<HitAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitClock {
    Waiting,
    /// Past the escalation point: a supervisor is alerted.
    Escalated,
    Overdue,
    AnsweredInTime,
    AnsweredLate,
}

impl HitRequest {
    pub fn deadline(&self, policy: &LescPolicy) -> DateTime<Utc> {
        let minutes = match self.priority {
            HitPriority::U => policy.hit_minutes_urgent,
            HitPriority::R => policy.hit_minutes_routine,
        };
        self.received_at + Duration::minutes(minutes)
    }

    pub fn clock(&self, now: DateTime<Utc>, policy: &LescPolicy) -> HitClock {
        let deadline = self.deadline(policy);
        if let Some(at) = self.answered_at {
            return if at <= deadline {
                HitClock::AnsweredInTime
            } else {
                HitClock::AnsweredLate
            };
        }
        if now > deadline {
            return HitClock::Overdue;
        }
        let span = (deadline - self.received_at).num_milliseconds() as f64;
        let elapsed = (now - self.received_at).num_milliseconds() as f64;
        if elapsed >= span * policy.hit_escalate_at_share {
            HitClock::Escalated
        } else {
            HitClock::Waiting
        }
    }

    /// Records the answer. A promise (YR) must name a time after now.
    pub fn answer(&mut self, answer: HitAnswer, now: DateTime<Utc>) -> Result<(), String> {
        if self.answer.is_some() {
            return Err(format!("hit request {} is already answered", self.id));
        }
        if let HitAnswer::WillConfirmBy { until, .. } = &answer {
            if *until <= now {
                return Err("until: a promised confirmation time must be in the future".into());
            }
        }
        self.answer = Some(answer);
        self.answered_at = Some(now);
        Ok(())
    }
}

/// Share of requests answered within their limit, per priority: (answered in time, total).
pub fn compliance(
    requests: &[HitRequest],
    now: DateTime<Utc>,
    policy: &LescPolicy,
    priority: HitPriority,
) -> (usize, usize) {
    let mine: Vec<&HitRequest> = requests.iter().filter(|r| r.priority == priority).collect();
    let ok = mine
        .iter()
        .filter(|r| r.clock(now, policy) == HitClock::AnsweredInTime)
        .count();
    (ok, mine.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: HitPriority, received: DateTime<Utc>) -> HitRequest {
        HitRequest {
            id: "H1".into(),
            priority: p,
            received_at: received,
            answered_at: None,
            answer: None,
        }
    }

    #[test]
    fn urgent_hits_have_ten_minutes_and_escalate_halfway() {
        let policy = LescPolicy::embedded().expect("policy");
        let t = Utc::now();
        let r = req(HitPriority::U, t);
        assert_eq!(
            r.clock(t + Duration::minutes(2), &policy),
            HitClock::Waiting
        );
        assert_eq!(
            r.clock(t + Duration::minutes(6), &policy),
            HitClock::Escalated
        );
        assert_eq!(
            r.clock(t + Duration::minutes(11), &policy),
            HitClock::Overdue
        );
        let r = req(HitPriority::R, t);
        assert_eq!(
            r.clock(t + Duration::minutes(11), &policy),
            HitClock::Waiting
        );
    }

    #[test]
    fn answers_are_timed_and_promises_must_be_future() {
        let policy = LescPolicy::embedded().expect("policy");
        let t = Utc::now();
        let mut r = req(HitPriority::U, t);
        assert!(r
            .answer(
                HitAnswer::WillConfirmBy {
                    by: "s".into(),
                    until: t
                },
                t + Duration::minutes(1)
            )
            .is_err());
        r.answer(
            HitAnswer::WillConfirmBy {
                by: "s".into(),
                until: t + Duration::hours(1),
            },
            t + Duration::minutes(9),
        )
        .expect("ok");
        assert_eq!(
            r.clock(t + Duration::hours(2), &policy),
            HitClock::AnsweredInTime
        );
        assert!(r
            .answer(HitAnswer::Confirmed { by: "s".into() }, t)
            .is_err());
        let mut late = req(HitPriority::U, t);
        late.answer(
            HitAnswer::Confirmed { by: "s".into() },
            t + Duration::minutes(12),
        )
        .expect("ok");
        assert_eq!(
            compliance(&[r, late], t + Duration::hours(3), &policy, HitPriority::U),
            (1, 2)
        );
    }
}
