//! The detainer packet's text is extractable: checked with poppler's `pdftotext`.

use chrono::NaiveDateTime;
use std::io::Write;
use std::process::Command;
use verity_model::Role;
use verity_workflow::detainer::*;
use verity_workflow::documents::{render_packet, PacketDetails};

#[test]
fn pdftotext_reads_every_field() {
    if Command::new("pdftotext").arg("-v").output().is_err() {
        if std::env::var("CI").is_ok() {
            panic!("pdftotext (poppler-utils) is required in CI");
        }
        eprintln!("!!! pdftotext is not installed: PDF text extraction test SKIPPED");
        return;
    }
    let at = NaiveDateTime::parse_from_str("2026-03-10 09:00", "%Y-%m-%d %H:%M").expect("time");
    let ok = SubjectSnapshot {
        pending_proceedings: true,
        specialist_confirmed_identity: true,
        ..Default::default()
    };
    let w = Warrant {
        kind: WarrantKind::I200,
        signed_by: "sup2".into(),
        signed_at: at,
    };
    let perc = Actor {
        username: "perc9".into(),
        roles: vec![Role::PercOfficer],
    };
    let action = EnforcementAction::prepare(
        ActionKind::Detainer,
        Some(ProbableCause::PendingProceedings),
        Some(w),
        perc,
        at,
        &ok,
    )
    .expect("prepares");
    let details = PacketDetails {
        action_id: "DET-42".into(),
        event_number: "EV-9".into(),
        subject_name: "NGUYEN, VAN AN".into(),
        dob: "1990-07-04".into(),
        sex: "M".into(),
        citizenship: "VN".into(),
        a_number: "098765432".into(),
        fin: String::new(),
        to_agency: "Harris County Sheriff".into(),
        facility: "Harris County Jail".into(),
        from_office: "Houston".into(),
        evidence: vec![("CRT-7".into(), "immigration court case pending".into())],
        versions: vec!["status-2026.11.1".into()],
        hold_until: None,
        generated_at: at,
    };
    let pdf = render_packet(&action, &details);
    let dir = std::env::temp_dir().join(format!("verity-pdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("packet.pdf");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&pdf))
        .expect("write pdf");
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "I-247A",
        "NGUYEN, VAN AN",
        "098765432",
        "Basis (2)",
        "CRT-7",
        "48 HOURS",
        "I-200",
        "perc9",
        "status-2026.11.1",
        "Harris County Jail",
    ] {
        assert!(
            text.contains(needle),
            "'{needle}' not in extracted text:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
