//! `verity perc …`: PERC tools (triage and detainer checks against ground truth).
//!
//! `verity perc check` generates a world in memory, answers in-custody queries about it with the
//! LESC engine (the answer path), and for every actionable answer tries to prepare, approve and
//! lodge a detainer on every probable-cause basis through the real gates. Every detainer the
//! gates allow must rest on a subject who is, in the generator's ground truth, the person the
//! query is about, a noncitizen, and of the status the answer claims. A specialist is simulated
//! as accepting the engine's top candidate whenever a review is asked for: the worst case for
//! the gates, since no human catches anything. Three passes: automatic answers only, answers
//! with the true person's fingerprints (as bookings give), and the rubber-stamp specialist
//! (informational: it shows what only a human can catch).
use anyhow::Context;
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::convert::Infallible;
use verity_model::{Identity, Ori, Reference, Role, SourceRecord};
use verity_policy::StatusRules;
use verity_synth::queries::generate_queries;
use verity_workflow::detainer::{
    ActionKind, Actor, EnforcementAction, Event, ProbableCause, State, Warrant, WarrantKind,
};
use verity_workflow::lesc::engine::{Engine, QueryInput, RecordLookup};
use verity_workflow::lesc::iar::IarInput;
use verity_workflow::lesc::{Iar, LescPolicy};
use verity_workflow::perc::{self as wf, CaseNotes, IarSummary, PercPolicy};

#[derive(Subcommand)]
pub enum PercCommand {
    /// Check every allowed detainer against the generator's ground truth.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// People in the generated world.
    #[arg(long, default_value_t = 5_000)]
    pub people: u64,
    /// Queries to generate (each is answered as if the person were in custody).
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// World seed (the query set uses seed + 7).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(c: PercCommand) -> anyhow::Result<()> {
    match c {
        PercCommand::Check(a) => check(a),
    }
}

struct Lookup {
    by_id: HashMap<String, SourceRecord>,
    by_key: HashMap<String, Vec<String>>,
}

fn keys(i: &Identity) -> Vec<String> {
    let ids = &i.ids;
    let mut k = Vec::new();
    if let Some(a) = &ids.a_number {
        k.push(format!("a{}", a.as_str()));
    }
    if let Some(f) = &ids.fin {
        k.push(format!("f{}", f.as_str()));
    }
    if let Some(b) = &ids.fbi_number {
        k.push(format!("b{}", b.as_str()));
    }
    if let Some(s) = &ids.ssn {
        k.push(format!("s{}", s.as_str()));
    }
    if let Some(p) = &ids.passport {
        k.push(format!("p{p}"));
    }
    k
}

impl RecordLookup for Lookup {
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
        Ok(keys(identity)
            .iter()
            .flat_map(|k| self.by_key.get(k).into_iter().flatten())
            .filter_map(|i| self.by_id.get(i).cloned())
            .collect())
    }
}

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        username: name.into(),
        roles: vec![role],
    }
}

/// Tries to take a detainer on `basis` all the way to lodged; true when every gate allowed it.
fn lodges(
    basis: ProbableCause,
    warrant: WarrantKind,
    snap: &verity_workflow::detainer::SubjectSnapshot,
    at: chrono::NaiveDateTime,
) -> bool {
    let w = Warrant {
        kind: warrant,
        signed_by: "sup".into(),
        signed_at: at,
    };
    let Ok(mut a) = EnforcementAction::prepare(
        ActionKind::Detainer,
        Some(basis),
        Some(w),
        actor("officer", Role::PercOfficer),
        at,
        snap,
    ) else {
        return false;
    };
    a.apply(
        Event::Approve {
            by: actor("sup", Role::Supervisor),
        },
        snap,
        at,
    )
    .is_ok()
        && a.apply(
            Event::Lodge {
                by: actor("officer", Role::PercOfficer),
            },
            snap,
            at,
        ) == Ok(State::Lodged)
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let today = verity_synth::person::today();
    let at = today.and_hms_opt(12, 0, 0).context("noon")?;
    let reference = Reference::embedded().context("reference tables")?;
    let perc = PercPolicy::embedded(&reference.aors).context("perc policy")?;
    let rules = StatusRules::embedded().context("status rules")?;
    let lesc = LescPolicy::embedded().context("LESC policy")?;

    let mut records = Vec::new();
    let mut person_of: HashMap<String, String> = HashMap::new();
    let mut truth_of = HashMap::new();
    let mut fin_of = HashMap::new();
    for i in 0..args.people {
        let (truth, recs) = verity_synth::generate_person(args.seed, i);
        for r in recs {
            if let verity_model::record::RecordBody::Biometrics(b) = &r.body {
                fin_of.insert(truth.person_id.clone(), b.fin.clone());
            }
            person_of.insert(r.record_id.clone(), truth.person_id.clone());
            records.push(r);
        }
        truth_of.insert(truth.person_id.clone(), truth);
    }
    let engine = Engine::build(
        records
            .iter()
            .map(|r| (r.record_id.clone(), r.identity.clone())),
        None,
        rules.clone(),
        lesc.clone(),
    )
    .context("building the engine")?;
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for r in &records {
        for k in keys(&r.identity) {
            by_key.entry(k).or_default().push(r.record_id.clone());
        }
    }
    let lookup = Lookup {
        by_id: records
            .into_iter()
            .map(|r| (r.record_id.clone(), r))
            .collect(),
        by_key,
    };
    let queries = generate_queries(
        args.seed,
        args.people,
        args.queries,
        args.seed.wrapping_add(7),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;
    let world = World {
        engine: &engine,
        lookup: &lookup,
        person_of: &person_of,
        truth_of: &truth_of,
        fin_of: &fin_of,
        rules: &rules,
        lesc: &lesc,
        perc: &perc,
        reference: &reference,
        today,
        at,
    };
    println!(
        "perc check: world seed {} with {} people, {} generated queries, each answered as if the person were in custody",
        args.seed, args.people, queries.len()
    );
    let mut failing = 0usize;
    for mode in [
        Mode::Automatic,
        Mode::Fingerprints,
        Mode::RubberStampSpecialist,
    ] {
        let t = rt.block_on(world.run(&queries, mode))?;
        println!(
            "  {:<40} answered {:>5}  actionable {:>4}  stopped by current status {:>3}  detainers allowed and checked {:>4}  violations {}",
            mode.label(),
            t.answered,
            t.actionable,
            t.status_stopped,
            t.allowed,
            t.violations
        );
        for e in &t.examples {
            println!("      {e}");
        }
        if mode != Mode::RubberStampSpecialist {
            failing += t.violations;
        }
    }
    println!(
        "(the rubber-stamp row is informational: it shows what the gates alone cannot catch when a specialist confirms a wrong candidate)"
    );
    if failing > 0 {
        anyhow::bail!(
            "{failing} detainer(s) allowed without a human decision contradict ground truth"
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only the engine's automatic answers (reviews are left to specialists and skipped).
    Automatic,
    /// As booking fingerprints would: the true person's FIN confirmed biometrically.
    Fingerprints,
    /// A specialist who confirms the engine's top candidate on every review.
    RubberStampSpecialist,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Automatic => "automatic answers (name, dob, identifiers)",
            Mode::Fingerprints => "booking fingerprints (true FIN)",
            Mode::RubberStampSpecialist => "specialist confirms every top candidate",
        }
    }
}

#[derive(Default)]
struct Tally {
    answered: usize,
    actionable: usize,
    allowed: usize,
    /// Actionable answers whose subject's current records no longer give an actionable status.
    status_stopped: usize,
    violations: usize,
    examples: Vec<String>,
}

struct World<'a> {
    engine: &'a Engine,
    lookup: &'a Lookup,
    person_of: &'a HashMap<String, String>,
    truth_of: &'a HashMap<String, verity_synth::PersonTruth>,
    fin_of: &'a HashMap<String, verity_model::Fin>,
    rules: &'a StatusRules,
    lesc: &'a LescPolicy,
    perc: &'a PercPolicy,
    reference: &'a Reference,
    today: chrono::NaiveDate,
    at: chrono::NaiveDateTime,
}

impl World<'_> {
    async fn run(
        &self,
        queries: &[verity_synth::queries::GeneratedQuery],
        mode: Mode,
    ) -> anyhow::Result<Tally> {
        let mut t = Tally::default();
        for (n, q) in queries.iter().enumerate() {
            let mut body = q.body.clone();
            body["in_custody"] = serde_json::Value::Bool(true);
            let ori =
                Ori::parse(&q.ori).map_err(|e| anyhow::anyhow!("ori {}: {}", q.ori, e.problem))?;
            let Ok(iaq) = verity_workflow::lesc::intake::parse_json(
                &serde_json::to_vec(&body)?,
                &ori,
                self.today,
            ) else {
                continue;
            };
            let biometric_fin = match mode {
                Mode::Fingerprints => {
                    let Some(fin) = q.truth.person_id.as_ref().and_then(|p| self.fin_of.get(p))
                    else {
                        continue;
                    };
                    Some(fin.clone())
                }
                _ => None,
            };
            let input = QueryInput {
                iaq: &iaq,
                biometric_fin,
                today: self.today,
            };
            let processed = self
                .engine
                .process(&input, self.lookup)
                .await
                .unwrap_or_else(|e| match e {});
            t.answered += 1;
            let mut decision = processed.decision.clone();
            let mut decided_by = "automatic";
            if !decision.automatic {
                if mode != Mode::RubberStampSpecialist {
                    // Left for a specialist: no detainer can rest on it until one decides.
                    continue;
                }
                decision = self
                    .engine
                    .decide_for(&processed.candidates, Some(0), &input);
                decided_by = "specialist";
            }
            let query_id = format!("Q{n}");
            let iar = Iar::compose(
                IarInput {
                    query_id: &query_id,
                    requesting_ori: &q.ori,
                    issued_at: "",
                    decided_by,
                    field_office: self.perc.covered_aors.iter().next().cloned(),
                },
                &decision,
                &processed.candidates,
                self.lesc,
                &self.reference.offenses,
            );
            let summary = IarSummary::parse(&query_id, &serde_json::to_string(&iar)?)?;
            if wf::triage_eligibility(true, None, &summary, self.perc).is_err() {
                continue;
            }
            t.actionable += 1;
            let Some(chosen) = decision.chosen.and_then(|i| processed.candidates.get(i)) else {
                continue;
            };
            // The subject's records as the server reads them at each transition: the chosen
            // candidate's plus every record sharing the answer's A-number or FIN.
            let mut ids = Identity::default();
            ids.ids.a_number = verity_model::ANumber::parse(&summary.a_number).ok();
            ids.ids.fin = verity_model::Fin::parse(&summary.fin).ok();
            let mut subject: HashMap<String, SourceRecord> = chosen
                .records
                .iter()
                .map(|r| (r.record_id.clone(), r.clone()))
                .collect();
            let shared = self
                .lookup
                .records_sharing_identifiers(&ids)
                .await
                .unwrap_or_else(|e| match e {});
            for r in shared {
                subject.insert(r.record_id.clone(), r);
            }
            let subject: Vec<SourceRecord> = subject.into_values().collect();
            if wf::status_still_actionable(&subject, self.rules, self.perc, self.today).is_err() {
                t.status_stopped += 1;
                continue;
            }
            let snap = wf::subject_snapshot(
                &summary,
                &subject,
                self.rules,
                CaseNotes::default(),
                self.today,
            );
            let mut any = false;
            for basis in [
                ProbableCause::FinalOrder,
                ProbableCause::PendingProceedings,
                ProbableCause::BiometricAndRecords,
                ProbableCause::StatementsOrEvidence,
            ] {
                for w in [WarrantKind::I200, WarrantKind::I205] {
                    any |= lodges(basis, w, &snap, self.at);
                }
            }
            if !any {
                continue;
            }
            t.allowed += 1;
            // Ground truth: whose records the detainer rests on, and what that person really is.
            let mut owners: HashMap<&str, usize> = HashMap::new();
            for r in &chosen.records {
                if let Some(p) = self.person_of.get(&r.record_id) {
                    *owners.entry(p.as_str()).or_default() += 1;
                }
            }
            let owner = owners
                .iter()
                .max_by_key(|(p, c)| (**c, std::cmp::Reverse(**p)))
                .map(|(p, _)| p.to_string());
            let problem = match owner.as_ref().and_then(|p| self.truth_of.get(p)) {
                None => Some("rests on records of no generated person".to_string()),
                Some(_) if owner != q.truth.person_id => Some(format!(
                    "wrong person: detainer on {} but the query was about {:?}",
                    owner.unwrap_or_default(),
                    q.truth.person_id
                )),
                Some(p) if p.is_citizen() => Some(format!("{} is a U.S. citizen", p.person_id)),
                Some(p) if p.status != summary.status => Some(format!(
                    "{}: claimed {} but truly {}",
                    p.person_id, summary.status, p.status
                )),
                Some(_) => None,
            };
            if let Some(p) = problem {
                t.violations += 1;
                if t.examples.len() < 5 {
                    t.examples
                        .push(format!("{query_id} ({}): {p}", q.truth.category));
                }
            }
        }
        Ok(t)
    }
}
