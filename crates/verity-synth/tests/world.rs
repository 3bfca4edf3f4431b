//! Whole-world checks: determinism, parse-back, custody routing, population mix, look-alikes
//! and ground-truth coverage. Sizes are small so the suite stays fast in debug builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use verity_model::record::csv_header;
use verity_model::{ImmigrationStatus, RecordBody, RecordSystem, Reference, SourceRecord};
use verity_synth::{generate_person, generate_world, SynthConfig, SynthError};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("verity-synth-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn world(name: &str, people: u64, seed: u64) -> TempDir {
    let dir = TempDir::new(name);
    generate_world(&SynthConfig {
        people,
        seed,
        out: dir.0.clone(),
        progress: false,
    })
    .expect("world generated");
    dir
}

/// All files of a world, relative path -> bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("inside")
                    .to_string_lossy()
                    .to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("csv opens");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("row").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn records(dir: &Path, system: RecordSystem) -> Vec<SourceRecord> {
    let (header, rows) = read_csv(&dir.join(system.file_name()));
    assert_eq!(header, csv_header(system), "{system} header");
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let get = |c: &str| header.iter().position(|h| h == c).map(|k| row[k].as_str());
            SourceRecord::from_csv_row(system, get)
                .unwrap_or_else(|e| panic!("{system} row {}: {e}", i + 2))
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = world("det-a", 2_000, 7);
    let b = world("det-b", 2_000, 7);
    let c = world("det-c", 2_000, 8);
    let (fa, fb, fc) = (files(&a.0), files(&b.0), files(&c.0));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    assert_eq!(fa.len(), 12, "{:?}", fa.keys());
    for (name, bytes) in &fa {
        assert!(
            fb[name] == *bytes,
            "{name} differs between runs of one seed"
        );
    }
    for name in ["criminal.csv", "truth/persons.csv", "benefits.csv"] {
        assert!(fa[name] != fc[name], "{name} is the same for two seeds");
    }
    // The agency table is shared by all worlds.
    assert!(fa["agencies.csv"] == fc["agencies.csv"]);
}

#[test]
fn world_parses_back_maps_custody_and_truth_covers_records() {
    let w = world("parse", 1_500, 3);
    let reference = Reference::embedded().expect("reference");

    // Agencies: valid ORIs, known field office.
    let (aheader, agencies) = read_csv(&w.0.join("agencies.csv"));
    assert_eq!(
        aheader,
        ["ori", "name", "kind", "state", "county", "field_office"]
    );
    let mut sheriffs = BTreeMap::new();
    for a in &agencies {
        assert!(verity_model::Ori::parse(&a[0]).is_ok(), "{a:?}");
        assert_eq!(
            reference.aors.office_for(&a[3], &a[4]).map(|o| o.0),
            Some(a[5].clone()),
            "{a:?}"
        );
        if a[2] == "sheriff" {
            sheriffs.insert(a[0].clone(), (a[3].clone(), a[4].clone()));
        }
    }

    let mut all_ids = BTreeMap::new();
    let mut fin_owner: BTreeMap<String, String> = BTreeMap::new();
    let (_, link_rows) = read_csv(&w.0.join("truth/record_person.csv"));
    let owner: BTreeMap<&str, (&str, &str)> = link_rows
        .iter()
        .map(|r| (r[0].as_str(), (r[1].as_str(), r[2].as_str())))
        .collect();
    assert_eq!(owner.len(), link_rows.len(), "record ids repeat in truth");
    for system in RecordSystem::ALL {
        let recs = records(&w.0, *system);
        assert!(!recs.is_empty(), "{system} is empty");
        for r in recs {
            let (sys, person) = owner
                .get(r.record_id.as_str())
                .unwrap_or_else(|| panic!("{} has no truth", r.record_id));
            assert_eq!(*sys, system.code());
            assert!(all_ids.insert(r.record_id.clone(), *system).is_none());
            if let RecordBody::Custody(c) = &r.body {
                assert!(
                    reference.aors.office_for(&c.state, &c.county).is_some(),
                    "custody {} {} has no field office",
                    c.state,
                    c.county
                );
                assert_eq!(
                    sheriffs.get(c.ori.as_str()),
                    Some(&(c.state.clone(), c.county.clone())),
                    "custody ORI {} is not the sheriff of {} {}",
                    c.ori,
                    c.county,
                    c.state
                );
            }
            if let RecordBody::Biometrics(b) = &r.body {
                let prev = fin_owner.insert(b.fin.to_string(), person.to_string());
                assert!(
                    prev.is_none_or(|p| p == *person),
                    "FIN shared by two people"
                );
            }
        }
    }
    assert_eq!(
        all_ids.len(),
        owner.len(),
        "truth lists records no file has"
    );

    let (pheader, persons) = read_csv(&w.0.join("truth/persons.csv"));
    assert_eq!(pheader[0], "person_id");
    assert_eq!(persons.len(), 1_500);
    let ids: BTreeSet<&str> = persons.iter().map(|p| p[0].as_str()).collect();
    for (_, person) in owner.values() {
        assert!(ids.contains(person));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.0.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["people"], 1_500);
    assert_eq!(
        manifest["files"]["truth/record_person.csv"],
        owner.len() as u64
    );
}

fn expected_mix() -> BTreeMap<String, f64> {
    let text = include_str!("../../../data/synth/population_mix.csv");
    let rows: Vec<(String, f64)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut c = l.split(',');
            let s = c.next().unwrap_or("").to_string();
            let w: f64 = c.next().unwrap_or("0").parse().expect("weight");
            (s, w)
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.1).sum();
    rows.into_iter().map(|(s, w)| (s, w / total)).collect()
}

#[test]
fn population_mix_lookalikes_and_records_fit_the_truth() {
    let n = 20_000u64;
    let expected = expected_mix();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut truths = Vec::with_capacity(n as usize);
    let mut systems_of_status: BTreeMap<ImmigrationStatus, BTreeSet<RecordSystem>> =
        BTreeMap::new();
    let (mut ice, mut jail, mut dead) = (0, 0, 0);
    for i in 0..n {
        let (t, recs) = generate_person(11, i);
        *counts.entry(t.status.code().to_string()).or_default() += 1;
        ice += u32::from(t.in_ice_custody);
        jail += u32::from(t.in_custody);
        dead += u32::from(t.deceased);
        let set = systems_of_status.entry(t.status).or_default();
        for r in &recs {
            set.insert(r.system());
            // Citizens by birth never touch DHS enforcement or biometrics.
            if t.status == ImmigrationStatus::UsCitizenBirth {
                assert!(
                    !matches!(
                        r.system(),
                        RecordSystem::Enforcement | RecordSystem::Biometrics | RecordSystem::Court
                    ),
                    "{} has {}",
                    t.person_id,
                    r.record_id
                );
            }
        }
        truths.push(t);
    }
    for (status, share) in &expected {
        let got = counts.get(status).copied().unwrap_or(0) as f64 / n as f64;
        assert!(
            (got - share).abs() < 0.01 + share * 0.1,
            "{status}: {got:.4} vs {share:.4}"
        );
    }
    let citizens = truths.iter().filter(|t| t.is_citizen()).count() as f64 / n as f64;
    assert!((0.75..=0.82).contains(&citizens), "citizens {citizens}");
    assert!(ice > 20 && jail > 200 && dead > 10, "{ice} {jail} {dead}");
    for status in [
        ImmigrationStatus::FinalOrderOfRemoval,
        ImmigrationStatus::PreviouslyRemoved,
    ] {
        assert!(systems_of_status[&status].contains(&RecordSystem::Court));
        assert!(systems_of_status[&status].contains(&RecordSystem::Enforcement));
    }

    // Look-alikes: 10-15% of citizens, each resembling an earlier noncitizen by name and a
    // birth date within a year.
    let lookalikes: Vec<_> = truths.iter().filter(|t| t.lookalike_of.is_some()).collect();
    let share = lookalikes.len() as f64 / (citizens * n as f64);
    assert!((0.09..=0.16).contains(&share), "look-alike share {share}");
    for l in lookalikes {
        assert!(l.is_citizen());
        let target_id = l.lookalike_of.as_deref().unwrap_or("");
        let target = truths
            .iter()
            .find(|t| t.person_id == target_id)
            .expect("target exists");
        assert!(!target.is_citizen(), "{} resembles a citizen", l.person_id);
        assert!(target.index < l.index);
        let first = |s: &str| s.split(' ').next().unwrap_or("").to_string();
        assert!(
            l.name.given == target.name.given
                || first(&l.name.family) == first(&target.name.family),
            "{} vs {}",
            l.name,
            target.name
        );
        assert!((l.dob - target.dob).num_days().abs() <= 366);
        assert_eq!(l.sex, target.sex);
    }
}

#[test]
fn unwritable_output_names_the_path() {
    let dir = TempDir::new("blocked");
    std::fs::create_dir_all(&dir.0).expect("dir");
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"x").expect("file");
    let err = generate_world(&SynthConfig {
        people: 10,
        seed: 1,
        out: file.join("world"),
        progress: false,
    })
    .expect_err("cannot create a directory under a file");
    assert!(matches!(err, SynthError::Io { .. }));
    assert!(err.to_string().contains("a-file"), "{err}");

    let err = generate_world(&SynthConfig {
        people: u64::MAX,
        seed: 1,
        out: dir.0.join("w"),
        progress: false,
    })
    .expect_err("too many people");
    assert!(err.to_string().contains("--people"), "{err}");
}

#[test]
fn a_small_share_of_criminal_records_carry_flags() {
    use verity_model::record::LawEnforcementFlag;
    let (mut criminal, mut gang, mut national_security) = (0u32, 0u32, 0u32);
    for i in 0..6_000 {
        let (_, recs) = generate_person(23, i);
        for r in &recs {
            if let RecordBody::Criminal(c) = &r.body {
                criminal += 1;
                gang += u32::from(c.flags.contains(&LawEnforcementFlag::GangMember));
                national_security +=
                    u32::from(c.flags.contains(&LawEnforcementFlag::NationalSecurity));
            }
        }
    }
    assert!(
        criminal >= 1_000,
        "too few criminal records to judge: {criminal}"
    );
    let share = |n: u32| f64::from(n) / f64::from(criminal);
    assert!(
        (0.005..0.05).contains(&share(gang)),
        "gang share {gang}/{criminal}"
    );
    assert!(
        share(national_security) < 0.01 && national_security < gang,
        "national-security share {national_security}/{criminal}"
    );
}
