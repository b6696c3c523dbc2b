//! The Kubernetes quantity library (`quantity.go`): `quantity(string)`, `isQuantity(string)`,
//! `sign(quantity)`, and on a quantity `isGreaterThan(q)`, `isLessThan(q)`, `compareTo(q)`,
//! `asApproximateFloat()`, `asInteger()`, `isInteger()`, `add(q|int)`, `sub(q|int)`. Values are
//! src/validate/quantity.rs' exact `Quantity`, which keeps Go's representation.

use cel::common::types::{CelBool, CelDouble, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};

use super::{error, opaque_val};
use crate::validate::quantity::Quantity;

static QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");

/// A quantity as a CEL value.
#[derive(Clone, Debug)]
pub(super) struct QuantityVal(Quantity);

opaque_val!(QuantityVal, &QUANTITY_TYPE, |a, b| a.0 == b.0);

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn quantity: (CelString) -> Result<QuantityVal>, name = "quantity", id = "string_to_quantity")?;
    cel::add_overload!(env, fn is_quantity: (CelString) -> CelBool, name = "isQuantity", id = "is_quantity_string")?;
    // `sign` is a global function (`sign(q)`), unlike the other quantity functions.
    cel::add_overload!(env, fn sign: (QuantityVal) -> CelInt, name = "sign", id = "quantity_sign")?;
    cel::add_member_overload!(env, fn greater: (QuantityVal, QuantityVal) -> CelBool, name = "isGreaterThan", id = "quantity_is_greater_than")?;
    cel::add_member_overload!(env, fn less: (QuantityVal, QuantityVal) -> CelBool, name = "isLessThan", id = "quantity_is_less_than")?;
    cel::add_member_overload!(env, fn compare_to: (QuantityVal, QuantityVal) -> CelInt, name = "compareTo", id = "quantity_compare_to")?;
    cel::add_member_overload!(env, fn approximate: (QuantityVal) -> CelDouble, name = "asApproximateFloat", id = "quantity_get_float")?;
    cel::add_member_overload!(env, fn as_integer: (QuantityVal) -> Result<CelInt>, name = "asInteger", id = "quantity_get_int")?;
    cel::add_member_overload!(env, fn is_integer: (QuantityVal) -> CelBool, name = "isInteger", id = "quantity_is_integer")?;
    cel::add_member_overload!(env, fn add: (QuantityVal, QuantityVal) -> QuantityVal, name = "add", id = "quantity_add")?;
    cel::add_member_overload!(env, fn add_int: (QuantityVal, CelInt) -> QuantityVal, name = "add", id = "quantity_add_int")?;
    cel::add_member_overload!(env, fn sub: (QuantityVal, QuantityVal) -> QuantityVal, name = "sub", id = "quantity_sub")?;
    cel::add_member_overload!(env, fn sub_int: (QuantityVal, CelInt) -> QuantityVal, name = "sub", id = "quantity_sub_int")?;
    Ok(())
}

fn quantity(s: &CelString<'_>) -> Result<QuantityVal, ExecutionError> {
    Quantity::parse(s.inner())
        .map(QuantityVal)
        .map_err(|e| error("quantity", e))
}

fn is_quantity(s: &CelString<'_>) -> CelBool {
    Quantity::parse(s.inner()).is_ok().into()
}

fn sign(q: &QuantityVal) -> CelInt {
    q.0.sign().into()
}

fn greater(a: &QuantityVal, b: &QuantityVal) -> CelBool {
    (a.0.cmp_exact(&b.0) == std::cmp::Ordering::Greater).into()
}

fn less(a: &QuantityVal, b: &QuantityVal) -> CelBool {
    (a.0.cmp_exact(&b.0) == std::cmp::Ordering::Less).into()
}

fn compare_to(a: &QuantityVal, b: &QuantityVal) -> CelInt {
    (a.0.cmp_exact(&b.0) as i64).into()
}

fn approximate(q: &QuantityVal) -> CelDouble {
    q.0.value().into()
}

fn as_integer(q: &QuantityVal) -> Result<CelInt, ExecutionError> {
    q.0.as_int64()
        .map(CelInt::from)
        .ok_or_else(|| error("asInteger", "cannot convert value to integer"))
}

fn is_integer(q: &QuantityVal) -> CelBool {
    q.0.as_int64().is_some().into()
}

fn add(a: &QuantityVal, b: &QuantityVal) -> QuantityVal {
    QuantityVal(a.0 + b.0)
}

fn add_int(a: &QuantityVal, b: &CelInt) -> QuantityVal {
    QuantityVal(a.0 + Quantity::from_int(*b.inner()))
}

fn sub(a: &QuantityVal, b: &QuantityVal) -> QuantityVal {
    QuantityVal(a.0 - b.0)
}

fn sub_int(a: &QuantityVal, b: &CelInt) -> QuantityVal {
    QuantityVal(a.0 - Quantity::from_int(*b.inner()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn quantities_as_the_apiserver_evaluates_them() {
        all_true(&[
            "quantity('1Gi').isGreaterThan(quantity('1G'))",
            "quantity('500m').isLessThan(quantity('1'))",
            "quantity('1Gi').compareTo(quantity('1024Mi')) == 0",
            "quantity('1k').compareTo(quantity('1')) == 1",
            "quantity('1Gi') == quantity('1024Mi')",
            "sign(quantity('-5')) == -1 && sign(quantity('0')) == 0",
            "quantity('1500m').asApproximateFloat() == 1.5",
            "quantity('1Ki').asInteger() == 1024",
            "quantity('1Ki').isInteger() && !quantity('1000m').isInteger()",
            "quantity('1').add(quantity('500m')) == quantity('1.5')",
            "quantity('1').add(2) == quantity('3')",
            "sign(quantity('1Gi').sub(quantity('1Gi'))) == 0",
            "quantity('10').sub(3).asInteger() == 7",
            "isQuantity('16Gi') && !isQuantity('16GB') && isQuantity('Gi')",
        ]);
        all_fail(&[
            ("quantity('16GB')", "not a valid quantity"),
            ("quantity('500m').asInteger()", "cannot convert value to integer"),
        ]);
    }
}
