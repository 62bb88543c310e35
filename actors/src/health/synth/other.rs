//! Synthetic Keto-Mojo CSV (BOM, preamble, paired and unpaired readings), lab-result CSV (values
//! below, inside and above their ranges) and FHIR R4 (Bundle or NDJSON) with their truth.

use std::io::{self, BufWriter, Write};

use crate::health::synth::{CountingWriter, Rng, Truth, TruthBuilder};
use crate::health::time::{days_from_civil, Stamp};

fn stop(index: u32, days: u32, target: Option<u64>, written: u64) -> bool {
    match target {
        Some(t) => written >= t,
        None => index >= days,
    }
}

fn iso(at: Stamp) -> String {
    at.to_string()
}

fn at(day: i32, secs: i64, off: i16) -> Stamp {
    Stamp {
        utc: i64::from(day) * 86_400 + secs - i64::from(off) * 60,
        offset_min: off,
    }
}

/// Keto-Mojo CSV: per day a glucose (mg/dL) and a ketone 10 minutes later (a GKI pair); on odd
/// days also a ketone with its glucose an hour away (no pair); every 10th day a row of an
/// unsupported reading type (skipped).
pub fn write_keto_mojo<W: Write>(
    out: W,
    seed: u64,
    days: u32,
    target_bytes: Option<u64>,
) -> io::Result<Truth> {
    let mut w = CountingWriter::new(BufWriter::new(out));
    let mut rng = Rng::new(seed);
    let mut t = TruthBuilder::default();
    let mut skipped = 0;
    w.write_all(b"\xEF\xBB\xBFKeto-Mojo MyMojoHealth Export\nGenerated,2024-02-01T10:00:00Z\nAll readings,\n")?;
    w.write_all(b"reading_id,reading_timestamp,reading_type,reading_sample_type,reading_value,reading_unit,source,meter_type,serial_number,device_id,tags,notes,reading_timezone,metadata_key,has_calculated_gki\n")?;
    let first = days_from_civil(2023, 1, 1);
    let off = -300;
    let mut id = 0;
    let mut index = 0;
    let (glucose, ketone) = ("HKQuantityTypeIdentifierBloodGlucose", "blood_ketone");
    while !stop(index, days, target_bytes, w.count) {
        let day = first + index as i32;
        let mut row = |w: &mut CountingWriter<_>,
                       kind: &str,
                       when: Stamp,
                       value: String,
                       unit: &str| {
            id += 1;
            writeln!(w, "{id},{},{kind},blood,{value},{unit},meter,GKS-1,SN123,dev-9,,\"fasted, morning\",America/New_York,,false", iso(when))
        };
        let mg = rng.range(70, 110);
        let k = rng.range(3, 30);
        let (g_at, k_at) = (at(day, 7 * 3600, off), at(day, 7 * 3600 + 600, off));
        row(&mut w, "glucose", g_at, mg.to_string(), "mg/dL")?;
        row(
            &mut w,
            "ketone",
            k_at,
            format!("{}", k as f64 / 10.0),
            "mmol/L",
        )?;
        t.add(glucose, "mg/dL", 1.0, mg, g_at);
        t.add(ketone, "mmol/L", 10.0, k, k_at);
        t.truth.gki.push((mg as f64 / 18.016) / (k as f64 / 10.0));
        if index % 2 == 1 {
            let (mg2, k2) = (rng.range(80, 120), rng.range(3, 30));
            let (k_at, g_at) = (at(day, 15 * 3600, off), at(day, 16 * 3600, off));
            row(
                &mut w,
                "ketone",
                k_at,
                format!("{}", k2 as f64 / 10.0),
                "mmol/L",
            )?;
            row(&mut w, "glucose", g_at, mg2.to_string(), "mg/dL")?;
            t.add(ketone, "mmol/L", 10.0, k2, k_at);
            t.add(glucose, "mg/dL", 1.0, mg2, g_at);
        }
        if index % 10 == 0 {
            row(
                &mut w,
                "blood pressure",
                at(day, 9 * 3600, off),
                "120".into(),
                "mmHg",
            )?;
            skipped += 1;
        }
        index += 1;
    }
    w.flush()?;
    let mut truth = t.finish(w.count);
    truth.lab_flags.insert("skipped".into(), skipped);
    Ok(truth)
}

/// (name, LOINC, unit, range text, low, high, value lo, value hi, scale)
type LabSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    f64,
);

const LABS: [LabSpec; 5] = [
    (
        "Glucose",
        "2345-7",
        "mg/dL",
        "70-99",
        Some(70),
        Some(99),
        60,
        130,
        1.0,
    ),
    (
        "Hemoglobin A1c",
        "4548-4",
        "%",
        "4.0 - 5.6",
        Some(40),
        Some(56),
        35,
        70,
        10.0,
    ),
    (
        "Total cholesterol",
        "2093-3",
        "mg/dL",
        "<200",
        None,
        Some(200),
        150,
        260,
        1.0,
    ),
    (
        "HDL cholesterol",
        "2085-9",
        "mg/dL",
        ">40",
        Some(40),
        None,
        25,
        80,
        1.0,
    ),
    (
        "Triglycerides",
        "2571-8",
        "mg/dL",
        "<150",
        None,
        Some(150),
        60,
        250,
        1.0,
    ),
];

/// Lab CSV: one panel of five tests per `days` step (weekly), values spread across their ranges;
/// every 5th panel also has a non-numeric result (skipped).
pub fn write_lab_csv<W: Write>(
    out: W,
    seed: u64,
    panels: u32,
    target_bytes: Option<u64>,
) -> io::Result<Truth> {
    let mut w = CountingWriter::new(BufWriter::new(out));
    let mut rng = Rng::new(seed);
    let mut t = TruthBuilder::default();
    let mut skipped = 0;
    w.write_all(b"Test Name,LOINC,Value,Unit,Reference Range,Collected Date,Flag\n")?;
    let first = days_from_civil(2022, 6, 1);
    let mut index = 0;
    while !stop(index, panels, target_bytes, w.count) {
        let day = first + 7 * index as i32;
        let when = at(day, 8 * 3600 + 1800, 60);
        let date = format!("{}", when).replace('T', " ");
        for (name, loinc, unit, range, lo, hi, vlo, vhi, scale) in LABS {
            let v = rng.range(vlo, vhi);
            writeln!(
                w,
                "{name},{loinc},{},{unit},\"{range}\",{},",
                v as f64 / scale,
                &date[..16]
            )?;
            let at16 = Stamp {
                utc: when.utc,
                offset_min: 0,
            };
            t.add(
                loinc,
                unit,
                scale,
                v,
                Stamp {
                    utc: at16.utc + i64::from(when.offset_min) * 60,
                    offset_min: 0,
                },
            );
            let flag = match (lo, hi) {
                (Some(l), _) if v < l => "low",
                (_, Some(h)) if v > h => "high",
                _ => "normal",
            };
            *t.truth.lab_flags.entry(flag.into()).or_default() += 1;
        }
        if index % 5 == 0 {
            writeln!(w, "Urine culture,,see comment,,,{},", &date[..16])?;
            skipped += 1;
        }
        index += 1;
    }
    w.flush()?;
    let mut truth = t.finish(w.count);
    truth.lab_flags.insert("skipped".into(), skipped);
    Ok(truth)
}

/// FHIR R4 resources as a Bundle (`ndjson = false`) or NDJSON: a Patient (ignored), then per
/// day heart rate, body weight, a blood-pressure panel and a glucose with a reference range;
/// every 10th day an Observation with only `valueString` (skipped).
pub fn write_fhir<W: Write>(
    out: W,
    seed: u64,
    days: u32,
    ndjson: bool,
    target_bytes: Option<u64>,
) -> io::Result<Truth> {
    let mut w = CountingWriter::new(BufWriter::new(out));
    let mut rng = Rng::new(seed);
    let mut t = TruthBuilder::default();
    let mut skipped = 0;
    let mut first_entry = true;
    let mut emit = |w: &mut CountingWriter<BufWriter<W>>, res: String| -> io::Result<()> {
        if ndjson {
            writeln!(w, "{res}")
        } else {
            let sep = if first_entry { "" } else { ",\n" };
            first_entry = false;
            write!(
                w,
                "{sep}  {{\"fullUrl\": \"urn:uuid:x\", \"resource\": {res}}}"
            )
        }
    };
    if !ndjson {
        w.write_all(b"{\n \"resourceType\": \"Bundle\",\n \"type\": \"collection\",\n \"meta\": {\"tag\": [{\"code\": \"synthetic\"}]},\n \"entry\": [\n")?;
    }
    emit(
        &mut w,
        r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Doe","given":["Jane"]}]}"#.into(),
    )?;
    let loinc = |code: &str, display: &str| {
        format!(
            r#"{{"coding":[{{"system":"http://loinc.org","code":"{code}","display":"{display}"}}],"text":"{display}"}}"#
        )
    };
    let qty = |v: f64, unit: &str, code: &str| {
        format!(
            r#"{{"value":{v},"unit":"{unit}","system":"http://unitsofmeasure.org","code":"{code}"}}"#
        )
    };
    let first = days_from_civil(2023, 3, 1);
    let mut index = 0;
    while !stop(index, days, target_bytes, w.count) {
        let day = first + index as i32;
        let when = at(day, 8 * 3600, 60);
        let eff = iso(when);
        let obs = |code: String, rest: String| {
            format!(
                r#"{{"resourceType":"Observation","id":"o{index}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}}]}}],"code":{code},"subject":{{"reference":"Patient/p1"}},"effectiveDateTime":"{eff}",{rest}}}"#
            )
        };
        let hr = rng.range(55, 95);
        emit(
            &mut w,
            obs(
                loinc("8867-4", "Heart rate"),
                format!(
                    r#""valueQuantity":{}"#,
                    qty(hr as f64, "beats/minute", "/min")
                ),
            ),
        )?;
        t.add("8867-4", "beats/minute", 1.0, hr, when);
        let kg = rng.range(600, 800);
        emit(
            &mut w,
            obs(
                loinc("29463-7", "Body weight"),
                format!(r#""valueQuantity":{}"#, qty(kg as f64 / 10.0, "kg", "kg")),
            ),
        )?;
        t.add("29463-7", "kg", 10.0, kg, when);
        let (sys, dia) = (rng.range(105, 145), rng.range(60, 95));
        let comps = format!(
            r#""component":[{{"code":{},"valueQuantity":{}}},{{"code":{},"valueQuantity":{}}}]"#,
            loinc("8480-6", "Systolic blood pressure"),
            qty(sys as f64, "mmHg", "mm[Hg]"),
            loinc("8462-4", "Diastolic blood pressure"),
            qty(dia as f64, "mmHg", "mm[Hg]")
        );
        emit(&mut w, obs(loinc("85354-9", "Blood pressure panel"), comps))?;
        t.add("8480-6", "mmHg", 1.0, sys, when);
        t.add("8462-4", "mmHg", 1.0, dia, when);
        t.truth.records -= 1; // the panel is one record with two readings
        t.truth.bp_pairs += 1;
        let g = rng.range(60, 130);
        emit(
            &mut w,
            obs(
                loinc("2339-0", "Glucose [Mass/volume] in Blood"),
                format!(
                    r#""valueQuantity":{},"referenceRange":[{{"low":{},"high":{}}}]"#,
                    qty(g as f64, "mg/dL", "mg/dL"),
                    qty(70.0, "mg/dL", "mg/dL"),
                    qty(99.0, "mg/dL", "mg/dL")
                ),
            ),
        )?;
        t.add("2339-0", "mg/dL", 1.0, g, when);
        let flag = if g < 70 {
            "low"
        } else if g > 99 {
            "high"
        } else {
            "normal"
        };
        *t.truth.lab_flags.entry(flag.into()).or_default() += 1;
        if index % 10 == 0 {
            emit(
                &mut w,
                obs(
                    loinc("8302-2", "Body height"),
                    r#""valueString":"tall""#.into(),
                ),
            )?;
            skipped += 1;
        }
        index += 1;
    }
    if !ndjson {
        w.write_all(b"\n ]\n}\n")?;
    }
    w.flush()?;
    let mut truth = t.finish(w.count);
    truth.lab_flags.insert("skipped".into(), skipped);
    Ok(truth)
}
