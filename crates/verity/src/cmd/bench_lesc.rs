//! `verity bench lesc`: LESC answers against ground truth on a generated query set.
//!
//! Generates a world in memory, builds the engine over it with an in-memory record lookup,
//! sends every generated query through the JSON intake parser and the engine, and compares
//! each answer with the generator's truth: automatic share (overall and of routine queries),
//! wrong persons and wrong statuses among automatic answers by category, citizens answered
//! with a removable status or an enforcement action (must be zero), and speed.
use anyhow::Context;
use clap::Args;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::time::Instant;
use verity_model::{Identity, ImmigrationStatus, Ori, SourceRecord};
use verity_policy::StatusRules;
use verity_synth::queries::{generate_queries, GeneratedQuery};
use verity_workflow::lesc::engine::{Engine, QueryInput, RecordLookup};
use verity_workflow::lesc::{IntendedAction, LescPolicy};

#[derive(Args)]
pub struct LescBenchArgs {
    /// People in the generated world.
    #[arg(long, default_value_t = 20_000)]
    pub people: u64,
    /// Queries to generate and answer.
    #[arg(long, default_value_t = 2_000)]
    pub queries: usize,
    /// World seed (the query set uses seed + 1).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the candidates and records of at most this many wrong automatic answers (for
    /// finding the cause of each).
    #[arg(long, default_value_t = 0)]
    pub explain_wrong: usize,
    /// Print the candidates and reasons of at most this many routine queries sent to review
    /// (for finding why the automatic share is what it is).
    #[arg(long, default_value_t = 0)]
    pub explain_review: usize,
    /// Leave out the DHS match records of booking fingerprints (`verity_synth::person::
    /// is_booking_match`): the world as the generator made it before they existed (every other
    /// record, and the query set, are the same), for comparing figures across that change.
    #[arg(long)]
    pub without_booking_matches: bool,
}

/// Records by id and by strong identifier, in memory.
struct MemoryLookup {
    by_id: HashMap<String, SourceRecord>,
    by_identifier: HashMap<(char, String), Vec<String>>,
}

fn identifier_keys(identity: &Identity) -> Vec<(char, String)> {
    let ids = &identity.ids;
    let mut k = Vec::new();
    if let Some(a) = &ids.a_number {
        k.push(('a', a.as_str().to_string()));
    }
    if let Some(f) = &ids.fin {
        k.push(('n', f.as_str().to_string()));
    }
    if let Some(b) = &ids.fbi_number {
        k.push(('b', b.as_str().to_string()));
    }
    if let Some(s) = &ids.ssn {
        k.push(('s', s.as_str().to_string()));
    }
    if let Some(p) = &ids.passport {
        k.push(('p', p.to_string()));
    }
    k
}

impl MemoryLookup {
    fn new(records: Vec<SourceRecord>) -> Self {
        let mut by_identifier: HashMap<(char, String), Vec<String>> = HashMap::new();
        for r in &records {
            for k in identifier_keys(&r.identity) {
                by_identifier
                    .entry(k)
                    .or_default()
                    .push(r.record_id.clone());
            }
        }
        MemoryLookup {
            by_id: records
                .into_iter()
                .map(|r| (r.record_id.clone(), r))
                .collect(),
            by_identifier,
        }
    }
}

impl RecordLookup for MemoryLookup {
    type Error = Infallible;
    async fn records(&self, record_ids: &[String]) -> Result<Vec<SourceRecord>, Infallible> {
        Ok(record_ids
            .iter()
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect())
    }
    async fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> Result<Vec<SourceRecord>, Infallible> {
        let mut out: Vec<SourceRecord> = Vec::new();
        for k in identifier_keys(identity) {
            for id in self.by_identifier.get(&k).into_iter().flatten() {
                if let Some(r) = self.by_id.get(id) {
                    out.push(r.clone());
                }
            }
        }
        Ok(out)
    }
}

/// One thread's share of the world: records, and (record id, person id) pairs.
type WorldPart = (Vec<SourceRecord>, Vec<(String, String)>);

#[derive(Default)]
struct Tally {
    queries: usize,
    routine: usize,
    routine_auto: usize,
    automatic: usize,
    wrong_person: usize,
    wrong_status: usize,
    safe_citizen_answer: usize,
    citizen_harm: usize,
    citizen_harm_review: usize,
    /// Automatic answers giving a U.S. citizen a noncitizen status (not removable: e.g. "LPR"
    /// for a naturalization no record shows). Judged against the person's real status, which
    /// the records-based truth above does not see.
    citizen_noncitizen_status: usize,
    /// Automatic answers "potential U.S. citizen" to a citizen whose records (all of them)
    /// document the basis: right, but the basis waits for the citizenship review.
    citizen_basis_left_to_review: usize,
    /// Routine under the policy-side definition (see where it is computed).
    routine_policy: usize,
    routine_policy_auto: usize,
    /// Routine under the policy-side definition whose person has no generated U.S. citizen
    /// look-alike (lesc.toml sends a plausible citizen candidate to a deportation officer, so
    /// the policy does not answer those without a person even when identity is right).
    routine_no_lookalike: usize,
    routine_no_lookalike_auto: usize,
    review: usize,
}

fn routine_statuses() -> anyhow::Result<Vec<ImmigrationStatus>> {
    let v: toml::Value = toml::from_str(verity_policy::status::EMBEDDED_STATUS_RULES)
        .context("status-rules.toml")?;
    Ok(v.get("routine")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .filter_map(|s| ImmigrationStatus::parse(s).ok())
                .collect()
        })
        .unwrap_or_default())
}

pub fn run(args: LescBenchArgs) -> anyhow::Result<()> {
    let today = verity_synth::person::today();
    let rules = StatusRules::embedded().context("status rules")?;
    let policy = LescPolicy::embedded().context("LESC policy")?;
    let routine = routine_statuses()?;

    // The world, in memory, generated in parallel chunks (each person is a pure function).
    let t0 = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let people = args.people;
    let per = people.div_ceil(threads as u64).max(1);
    let parts: Vec<(WorldPart, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                s.spawn(move || {
                    let mut recs = Vec::new();
                    let mut owner = Vec::new();
                    let mut lookalike_targets = Vec::new();
                    for i in (t * per)..((t + 1) * per).min(people) {
                        let (truth, records) = verity_synth::generate_person(args.seed, i);
                        if truth.is_citizen() {
                            lookalike_targets.extend(truth.lookalike_of.clone());
                        }
                        for r in records {
                            if args.without_booking_matches
                                && verity_synth::person::is_booking_match(&r)
                            {
                                continue;
                            }
                            owner.push((r.record_id.clone(), truth.person_id.clone()));
                            recs.push(r);
                        }
                    }
                    ((recs, owner), lookalike_targets)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut records = Vec::new();
    let mut person_of: HashMap<String, String> = HashMap::new();
    // Persons a U.S. citizen was generated to look like (same or variant name, birth date
    // within a year): lesc.toml sends any plausible citizen candidate to a deportation officer.
    let mut has_citizen_lookalike: HashSet<String> = HashSet::new();
    for ((r, o), targets) in parts {
        records.extend(r);
        person_of.extend(o);
        has_citizen_lookalike.extend(targets);
    }
    let mut records_of_person: HashMap<String, Vec<String>> = HashMap::new();
    for (rid, pid) in &person_of {
        records_of_person
            .entry(pid.clone())
            .or_default()
            .push(rid.clone());
    }
    let generated = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let engine = Engine::build(
        records
            .iter()
            .map(|r| (r.record_id.clone(), r.identity.clone())),
        None,
        rules,
        policy.clone(),
    )
    .context("building the engine")?;
    let built = t1.elapsed().as_secs_f64();
    let n_records = records.len();
    grouping_report(&records, &person_of, &engine);
    let lookup = MemoryLookup::new(records);

    let queries: Vec<GeneratedQuery> =
        generate_queries(args.seed, people, args.queries, args.seed.wrapping_add(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;

    let mut by_cat: BTreeMap<String, Tally> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(queries.len());
    let mut parse_errors = 0usize;
    let mut routine_by_identifier: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut runner_ups: BTreeMap<String, usize> = BTreeMap::new();
    let mut split: BTreeMap<String, usize> = BTreeMap::new();
    let mut routine_reviews: BTreeMap<String, usize> = BTreeMap::new();
    let mut policy_routine_reviews: BTreeMap<String, usize> = BTreeMap::new();
    let mut no_lookalike_reviews: BTreeMap<String, usize> = BTreeMap::new();
    // Routine queries in review by (identifier in query, top candidate is the true person,
    // top probability band, the set of reasons).
    let mut review_profiles: BTreeMap<String, usize> = BTreeMap::new();
    let mut explained_reviews = 0usize;
    let mut citizen_noncitizen_by: BTreeMap<(String, ImmigrationStatus), usize> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    // Wrong automatic statuses by (category, truth, answer).
    let mut wrong_by: BTreeMap<(String, ImmigrationStatus, ImmigrationStatus), usize> =
        BTreeMap::new();
    let mut explained = 0usize;
    let t2 = Instant::now();
    for q in &queries {
        let body = serde_json::to_vec(&q.body)?;
        let ori =
            Ori::parse(&q.ori).map_err(|e| anyhow::anyhow!("ori {}: {}", q.ori, e.problem))?;
        let start = Instant::now();
        let iaq = match verity_workflow::lesc::intake::parse_json(&body, &ori, today) {
            Ok(i) => i,
            Err(e) => {
                parse_errors += 1;
                if examples.len() < 5 {
                    examples.push(format!("parse error {:?}: {body:?}", e));
                }
                continue;
            }
        };
        let input = QueryInput {
            iaq: &iaq,
            biometric_fin: None,
            today,
        };
        let processed = match rt.block_on(engine.process(&input, &lookup)) {
            Ok(p) => p,
            Err(never) => match never {},
        };
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);

        let d = &processed.decision;
        let t = &q.truth;
        // Prints this query in full (only for the first few reviews / wrong answers asked for).
        let explain_this = || {
            explain(
                q,
                &processed,
                &person_of,
                &lookup,
                (
                    engine.model(),
                    &verity_workflow::lesc::engine::query_identity(&input),
                ),
            )
        };
        let status = d.determination.status;
        let tally = by_cat.entry(t.category.clone()).or_default();
        tally.queries += 1;
        let claim = t.category == "citizenship_claim";
        let has_identifier = q.body.get("a_number").is_some() || q.body.get("fbi_number").is_some();
        let is_routine = !claim
            && !t.citizen
            && routine.contains(&t.status)
            && (!policy.removable_statuses.contains(&t.status)
                || !policy.removable_needs_identifier
                || has_identifier)
            && (!policy.noncitizen_needs_identifier || has_identifier);
        // Routine as the policy would have it if identity were resolved right, from the
        // generator's side only (never from the answer): the old definition, and the query
        // carries an identifier the person's own records hold (lesc.toml
        // `removable_needs_identifier`; the guide: a name and birth date taken as an identity
        // is a cause of citizens detained), and no citizenship-check condition holds on the
        // person's own records (lesc.toml `lpr_citizenship_check_years`, minors at the grant).
        let own: Vec<SourceRecord> = t
            .person_id
            .as_ref()
            .and_then(|p| records_of_person.get(p))
            .into_iter()
            .flatten()
            .filter_map(|id| lookup.by_id.get(id).cloned())
            .collect();
        let held = |field: &str, kind: char| {
            q.body.get(field).and_then(|v| v.as_str()).is_some_and(|v| {
                own.iter().any(|r| {
                    identifier_keys(&r.identity)
                        .iter()
                        .any(|(k, x)| *k == kind && x == v)
                })
            })
        };
        let carries_held_identifier = held("a_number", 'a') || held("fbi_number", 'b');
        let citizenship_check = t.status == ImmigrationStatus::Lpr
            && verity_workflow::lesc::decision::possible_unrecorded_citizenship(
                &own,
                today,
                policy.lpr_citizenship_check_years,
            )
            .is_some();
        let is_routine_policy = is_routine && carries_held_identifier && !citizenship_check;
        let lookalike = t
            .person_id
            .as_ref()
            .is_some_and(|p| has_citizen_lookalike.contains(p));
        if is_routine_policy && !lookalike {
            tally.routine_no_lookalike += 1;
            tally.routine_no_lookalike_auto += usize::from(d.automatic);
            if !d.automatic {
                for r in &d.reviews {
                    let name = reason_name(r);
                    *no_lookalike_reviews.entry(name).or_default() += 1;
                }
            }
        }
        if is_routine_policy {
            tally.routine_policy += 1;
            tally.routine_policy_auto += usize::from(d.automatic);
            if !d.automatic {
                for r in &d.reviews {
                    let name = reason_name(r);
                    *policy_routine_reviews.entry(name).or_default() += 1;
                }
            }
        }
        if is_routine && !d.automatic {
            for c in processed
                .candidates
                .iter()
                .skip(1)
                .filter(|c| c.probability >= policy.plausible_min)
            {
                let same = c
                    .records
                    .iter()
                    .any(|r| person_of.get(&r.record_id) == t.person_id.as_ref());
                let key = if same { "same person" } else { "other person" };
                *runner_ups.entry(key.to_string()).or_default() += 1;
            }
            let top_same = processed.candidates.first().is_some_and(|c| {
                c.records
                    .iter()
                    .any(|r| person_of.get(&r.record_id) == t.person_id.as_ref())
            });
            *runner_ups
                .entry(format!("top is true person: {top_same}"))
                .or_default() += 1;
        }
        if is_routine {
            let key = if has_identifier {
                "with an identifier"
            } else {
                "name and birth date only"
            };
            let e = routine_by_identifier.entry(key).or_insert((0, 0));
            e.0 += usize::from(d.automatic);
            e.1 += 1;
            tally.routine += 1;
            tally.routine_auto += usize::from(d.automatic);
            if !d.automatic {
                let mut names: Vec<String> = Vec::new();
                for r in &d.reviews {
                    let name = reason_name(r);
                    *routine_reviews.entry(name.clone()).or_default() += 1;
                    names.push(name);
                }
                names.sort();
                names.dedup();
                let top = processed.candidates.first();
                let top_true = top.is_some_and(|c| {
                    c.records
                        .iter()
                        .any(|r| person_of.get(&r.record_id) == t.person_id.as_ref())
                });
                let band = match top.map_or(0.0, |c| c.probability) {
                    p if p >= policy.auto_identity_min => "top>=auto",
                    p if p >= 0.9 => "top 0.9-auto",
                    p if p >= 0.5 => "top 0.5-0.9",
                    p if p >= policy.plausible_min => "top plausible-0.5",
                    _ => "top below plausible",
                };
                let profile = format!(
                    "{} | top true {} | {band} | {}",
                    if has_identifier { "id" } else { "no id" },
                    top_true,
                    names.join("+")
                );
                *review_profiles.entry(profile).or_default() += 1;
                if explained_reviews < args.explain_review {
                    explained_reviews += 1;
                    println!("REVIEW {} truth {}", t.category, t.status);
                    explain_this();
                }
            }
        }
        // Harm to a citizen: a removable status or an enforcement action, answered or proposed.
        let action = IntendedAction::for_status(status, &policy);
        if t.citizen
            && (policy.removable_statuses.contains(&status)
                || action == IntendedAction::FieldOfficeReview)
        {
            if d.automatic {
                tally.citizen_harm += 1;
            } else {
                tally.citizen_harm_review += 1;
            }
            if examples.len() < 12 {
                examples.push(format!(
                    "CITIZEN HARM {} {:?} -> {status} (automatic: {})",
                    t.category, t.person_id, d.automatic
                ));
            }
        }
        // The true person split over several candidates (records not joined).
        if let Some(pid) = t.person_id.as_deref() {
            let parts = processed
                .candidates
                .iter()
                .filter(|c| {
                    c.records
                        .iter()
                        .any(|r| person_of.get(&r.record_id).map(String::as_str) == Some(pid))
                })
                .count();
            if parts > 1 {
                *split.entry(t.category.clone()).or_default() += 1;
            }
        }
        if !d.automatic {
            tally.review += 1;
            continue;
        }
        tally.automatic += 1;
        if t.citizen
            && !status.is_citizen_or_potential()
            && status != ImmigrationStatus::NoRecordFound
        {
            tally.citizen_noncitizen_status += 1;
            *citizen_noncitizen_by
                .entry((t.category.clone(), status))
                .or_default() += 1;
        }
        let answered_person = d
            .chosen
            .and_then(|i| processed.candidates.get(i))
            .and_then(|c| {
                let mut count: BTreeMap<&str, usize> = BTreeMap::new();
                for r in &c.records {
                    if let Some(p) = person_of.get(&r.record_id) {
                        *count.entry(p.as_str()).or_default() += 1;
                    }
                }
                count.into_iter().max_by_key(|(_, n)| *n).map(|(p, _)| p)
            });
        if let Some(p) = answered_person {
            if t.person_id.as_deref() != Some(p) {
                tally.wrong_person += 1;
                if examples.len() < 12 {
                    examples.push(format!(
                        "wrong person {}: truth {:?} answered {p} ({status})",
                        t.category, t.person_id
                    ));
                }
            }
        }
        // "Potential U.S. citizen: no ICE action" is the policy's answer whenever the
        // records point to citizenship (the IAR status is "U.S. citizen or potential U.S.
        // citizen"); for a real citizen it is right even when the records the engine could
        // join do not show the basis (the basis is the citizenship review's to establish).
        let unspecified_citizen = t.citizen
            && t.status.is_citizen_or_potential()
            && status == ImmigrationStatus::PotentialUsCitizen;
        tally.citizen_basis_left_to_review += usize::from(unspecified_citizen);
        let status_ok = if claim {
            status.is_citizen_or_potential()
        } else {
            status == t.status || unspecified_citizen
        };
        if !status_ok {
            *wrong_by
                .entry((t.category.clone(), t.status, status))
                .or_default() += 1;
            if explained < args.explain_wrong {
                explained += 1;
                explain_this();
            }
            tally.wrong_status += 1;
            if status.is_citizen_or_potential() {
                tally.safe_citizen_answer += 1;
            }
            if examples.len() < 12 {
                examples.push(format!(
                    "wrong status {}: truth {} answered {status} ({:?})",
                    t.category, t.status, t.person_id
                ));
            }
        }
    }
    let elapsed = t2.elapsed().as_secs_f64();

    let cpu = verity_model::machine::cpu_model(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    println!("machine: {threads} cores, {cpu}");
    println!(
        "world: {people} people, {n_records} records (seed {}{}); generated in {generated:.1} s, engine built (model trained + indexed) in {built:.1} s",
        args.seed,
        if args.without_booking_matches {
            ", booking match records left out"
        } else {
            ""
        }
    );
    println!(
        "queries: {} generated, {} answered, {parse_errors} refused by intake",
        queries.len(),
        latencies.len()
    );
    println!();
    println!(
        "{:<20} {:>7} {:>9} {:>7} {:>13} {:>13} {:>12} {:>12} {:>11} {:>12} {:>14}",
        "category",
        "queries",
        "automatic",
        "auto %",
        "routine auto",
        "(policy side)",
        "wrong person",
        "wrong status",
        "(safe USC)",
        "citizen harm",
        "(in review)"
    );
    let mut total = Tally::default();
    for (cat, t) in &by_cat {
        print_row(cat, t);
        total.queries += t.queries;
        total.routine += t.routine;
        total.routine_auto += t.routine_auto;
        total.automatic += t.automatic;
        total.wrong_person += t.wrong_person;
        total.wrong_status += t.wrong_status;
        total.safe_citizen_answer += t.safe_citizen_answer;
        total.citizen_harm += t.citizen_harm;
        total.citizen_harm_review += t.citizen_harm_review;
        total.citizen_noncitizen_status += t.citizen_noncitizen_status;
        total.citizen_basis_left_to_review += t.citizen_basis_left_to_review;
        total.routine_policy += t.routine_policy;
        total.routine_policy_auto += t.routine_policy_auto;
        total.routine_no_lookalike += t.routine_no_lookalike;
        total.routine_no_lookalike_auto += t.routine_no_lookalike_auto;
        total.review += t.review;
    }
    print_row("ALL", &total);
    println!();
    println!(
        "automatic: {:.1}% of all queries; {:.1}% of routine queries ({} of {}; routine = status in status-rules.toml `routine`, no citizenship claim, and an identifier in the query where lesc.toml requires one: removable_needs_identifier, noncitizen_needs_identifier)",
        pct(total.automatic, total.queries),
        pct(total.routine_auto, total.routine),
        total.routine_auto,
        total.routine
    );
    println!(
        "routine (policy side): {:.1}% answered automatically ({} of {}; routine = as above, and the query carries an A-number or FBI number the person's own records hold, and for a permanent resident no citizenship-check condition of lesc.toml holds on the person's own records: grant {} or more years old, undated, or before 18)",
        pct(total.routine_policy_auto, total.routine_policy),
        total.routine_policy_auto,
        total.routine_policy,
        policy.lpr_citizenship_check_years
    );
    println!(
        "routine (policy side, no citizen look-alike): {:.1}% answered automatically ({} of {}; routine = as above, and no U.S. citizen in the world was generated as a look-alike of the person: lesc.toml sends every plausible citizen candidate to a deportation officer, so the policy itself does not answer those without a person)",
        pct(total.routine_no_lookalike_auto, total.routine_no_lookalike),
        total.routine_no_lookalike_auto,
        total.routine_no_lookalike
    );
    println!(
        "automatic answers giving a U.S. citizen a noncitizen (not removable) status because no record shows the citizenship: {} (wrong status above judges citizens by what their records document)",
        total.citizen_noncitizen_status
    );
    println!(
        "automatic answers 'potential U.S. citizen' (no ICE action, citizenship review) to a citizen whose full records document the basis: {} (counted right: the IAR status is 'U.S. citizen or potential U.S. citizen')",
        total.citizen_basis_left_to_review
    );
    for ((cat, answer), n) in &citizen_noncitizen_by {
        println!("  {cat:<20} answered {answer}: {n}");
    }
    if !wrong_by.is_empty() {
        println!("wrong automatic statuses by category, truth -> answer:");
        for ((cat, truth, answer), n) in &wrong_by {
            println!("  {cat:<20} {truth} -> {answer}: {n}");
        }
    }
    println!("queries whose true person came back split over several candidates: {split:?}");
    for (k, (a, n)) in &routine_by_identifier {
        println!(
            "routine queries, {k}: {a} of {n} automatic ({:.1}%)",
            pct(*a, *n)
        );
    }
    println!("routine queries in review, plausible runner-ups: {runner_ups:?}");
    let mut profiles: Vec<(&String, &usize)> = review_profiles.iter().collect();
    profiles.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("routine queries in review by profile (identifier, top is the true person, top probability, reasons):");
    for (k, n) in profiles.iter().take(30) {
        println!("  {n:>4}  {k}");
    }
    if !routine_reviews.is_empty() {
        let list: Vec<String> = routine_reviews
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("why routine queries went to review: {}", list.join(", "));
    }
    println!("why routine (policy side) queries went to review: {policy_routine_reviews:?}");
    println!(
        "why routine (policy side, no citizen look-alike) queries went to review: {no_lookalike_reviews:?}"
    );
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "speed: {:.0} queries/s on one core (sequential, parse + resolve + decide); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len() as f64 / elapsed.max(1e-9),
        q(0.5),
        q(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    if !examples.is_empty() {
        println!();
        for e in &examples {
            println!("  {e}");
        }
    }
    Ok(())
}

/// One wrong automatic answer, in full: the query, every candidate with its records, and the
/// true person's records that no candidate carries.
fn explain(
    q: &GeneratedQuery,
    processed: &verity_workflow::lesc::engine::Processed,
    person_of: &HashMap<String, String>,
    lookup: &MemoryLookup,
    (model, query): (&verity_resolve::Model, &Identity),
) {
    let d = &processed.decision;
    println!(
        "EXPLAIN {} truth {} {:?} answered {} chosen {:?} reviews {:?}",
        q.truth.category,
        q.truth.status,
        q.truth.person_id,
        d.determination.status,
        d.chosen,
        d.reviews
    );
    println!("  query {}", q.body);
    let mut shown = std::collections::BTreeSet::new();
    for (i, c) in processed.candidates.iter().enumerate() {
        let why: Vec<String> = c
            .explanation
            .iter()
            .filter(|f| f.weight.abs() >= 0.5)
            .map(|f| format!("{}={:+.1}", f.field, f.weight))
            .collect();
        println!(
            "  cand {i} {} p={:.4} strong={} [{}]",
            c.person_key,
            c.probability,
            c.strong_identifier,
            why.join(" ")
        );
        for r in &c.records {
            shown.insert(r.record_id.clone());
            println!(
                "    {} [{}] {} {:?} {:?} {:?}",
                r.record_id,
                person_of.get(&r.record_id).map_or("?", String::as_str),
                r.identity.name.last_first(),
                r.identity.dob.map(|d| d.to_string()),
                identifier_keys(&r.identity),
                r.body
            );
        }
    }
    if let Some(pid) = q.truth.person_id.as_deref() {
        for (id, p) in person_of {
            if p == pid && !shown.contains(id) {
                if let Some(r) = lookup.by_id.get(id) {
                    println!(
                        "    MISSING {} p={:.4} {} {:?} {:?} {:?}",
                        r.record_id,
                        // The query's match probability for the record no candidate holds: low
                        // means the model scored it out, high means the search did not reach it.
                        model.probability(
                            &verity_resolve::Prepared::from_identity(query),
                            &verity_resolve::Prepared::from_identity(&r.identity)
                        ),
                        r.identity.name.last_first(),
                        r.identity.dob.map(|d| d.to_string()),
                        identifier_keys(&r.identity),
                        r.body
                    );
                }
            }
        }
    }
}

/// A review reason's name as the IAR and console show it (its serde tag).
fn reason_name(r: &verity_workflow::lesc::ReviewReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("reason").and_then(|x| x.as_str()).map(String::from))
        .unwrap_or_default()
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn print_row(cat: &str, t: &Tally) {
    println!(
        "{:<20} {:>7} {:>9} {:>6.1}% {:>13} {:>13} {:>12} {:>12} {:>11} {:>12} {:>14}",
        cat,
        t.queries,
        t.automatic,
        pct(t.automatic, t.queries),
        format!("{}/{}", t.routine_auto, t.routine),
        format!("{}/{}", t.routine_policy_auto, t.routine_policy),
        t.wrong_person,
        t.wrong_status,
        t.safe_citizen_answer,
        t.citizen_harm,
        t.citizen_harm_review
    );
}

/// How the engine's person grouping does on the whole world, against the generator's truth:
/// pairs of records sharing an identifier (wherever written) by model probability band, for
/// the same person and for two people; and people whose records end in several groups (by
/// identifiers alone, the best any identifier-based grouping can do, and by the engine).
fn grouping_report(records: &[SourceRecord], person_of: &HashMap<String, String>, engine: &Engine) {
    use verity_workflow::lesc::engine::{group_records, record_identifier_keys};
    let model = engine.model();
    let mut buckets: HashMap<(char, String), Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for k in record_identifier_keys(r) {
            buckets.entry(k).or_default().push(i);
        }
    }
    let bands = [0.0, 0.01, 0.1, 0.5, 0.8, 0.95, 0.99];
    let mut same = vec![0usize; bands.len()];
    let mut differ = vec![0usize; bands.len()];
    for members in buckets.values() {
        for (x, &i) in members.iter().enumerate().take(50) {
            for &j in members[x + 1..].iter().take(50) {
                let p = model.probability(
                    &verity_resolve::Prepared::from_identity(&records[i].identity),
                    &verity_resolve::Prepared::from_identity(&records[j].identity),
                );
                let band = bands.iter().rposition(|&b| p >= b).unwrap_or(0);
                if person_of.get(&records[i].record_id) == person_of.get(&records[j].record_id) {
                    same[band] += 1;
                } else {
                    differ[band] += 1;
                }
            }
        }
    }
    println!("record pairs sharing an identifier, by model probability from {bands:?}: same person {same:?}, two people {differ:?}");
    let split_people = |groups: &[Vec<usize>]| {
        let mut parts: HashMap<&str, usize> = HashMap::new();
        for g in groups {
            let mut owners: Vec<&str> = g
                .iter()
                .filter_map(|&i| person_of.get(&records[i].record_id).map(String::as_str))
                .collect();
            owners.sort_unstable();
            owners.dedup();
            for o in owners {
                *parts.entry(o).or_default() += 1;
            }
        }
        let people = parts.len();
        (parts.values().filter(|&&n| n > 1).count(), people)
    };
    // Identifiers alone (no model check): the ceiling of identifier-based grouping.
    let mut by_person: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(p) = person_of.get(&r.record_id) {
            by_person.entry(p.as_str()).or_default().push(i);
        }
    }
    let mut ceiling = 0usize;
    let mut engine_split = 0usize;
    let mut mixed = 0usize;
    for idx in by_person.values() {
        let recs: Vec<SourceRecord> = idx.iter().map(|&i| records[i].clone()).collect();
        let keys: Vec<Vec<(char, String)>> = recs.iter().map(record_identifier_keys).collect();
        let mut parent: Vec<usize> = (0..recs.len()).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                x = p[x];
            }
            x
        }
        for a in 0..recs.len() {
            for b in a + 1..recs.len() {
                if keys[a].iter().any(|k| keys[b].contains(k)) {
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        let roots: std::collections::BTreeSet<usize> =
            (0..recs.len()).map(|i| find(&mut parent, i)).collect();
        ceiling += usize::from(roots.len() > 1);
        engine_split += usize::from(group_records(&recs, model).len() > 1);
    }
    // Two people in one group, over the whole world.
    let groups = group_records(records, model);
    for g in &groups {
        let first = person_of.get(&records[g[0]].record_id);
        mixed += usize::from(
            g.iter()
                .any(|&i| person_of.get(&records[i].record_id) != first),
        );
    }
    let (world_split, people) = split_people(&groups);
    println!("people whose records are in several groups: {engine_split} by the engine's grouping of their own records, {world_split} over the whole world, {ceiling} with no identifier linking them (of {people}); groups mixing two people: {mixed}");
}
