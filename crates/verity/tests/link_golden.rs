//! `verity link` end to end on tiny files: output format, golden pairs, and input errors that
//! name what to fix.

use std::path::PathBuf;
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verity-link-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn verity(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_verity"))
        .args(args)
        .output()
        .expect("run verity")
}

#[test]
fn link_matches_the_golden_output() {
    let out = tmp("links.csv");
    let o = verity(&[
        "link",
        "--left",
        golden("link_left.csv").to_str().expect("utf8 path"),
        "--right",
        golden("link_right.csv").to_str().expect("utf8 path"),
        "--schema",
        golden("link_schema.toml").to_str().expect("utf8 path"),
        "--out",
        out.to_str().expect("utf8 path"),
        "--top",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = std::fs::read_to_string(&out).expect("output written");
    let want = std::fs::read_to_string(golden("link_expected.csv")).expect("golden file");
    assert_eq!(got, want);
}

#[test]
fn schema_and_file_errors_name_the_problem() {
    let bad_schema = tmp("bad.toml");
    std::fs::write(
        &bad_schema,
        "id = \"rec_id\"\nfamily_name = \"last\"\neye_colour = \"eyes\"\n",
    )
    .expect("write");
    let out = tmp("x.csv");
    let left = golden("link_left.csv");
    let o = verity(&[
        "link",
        "--left",
        left.to_str().expect("utf8"),
        "--schema",
        bad_schema.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("eye_colour"));

    let missing = tmp("missing.toml");
    std::fs::write(&missing, "id = \"rec_id\"\nfamily_name = \"surname\"\n").expect("write");
    let o = verity(&[
        "link",
        "--left",
        left.to_str().expect("utf8"),
        "--schema",
        missing.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("surname") && err.contains("link_left.csv"),
        "{err}"
    );

    let bad_rows = tmp("bad_rows.csv");
    std::fs::write(
        &bad_rows,
        "rec_id,first,last,born,anum,ssn\nA,Ann,Lee,19800101,,\nB,Bo,Kim,1980-01-02,,\n",
    )
    .expect("write");
    let o = verity(&[
        "link",
        "--left",
        bad_rows.to_str().expect("utf8"),
        "--schema",
        golden("link_schema.toml").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("line 3") && err.contains("'born'"),
        "{err}"
    );
    let report = tmp("skipped.csv");
    let o = verity(&[
        "link",
        "--left",
        bad_rows.to_str().expect("utf8"),
        "--schema",
        golden("link_schema.toml").to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--skip-bad-rows",
        "--skipped-report",
        report.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&report).expect("report");
    assert!(
        text.starts_with("file,line,problem") && text.contains(",3,"),
        "{text}"
    );
}
