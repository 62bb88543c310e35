//! Unit normalisation: which written units measure the same quantity and the affine map between
//! them (glucose mg/dL and mmol/L incl. Apple's `mmol<M>/L`, kcal/Cal/kJ, km/mi/m/ft, kg/lb,
//! degC/degF, s/min/h). Units that do not convert are kept apart, never mixed.

/// What a unit measures; only units of the same dimension convert into each other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dim {
    /// Length, base metre.
    Length,
    /// Mass, base kilogram.
    Mass,
    /// Energy, base kilocalorie.
    Energy,
    /// Temperature, base degree Celsius.
    Temperature,
    /// Duration, base second.
    Time,
    /// Volume, base litre.
    Volume,
    /// Glucose concentration, base mg/dL (molar forms convert through the molar mass).
    Glucose,
    /// Anything else: converts only to the identical spelling.
    Other,
}

/// How one written unit maps onto its dimension's base: `base = value * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitInfo {
    /// The dimension.
    pub dim: Dim,
    /// Multiplier to the base unit.
    pub scale: f64,
    /// Additive term to the base unit (temperatures only).
    pub offset: f64,
}

/// Molar mass of glucose used for a bare `mmol/L` glucose reading: 18.016 mg/dL per mmol/L.
pub const GLUCOSE_MG_DL_PER_MMOL_L: f64 = 18.016;

const fn lin(dim: Dim, scale: f64) -> UnitInfo {
    UnitInfo {
        dim,
        scale,
        offset: 0.0,
    }
}

/// Classifies a written unit. `glucose` says the metric is blood glucose, where `mmol/L` and
/// `mg/dL` are the same quantity; elsewhere they stay separate units.
pub fn unit_info(unit: &str, glucose: bool) -> UnitInfo {
    use Dim::*;
    match unit {
        "m" => lin(Length, 1.0),
        "km" => lin(Length, 1000.0),
        "cm" => lin(Length, 0.01),
        "mm" => lin(Length, 0.001),
        "mi" => lin(Length, 1609.344),
        "ft" => lin(Length, 0.3048),
        "in" => lin(Length, 0.0254),
        "yd" => lin(Length, 0.9144),
        "kg" => lin(Mass, 1.0),
        "g" => lin(Mass, 0.001),
        "lb" | "lbs" => lin(Mass, 0.453_592_37),
        "oz" => lin(Mass, 0.028_349_523_125),
        "st" => lin(Mass, 6.350_293_18),
        "kcal" | "Cal" | "Kcal" => lin(Energy, 1.0),
        "kJ" => lin(Energy, 1.0 / 4.184),
        "cal" => lin(Energy, 0.001),
        "degC" | "°C" | "Cel" | "C" => lin(Temperature, 1.0),
        "degF" | "°F" | "[degF]" | "F" => UnitInfo {
            dim: Temperature,
            scale: 5.0 / 9.0,
            offset: -32.0 * 5.0 / 9.0,
        },
        "ms" => lin(Time, 0.001),
        "s" | "sec" => lin(Time, 1.0),
        "min" => lin(Time, 60.0),
        "hr" | "h" => lin(Time, 3600.0),
        "mL" | "ml" => lin(Volume, 0.001),
        "L" | "l" => lin(Volume, 1.0),
        "fl_oz_us" => lin(Volume, 0.029_573_529_562_5),
        "mg/dL" | "mg/dl" if glucose => lin(Glucose, 1.0),
        "mmol/L" | "mmol/l" if glucose => lin(Glucose, GLUCOSE_MG_DL_PER_MMOL_L),
        _ => molar_glucose(unit).unwrap_or(lin(Other, 1.0)),
    }
}

/// Apple's `mmol<180.15588000005408>/L`: mmol/L with the molar mass in g/mol, so one mmol/L is
/// `M / 10` mg/dL.
fn molar_glucose(unit: &str) -> Option<UnitInfo> {
    let inner = unit.strip_prefix("mmol<")?.strip_suffix(">/L")?;
    let molar_mass: f64 = inner.parse().ok()?;
    (molar_mass.is_finite() && molar_mass > 0.0).then(|| lin(Dim::Glucose, molar_mass / 10.0))
}

/// The linear map `(a, b)` with `to = a * from + b`, or `None` when the units do not convert.
pub fn conversion(from: &str, to: &str, glucose: bool) -> Option<(f64, f64)> {
    if from == to {
        return Some((1.0, 0.0));
    }
    let f = unit_info(from, glucose);
    let t = unit_info(to, glucose);
    if f.dim != t.dim || f.dim == Dim::Other {
        return None;
    }
    Some((f.scale / t.scale, (f.offset - t.offset) / t.scale))
}

/// The unit as shown to users: Apple's molar glucose form reads as `mmol/L`.
pub fn display_unit(unit: &str) -> &str {
    if molar_glucose(unit).is_some() {
        "mmol/L"
    } else {
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(from: &str, to: &str, v: f64, glucose: bool) -> f64 {
        let (a, b) = conversion(from, to, glucose).unwrap();
        a * v + b
    }

    #[test]
    fn common_conversions_give_the_textbook_values() {
        assert!((conv("mi", "km", 1.0, false) - 1.609_344).abs() < 1e-12);
        assert!((conv("degF", "degC", 212.0, false) - 100.0).abs() < 1e-9);
        assert!((conv("degC", "degF", 37.0, false) - 98.6).abs() < 1e-9);
        assert!((conv("lb", "kg", 1.0, false) - 0.453_592_37).abs() < 1e-12);
        assert_eq!(conv("Cal", "kcal", 12.5, false), 12.5);
        assert!((conv("mmol<180.15588000005408>/L", "mg/dL", 5.0, true) - 90.077_94).abs() < 1e-4);
        assert!((conv("mg/dL", "mmol/L", 81.0, true) - 4.496).abs() < 1e-3);
        assert!(conversion("mg/dL", "mmol/L", false).is_none());
        assert!(conversion("count", "km", false).is_none());
        assert_eq!(display_unit("mmol<180.15588000005408>/L"), "mmol/L");
    }
}
