//! Model-level properties: explanations add up, training is deterministic and round-trips
//! through JSON, and name + birth date on a common name never reaches 0.5 without an identifier.

use verity_model::{ANumber, Identity, PartialDate, PersonName, Sex};
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::candidate_pairs;
use verity_resolve::model::{Model, TrainOptions};
use verity_resolve::{Prepared, Record};

fn person(given: &str, family: &str, dob: &str) -> Identity {
    Identity {
        name: PersonName::new(given, "", family),
        dob: PartialDate::parse_iso(dob).ok(),
        sex: Some(Sex::Male),
        country_of_birth: "MX".into(),
        ..Default::default()
    }
}

/// A small world plus crafted records, trained as probes × gallery.
fn trained(extra: &[Identity]) -> (Model, Vec<Prepared>, Vec<Prepared>) {
    let w = generate(&BenchConfig {
        identities: 600,
        probes: 200,
        seed: 5,
        hard_negative_share: 0.35,
    });
    let mut gallery = w.gallery.clone();
    let mut probes = w.probes.clone();
    for (k, e) in extra.iter().enumerate() {
        // crafted records go to both sides so their name frequencies are in the data
        gallery.push(Record::new(format!("xg{k}"), e.clone()));
        probes.push(Record::new(format!("xp{k}"), e.clone()));
    }
    let gp: Vec<Prepared> = gallery.iter().map(Prepared::from_record).collect();
    let pp: Vec<Prepared> = probes.iter().map(Prepared::from_record).collect();
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    let model = Model::train(
        &pp,
        Some(&gp),
        &pairs,
        &TrainOptions {
            seed: 9,
            u_sample_pairs: 20_000,
            u_name_sample_pairs: 20_000,
            max_em_iterations: 30,
            max_em_pairs: 400_000,
        },
    );
    (model, pp, gp)
}

#[test]
fn field_weights_add_up_to_the_total() {
    let (model, pp, gp) = trained(&[]);
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    assert!(pairs.len() > 100);
    for &(i, j) in pairs.iter().take(400) {
        let s = model.score_prepared(&pp[i as usize], &gp[j as usize]);
        let sum: f64 = s.fields.iter().map(|f| f.weight).sum();
        assert!(
            (sum - s.match_weight).abs() < 1e-9,
            "sum {sum} vs total {}",
            s.match_weight
        );
        let p = 1.0 / (1.0 + (-s.match_weight * std::f64::consts::LN_2).exp());
        assert!((p - s.probability).abs() < 1e-12);
        assert!(
            (model.probability(&pp[i as usize], &gp[j as usize]) - s.probability).abs() < 1e-12
        );
    }
}

/// The LESC engine ranks a query's records by `final_weight` (no explanation) and explains only
/// each person's best record with `score_prepared`: the two must agree to the bit, or the
/// chosen record and its probability could depend on which path computed them.
#[test]
fn the_fast_weight_is_the_explained_weight_to_the_bit() {
    let (model, pp, gp) = trained(&[]);
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    assert!(pairs.len() > 100);
    for &(i, j) in pairs.iter().take(2000) {
        let (a, b) = (&pp[i as usize], &gp[j as usize]);
        let explained = model.score_prepared(a, b);
        assert_eq!(
            model.final_weight(a, b).to_bits(),
            explained.match_weight.to_bits(),
            "pair ({i}, {j})"
        );
        assert_eq!(
            model.probability(a, b).to_bits(),
            explained.probability.to_bits(),
            "pair ({i}, {j})"
        );
    }
}

#[test]
fn training_is_deterministic_and_json_round_trips() {
    let (a, pp, gp) = trained(&[]);
    let (b, _, _) = trained(&[]);
    assert_eq!(a.to_json(), b.to_json());
    assert!(a.to_json().contains("\"format\": \"verity-fs-model/1\""));
    let c = Model::from_json(&a.to_json()).expect("round trip");
    assert_eq!(c.to_json(), a.to_json());
    for k in 0..50 {
        assert_eq!(a.probability(&pp[k], &gp[k]), c.probability(&pp[k], &gp[k]));
    }
    // a different seed samples different random pairs for u
    let other_seed = {
        let pairs = candidate_pairs(&pp, Some(&gp), 2000);
        Model::train(
            &pp,
            Some(&gp),
            &pairs,
            &TrainOptions {
                seed: 10,
                u_sample_pairs: 20_000,
                u_name_sample_pairs: 20_000,
                max_em_iterations: 30,
                max_em_pairs: 400_000,
            },
        )
    };
    assert_ne!(other_seed.to_json(), a.to_json());
}

#[test]
fn common_name_and_birth_date_alone_stay_below_half() {
    let common = [
        ("JOSE", "GARCIA"),
        ("MARIA", "HERNANDEZ"),
        ("JAMES", "SMITH"),
        ("JUAN", "MARTINEZ"),
    ];
    let mut extra = Vec::new();
    // several namesakes in the data make these names common there, as in the population
    for (g, f) in common {
        for k in 0..6 {
            extra.push(person(g, f, &format!("19{}-0{}-1{}", 70 + k, 1 + k, k)));
        }
    }
    let (model, _, _) = trained(&extra);
    for (g, f) in common {
        let a = person(g, f, "1985-03-12");
        let b = person(g, f, "1985-03-12");
        let s = model.score(&a, &b);
        assert!(
            s.probability < 0.5,
            "{g} {f}: {} {:?}",
            s.probability,
            s.fields
        );
        assert!(s.fields.iter().any(|w| w.field == "safety"));
        // the same pair with an agreeing A-number is a match
        let mut a2 = a.clone();
        let mut b2 = b.clone();
        a2.ids.a_number = ANumber::parse("201234567").ok();
        b2.ids.a_number = a2.ids.a_number.clone();
        assert!(
            model.score(&a2, &b2).probability > 0.9,
            "{g} {f} with A-number"
        );
        // and a different A-number pushes it further down
        b2.ids.a_number = ANumber::parse("309876543").ok();
        assert!(model.score(&a2, &b2).probability < s.probability);
    }
}

#[test]
fn hard_negative_look_alikes_stay_below_half() {
    // same common name, birth dates within a year, different people
    let mut extra = Vec::new();
    for k in 0..6 {
        extra.push(person("JOSE", "GARCIA", &format!("197{k}-05-0{}", k + 1)));
        extra.push(person("JAMES", "SMITH", &format!("196{k}-02-0{}", k + 1)));
    }
    let (model, _, _) = trained(&extra);
    for (da, db) in [
        ("1985-03-12", "1985-03-13"),
        ("1985-03-12", "1984-03-12"),
        ("1985-03-12", "1985-12-03"),
        ("1985-01-01", "1985-06-30"),
        ("1985-03-12", "1985-04-12"),
    ] {
        let s = model.score(&person("JOSE", "GARCIA", da), &person("JOSE", "GARCIA", db));
        assert!(s.probability < 0.5, "{da} vs {db}: {}", s.probability);
    }
    let s = model.score(
        &person("JAMES", "SMITH", "1985-03-12"),
        &person("JIM", "SMITH", "1985-03-12"),
    );
    assert_eq!(
        s.fields
            .iter()
            .find(|f| f.field == "given_name")
            .map(|f| f.level.as_str()),
        Some("equivalent")
    );
    assert!(
        s.probability < 0.5,
        "nickname variant: {} {:#?}",
        s.probability,
        s.fields
    );
}

#[test]
fn generated_hard_negatives_stay_below_half() {
    let w = generate(&BenchConfig {
        identities: 800,
        probes: 300,
        seed: 11,
        hard_negative_share: 0.4,
    });
    let gp: Vec<Prepared> = w.gallery.iter().map(Prepared::from_record).collect();
    let pp: Vec<Prepared> = w.probes.iter().map(Prepared::from_record).collect();
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    let model = Model::train(
        &pp,
        Some(&gp),
        &pairs,
        &TrainOptions {
            seed: 1,
            u_sample_pairs: 20_000,
            u_name_sample_pairs: 20_000,
            max_em_iterations: 30,
            max_em_pairs: 400_000,
        },
    );
    let mut hard_pairs = 0;
    for &(i, j) in &pairs {
        if w.hard_negative[i as usize] {
            hard_pairs += 1;
            let p = model.probability(&pp[i as usize], &gp[j as usize]);
            assert!(
                p < 0.5,
                "hard negative {} vs {}: {p}",
                w.probes[i as usize].id,
                w.gallery[j as usize].id
            );
        }
    }
    assert!(hard_pairs > 100);
}

#[test]
fn mated_records_with_identifiers_score_high() {
    let mut a = person("ALEKSANDR", "KOWALCZYK", "1979-11-23");
    a.ids.a_number = ANumber::parse("087654321").ok();
    let mut b = person("ALEXANDER", "KOWALCZYK", "1979-11-23");
    b.ids.a_number = ANumber::parse("087654312").ok(); // one transposition
    let (model, _, _) = trained(&[a.clone(), b.clone()]);
    let s = model.score(&a, &b);
    assert!(s.probability > 0.9, "{} {:?}", s.probability, s.fields);
    let lvl = s
        .fields
        .iter()
        .find(|f| f.field == "a_number")
        .map(|f| f.level.clone());
    assert_eq!(lvl.as_deref(), Some("one_typo"));
}

#[test]
fn weight_bound_holds_under_both_calibrations() {
    let mut extra = Vec::new();
    for k in 0..6 {
        extra.push(person("JOSE", "GARCIA", &format!("197{k}-05-0{}", k + 1)));
    }
    let (mut model, pp, gp) = trained(&extra);
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    let check = |model: &Model| {
        let mut below_half = 0;
        for &(i, j) in &pairs {
            let (a, b) = (&pp[i as usize], &gp[j as usize]);
            let v = verity_resolve::compare::vector_without_names(a, b);
            let bound = model.final_weight_bound(a, b, &v);
            let exact = model.final_weight(a, b);
            assert!(exact <= bound, "{} vs {}: {exact} > {bound}", i, j);
            below_half += usize::from(bound < 0.0);
        }
        below_half
    };
    let pruned_prior = check(&model);
    assert!(pruned_prior > 0);
    // and under Platt calibration
    let labelled: Vec<(f64, bool)> = pairs
        .iter()
        .take(2000)
        .map(|&(i, j)| {
            let (a, b) = (&pp[i as usize], &gp[j as usize]);
            (
                model.raw_weight(a, b),
                a.family == b.family && a.dob == b.dob,
            )
        })
        .collect();
    model.fit_platt(&labelled);
    check(&model);
}
