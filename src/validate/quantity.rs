//! Sizes as Kubernetes and the JVM write them: resource quantities (`16Gi`, `500m`, `1e3`) and JVM
//! memory sizes (`3072m`, `3g`).
//!
//! Values are `f64`: the rules only compare sizes (storage shrink, heap against memory limit), and
//! every quantity a manifest realistically holds (bytes up to exabytes, milli-CPUs) is exact or
//! within a rounding error that no comparison here can notice.

use std::fmt;

use serde_json::Value;

/// Why a string is not a quantity or JVM size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {what}")]
pub struct SizeError {
    input: String,
    what: &'static str,
}

/// A parsed Kubernetes resource quantity (`k8s.io/apimachinery/pkg/api/resource.Quantity`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Quantity(f64);

impl Quantity {
    /// Parses the canonical grammar of `resource.ParseQuantity`:
    /// `[+-] digits[.digits] (Ki|Mi|Gi|Ti|Pi|Ei | m|k|M|G|T|P|E | e[+-]digits | E[+-]digits)?`.
    pub fn parse(text: &str) -> Result<Quantity, SizeError> {
        let err = || SizeError {
            input: text.to_string(),
            what: "quantity",
        };
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1.0, &text[1..]),
            Some(b'-') => (-1.0, &text[1..]),
            _ => (1.0, text),
        };
        let number_len = rest
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        // One dot at most, and at least one digit: "1", "1.", ".5", "1.5".
        if number.bytes().filter(|&b| b == b'.').count() > 1 || !number.bytes().any(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let mantissa: f64 = number.parse().map_err(|_| err())?;
        let multiplier = match suffix {
            "" => 1.0,
            "Ki" => 1024f64,
            "Mi" => 1024f64.powi(2),
            "Gi" => 1024f64.powi(3),
            "Ti" => 1024f64.powi(4),
            "Pi" => 1024f64.powi(5),
            "Ei" => 1024f64.powi(6),
            "m" => 1e-3,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "P" => 1e15,
            "E" => 1e18,
            _ => {
                let exponent = suffix.strip_prefix(['e', 'E']).ok_or_else(err)?;
                let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let exponent: i32 = exponent.parse().map_err(|_| err())?;
                10f64.powi(exponent)
            }
        };
        Ok(Quantity(sign * mantissa * multiplier))
    }

    /// A quantity from a manifest value: a string, or a plain JSON number (which the apiserver
    /// accepts for quantities too).
    pub fn from_value(value: &Value) -> Result<Quantity, SizeError> {
        match value {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => n.as_f64().map(Quantity).ok_or_else(|| SizeError {
                input: n.to_string(),
                what: "quantity",
            }),
            other => Err(SizeError {
                input: other.to_string(),
                what: "quantity",
            }),
        }
    }

    /// The value in base units (bytes for memory and storage, cores for CPU).
    pub fn value(self) -> f64 {
        self.0
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
            "", "Gi", "16GB", "16 Gi", "1.2.3", "abc", "1e", "1e+", "16gi", "0x10", ".",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            Quantity::parse("16GB").unwrap_err().to_string(),
            "\"16GB\" is not a valid quantity"
        );
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
