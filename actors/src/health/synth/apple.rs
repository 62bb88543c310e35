//! Synthetic Apple Health export.xml (optionally inside a streamed export.zip) with every quirk
//! of real exports, and its truth: overlapping Watch/iPhone steps and distance, kcal/Cal, km/mi,
//! kg/lb, mg/dL and `mmol<M>/L` glucose, blood-pressure correlations whose Records also appear
//! at top level, HRV with beat lists, sleep stages, workouts (old and new style), `\x0b`.

use std::io::{self, BufWriter, Write};

use crate::health::synth::{CountingWriter, Rng, Truth, TruthBuilder, ZipStream};
use crate::health::time::{days_from_civil, Stamp};

const WATCH: &str = "Jane\u{2019}s Apple Watch";
const WATCH_DEV: &str = "&lt;&lt;HKDevice: 0x283ab6c60&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:9.1&gt;";
const PHONE: &str = "Jane\u{2019}s iPhone";
const PHONE_DEV: &str = "&lt;&lt;HKDevice: 0x283ab7e90&gt;, name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone13,2, software:16.1&gt;";
const GLUCOSE_MOLAR: &str = "180.15588000005408";
const HK: &str = "HKQuantityTypeIdentifier";

/// What to generate.
#[derive(Debug, Clone)]
pub struct AppleOptions {
    /// Seed of the value generator.
    pub seed: u64,
    /// Days to write (ignored when `target_bytes` is set).
    pub days: u32,
    /// Write whole days until at least this many XML bytes.
    pub target_bytes: Option<u64>,
    /// Write the iOS 16 DTD with its unclosed ATTLIST.
    pub broken_dtd: bool,
    /// Wrap in export.zip (data descriptors, an export_cda.xml before and a route after).
    pub zip: bool,
}

impl Default for AppleOptions {
    fn default() -> Self {
        AppleOptions {
            seed: 1,
            days: 14,
            target_bytes: None,
            broken_dtd: false,
            zip: false,
        }
    }
}

/// Writes an export (xml or zip) to `out` and returns its truth.
pub fn write_apple_export<W: Write>(out: W, opts: &AppleOptions) -> io::Result<Truth> {
    if !opts.zip {
        let mut w = CountingWriter::new(BufWriter::with_capacity(1 << 20, out));
        let truth = write_xml(&mut w, opts)?;
        w.flush()?;
        return Ok(truth);
    }
    let mut z = ZipStream::new(out);
    z.entry("apple_health_export/export_cda.xml", |w| {
        w.write_all(b"<?xml version=\"1.0\"?>\n<ClinicalDocument><component/></ClinicalDocument>\n")
    })?;
    let truth = z.entry("apple_health_export/export.xml", |w| {
        let mut cw = CountingWriter::new(BufWriter::with_capacity(1 << 20, w));
        let t = write_xml(&mut cw, opts)?;
        cw.flush()?;
        Ok(t)
    })?;
    z.entry(
        "apple_health_export/workout-routes/route_2023-01-01.gpx",
        |w| w.write_all(b"<gpx/>\n"),
    )?;
    z.finish()?;
    Ok(truth)
}

fn header(w: &mut impl Write, broken: bool) -> io::Result<()> {
    w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!-- HealthKit Export Version: 12 -->\n<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>\n<!ATTLIST HealthData\n  locale CDATA #REQUIRED\n>\n<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>\n<!ATTLIST Record\n  type          CDATA #REQUIRED\n  unit          CDATA #IMPLIED\n  value         CDATA #IMPLIED\n  sourceName    CDATA #REQUIRED\n  device        CDATA #IMPLIED\n  startDate     CDATA #REQUIRED\n  endDate       CDATA #REQUIRED\n>\n<!ELEMENT InstantaneousBeatsPerMinute EMPTY>\n<!ATTLIST InstantaneousBeatsPerMinute\n  bpm  CDATA #REQUIRED\n  time CDATA #REQUIRED\n")?;
    if !broken {
        w.write_all(b">\n")?;
    }
    w.write_all(b"<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>\n<!ATTLIST Workout\n  workoutActivityType   CDATA #REQUIRED\n  duration              CDATA #IMPLIED\n>\n]>\n<HealthData locale=\"en_US\">\n <ExportDate value=\"2024-06-01 10:00:00 -0700\"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1980-04-02\" HKCharacteristicTypeIdentifierBiologicalSex=\"HKBiologicalSexFemale\" HKCharacteristicTypeIdentifierBloodType=\"HKBloodTypeNotSet\" HKCharacteristicTypeIdentifierFitzpatrickSkinType=\"HKFitzpatrickSkinTypeNotSet\" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse=\"None\"/>\n")
}

/// One local day being written.
struct Day {
    day: i32,
    off: i16,
}

impl Day {
    fn stamp(&self, secs: i64) -> Stamp {
        let local = i64::from(self.day) * 86_400 + secs;
        Stamp {
            utc: local - i64::from(self.off) * 60,
            offset_min: self.off,
        }
    }

    /// Apple's `yyyy-MM-dd HH:mm:ss ±hhmm` of local second `secs` of this day (may spill over).
    fn apple(&self, secs: i64) -> String {
        let s = self.stamp(secs).to_string(); // 2023-01-01T10:00:00-07:00
        format!("{} {} {}{}", &s[..10], &s[11..19], &s[19..22], &s[23..25])
    }
}

struct Gen<'w, W: Write> {
    w: &'w mut CountingWriter<W>,
    rng: Rng,
    t: TruthBuilder,
}

impl<W: Write> Gen<'_, W> {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        d: &Day,
        kind: &str,
        src: &str,
        dev: &str,
        unit: &str,
        s: i64,
        e: i64,
        value: &str,
        children: &str,
    ) -> io::Result<()> {
        let (start, end) = (d.apple(s), d.apple(e));
        write!(
            self.w,
            " <Record type=\"{kind}\" sourceName=\"{src}\" sourceVersion=\"9.1\" device=\"{dev}\" unit=\"{unit}\" creationDate=\"{end}\" startDate=\"{start}\" endDate=\"{end}\" value=\"{value}\""
        )?;
        if children.is_empty() {
            self.w.write_all(b"/>\n")
        } else {
            write!(self.w, ">\n{children} </Record>\n")
        }
    }

    fn day(&mut self, d: &Day, index: u32) -> io::Result<()> {
        let hr = format!("{HK}HeartRate");
        for i in 0..400i64 {
            let s = i * 216 + self.rng.range(0, 100);
            let v = self.rng.range(50, 180);
            let children = match i {
                0 => {
                    "  <MetadataEntry key=\"HKMetadataKeySyncIdentifier\" value=\"sync\u{b}id\"/>\n"
                        .to_owned()
                }
                _ if i % 4 == 0 => {
                    "  <MetadataEntry key=\"HKMetadataKeyHeartRateMotionContext\" value=\"1\"/>\n"
                        .to_owned()
                }
                _ => String::new(),
            };
            self.record(
                d,
                &hr,
                WATCH,
                WATCH_DEV,
                "count/min",
                s,
                s,
                &v.to_string(),
                &children,
            )?;
            self.t.add(&hr, "count/min", 1.0, v, d.stamp(s));
        }
        self.steps_and_distance(d)?;
        for (kind, n, step, dur, lo, hi) in [
            ("ActiveEnergyBurned", 150i64, 576, 60, 1, 150),
            ("BasalEnergyBurned", 100, 864, 600, 50, 120),
        ] {
            let kind = format!("{HK}{kind}");
            for i in 0..n {
                let s = i * step;
                let v = self.rng.range(lo, hi);
                let unit = if i % 3 == 0 && kind.ends_with("ActiveEnergyBurned") {
                    "Cal"
                } else {
                    "kcal"
                };
                self.record(
                    d,
                    &kind,
                    WATCH,
                    WATCH_DEV,
                    unit,
                    s,
                    s + dur,
                    &(v as f64 / 10.0).to_string(),
                    "",
                )?;
                self.t.add(&kind, "kcal", 10.0, v, d.stamp(s));
                self.t.dedup(&kind, v, d.stamp(s));
            }
        }
        self.hrv(d)?;
        self.glucose_spo2_mass(d, index)?;
        self.blood_pressure(d, index)?;
        self.sleep(d, index)?;
        let mindful = d.apple(12 * 3600);
        writeln!(self.w, " <Record type=\"HKCategoryTypeIdentifierMindfulSession\" sourceName=\"{PHONE}\" startDate=\"{mindful}\" endDate=\"{mindful}\" value=\"HKCategoryValueNotApplicable\"/>")?;
        self.t.truth.records += 1;
        if index.is_multiple_of(2) {
            self.workout(d, index)?;
        }
        let date = &d.apple(0)[..10];
        writeln!(self.w, " <ActivitySummary dateComponents=\"{date}\" activeEnergyBurned=\"512.3\" activeEnergyBurnedGoal=\"500\" activeEnergyBurnedUnit=\"Cal\" appleMoveTime=\"0\" appleMoveTimeGoal=\"0\" appleExerciseTime=\"35\" appleExerciseTimeGoal=\"30\" appleStandHours=\"11\" appleStandHoursGoal=\"12\"/>")?;
        self.t.truth.activity_summaries += 1;
        self.t.truth.records += 1;
        Ok(())
    }

    /// Watch every hour at :00-:10; iPhone inside that window on even hours (dropped by the
    /// de-duplication) and alone at :30-:40 on odd hours (kept).
    fn steps_and_distance(&mut self, d: &Day) -> io::Result<()> {
        let (steps, dist) = (
            format!("{HK}StepCount"),
            format!("{HK}DistanceWalkingRunning"),
        );
        for h in 0..24i64 {
            let s = h * 3600;
            let (v, m) = (self.rng.range(0, 1500), self.rng.range(0, 1200));
            self.record(
                d,
                &steps,
                WATCH,
                WATCH_DEV,
                "count",
                s,
                s + 600,
                &v.to_string(),
                "",
            )?;
            self.record(
                d,
                &dist,
                WATCH,
                WATCH_DEV,
                "km",
                s,
                s + 600,
                &(m as f64 / 1000.0).to_string(),
                "",
            )?;
            for (kind, x) in [(&steps, v), (&dist, m)] {
                let (unit, scale) = if kind == &steps {
                    ("count", 1.0)
                } else {
                    ("km", 1000.0)
                };
                self.t.add(kind, unit, scale, x, d.stamp(s));
                self.t.dedup(kind, x, d.stamp(s));
            }
            let (ps, pe) = if h % 2 == 0 {
                (s + 120, s + 480)
            } else {
                (s + 1800, s + 2400)
            };
            let (v, m) = (self.rng.range(0, 800), self.rng.range(0, 600));
            self.record(
                d,
                &steps,
                PHONE,
                PHONE_DEV,
                "count",
                ps,
                pe,
                &v.to_string(),
                "",
            )?;
            let (unit, shown) = if h % 4 >= 2 {
                ("mi", m as f64 / 1609.344)
            } else {
                ("km", m as f64 / 1000.0)
            };
            self.record(
                d,
                &dist,
                PHONE,
                PHONE_DEV,
                unit,
                ps,
                pe,
                &shown.to_string(),
                "",
            )?;
            self.t.add(&steps, "count", 1.0, v, d.stamp(ps));
            self.t.add(&dist, "km", 1000.0, m, d.stamp(ps));
            if h % 2 == 1 {
                self.t.dedup(&steps, v, d.stamp(ps));
                self.t.dedup(&dist, m, d.stamp(ps));
            }
        }
        Ok(())
    }

    fn hrv(&mut self, d: &Day) -> io::Result<()> {
        let kind = format!("{HK}HeartRateVariabilitySDNN");
        for i in 0..5i64 {
            let s = 3600 * (2 + 4 * i);
            let v = self.rng.range(20, 120);
            let mut children = String::from("  <HeartRateVariabilityMetadataList>\n");
            for b in 0..60 {
                let bpm = 55 + (b * 7 + i) % 30;
                children.push_str(&format!("   <InstantaneousBeatsPerMinute bpm=\"{bpm}\" time=\"{}:{:02}:{:02}.{:02} AM\"/>\n", 2 + i, b / 60, b % 60, b));
            }
            children.push_str("  </HeartRateVariabilityMetadataList>\n");
            self.record(
                d,
                &kind,
                WATCH,
                WATCH_DEV,
                "ms",
                s,
                s + 60,
                &v.to_string(),
                &children,
            )?;
            self.t.add(&kind, "ms", 1.0, v, d.stamp(s));
        }
        Ok(())
    }

    fn glucose_spo2_mass(&mut self, d: &Day, index: u32) -> io::Result<()> {
        let glucose = format!("{HK}BloodGlucose");
        for (i, hour) in [8i64, 13, 19].into_iter().enumerate() {
            let s = hour * 3600;
            let mg = self.rng.range(70, 180);
            let molar: f64 = GLUCOSE_MOLAR.parse().unwrap_or(180.155_88);
            let (unit, shown) = if i == 2 {
                (
                    format!("mmol&lt;{GLUCOSE_MOLAR}&gt;/L"),
                    (mg as f64 / (molar / 10.0)).to_string(),
                )
            } else {
                ("mg/dL".to_owned(), mg.to_string())
            };
            self.record(d, &glucose, "Dexcom G6", "", &unit, s, s, &shown, "")?;
            self.t.add(&glucose, "mg/dL", 1.0, mg, d.stamp(s));
        }
        let spo2 = format!("{HK}OxygenSaturation");
        for i in 0..10i64 {
            let s = i * 8000 + 300;
            let v = self.rng.range(94, 100);
            self.record(
                d,
                &spo2,
                WATCH,
                WATCH_DEV,
                "%",
                s,
                s,
                &(v as f64 / 100.0).to_string(),
                "",
            )?;
            self.t.add(&spo2, "%", 1.0, v, d.stamp(s));
        }
        let mass = format!("{HK}BodyMass");
        let g = self.rng.range(70_000, 80_000);
        let (unit, shown) = if index % 3 == 1 {
            ("lb", g as f64 / 453.592_37)
        } else {
            ("kg", g as f64 / 1000.0)
        };
        self.record(
            d,
            &mass,
            "Withings",
            "",
            unit,
            27_000,
            27_000,
            &shown.to_string(),
            "",
        )?;
        self.t.add(&mass, "kg", 1000.0, g, d.stamp(27_000));
        Ok(())
    }

    fn blood_pressure(&mut self, d: &Day, index: u32) -> io::Result<()> {
        let s = 9 * 3600;
        let (sys, dia) = (self.rng.range(100, 140), self.rng.range(60, 90));
        let (ks, kd) = (
            format!("{HK}BloodPressureSystolic"),
            format!("{HK}BloodPressureDiastolic"),
        );
        let t = d.apple(s);
        let rec = |k: &str, v: i64| {
            format!(" <Record type=\"{k}\" sourceName=\"Omron\" unit=\"mmHg\" creationDate=\"{t}\" startDate=\"{t}\" endDate=\"{t}\" value=\"{v}\"/>\n")
        };
        let top = format!("{}{}", rec(&ks, sys), rec(&kd, dia));
        let corr = format!(
            " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"Omron\" creationDate=\"{t}\" startDate=\"{t}\" endDate=\"{t}\">\n  <MetadataEntry key=\"HKWasUserEntered\" value=\"0\"/>\n {} {}</Correlation>\n",
            rec(&ks, sys),
            rec(&kd, dia)
        );
        if index.is_multiple_of(2) {
            self.w.write_all(top.as_bytes())?;
            self.w.write_all(corr.as_bytes())?;
        } else {
            self.w.write_all(corr.as_bytes())?;
            self.w.write_all(top.as_bytes())?;
        }
        self.t.add(&ks, "mmHg", 1.0, sys, d.stamp(s));
        self.t.add(&kd, "mmHg", 1.0, dia, d.stamp(s));
        self.t.truth.bp_pairs += 1;
        Ok(())
    }

    fn sleep(&mut self, d: &Day, index: u32) -> io::Result<()> {
        let mut night = [0.0f64; 6];
        let mut put = |g: &mut Self,
                       value: &str,
                       from: i64,
                       minutes: i64,
                       slot: usize|
         -> io::Result<()> {
            let (a, b) = (d.apple(from), d.apple(from + minutes * 60));
            writeln!(g.w, " <Record type=\"HKCategoryTypeIdentifierSleepAnalysis\" sourceName=\"{WATCH}\" device=\"{WATCH_DEV}\" creationDate=\"{b}\" startDate=\"{a}\" endDate=\"{b}\" value=\"HKCategoryValueSleepAnalysis{value}\"/>")?;
            night[slot] += minutes as f64;
            g.t.truth.records += 1;
            Ok(())
        };
        let start = 23 * 3600;
        put(self, "InBed", start, 480, 0)?;
        if index % 7 == 3 {
            put(self, "Asleep", start + 900, 450, 1)?;
        } else {
            let mut at = start + 600;
            for (value, slot, lo, hi) in [
                ("AsleepCore", 2, 60, 120),
                ("AsleepDeep", 3, 30, 90),
                ("AsleepREM", 4, 20, 60),
                ("Awake", 5, 5, 15),
                ("AsleepCore", 2, 60, 120),
            ] {
                let minutes = self.rng.range(lo, hi);
                put(self, value, at, minutes, slot)?;
                at += minutes * 60;
            }
        }
        self.t
            .truth
            .sleep
            .insert(crate::health::time::format_day(d.day), night);
        Ok(())
    }

    fn workout(&mut self, d: &Day, index: u32) -> io::Result<()> {
        let kind = ["Running", "Walking", "Cycling"][(index as usize / 2) % 3];
        let secs = self.rng.range(1200, 3600);
        let tenths = self.rng.range(1000, 6000);
        let meters = self.rng.range(2000, 15_000);
        let (s, e) = (d.apple(18 * 3600), d.apple(18 * 3600 + secs));
        let dur = (secs as f64 / 60.0).to_string();
        let dist_kind = if kind == "Cycling" {
            "DistanceCycling"
        } else {
            "DistanceWalkingRunning"
        };
        if index.is_multiple_of(4) {
            writeln!(self.w, " <Workout workoutActivityType=\"HKWorkoutActivityType{kind}\" duration=\"{dur}\" durationUnit=\"min\" sourceName=\"{WATCH}\" device=\"{WATCH_DEV}\" creationDate=\"{e}\" startDate=\"{s}\" endDate=\"{e}\">")?;
            writeln!(self.w, "  <MetadataEntry key=\"HKIndoorWorkout\" value=\"0\"/>\n  <WorkoutEvent type=\"HKWorkoutEventTypeSegment\" date=\"{s}\" duration=\"5\" durationUnit=\"min\"/>")?;
            writeln!(self.w, "  <WorkoutStatistics type=\"{HK}ActiveEnergyBurned\" startDate=\"{s}\" endDate=\"{e}\" sum=\"{}\" unit=\"kcal\"/>", tenths as f64 / 10.0)?;
            writeln!(self.w, "  <WorkoutStatistics type=\"{HK}{dist_kind}\" startDate=\"{s}\" endDate=\"{e}\" sum=\"{}\" unit=\"km\"/>", meters as f64 / 1000.0)?;
            writeln!(self.w, "  <WorkoutStatistics type=\"{HK}HeartRate\" startDate=\"{s}\" endDate=\"{e}\" average=\"141\" minimum=\"98\" maximum=\"171\" unit=\"count/min\"/>")?;
            writeln!(self.w, "  <WorkoutRoute sourceName=\"{WATCH}\" creationDate=\"{e}\" startDate=\"{s}\" endDate=\"{e}\">\n   <FileReference path=\"/workout-routes/route_{}.gpx\"/>\n  </WorkoutRoute>\n </Workout>", &s[..10])?;
        } else {
            writeln!(self.w, " <Workout workoutActivityType=\"HKWorkoutActivityType{kind}\" duration=\"{dur}\" durationUnit=\"min\" totalDistance=\"{}\" totalDistanceUnit=\"mi\" totalEnergyBurned=\"{}\" totalEnergyBurnedUnit=\"kcal\" sourceName=\"{WATCH}\" creationDate=\"{e}\" startDate=\"{s}\" endDate=\"{e}\"/>", meters as f64 / 1609.344, tenths as f64 / 10.0)?;
        }
        let w = self.t.truth.workouts.entry(kind.to_owned()).or_default();
        w.count += 1;
        w.duration_min += secs as f64 / 60.0;
        w.energy_kcal += tenths as f64 / 10.0;
        w.distance_km += meters as f64 / 1000.0;
        self.t.truth.records += 1;
        Ok(())
    }
}

fn write_xml<W: Write>(w: &mut CountingWriter<W>, opts: &AppleOptions) -> io::Result<Truth> {
    header(w, opts.broken_dtd)?;
    let mut g = Gen {
        w,
        rng: Rng::new(opts.seed),
        t: TruthBuilder::default(),
    };
    let first = days_from_civil(2023, 1, 1);
    let mut index = 0u32;
    loop {
        let done = match opts.target_bytes {
            Some(target) => g.w.count >= target,
            None => index >= opts.days,
        };
        if done {
            break;
        }
        // Travel every 30 days: UTC-7 then UTC+2, so local days differ from UTC days.
        let off = if (index / 30).is_multiple_of(2) {
            -420
        } else {
            120
        };
        g.day(
            &Day {
                day: first + index as i32,
                off,
            },
            index,
        )?;
        index += 1;
    }
    g.w.write_all(b"</HealthData>\n")?;
    let bytes = g.w.count;
    Ok(g.t.finish(bytes))
}
