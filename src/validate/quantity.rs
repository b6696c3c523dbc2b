//! Sizes as Kubernetes and the JVM write them: resource quantities (`16Gi`, `500m`, `1e3`) and JVM
//! memory sizes (`3072m`, `3g`).
//!
//! Quantities are exact, as apimachinery keeps them (the CEL quantity library, in
//! src/validate/schema/k8s_cel, compares and adds them as the apiserver does); `value()` is the
//! approximate float for the rules that only compare sizes (storage shrink, heap against limit).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Why a string is not a quantity or JVM size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {what}")]
pub struct SizeError {
    input: String,
    what: &'static str,
}

/// A parsed Kubernetes resource quantity (`k8s.io/apimachinery/pkg/api/resource.Quantity`), exact.
///
/// The value is `unscaled × 10^exp`, kept as Go keeps it (not normalized): the CEL quantity
/// library's answers depend on it. Go holds a quantity either as an `int64Amount` (an int64 and a
/// base-10 scale) or, when that cannot hold it exactly, as an arbitrary-precision decimal rounded
/// up to nano units; only the former is an integer for `isInteger()`/`asInteger()` (so `1000m` and
/// `1.5Gi` are not, though their values are whole). `small` says which representation Go uses.
/// Decimals whose digits do not fit an `i128` (more than ~28 significant digits) are refused.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    unscaled: i128,
    exp: i32,
    small: bool,
}

/// Go's `maxInt64Factors`: the decimal digits an int64 always holds.
const MAX_INT64_FACTORS: i32 = 18;
/// Go's `Nano` scale: the smallest unit a decimal quantity is rounded (up) to.
const NANO: i32 = -9;

/// What `parseQuantityString` splits a quantity into.
struct Parts<'a> {
    positive: bool,
    /// The number as written, sign included, up to the suffix.
    value: &'a str,
    /// The integer digits without leading zeros (`0` when none).
    num: &'a str,
    /// The fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

/// A port of apimachinery's `parseQuantityString`: `[+-] digits [. digits] suffix`, where the suffix
/// is letters of `eEinumkKMGTP` then an optional signed integer.
fn split_quantity(s: &str) -> Option<Parts<'_>> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            positive,
            value: "0",
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if pos >= end {
        return Some(Parts {
            positive,
            value: s,
            num,
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
        if pos >= end {
            return Some(Parts {
                positive,
                value: s,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    Some(Parts {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// apimachinery's `suffixHandler.interpret`: (base, exponent, format).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, Format::DecimalSI));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, Format::BinarySI));
    }
    let rest = suffix.strip_prefix(['e', 'E'])?;
    // strconv.ParseInt: an optional sign, then digits; Go then truncates to int32.
    let parsed: i64 = rest.parse().ok()?;
    Some((10, parsed as i32, Format::DecimalExponent))
}

fn pow10_i128(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    /// Parses a quantity exactly as `resource.ParseQuantity` does (grammar, int64 fast path,
    /// decimals rounded up to nano units, binary-suffixed values capped at 2^63-1).
    pub fn parse(text: &str) -> Result<Quantity, SizeError> {
        let err = || SizeError {
            input: text.to_string(),
            what: "quantity",
        };
        if text.is_empty() {
            return Err(err());
        }
        if text == "0" {
            return Ok(Quantity {
                unscaled: 0,
                exp: 0,
                small: true,
            });
        }
        let parts = split_quantity(text).ok_or_else(err)?;
        let (base, exponent, format) = interpret(parts.suffix).ok_or_else(err)?;
        let digits = |s: &str| s.len() as i32;
        let mut mantissa: i64 = 1;
        let (mut scale, precision) = match format {
            Format::DecimalExponent | Format::DecimalSI => (
                exponent,
                MAX_INT64_FACTORS - (digits(parts.num) + digits(parts.denom)),
            ),
            Format::BinarySI => {
                if exponent >= 0 && parts.denom.is_empty() {
                    mantissa = 1i64 << exponent;
                    (0, 15 - digits(parts.num) - exponent * 3 / 10 - 1)
                } else {
                    (0, -1)
                }
            }
        };
        if precision >= 0 {
            scale -= digits(parts.denom);
            if scale >= NANO {
                let shifted = format!("{}{}", parts.num, parts.denom);
                let value: i64 = shifted.parse().map_err(|_| err())?;
                if let Some(result) = value.checked_mul(mantissa) {
                    let result = if parts.positive { result } else { -result };
                    return Ok(Quantity {
                        unscaled: i128::from(result),
                        exp: scale,
                        small: true,
                    });
                }
            }
        }
        // The arbitrary-precision path (inf.Dec), in i128.
        let unsigned = parts.value.trim_start_matches(['+', '-']);
        let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let mut amount: i128 = 0;
        for d in int_part.bytes().chain(frac_part.bytes()) {
            if !d.is_ascii_digit() {
                return Err(err());
            }
            amount = amount
                .checked_mul(10)
                .and_then(|a| a.checked_add(i128::from(d - b'0')))
                .ok_or_else(err)?;
        }
        let mut exp = -(frac_part.len() as i32);
        let cap = i128::from(i64::MAX);
        let mut capped = false;
        if base == 10 {
            exp = exp.saturating_add(exponent);
        } else {
            match amount.checked_mul(1i128 << exponent) {
                Some(a) => amount = a,
                // Only binary suffixes get here, and they are capped below anyway.
                None => capped = true,
            }
        }
        if !capped && amount != 0 {
            // Round up (away from zero) to nano units: the scale becomes exactly nano.
            if exp > NANO {
                let factor = u32::try_from(exp - NANO).ok().and_then(pow10_i128);
                match factor.and_then(|f| amount.checked_mul(f)) {
                    Some(a) => amount = a,
                    None if format == Format::BinarySI => capped = true,
                    None => return Err(err()),
                }
            } else if exp < NANO {
                amount = match u32::try_from(NANO - exp).ok().and_then(pow10_i128) {
                    Some(f) => amount / f + i128::from(amount % f != 0),
                    None => 1,
                };
            }
            exp = NANO;
        }
        let over_cap = || {
            let value = Quantity {
                unscaled: amount,
                exp,
                small: false,
            };
            value.cmp_exact(&Quantity {
                unscaled: cap,
                exp: 0,
                small: false,
            }) == Ordering::Greater
        };
        if format == Format::BinarySI && (capped || over_cap()) {
            amount = cap;
            exp = 0;
        }
        let amount = if parts.positive { amount } else { -amount };
        Ok(Quantity {
            unscaled: amount,
            exp,
            small: false,
        })
    }

    /// A quantity from a manifest value: a string, or a plain JSON number (which the apiserver
    /// accepts for quantities too).
    pub fn from_value(value: &Value) -> Result<Quantity, SizeError> {
        match value {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            other => Err(SizeError {
                input: other.to_string(),
                what: "quantity",
            }),
        }
    }

    /// `resource.NewQuantity(n, DecimalExponent)`.
    pub fn from_int(n: i64) -> Quantity {
        Quantity {
            unscaled: i128::from(n),
            exp: 0,
            small: true,
        }
    }

    /// The value in base units (bytes for memory and storage, cores for CPU), approximately:
    /// `AsApproximateFloat64`, bit for bit.
    pub fn value(self) -> f64 {
        if self.exp == 0 {
            return self.unscaled as f64;
        }
        self.unscaled as f64 * go_pow10(self.exp)
    }

    /// `AsInt64`: the value as an int64, when Go holds it as an int64 amount with a non-negative
    /// scale that does not overflow.
    pub fn as_int64(self) -> Option<i64> {
        if !self.small || self.exp < 0 {
            return None;
        }
        let value = i64::try_from(self.unscaled).ok()?;
        let factor = 10i64.checked_pow(u32::try_from(self.exp).ok()?)?;
        value.checked_mul(factor)
    }

    /// -1, 0 or 1.
    pub fn sign(self) -> i64 {
        self.unscaled.signum() as i64
    }

    /// `Quantity.Add` (`Sub` with `negate`): int64 arithmetic while both are int64 amounts and it
    /// does not overflow, else decimal.
    fn add_signed(self, other: Quantity, negate: bool) -> Quantity {
        let b = Quantity {
            unscaled: if negate { -other.unscaled } else { other.unscaled },
            ..other
        };
        if self.small
            && b.small
            && let Some(sum) = int64_add(self, b)
        {
            return sum;
        }
        // Decimal: the result has the finer of the two scales.
        let exp = self.exp.min(b.exp);
        let scaled = |q: Quantity| {
            u32::try_from(q.exp - exp)
                .ok()
                .and_then(pow10_i128)
                .and_then(|f| q.unscaled.checked_mul(f))
        };
        match (scaled(self), scaled(b)) {
            (Some(x), Some(y)) => match x.checked_add(y) {
                Some(sum) => Quantity {
                    unscaled: sum,
                    exp,
                    small: false,
                },
                None => Quantity {
                    unscaled: i128::MAX,
                    exp,
                    small: false,
                },
            },
            // Beyond i128: saturate; no manifest comes near.
            _ => Quantity {
                unscaled: i128::MAX.saturating_mul(self.sign().max(b.sign()) as i128),
                exp: 0,
                small: false,
            },
        }
    }

    /// `Quantity.Cmp`: exact.
    pub fn cmp_exact(&self, other: &Quantity) -> Ordering {
        let exp = self.exp.min(other.exp);
        let scaled = |q: &Quantity| {
            u32::try_from(q.exp - exp)
                .ok()
                .and_then(pow10_i128)
                .and_then(|f| q.unscaled.checked_mul(f))
        };
        match (scaled(self), scaled(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => match self.sign().cmp(&other.sign()) {
                Ordering::Equal => self
                    .value()
                    .partial_cmp(&other.value())
                    .unwrap_or(Ordering::Equal),
                o => o,
            },
        }
    }
}

/// `int64Amount.Add`: `None` when it overflows (Go then switches to decimals).
fn int64_add(a: Quantity, b: Quantity) -> Option<Quantity> {
    let (av, bv) = (i64::try_from(a.unscaled).ok()?, i64::try_from(b.unscaled).ok()?);
    let small = |v: i64, exp: i32| Quantity {
        unscaled: i128::from(v),
        exp,
        small: true,
    };
    let up = |v: i64, by: i32| {
        10i64
            .checked_pow(u32::try_from(by).ok()?)
            .and_then(|f| v.checked_mul(f))
    };
    if bv == 0 {
        return Some(a);
    }
    if av == 0 {
        return Some(b);
    }
    match a.exp.cmp(&b.exp) {
        Ordering::Equal => Some(small(av.checked_add(bv)?, a.exp)),
        Ordering::Greater => Some(small(up(av, a.exp - b.exp)?.checked_add(bv)?, b.exp)),
        Ordering::Less => Some(small(av.checked_add(up(bv, b.exp - a.exp)?)?, a.exp)),
    }
}

/// Go's `math.Pow10`, table for table, so that approximate floats match the apiserver's bits.
fn go_pow10(n: i32) -> f64 {
    const TAB: [f64; 32] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
        1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    ];
    const POS32: [f64; 10] = [1e0, 1e32, 1e64, 1e96, 1e128, 1e160, 1e192, 1e224, 1e256, 1e288];
    const NEG32: [f64; 11] = [
        1e-0, 1e-32, 1e-64, 1e-96, 1e-128, 1e-160, 1e-192, 1e-224, 1e-256, 1e-288, 1e-320,
    ];
    if (0..=308).contains(&n) {
        let n = n as usize;
        return POS32[n / 32] * TAB[n % 32];
    }
    if (-323..=0).contains(&n) {
        let m = (-n) as usize;
        return NEG32[m / 32] / TAB[m % 32];
    }
    if n > 0 { f64::INFINITY } else { 0.0 }
}

/// `Quantity.Add`.
impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, other: Quantity) -> Quantity {
        self.add_signed(other, false)
    }
}

/// `Quantity.Sub`.
impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, other: Quantity) -> Quantity {
        self.add_signed(other, true)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.cmp_exact(other) == Ordering::Equal
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp_exact(other))
    }
}

/// Parses a JVM memory size as `-Xmx`/`-Xms` take it: digits with an optional `k`, `m`, `g` or `t`
/// (either case), powers of 1024. Returns bytes.
pub fn parse_jvm_size(text: &str) -> Result<f64, SizeError> {
    let err = || SizeError {
        input: text.to_string(),
        what: "JVM memory size",
    };
    let (digits, multiplier) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1024f64),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 1024f64.powi(2)),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 1024f64.powi(3)),
        Some(b't' | b'T') => (&text[..text.len() - 1], 1024f64.powi(4)),
        _ => (text, 1.0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: f64 = digits.parse().map_err(|_| err())?;
    Ok(n * multiplier)
}

/// Bytes for messages: `3 GiB`, `1.5 GiB`, `512 MiB`, `100 B`.
pub struct Bytes(pub f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut value = self.0;
        let mut unit = "B";
        for u in UNITS {
            if value.abs() < 1024.0 {
                break;
            }
            value /= 1024.0;
            unit = u;
        }
        if (value - value.round()).abs() < 1e-9 {
            write!(f, "{} {unit}", value.round())
        } else {
            write!(f, "{value:.2} {unit}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_and_exponent_suffixes() {
        assert_eq!(Quantity::parse("16Gi").unwrap().value(), 16.0 * 1024f64.powi(3));
        assert_eq!(
            Quantity::parse("100Gi").unwrap(),
            Quantity::parse("107374182400").unwrap()
        );
        assert_eq!(Quantity::parse("500m").unwrap().value(), 0.5);
        assert_eq!(Quantity::parse("4").unwrap().value(), 4.0);
        assert_eq!(Quantity::parse("1.5G").unwrap().value(), 1.5e9);
        assert_eq!(Quantity::parse("1e3").unwrap().value(), 1000.0);
        assert_eq!(Quantity::parse("2E-1").unwrap().value(), 0.2);
        assert_eq!(Quantity::parse(".5Ki").unwrap().value(), 512.0);
        assert_eq!(Quantity::parse("-1k").unwrap().value(), -1000.0);
        assert_eq!(Quantity::from_value(&serde_json::json!(4)).unwrap().value(), 4.0);
    }

    #[test]
    fn refuses_what_the_apiserver_refuses() {
        for bad in [
            "", "16GB", "16 Gi", "1.2.3", "abc", "1e", "1e+", "16gi", "0x10", "1mi",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be refused");
        }
        // apimachinery's grammar makes every part optional: these are zero, not errors.
        for zero in [".", "Gi", "+", "-", "E"] {
            assert_eq!(Quantity::parse(zero).map(|q| q.sign()), Ok(0), "{zero:?}");
        }
        assert_eq!(
            Quantity::parse("16GB").unwrap_err().to_string(),
            "\"16GB\" is not a valid quantity"
        );
    }

    #[test]
    fn keeps_go_s_representation_for_the_cel_library() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        // int64 amounts with a non-negative scale are integers; milli and decimals are not.
        assert_eq!(q("1Ki").as_int64(), Some(1024));
        assert_eq!(q("1e3").as_int64(), Some(1000));
        assert_eq!(q("5").as_int64(), Some(5));
        assert_eq!(q("1000m").as_int64(), None);
        assert_eq!(q("1.5Gi").as_int64(), None);
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("1e30").as_int64(), None);
        // Decimals round up to nano units; binary values are capped at 2^63-1.
        assert_eq!(q("1e-12"), q("1n"));
        assert_eq!(q("-1e-12"), q("-1n"));
        assert_eq!(q("100000000Ei"), q("9223372036854775807"));
        assert!(q("1e30") > q("100000000Ei"));
        assert_eq!(q("0.1").value(), 0.1);
        assert_eq!(q("1500m").value(), 1.5);
        // Add/sub: int64 while exact, else decimal.
        assert_eq!((q("1") + q("500m")).as_int64(), None);
        assert_eq!((q("1") + q("500m")), q("1.5"));
        assert_eq!((q("1k") + Quantity::from_int(1)).as_int64(), Some(1001));
        assert_eq!((q("1Gi") - q("1Gi")).sign(), 0);
        assert_eq!((q("1") - q("2")).sign(), -1);
    }

    #[test]
    fn jvm_sizes_are_powers_of_1024() {
        assert_eq!(parse_jvm_size("3072m").unwrap(), 3.0 * 1024f64.powi(3));
        assert_eq!(parse_jvm_size("3g").unwrap(), parse_jvm_size("3G").unwrap());
        assert_eq!(
            parse_jvm_size("3g").unwrap(),
            Quantity::parse("3Gi").unwrap().value()
        );
        assert_eq!(parse_jvm_size("1048576").unwrap(), 1024.0 * 1024.0);
        for bad in ["", "m", "3gb", "3.5g", "-1g", "3Gi"] {
            assert!(parse_jvm_size(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn prints_bytes_readably() {
        assert_eq!(Bytes(3.0 * 1024f64.powi(3)).to_string(), "3 GiB");
        assert_eq!(Bytes(1.5 * 1024f64.powi(3)).to_string(), "1.50 GiB");
        assert_eq!(Bytes(100.0).to_string(), "100 B");
    }
}
