//! The LESC engine on a small synthetic world: mated queries find their person, citizens and
//! their look-alikes never get a removable answer, a shared (typo'd) A-number never merges two
//! people, a citizenship claim gets the safe answer, no record is "no record found", and the
//! same input always gives the same output.

use chrono::Datelike;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use verity_model::{ANumber, Identity, ImmigrationStatus, Ori, PersonName, SourceRecord};
use verity_policy::StatusRules;
use verity_synth::queries::generate_queries;
use verity_workflow::lesc::engine::{
    group_records, Engine, Processed, QueryInput, RecordLookup, StoredResult,
};
use verity_workflow::lesc::intake::{parse_json, Iaq};
use verity_workflow::lesc::{IntendedAction, LescPolicy};

const SEED: u64 = 11;
const PEOPLE: u64 = 1_500;

/// Polls a future that never waits (the in-memory lookup answers at once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct MemoryLookup {
    by_id: HashMap<String, SourceRecord>,
}

fn shares_identifier(a: &Identity, b: &Identity) -> bool {
    let (x, y) = (&a.ids, &b.ids);
    (x.a_number.is_some() && x.a_number == y.a_number)
        || (x.fin.is_some() && x.fin == y.fin)
        || (x.fbi_number.is_some() && x.fbi_number == y.fbi_number)
        || (x.ssn.is_some() && x.ssn == y.ssn)
        || (x.passport.is_some() && x.passport == y.passport)
}

impl RecordLookup for MemoryLookup {
    type Error = Infallible;
    async fn records(&self, ids: &[String]) -> Result<Vec<SourceRecord>, Infallible> {
        Ok(ids
            .iter()
            .filter_map(|i| self.by_id.get(i).cloned())
            .collect())
    }
    async fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> Result<Vec<SourceRecord>, Infallible> {
        // A scan is fine for a test world.
        let mut out: Vec<SourceRecord> = self
            .by_id
            .values()
            .filter(|r| shares_identifier(&r.identity, identity))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        Ok(out)
    }
}

struct World {
    engine: Engine,
    lookup: MemoryLookup,
    person_of: HashMap<String, String>,
    records_of: BTreeMap<String, Vec<SourceRecord>>,
}

/// Gives the last record (another person's) the A-number of the first record that has one,
/// as a clerk's typo would. Returns (owner record id, victim record id).
fn typo_collision(records: &mut [SourceRecord]) -> Option<(String, String)> {
    let owner = records
        .iter()
        .find(|r| r.identity.ids.a_number.is_some())?
        .clone();
    let victim = records.last_mut()?;
    victim.identity.ids.a_number = owner.identity.ids.a_number.clone();
    Some((owner.record_id, victim.record_id.clone()))
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let mut records = Vec::new();
        let mut person_of = HashMap::new();
        let mut records_of: BTreeMap<String, Vec<SourceRecord>> = BTreeMap::new();
        for i in 0..PEOPLE {
            let (t, rs) = verity_synth::generate_person(SEED, i);
            for r in rs {
                person_of.insert(r.record_id.clone(), t.person_id.clone());
                records_of
                    .entry(t.person_id.clone())
                    .or_default()
                    .push(r.clone());
                records.push(r);
            }
        }
        let engine = Engine::build(
            records
                .iter()
                .map(|r| (r.record_id.clone(), r.identity.clone())),
            None,
            StatusRules::embedded().expect("rules"),
            LescPolicy::embedded().expect("policy"),
        )
        .expect("engine");
        World {
            engine,
            lookup: MemoryLookup {
                by_id: records
                    .into_iter()
                    .map(|r| (r.record_id.clone(), r))
                    .collect(),
            },
            person_of,
            records_of,
        }
    })
}

fn ori() -> Ori {
    Ori::parse("MD0030000").expect("ori")
}

fn iaq(body: &serde_json::Value) -> Iaq {
    let bytes = serde_json::to_vec(body).expect("json");
    parse_json(&bytes, &ori(), verity_synth::person::today()).expect("generated query parses")
}

fn run(engine: &Engine, lookup: &MemoryLookup, iaq: &Iaq) -> Processed {
    let input = QueryInput {
        iaq,
        biometric_fin: None,
        today: verity_synth::person::today(),
    };
    match block_on(engine.process(&input, lookup)) {
        Ok(p) => p,
        Err(never) => match never {},
    }
}

fn harms_citizen(p: &Processed, policy: &LescPolicy) -> bool {
    let s = p.decision.determination.status;
    policy.removable_statuses.contains(&s)
        || IntendedAction::for_status(s, policy) == IntendedAction::FieldOfficeReview
}

fn exact_query(t: &verity_synth::PersonTruth, a_number: Option<&ANumber>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "message_id": format!("t-{}", t.person_id),
        "purpose": "C",
        "name": t.name.last_first().chars().take(30).collect::<String>().trim_end_matches([',', ' ']),
        "dob": t.dob.format("%Y-%m-%d").to_string(),
        "sex": t.sex.code(),
        "in_custody": true,
    });
    if let Some(a) = a_number {
        body["a_number"] = serde_json::json!(a.as_str());
    }
    body
}

#[test]
fn a_mated_query_with_an_a_number_finds_the_right_person() {
    let w = world();
    let mut checked = 0;
    for i in 0..PEOPLE {
        let (t, rs) = verity_synth::generate_person(SEED, i);
        let Some(a) = rs.iter().find_map(|r| r.identity.ids.a_number.clone()) else {
            continue;
        };
        if t.is_citizen() {
            continue;
        }
        let p = run(&w.engine, &w.lookup, &iaq(&exact_query(&t, Some(&a))));
        let top = p.candidates.first().expect("a candidate");
        assert!(top.strong_identifier, "{}", t.person_id);
        assert!(
            top.probability >= 0.98,
            "{} {}",
            t.person_id,
            top.probability
        );
        assert!(
            top.records
                .iter()
                .all(|r| w.person_of.get(&r.record_id) == Some(&t.person_id)),
            "{}: top candidate holds another person's records",
            t.person_id
        );
        checked += 1;
        if checked == 25 {
            break;
        }
    }
    assert_eq!(checked, 25);
}

#[test]
fn citizens_and_their_look_alikes_never_get_a_removable_answer() {
    let w = world();
    let policy = w.engine.policy();
    let queries = generate_queries(SEED, PEOPLE, 400, 5);
    let mut citizens = 0;
    let mut lookalikes = 0;
    for q in queries.iter().filter(|q| q.truth.citizen) {
        let p = run(&w.engine, &w.lookup, &iaq(&q.body));
        // A review case is a proposal for a specialist; what goes out unreviewed must be safe.
        assert!(
            !(p.decision.automatic && harms_citizen(&p, policy)),
            "citizen {:?} ({}) answered {}",
            q.truth.person_id,
            q.truth.category,
            p.decision.determination.status
        );
        citizens += 1;
        lookalikes += usize::from(q.truth.category == "citizen_lookalike");
    }
    assert!(citizens > 50 && lookalikes > 20, "{citizens} {lookalikes}");
}

#[test]
fn a_shared_typo_a_number_does_not_merge_two_people() {
    let w = world();
    // Two different people's records carrying one A-number (a clerk's typo on the second).
    let mut pair: Vec<SourceRecord> = Vec::new();
    let mut first = w
        .records_of
        .values()
        .find(|rs| rs.iter().any(|r| r.identity.ids.a_number.is_some()))
        .expect("someone with an A-number")
        .clone();
    let owner = w.person_of[&first[0].record_id].clone();
    let family = first[0].identity.name.family.clone();
    let other = w
        .records_of
        .iter()
        .filter(|(p, _)| **p != owner)
        .flat_map(|(_, rs)| rs.iter())
        .find(|r| {
            r.identity.ids.a_number.is_none()
                && r.identity.name.family != family
                && r.identity.dob.map(|d| d.year) != first[0].identity.dob.map(|d| d.year)
        })
        .cloned()
        .expect("someone else");
    pair.append(&mut first);
    pair.push(other);
    let (a_rec, b_rec) = typo_collision(&mut pair).expect("collision made");
    let groups = group_records(&pair, w.engine.model());
    let group_of = |id: &str| {
        let i = pair
            .iter()
            .position(|r| r.record_id == id)
            .expect("present");
        groups.iter().position(|g| g.contains(&i)).expect("grouped")
    };
    assert_ne!(
        group_of(&a_rec),
        group_of(&b_rec),
        "typo'd A-number merged two people"
    );
    // The owner's own records that share the A-number still join.
    let owner_with_a: Vec<&SourceRecord> = pair
        .iter()
        .filter(|r| r.record_id != b_rec && r.identity.ids.a_number.is_some())
        .collect();
    if owner_with_a.len() > 1 {
        assert_eq!(
            group_of(&owner_with_a[0].record_id),
            group_of(&owner_with_a[1].record_id)
        );
    }
}

#[test]
fn a_typo_a_number_in_the_store_never_gives_a_citizen_a_removable_answer() {
    // A citizen's record gets a removable noncitizen's A-number; the citizen is then queried
    // with that A-number. The removable records must not become the citizen's.
    let w = world();
    let policy = w.engine.policy();
    let today = verity_synth::person::today();
    let removable = (0..PEOPLE)
        .map(|i| verity_synth::generate_person(SEED, i))
        .find(|(t, rs)| {
            policy.removable_statuses.contains(&t.status)
                && rs.iter().any(|r| r.identity.ids.a_number.is_some())
        })
        .expect("a removable person");
    let a = removable
        .1
        .iter()
        .find_map(|r| r.identity.ids.a_number.clone())
        .expect("A-number");
    let (citizen, mut citizen_records) = (0..PEOPLE)
        .map(|i| verity_synth::generate_person(SEED, i))
        .find(|(t, rs)| t.is_citizen() && !rs.is_empty())
        .expect("a citizen with records");
    citizen_records[0].identity.ids.a_number = Some(a.clone());
    let mut lookup = MemoryLookup {
        by_id: w.lookup.by_id.clone(),
    };
    let mut engine = Engine::build(
        std::iter::empty(),
        Some(&w.engine.model_json()),
        StatusRules::embedded().expect("rules"),
        LescPolicy::embedded().expect("policy"),
    )
    .expect("engine");
    for r in lookup.by_id.values() {
        engine.insert(&r.record_id, &r.identity);
    }
    let changed = citizen_records[0].clone();
    engine.insert(&changed.record_id, &changed.identity);
    lookup.by_id.insert(changed.record_id.clone(), changed);
    let p = run(&engine, &lookup, &iaq(&exact_query(&citizen, Some(&a))));
    assert!(
        !(p.decision.automatic && harms_citizen(&p, policy)),
        "citizen answered {}",
        p.decision.determination.status
    );
    for c in &p.candidates {
        let owners: std::collections::BTreeSet<_> = c
            .records
            .iter()
            .filter_map(|r| w.person_of.get(&r.record_id))
            .collect();
        assert!(owners.len() <= 1, "candidate mixes people: {owners:?}");
    }
    let _ = today;
}

#[test]
fn a_citizenship_claim_gets_the_safe_answer() {
    let w = world();
    let (t, rs) = (0..PEOPLE)
        .map(|i| verity_synth::generate_person(SEED, i))
        .find(|(t, rs)| {
            w.engine.policy().removable_statuses.contains(&t.status)
                && rs.iter().any(|r| r.identity.ids.a_number.is_some())
        })
        .expect("a removable person");
    let a = rs.iter().find_map(|r| r.identity.ids.a_number.clone());
    let mut body = exact_query(&t, a.as_ref());
    body["citizenship_claimed"] = serde_json::json!(true);
    let p = run(&w.engine, &w.lookup, &iaq(&body));
    assert_eq!(
        p.decision.determination.status,
        ImmigrationStatus::PotentialUsCitizen
    );
    assert!(p.decision.citizenship_review);
    let mut body = exact_query(&t, a.as_ref());
    body["remarks"] = serde_json::json!("SUBJECT SAYS HE IS A US CITIZEN");
    let p = run(&w.engine, &w.lookup, &iaq(&body));
    assert!(p.decision.determination.status.is_citizen_or_potential());
}

#[test]
fn no_record_is_no_record_found_never_unlawful() {
    let w = world();
    let policy = w.engine.policy();
    let mut no_record = 0;
    for k in 0..40 {
        let (t, _) = verity_synth::generate_person(SEED, PEOPLE + 100 + k);
        let p = run(&w.engine, &w.lookup, &iaq(&exact_query(&t, None)));
        let s = p.decision.determination.status;
        assert!(
            !(p.decision.automatic && policy.removable_statuses.contains(&s)),
            "{} -> {s}",
            t.person_id
        );
        no_record += usize::from(s == ImmigrationStatus::NoRecordFound);
    }
    assert!(
        no_record >= 30,
        "{no_record} of 40 answered no record found"
    );
    // An engine with no records at all answers exactly that.
    let empty = Engine::empty(
        StatusRules::embedded().expect("rules"),
        LescPolicy::embedded().expect("policy"),
    );
    let (t, _) = verity_synth::generate_person(SEED, 3);
    let lookup = MemoryLookup {
        by_id: HashMap::new(),
    };
    let p = run(&empty, &lookup, &iaq(&exact_query(&t, None)));
    assert_eq!(
        p.decision.determination.status,
        ImmigrationStatus::NoRecordFound
    );
    assert!(p.candidates.is_empty());
    assert_eq!(
        p.decision.automatic,
        w.engine.policy().auto_answer_no_record
    );
}

/// Before "no record found" goes out alone, a second look with common slips: a query with the
/// names swapped and the birth year one off still reaches its person's records, and the
/// answer waits for a specialist.
#[test]
fn no_record_found_gets_a_second_look_before_going_out() {
    let w = world();
    let mut policy = LescPolicy::embedded().expect("policy");
    policy.auto_answer_no_record = true;
    let engine = Engine::build(
        w.lookup
            .by_id
            .values()
            .map(|r| (r.record_id.clone(), r.identity.clone()))
            .collect::<BTreeMap<_, _>>()
            .into_iter(),
        Some(&w.engine.model_json()),
        StatusRules::embedded().expect("rules"),
        policy,
    )
    .expect("engine");
    let mut second_looks = 0;
    let mut tried = 0;
    for i in 0..PEOPLE {
        let (t, rs) = verity_synth::generate_person(SEED, i);
        if rs.is_empty() || t.name.given.is_empty() || t.name.family.is_empty() {
            continue;
        }
        let mut body = exact_query(&t, None);
        let slipped = t.dob.with_year(t.dob.year() + 1).unwrap_or(t.dob);
        body["name"] = serde_json::json!(format!("{}, {}", t.name.given, t.name.family));
        body["dob"] = serde_json::json!(slipped.format("%Y-%m-%d").to_string());
        let p = run(&engine, &w.lookup, &iaq(&body));
        tried += 1;
        let d = &p.decision;
        if d.chosen.is_none() && d.determination.status == ImmigrationStatus::NoRecordFound {
            // Nobody plausible as asked: it must not go out alone, and the records of the
            // person must be among the candidates for the specialist.
            assert!(!d.automatic, "{}: {:?}", t.person_id, d.reviews);
            assert!(d.reviews.iter().any(|r| matches!(
                r,
                verity_workflow::lesc::ReviewReason::PossibleRecordOnSecondLook { .. }
            )));
            assert!(p.candidates.iter().any(|c| c
                .records
                .iter()
                .any(|r| w.person_of.get(&r.record_id) == Some(&t.person_id))));
            second_looks += 1;
        }
        if second_looks >= 5 || tried >= 300 {
            break;
        }
    }
    assert!(
        second_looks >= 5,
        "{second_looks} second looks in {tried} queries"
    );
}

#[test]
fn same_input_same_output_and_the_stored_form_round_trips() {
    let w = world();
    for q in generate_queries(SEED, PEOPLE, 30, 8) {
        let iaq = iaq(&q.body);
        let a = run(&w.engine, &w.lookup, &iaq).to_stored();
        let b = run(&w.engine, &w.lookup, &iaq).to_stored();
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).expect("serialize");
        let back: StoredResult = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, a);
    }
    // The same records give the same model.
    let small: Vec<(String, Identity)> = (0..150)
        .flat_map(|i| verity_synth::generate_person(SEED, i).1)
        .map(|r| (r.record_id, r.identity))
        .collect();
    let build = || {
        Engine::build(
            small.clone().into_iter(),
            None,
            StatusRules::embedded().expect("rules"),
            LescPolicy::embedded().expect("policy"),
        )
        .expect("engine")
        .model_json()
    };
    assert_eq!(build(), build());
}

#[test]
fn a_specialist_choice_recomposes_the_decision() {
    let w = world();
    let q = generate_queries(SEED, PEOPLE, 40, 13)
        .into_iter()
        .find(|q| q.truth.category == "noncitizen")
        .expect("a noncitizen query");
    let iaq = iaq(&q.body);
    let p = run(&w.engine, &w.lookup, &iaq);
    let input = QueryInput {
        iaq: &iaq,
        biometric_fin: None,
        today: verity_synth::person::today(),
    };
    let none = w.engine.decide_for(&p.candidates, None, &input);
    assert_eq!(none.determination.status, ImmigrationStatus::NoRecordFound);
    assert_eq!(none.chosen, None);
    if !p.candidates.is_empty() {
        let first = w.engine.decide_for(&p.candidates, Some(0), &input);
        assert_eq!(first.chosen, Some(0));
        assert!(!first.reviews.iter().any(|r| matches!(
            r,
            verity_workflow::lesc::ReviewReason::AmbiguousIdentity { .. }
        )));
    }
    let out_of_range = w.engine.decide_for(&p.candidates, Some(99), &input);
    assert_eq!(out_of_range.chosen, None);
    let _ = PersonName::default();
}

mod split_person_rules {
    //! Rules for one person's records split over several candidate groups.
    use chrono::NaiveDate;
    use verity_model::record::*;
    use verity_model::*;
    use verity_policy::StatusRules;
    use verity_workflow::lesc::decision::{decide, Candidate, QueryContext, ReviewReason};
    use verity_workflow::lesc::LescPolicy;

    fn ctx() -> QueryContext {
        QueryContext {
            in_custody: true,
            citizenship_claimed: false,
            today: NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
        }
    }

    fn who(a: Option<&str>, fbi: Option<&str>) -> Identity {
        Identity {
            name: PersonName::new("JOSE", "", "GARCIA"),
            country_of_birth: "MX".into(),
            dob: Some(PartialDate::parse_iso("1985-03-12").expect("date")),
            ids: Identifiers {
                a_number: a.map(|v| ANumber::parse(v).expect("a-number")),
                fbi_number: fbi.map(|v| FbiNumber::parse(v).expect("fbi")),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn lpr(id: &str, identity: Identity) -> SourceRecord {
        SourceRecord {
            record_id: id.into(),
            identity,
            body: RecordBody::Benefits(BenefitsRecord {
                receipt_number: id.into(),
                benefit: BenefitType::Adjustment,
                outcome: BenefitOutcome::Granted,
                filed: None,
                // A recent adult grant: no citizenship check needed (see lesc_decision.rs).
                decided: Some(PartialDate::parse_iso("2025-06-01").expect("date")),
                valid_until: None,
            }),
        }
    }

    fn final_order(id: &str, identity: Identity) -> SourceRecord {
        SourceRecord {
            record_id: id.into(),
            identity,
            body: RecordBody::Court(CourtRecord {
                case_number: id.into(),
                filed: PartialDate::parse_iso("2018-01-01").expect("date"),
                outcome: CourtOutcome::RemovalOrdered,
                decided: Some(PartialDate::parse_iso("2019-01-01").expect("date")),
                relief: String::new(),
                appeal_pending: false,
            }),
        }
    }

    fn arrest(id: &str, identity: Identity) -> SourceRecord {
        SourceRecord {
            record_id: id.into(),
            identity,
            body: RecordBody::Criminal(CriminalRecord {
                arrest_date: PartialDate::parse_iso("2020-05-01").expect("date"),
                arresting_ori: None,
                ncic_code: "1313".into(),
                charge: "ASSAULT".into(),
                disposition: Disposition::Pending,
                disposition_date: None,
                sentence_days: None,
                flags: Vec::new(),
            }),
        }
    }

    fn cand(key: &str, p: f64, records: Vec<SourceRecord>) -> Candidate {
        Candidate {
            person_key: key.into(),
            probability: p,
            strong_identifier: true,
            biometric: false,
            explanation: Vec::new(),
            records,
        }
    }

    fn run(c: &[Candidate]) -> verity_workflow::lesc::decision::Decision {
        decide(
            c,
            &ctx(),
            &StatusRules::embedded().expect("rules"),
            &LescPolicy::embedded().expect("policy"),
        )
    }

    #[test]
    fn a_criminal_only_runner_up_does_not_block_the_answer() {
        let top = cand(
            "S-1",
            0.99,
            vec![final_order("E1", who(Some("A012345678"), None))],
        );
        let runner = cand("S-2", 0.6, vec![arrest("C1", who(None, Some("12345AB")))]);
        let d = run(&[top, runner]);
        assert_eq!(
            d.determination.status,
            ImmigrationStatus::FinalOrderOfRemoval
        );
        assert!(d.automatic, "{:?}", d.reviews);
        assert_eq!(d.chosen, Some(0));
    }

    fn enforcement(
        id: &str,
        identity: Identity,
        event: EnforcementEvent,
        date: &str,
        order: Option<OrderKind>,
    ) -> SourceRecord {
        SourceRecord {
            record_id: id.into(),
            identity,
            body: RecordBody::Enforcement(EnforcementRecord {
                event,
                date: PartialDate::parse_iso(date).expect("date"),
                order,
                entry: None,
                office: "Dallas".into(),
                detail: String::new(),
            }),
        }
    }

    #[test]
    fn a_permanent_resident_with_a_split_runner_up_still_goes_to_review() {
        let top = cand("S-1", 0.99, vec![lpr("B1", who(Some("A012345678"), None))]);
        let runner = cand("S-2", 0.6, vec![arrest("C1", who(None, Some("12345AB")))]);
        let d = run(&[top, runner]);
        assert!(!d.automatic);
    }

    #[test]
    fn a_criminal_only_runner_up_born_in_the_us_is_not_harmless() {
        let top = cand("S-1", 0.99, vec![lpr("B1", who(Some("A012345678"), None))]);
        let mut born_here = who(None, Some("12345AB"));
        born_here.country_of_birth = "US".into();
        let runner = cand("S-2", 0.6, vec![arrest("C1", born_here)]);
        let d = run(&[top, runner]);
        assert_eq!(
            d.determination.status,
            ImmigrationStatus::PotentialUsCitizen
        );
        assert!(d.citizenship_review);
        assert!(!d.automatic);
    }

    /// The removed person's arrest after the removal sits in a split criminal group. The
    /// query is itself an encounter in the United States after the removal, so the status is
    /// "previously removed" with or without that group (session 3 answered "pending
    /// proceedings" from the notice to appear that preceded the order), and the split arrest
    /// no longer blocks the answer.
    #[test]
    fn a_removal_and_todays_encounter_is_previously_removed_with_or_without_the_split_arrest() {
        let a = || who(Some("A012345678"), None);
        let top_records = vec![
            enforcement(
                "N1",
                a(),
                EnforcementEvent::NoticeToAppear,
                "2017-01-01",
                None,
            ),
            final_order("K1", a()),
            enforcement(
                "R1",
                a(),
                EnforcementEvent::Removal,
                "2019-06-01",
                Some(OrderKind::Final),
            ),
        ];
        let alone = run(&[cand("S-1", 0.99, top_records.clone())]);
        assert_eq!(
            alone.determination.status,
            ImmigrationStatus::PreviouslyRemoved
        );
        let runner = cand("S-2", 0.6, vec![arrest("C1", who(None, Some("12345AB")))]);
        let d = run(&[cand("S-1", 0.99, top_records), runner]);
        assert_eq!(d.determination.status, ImmigrationStatus::PreviouslyRemoved);
        assert!(d.automatic, "{:?}", d.reviews);
    }

    #[test]
    fn a_criminal_runner_up_with_a_conflicting_identifier_is_still_ambiguous() {
        let top = cand(
            "S-1",
            0.99,
            vec![
                lpr("B1", who(Some("A012345678"), None)),
                arrest("C0", who(None, Some("99999ZZ"))),
            ],
        );
        let runner = cand("S-2", 0.6, vec![arrest("C1", who(None, Some("12345AB")))]);
        let d = run(&[top, runner]);
        assert!(!d.automatic);
        assert!(d
            .reviews
            .iter()
            .any(|r| matches!(r, ReviewReason::AmbiguousIdentity { .. })));
    }

    /// A split-off group sharing the A-number holds the old visa arrival (alone it reads
    /// "overstay"); with the top candidate's later permanent residence the status is the same.
    #[test]
    fn a_linked_candidate_whose_status_the_top_supersedes_does_not_block() {
        let top = cand("S-1", 0.99, vec![lpr("B1", who(Some("A012345678"), None))]);
        let old_visa = SourceRecord {
            record_id: "T1".into(),
            identity: who(Some("A012345678"), None),
            body: RecordBody::Travel(TravelRecord {
                direction: TravelDirection::Arrival,
                date: PartialDate::parse_iso("2015-01-01").expect("date"),
                class_of_admission: "B2".into(),
                admit_until: Some(PartialDate::parse_iso("2015-07-01").expect("date")),
                port: "MIAMI FL".into(),
            }),
        };
        let alone = run(&[cand("S-2", 0.99, vec![old_visa.clone()])]);
        assert_eq!(
            alone.determination.status,
            ImmigrationStatus::NonimmigrantOverstay
        );
        let d = run(&[top, cand("S-2", 0.02, vec![old_visa])]);
        assert_eq!(d.determination.status, ImmigrationStatus::Lpr);
        assert!(d.automatic, "{:?}", d.reviews);
    }

    #[test]
    fn a_linked_candidate_with_another_status_forces_review() {
        // Below the plausible floor, but sharing the A-number: its removal order contradicts
        // the top candidate's status.
        let top = cand("S-1", 0.99, vec![lpr("B1", who(Some("A012345678"), None))]);
        let linked = cand(
            "S-2",
            0.02,
            vec![final_order("E1", who(Some("A012345678"), None))],
        );
        let d = run(&[top, linked]);
        assert!(!d.automatic);
        assert!(d
            .reviews
            .iter()
            .any(|r| matches!(r, ReviewReason::CandidateStatusDiffers { .. })));
    }
}

/// A specialist who picks the noncitizen over a plausible candidate with U.S. citizenship
/// evidence (a look-alike) does not make the citizenship question go away.
#[test]
fn choosing_over_a_plausible_citizen_keeps_the_citizenship_review() {
    use verity_model::record::*;
    use verity_model::PartialDate;
    use verity_workflow::lesc::decision::Candidate;
    let identity = Identity {
        name: PersonName::new("JOSE", "", "GARCIA"),
        country_of_birth: "MX".into(),
        dob: Some(PartialDate::parse_iso("1985-03-12").expect("date")),
        ..Default::default()
    };
    let order = SourceRecord {
        record_id: "K1".into(),
        identity: identity.clone(),
        body: RecordBody::Court(CourtRecord {
            case_number: "K1".into(),
            filed: PartialDate::parse_iso("2018-01-01").expect("date"),
            outcome: CourtOutcome::RemovalOrdered,
            decided: Some(PartialDate::parse_iso("2019-01-01").expect("date")),
            relief: String::new(),
            appeal_pending: false,
        }),
    };
    let mut citizen_identity = identity.clone();
    citizen_identity.country_of_birth = "US".into();
    let birth = SourceRecord {
        record_id: "Z1".into(),
        identity: citizen_identity,
        body: RecordBody::Citizenship(CitizenshipRecord {
            evidence: CitizenshipEvidence::UsPassport,
            document_number: "Z1".into(),
            issued: PartialDate::parse_iso("2010-01-01").ok(),
        }),
    };
    let cand = |key: &str, p: f64, records: Vec<SourceRecord>| Candidate {
        person_key: key.into(),
        probability: p,
        strong_identifier: false,
        biometric: false,
        explanation: Vec::new(),
        records,
    };
    let candidates = vec![
        cand("S-K1", 0.9, vec![order.clone()]),
        cand("S-Z1", 0.8, vec![birth]),
    ];
    let engine = Engine::empty(
        StatusRules::embedded().expect("rules"),
        LescPolicy::embedded().expect("policy"),
    );
    let (t, _) = verity_synth::generate_person(SEED, 3);
    let iaq = iaq(&exact_query(&t, None));
    let input = QueryInput {
        iaq: &iaq,
        biometric_fin: None,
        today: verity_synth::person::today(),
    };
    let d = engine.decide_for(&candidates, Some(0), &input);
    assert_eq!(d.chosen, Some(0));
    assert!(d.citizenship_review);
    assert_eq!(
        d.determination.status,
        ImmigrationStatus::PotentialUsCitizen
    );
    assert!(!d.determination.citizenship_indicia.is_empty());
    // Without the citizen candidate, the same choice gives the removable status.
    let alone = engine.decide_for(&candidates[..1], Some(0), &input);
    assert!(!alone.citizenship_review);
    assert_eq!(
        alone.determination.status,
        ImmigrationStatus::FinalOrderOfRemoval
    );
}

/// One person's records join through an identifier wherever it is written: a fingerprint
/// enrollment's FIN (on the body, not on the identity) and a state id (SID) shared by an
/// arrest and a booking that carry no other identifier.
#[test]
fn one_persons_records_join_through_a_body_fin_and_a_state_id() {
    use verity_model::record::RecordBody;
    let w = world();
    // A person with a fingerprint enrollment and another record carrying the same FIN.
    let (enrollment, other) = w
        .records_of
        .values()
        .find_map(|rs| {
            let bio = rs.iter().find_map(|r| match &r.body {
                RecordBody::Biometrics(b) => Some((r.clone(), b.fin.clone())),
                _ => None,
            })?;
            let other = rs.iter().find(|r| {
                r.record_id != bio.0.record_id && r.identity.ids.fin.as_ref() == Some(&bio.1)
            })?;
            Some((bio.0, other.clone()))
        })
        .expect("a person with a fingerprint enrollment");
    let mut enrollment = enrollment;
    // The enrolling system wrote only the body's FIN.
    enrollment.identity.ids = Default::default();
    let pair = vec![enrollment, other];
    assert_eq!(
        group_records(&pair, w.engine.model()).len(),
        1,
        "body FIN not joined"
    );

    // Two records of one person sharing only a state id.
    let (a, b) = w
        .records_of
        .values()
        .find_map(|rs| {
            let with_sid: Vec<&SourceRecord> = rs
                .iter()
                .filter(|r| r.identity.ids.state_id.is_some())
                .collect();
            with_sid.iter().enumerate().find_map(|(i, x)| {
                with_sid[i + 1..]
                    .iter()
                    .find(|y| y.identity.ids.state_id == x.identity.ids.state_id)
                    .map(|y| ((*x).clone(), (*y).clone()))
            })
        })
        .expect("a person with two records carrying a SID");
    let only_sid = |mut r: SourceRecord| {
        let sid = r.identity.ids.state_id.take();
        r.identity.ids = verity_model::Identifiers {
            state_id: sid,
            ..Default::default()
        };
        r
    };
    let (mut a, b) = (only_sid(a), only_sid(b));
    // Same record text but one, so the model's verdict rests on the person, not on noise.
    a.identity.name = b.identity.name.clone();
    a.identity.dob = b.identity.dob;
    let pair = vec![a, b];
    assert_eq!(
        group_records(&pair, w.engine.model()).len(),
        1,
        "SID not joined"
    );
}

/// Two people with the same name and birth date and no identifier in common stay two
/// persons, whether they carry no identifier or different ones.
#[test]
fn two_people_with_the_same_name_and_birth_date_are_not_joined() {
    let w = world();
    let mut people = w.records_of.values();
    let first = people
        .find(|rs| rs.iter().any(|r| r.identity.ids.a_number.is_some()))
        .expect("a person with an A-number");
    let a = first
        .iter()
        .find(|r| r.identity.ids.a_number.is_some())
        .expect("record with A-number")
        .clone();
    let first_ids = verity_workflow::lesc::engine::record_identifier_keys(&a);
    let mut b = people
        .flat_map(|rs| rs.iter())
        .find(|r| {
            r.identity.ids.a_number.is_some()
                && verity_workflow::lesc::engine::record_identifier_keys(r)
                    .iter()
                    .all(|k| !first_ids.contains(k))
        })
        .expect("another person's record with an A-number")
        .clone();
    b.identity.name = a.identity.name.clone();
    b.identity.dob = a.identity.dob;
    b.identity.sex = a.identity.sex;
    b.identity.country_of_birth = a.identity.country_of_birth.clone();
    // Different identifiers of the same kind.
    let pair = vec![a.clone(), b.clone()];
    assert_eq!(group_records(&pair, w.engine.model()).len(), 2);
    // No identifiers at all.
    let (mut a0, mut b0) = (a, b);
    a0.identity.ids = Default::default();
    b0.identity.ids = Default::default();
    let pair = vec![a0, b0];
    assert_eq!(group_records(&pair, w.engine.model()).len(), 2);
}
