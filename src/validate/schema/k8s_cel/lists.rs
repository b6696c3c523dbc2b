//! The Kubernetes lists library (`lists.go`: `isSorted()`, `sum()`, `min()`, `max()`,
//! `indexOf(x)`, `lastIndexOf(x)` on lists), the regex library (`regex.go`: `find`, `findAll` on
//! strings) and cel-go's sets extension (`sets.contains`, `sets.equivalent`, `sets.intersects`),
//! which Kubernetes enables from 1.29.

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelInt, CelList, CelString, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::error;

/// A function's arguments, as many as its overload declares.
fn take<'b, 'v, const N: usize>(args: Vec<CowVal<'b, 'v>>) -> Result<[CowVal<'b, 'v>; N], ExecutionError> {
    args.try_into()
        .map_err(|args: Vec<_>| ExecutionError::invalid_argument_count(N, args.len()))
}

/// The elements of a list argument, borrowed.
fn elements<'b, 'v>(
    list: &'b (dyn Val + 'v),
    function: &str,
) -> Result<Vec<&'b (dyn Val + 'v)>, ExecutionError> {
    let iterable = list
        .as_iterable()
        .ok_or_else(|| error(function, format!("{} is not a list", list.get_type().name())))?;
    let mut items = iterable.iter();
    let mut out = Vec::new();
    while let Some(item) = items.next() {
        out.push(item);
    }
    Ok(out)
}

/// `a.Compare(b)` as cel-go's lists library uses it: `None` when the two do not compare (the
/// library then treats them as not out of order).
fn compare(a: &dyn Val, b: &dyn Val) -> Option<Ordering> {
    a.as_comparer().and_then(|c| c.compare(b).ok())
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload("indexOf", "list_index_of", LIST_TYPE, vec![DYN_TYPE], index_of)?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    cel::add_member_overload!(env, fn find: (CelString, CelString) -> Result<CelString>, name = "find", id = "string_find_string")?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(())
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(args)?;
    let items = elements(list.as_ref(), "isSorted")?;
    let sorted = items
        .windows(2)
        .all(|w| compare(w[0], w[1]) != Some(Ordering::Greater));
    Ok(CowVal::owned(CelBool::from(sorted)))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(args)?;
    let items = elements(list.as_ref(), "sum")?;
    let Some((first, rest)) = items.split_first() else {
        // The apiserver starts from the element type's zero; an empty list's element type is not
        // known here, and 0 equals 0.0 and 0u in CEL.
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    let mut acc: Box<dyn Val + 'v> = first.clone_as_boxed();
    for item in rest {
        let adder = acc.as_adder().ok_or_else(|| {
            error(
                "sum",
                format!("no such overload: {} + ...", acc.get_type().name()),
            )
        })?;
        let next = adder.add(*item)?.into_owned();
        acc = next;
    }
    Ok(CowVal::Owned(acc))
}

/// `min()`/`max()`: the first element that no later one beats (`prefer` is the comparison result
/// that makes the later one win).
fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    name: &str,
    prefer: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(args)?;
    let items = elements(list.as_ref(), name)?;
    let mut best: Option<&(dyn Val + 'v)> = None;
    for item in items {
        best = match best {
            Some(b) if compare(b, item) != Some(prefer) => Some(b),
            _ => Some(item),
        };
    }
    best.map(|b| CowVal::Owned(b.clone_as_boxed()))
        .ok_or_else(|| error(name, format!("{name} called on empty list")))
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "min", Ordering::Greater)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "max", Ordering::Less)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list, x] = take(args)?;
    let items = elements(list.as_ref(), "indexOf")?;
    let i = items.iter().position(|item| item.equals(x.as_ref()));
    Ok(CowVal::owned(CelInt::from(i.map_or(-1, |i| i as i64))))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list, x] = take(args)?;
    let items = elements(list.as_ref(), "lastIndexOf")?;
    let i = items.iter().rposition(|item| item.equals(x.as_ref()));
    Ok(CowVal::owned(CelInt::from(i.map_or(-1, |i| i as i64))))
}

/// Go's `regexp.Compile` through the regex crate (both RE2 syntax), with the apiserver's message.
fn regex(pattern: &str, function: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| error(function, format!("Illegal regex: {e}")))
}

fn find(s: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelString<'static>, ExecutionError> {
    let re = regex(pattern.inner(), "find")?;
    Ok(re
        .find(s.inner())
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
        .into())
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = |v: &CowVal<'b, 'v>| {
        v.downcast_ref::<CelString>()
            .map(|s| s.inner().to_string())
            .ok_or_else(|| error("findAll", "expects strings"))
    };
    let s = text(&args[0])?;
    let pattern = text(&args[1])?;
    // Go's FindAllString(s, n): n < 0 all matches, else at most n.
    let limit = match args.get(2) {
        Some(n) => *n
            .downcast_ref::<CelInt>()
            .ok_or_else(|| error("findAll", "expects an int limit"))?
            .inner(),
        None => -1,
    };
    let re = regex(&pattern, "findAll")?;
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let found: Vec<Box<dyn Val + 'v>> = re
        .find_iter(&s)
        .take(take)
        .map(|m| Box::new(CelString::from(m.as_str().to_string())) as Box<dyn Val + 'v>)
        .collect();
    Ok(CowVal::owned(CelList::from(found)))
}

/// Every element of `sub` is in `list` (cel-go's `setsContains`).
fn contains_all(list: &[&dyn Val], sub: &[&dyn Val]) -> bool {
    sub.iter().all(|x| list.iter().any(|e| e.equals(*x)))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take(args)?;
    let (a, b) = (
        elements(a.as_ref(), "sets.contains")?,
        elements(b.as_ref(), "sets.contains")?,
    );
    Ok(CowVal::owned(CelBool::from(contains_all(&a, &b))))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take(args)?;
    let (a, b) = (
        elements(a.as_ref(), "sets.equivalent")?,
        elements(b.as_ref(), "sets.equivalent")?,
    );
    Ok(CowVal::owned(CelBool::from(
        contains_all(&a, &b) && contains_all(&b, &a),
    )))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take(args)?;
    let (a, b) = (
        elements(a.as_ref(), "sets.intersects")?,
        elements(b.as_ref(), "sets.intersects")?,
    );
    Ok(CowVal::owned(CelBool::from(
        b.iter().any(|x| a.iter().any(|e| e.equals(*x))),
    )))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn list_functions_as_the_apiserver_evaluates_them() {
        all_true(&[
            "[1, 2, 2, 3].isSorted() && ![2, 1].isSorted() && [].isSorted()",
            "['a', 'b'].isSorted() && !['b', 'a'].isSorted()",
            "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0",
            "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
            "['b', 'a'].min() == 'a'",
            "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
            "'abc'.indexOf('c') == 2",
            "sets.contains([1, 2, 3], [3, 1]) && !sets.contains([1], [2])",
            "sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent([1], [1, 2])",
            "sets.intersects([1, 2], [2, 5]) && !sets.intersects([1], [])",
        ]);
        all_fail(&[
            ("[].min()", "min called on empty list"),
            ("[].max()", "max called on empty list"),
        ]);
    }

    #[test]
    fn regex_find_as_the_apiserver_evaluates_it() {
        all_true(&[
            "'abc 123'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
            "'123 abc 456'.findAll('[0-9]+') == ['123', '456']",
            "'123 abc 456'.findAll('[0-9]+', 1) == ['123'] && 'a1'.findAll('[0-9]', 0) == []",
        ]);
        all_fail(&[("'x'.find('[')", "Illegal regex")]);
    }
}
