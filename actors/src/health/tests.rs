//! Health parser tests: every summary figure against the generator's truth for each format,
//! the real-export defects, bad input refused with a clear error, and proptest properties.

use proptest::prelude::*;

use crate::health::synth::{self, AppleOptions, Truth, ZipStream};
use crate::health::*;

fn run(format: Format, bytes: &[u8]) -> Result<ParsedFile, ParseError> {
    parse(format, bytes, &Limits::default(), &mut |_| {})
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn check_metrics(p: &ParsedFile, t: &Truth) {
    let s = &p.summary;
    assert_eq!(
        s.metrics.len(),
        t.metrics.len(),
        "metric types: {:?}",
        s.metrics.iter().map(|m| &m.kind).collect::<Vec<_>>()
    );
    for (kind, mt) in &t.metrics {
        let m = s
            .metrics
            .iter()
            .find(|m| &m.kind == kind)
            .unwrap_or_else(|| panic!("missing {kind}"));
        assert_eq!(m.unit, mt.unit, "{kind} unit");
        assert_eq!(m.count, mt.count, "{kind} count");
        for (what, got, want) in [
            ("min", m.min, mt.min),
            ("max", m.max, mt.max),
            ("mean", m.mean, mt.mean),
            ("stddev", m.stddev, mt.stddev),
            ("sum", m.sum, mt.sum),
        ] {
            assert!(close(got, want), "{kind} {what}: got {got}, truth {want}");
        }
        assert_eq!(m.first, mt.first, "{kind} first");
        assert_eq!(m.last, mt.last, "{kind} last");
    }
    let days: Vec<&Aggregate> = p
        .aggregates
        .iter()
        .filter(|a| a.period == Period::Day)
        .collect();
    assert_eq!(days.len(), t.daily.len(), "day rows");
    for ((kind, day), dt) in &t.daily {
        let a = days
            .iter()
            .find(|a| &a.metric == kind && &a.start == day)
            .unwrap_or_else(|| panic!("no row {kind} {day}"));
        assert_eq!(a.count, dt.count, "{kind} {day} count");
        assert!(
            close(a.sum, dt.sum) && close(a.min, dt.min) && close(a.max, dt.max),
            "{kind} {day}: {a:?} vs {dt:?}"
        );
    }
    for ((kind, day), total) in &t.dedup_daily {
        let a = days
            .iter()
            .find(|a| &a.metric == kind && &a.start == day)
            .unwrap_or_else(|| panic!("no row {kind} {day}"));
        let got = a.dedup_total.unwrap_or(f64::NAN);
        assert!(
            close(got, *total),
            "{kind} {day} dedup: got {got}, truth {total}"
        );
    }
    assert_eq!(s.days, t.days);
    assert_eq!(s.records, t.records);
}

fn apple(opts: AppleOptions) -> (Vec<u8>, Truth) {
    let mut out = Vec::new();
    let truth = synth::write_apple_export(&mut out, &opts).unwrap();
    (out, truth)
}

fn check_apple(p: &ParsedFile, t: &Truth) {
    check_metrics(p, t);
    let s = &p.summary;
    assert_eq!(s.skipped, 0, "{:?}", s.validation);
    assert_eq!(s.blood_pressure.pairs, t.bp_pairs);
    assert_eq!(s.activity_summaries, t.activity_summaries);
    assert_eq!(s.workouts.len(), t.workouts.len());
    for w in &s.workouts {
        let tw = &t.workouts[&w.kind];
        assert_eq!(w.count, tw.count);
        assert!(
            close(w.duration_min, tw.duration_min) && close(w.energy_kcal, tw.energy_kcal),
            "{w:?} vs {tw:?}"
        );
        assert!(
            (w.distance_km - tw.distance_km).abs() < 1e-6,
            "{w:?} vs {tw:?}"
        );
    }
    assert_eq!(s.sleep.len(), t.sleep.len());
    for n in &s.sleep {
        let tn = t.sleep[&n.night];
        let got = [
            n.in_bed_min,
            n.unspecified_min,
            n.core_min,
            n.deep_min,
            n.rem_min,
            n.awake_min,
        ];
        assert_eq!(got, tn, "night {}", n.night);
    }
    // Weekly and monthly rows add up to the daily ones.
    for period in [Period::Week, Period::Month] {
        let total: u64 = p
            .aggregates
            .iter()
            .filter(|a| a.period == period)
            .map(|a| a.count)
            .sum();
        let daily: u64 = t.daily.values().map(|d| d.count).sum();
        assert_eq!(total, daily, "{period:?}");
    }
    let steps = s
        .dedup
        .iter()
        .find(|d| d.kind == "HKQuantityTypeIdentifierStepCount")
        .unwrap();
    assert!(
        steps.dedup_total < steps.raw_total,
        "overlapping iPhone steps are dropped"
    );
}

#[test]
fn apple_xml_summary_matches_the_generator_truth() {
    let (xml, truth) = apple(AppleOptions {
        days: 40,
        ..AppleOptions::default()
    });
    let p = run(detect(&xml, None).unwrap(), &xml).unwrap();
    assert_eq!(p.summary.format, Format::AppleHealthXml);
    check_apple(&p, &truth);
}

#[test]
fn apple_zip_with_data_descriptors_and_broken_ios16_dtd_matches_truth() {
    let (zip, truth) = apple(AppleOptions {
        days: 9,
        zip: true,
        broken_dtd: true,
        seed: 7,
        ..AppleOptions::default()
    });
    assert_eq!(
        detect(&zip, Some("export.zip")).unwrap(),
        Format::AppleHealthZip
    );
    let mut reports = Vec::new();
    let p = parse(
        Format::AppleHealthZip,
        zip.as_slice(),
        &Limits::default(),
        &mut |n| reports.push(n),
    )
    .unwrap();
    check_apple(&p, &truth);
    assert!(reports.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn summary_serialises_to_the_health_summary_shape() {
    let (xml, _) = apple(AppleOptions {
        days: 2,
        ..AppleOptions::default()
    });
    let p = run(Format::AppleHealthXml, &xml).unwrap();
    let v = serde_json::to_value(&p.summary).unwrap();
    for key in [
        "format", "records", "skipped", "metrics", "days", "workouts", "warnings",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["format"], "apple_health_xml");
    let m = &v["metrics"][0];
    for key in [
        "type", "name", "unit", "count", "min", "max", "mean", "stddev", "first", "last",
    ] {
        assert!(m.get(key).is_some(), "metric {key}");
    }
    let hr = p
        .summary
        .metrics
        .iter()
        .find(|m| m.kind.ends_with("HeartRate"))
        .unwrap();
    assert_eq!(hr.name, "Heart Rate");
    let g = p
        .summary
        .metrics
        .iter()
        .find(|m| m.kind.ends_with("BloodGlucose"))
        .unwrap();
    assert_eq!(
        g.units.len(),
        2,
        "mg/dL and Apple's molar form are both listed: {:?}",
        g.units
    );
}

#[test]
fn source_priority_dedup_on_a_hand_made_overlap() {
    let xml = "<HealthData>\n\
        <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"Ann\u{2019}s Apple Watch\" unit=\"count\" startDate=\"2024-03-01 10:00:00 +0100\" endDate=\"2024-03-01 10:10:00 +0100\" value=\"1000\"/>\n\
        <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"Ann\u{2019}s iPhone\" unit=\"count\" startDate=\"2024-03-01 10:05:00 +0100\" endDate=\"2024-03-01 10:15:00 +0100\" value=\"600\"/>\n\
        <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"Ann\u{2019}s iPhone\" unit=\"count\" startDate=\"2024-03-01 12:00:00 +0100\" endDate=\"2024-03-01 12:10:00 +0100\" value=\"50\"/>\n\
        </HealthData>";
    let p = run(Format::AppleHealthXml, xml.as_bytes()).unwrap();
    let day = p
        .aggregates
        .iter()
        .find(|a| a.period == Period::Day)
        .unwrap();
    assert_eq!(day.sum, 1650.0);
    assert_eq!(day.dedup_total, Some(1000.0 + 300.0 + 50.0));
    assert_eq!(p.summary.dedup[0].dedup_total, 1350.0);
}

#[test]
fn keto_mojo_summary_and_gki_match_truth() {
    let mut csv = Vec::new();
    let truth = synth::write_keto_mojo(&mut csv, 3, 30, None).unwrap();
    assert_eq!(detect(&csv, None).unwrap(), Format::KetoMojoCsv);
    let p = run(Format::KetoMojoCsv, &csv).unwrap();
    check_metrics(&p, &truth);
    assert_eq!(p.summary.skipped, truth.lab_flags["skipped"]);
    let gki: Vec<f64> = p.summary.gki.iter().map(|g| g.gki).collect();
    assert_eq!(gki.len(), truth.gki.len(), "unpaired ketones give no GKI");
    assert!(gki.iter().zip(&truth.gki).all(|(a, b)| close(*a, *b)));
}

#[test]
fn gki_of_the_reference_example_is_three() {
    let csv = "\u{feff}Export\nline two\n\nreading_id,reading_timestamp,reading_type,reading_value,reading_unit\n\
        1,2024-01-05T07:00:00-05:00,Glucose,81,mg/dL\n2,2024-01-05T07:20:00-05:00,Ketone,1.5,mmol/L\n";
    let p = run(detect(csv.as_bytes(), None).unwrap(), csv.as_bytes()).unwrap();
    assert_eq!(p.summary.gki.len(), 1);
    let g = &p.summary.gki[0];
    assert!((g.glucose_mmol_l - 4.50).abs() < 0.005);
    assert_eq!((g.gki * 10.0).round() / 10.0, 3.0);
}

#[test]
fn lab_csv_values_and_flags_match_truth() {
    let mut csv = Vec::new();
    let truth = synth::write_lab_csv(&mut csv, 5, 20, None).unwrap();
    assert_eq!(detect(&csv, Some("labs.csv")).unwrap(), Format::LabCsv);
    let p = run(Format::LabCsv, &csv).unwrap();
    check_metrics(&p, &truth);
    assert_eq!(p.summary.skipped, truth.lab_flags["skipped"]);
    for (flag, want) in [
        (Flag::Low, "low"),
        (Flag::Normal, "normal"),
        (Flag::High, "high"),
    ] {
        let got = p.summary.labs.iter().filter(|l| l.flag == flag).count() as u64;
        assert_eq!(
            got,
            truth.lab_flags.get(want).copied().unwrap_or(0),
            "{want}"
        );
    }
}

#[test]
fn fhir_bundle_and_ndjson_match_truth() {
    for ndjson in [false, true] {
        let mut out = Vec::new();
        let truth = synth::write_fhir(&mut out, 11, 25, ndjson, None).unwrap();
        let format = detect(&out, None).unwrap();
        assert_eq!(
            format,
            if ndjson {
                Format::FhirNdjson
            } else {
                Format::FhirBundle
            }
        );
        let p = run(format, &out).unwrap();
        check_metrics(&p, &truth);
        assert_eq!(p.summary.blood_pressure.pairs, truth.bp_pairs);
        assert_eq!(p.summary.skipped, truth.lab_flags["skipped"]);
        assert_eq!(p.summary.validation.ignored.get("Patient"), Some(&1));
        let high = p
            .summary
            .labs
            .iter()
            .filter(|l| l.flag == Flag::High)
            .count() as u64;
        assert_eq!(high, truth.lab_flags.get("high").copied().unwrap_or(0));
    }
}

#[test]
fn truncated_xml_fails_with_its_position() {
    let (xml, _) = apple(AppleOptions {
        days: 3,
        ..AppleOptions::default()
    });
    for cut in [xml.len() / 2, xml.len() - 20] {
        let err = run(Format::AppleHealthXml, &xml[..cut]).unwrap_err();
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("byte"), "{err}");
    }
}

#[test]
fn invalid_utf8_in_a_record_is_refused() {
    let xml = b"<HealthData><Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"\xff\xfe\" unit=\"count/min\" startDate=\"2024-01-01 10:00:00 +0000\" endDate=\"2024-01-01 10:00:00 +0000\" value=\"60\"/></HealthData>";
    let err = run(Format::AppleHealthXml, xml).unwrap_err();
    assert!(matches!(err, ParseError::Corrupt { .. }), "{err}");
}

fn zip_with(build: impl FnOnce(&mut ZipStream<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut z = ZipStream::new(&mut out);
    build(&mut z);
    z.finish().unwrap();
    out
}

#[test]
fn zip_entry_escaping_the_folder_is_refused() {
    let zip = zip_with(|z| {
        z.entry("../evil/export.xml", |w| w.write_all(b"<HealthData/>"))
            .unwrap()
    });
    assert!(matches!(
        run(Format::AppleHealthZip, &zip),
        Err(ParseError::UnsafeZipEntry { .. })
    ));
    let zip = zip_with(|z| z.entry("/etc/passwd", |w| w.write_all(b"x")).unwrap());
    assert!(matches!(
        run(Format::AppleHealthZip, &zip),
        Err(ParseError::UnsafeZipEntry { .. })
    ));
}

#[test]
fn zip_bombs_are_stopped() {
    // A tiny entry declaring a huge size (zip64 extra field: 1 TiB).
    let mut extra = vec![1, 0, 16, 0];
    extra.extend_from_slice(&(1u64 << 40).to_le_bytes());
    extra.extend_from_slice(&10u64.to_le_bytes());
    let zip = zip_with(|z| {
        z.local_header(
            "apple_health_export/export.xml",
            0,
            8,
            0,
            u32::MAX,
            u32::MAX,
            &extra,
        )
        .unwrap();
        z.raw(&[3, 0]).unwrap();
    });
    let err = run(Format::AppleHealthZip, &zip).unwrap_err();
    assert!(matches!(err, ParseError::TooLarge { .. }), "{err}");
    // A real high-ratio entry: 64 MiB of one byte.
    let zip = zip_with(|z| {
        z.entry("apple_health_export/export.xml", |w| {
            w.write_all(b"<HealthData>")?;
            let chunk = vec![b' '; 1 << 20];
            (0..64).try_for_each(|_| w.write_all(&chunk))
        })
        .unwrap()
    });
    let err = run(Format::AppleHealthZip, &zip).unwrap_err();
    assert!(matches!(err, ParseError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("zip bomb"));
}

#[test]
fn damaged_zips_fail_with_a_clear_error() {
    let (zip, _) = apple(AppleOptions {
        days: 2,
        zip: true,
        ..AppleOptions::default()
    });
    let err = run(Format::AppleHealthZip, &zip[..zip.len() / 2]).unwrap_err();
    assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
    let no_export = zip_with(|z| {
        z.entry("apple_health_export/export_cda.xml", |w| {
            w.write_all(b"<x/>")
        })
        .unwrap()
    });
    assert!(matches!(
        run(Format::AppleHealthZip, &no_export),
        Err(ParseError::MissingExportXml)
    ));
    // Flip one compressed byte: deflate or CRC-32 check fails, never a silent summary.
    let mut bad = zip.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0x55;
    assert!(run(Format::AppleHealthZip, &bad).is_err());
}

#[test]
fn empty_wrong_and_unknown_inputs_are_refused_by_name() {
    assert!(matches!(detect(b"", None), Err(ParseError::Empty)));
    assert!(matches!(
        run(Format::AppleHealthXml, b""),
        Err(ParseError::Empty)
    ));
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let err = detect(png, Some("export.xml")).unwrap_err();
    assert!(
        err.to_string().contains("Keto-Mojo"),
        "lists the supported formats: {err}"
    );
    let err = detect(b"hello world\nthis is a note\n", Some("notes.txt")).unwrap_err();
    assert!(matches!(err, ParseError::UnknownFormat { .. }));
    let err = detect(b"<?xml version=\"1.0\"?><ClinicalDocument/>", None).unwrap_err();
    assert!(err.to_string().contains("export_cda.xml"), "{err}");
    // A lab CSV handed to the XML parser is a corrupt export, not an empty summary.
    assert!(run(Format::AppleHealthXml, b"Test,Value\nGlucose,90\n").is_err());
}

#[test]
fn parse_auto_detects_and_parses_from_a_stream() {
    let (zip, truth) = apple(AppleOptions {
        days: 3,
        zip: true,
        ..AppleOptions::default()
    });
    let p = parse_auto(zip.as_slice(), None, &Limits::default(), &mut |_| {}).unwrap();
    assert_eq!(p.summary.records, truth.records);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for f in [Format::AppleHealthXml, Format::AppleHealthZip, Format::KetoMojoCsv, Format::LabCsv, Format::FhirBundle, Format::FhirNdjson] {
            let _ = run(f, &bytes);
        }
        let _ = detect(&bytes, None);
    }

    #[test]
    fn mutated_exports_never_panic(seed in 0u64..1000, pos in 0usize..20_000, byte in any::<u8>()) {
        let (mut xml, _) = apple(AppleOptions { days: 1, seed, ..AppleOptions::default() });
        let at = pos % xml.len();
        xml[at] = byte;
        let _ = run(Format::AppleHealthXml, &xml);
        let mut csv = Vec::new();
        synth::write_lab_csv(&mut csv, seed, 3, None).unwrap();
        let at = pos % csv.len();
        csv[at] = byte;
        let _ = run(Format::LabCsv, &csv);
        let mut json = Vec::new();
        synth::write_fhir(&mut json, seed, 2, false, None).unwrap();
        let at = pos % json.len();
        json[at] = byte;
        let _ = run(Format::FhirBundle, &json);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn generated_files_round_trip_to_their_truth(seed in 0u64..u64::MAX, days in 1u32..5) {
        let (xml, t) = apple(AppleOptions { days, seed, ..AppleOptions::default() });
        check_apple(&run(Format::AppleHealthXml, &xml).unwrap(), &t);
        let mut csv = Vec::new();
        let t = synth::write_lab_csv(&mut csv, seed, days, None).unwrap();
        check_metrics(&run(Format::LabCsv, &csv).unwrap(), &t);
        let mut km = Vec::new();
        let t = synth::write_keto_mojo(&mut km, seed, days, None).unwrap();
        check_metrics(&run(Format::KetoMojoCsv, &km).unwrap(), &t);
        let mut nd = Vec::new();
        let t = synth::write_fhir(&mut nd, seed, days, true, None).unwrap();
        check_metrics(&run(Format::FhirNdjson, &nd).unwrap(), &t);
    }
}
