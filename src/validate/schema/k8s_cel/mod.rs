//! The Kubernetes CEL libraries, offline: the functions the apiserver adds to CEL for CRD validation
//! rules (k8s.io/apiserver/pkg/cel/library, Kubernetes 1.36, the minor kgitops pins), registered as
//! custom functions in the `cel` crate's environment with the apiserver's semantics.
//!
//! Owned here: quantities (`quantity()`, `isQuantity()` and the quantity methods; parsing is
//! src/validate/quantity.rs'), lists (`isSorted`, `sum`, `min`, `max`, list `indexOf` /
//! `lastIndexOf`), regex `find`/`findAll`, URLs (`url()`, `isURL()`, getters), IPs and CIDRs
//! (`ip()`, `cidr()`, ...), semantic versions (`semver()`, `isSemver()`, ...), named formats
//! (`format.dns1123Label().validate(s)`, ...) and cel-go's sets extension (`sets.contains`,
//! `sets.equivalent`, `sets.intersects`). The CEL strings and lists extensions come with the crate
//! (src/validate/schema/validations.rs registers them).
//!
//! Not here, so reported as "cannot check offline" by validations.rs: `format.datetime()`,
//! two-variable comprehensions, durations/timestamps, and the authorizer library (never available
//! to CRD rules).
//!
//! Errors: each function fails as the apiserver's does (same conditions; messages are the
//! apiserver's where a finding shows them), as a crate `ExecutionError::FunctionError`.

mod format;
mod lists;
mod net;
mod quantity;
mod semver;
mod url;

use cel::{DeclarationError, Env, ExecutionError};

/// Registers every library of this module on `env`. Fails only if the crate already declares one
/// of these overloads (a crate upgrade that grew one: a unit test catches it).
pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    quantity::register(env)?;
    lists::register(env)?;
    net::register(env)?;
    url::register(env)?;
    semver::register(env)?;
    format::register(env)?;
    Ok(())
}

/// A function's evaluation error, as the apiserver words it.
fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

/// Implements the crate's `Val` for an opaque, `'static`, comparable-for-equality Kubernetes type.
macro_rules! opaque_val {
    ($ty:ty, $cel_type:expr, |$a:ident, $b:ident| $equals:expr) => {
        impl cel::common::value::Val for $ty {
            fn get_type(&self) -> &cel::common::types::Type {
                $cel_type
            }
            fn cel_type() -> &'static cel::common::types::Type {
                $cel_type
            }
            fn equals(&self, other: &dyn cel::common::value::Val) -> bool {
                other.downcast_ref::<$ty>().is_some_and(|$b| {
                    let $a = self;
                    $equals
                })
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn cel::common::value::Val + 'v> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
        }
        impl cel::common::value::StaticVal for $ty {}
    };
}
use opaque_val;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cel::{Context, Env, Value};

    /// Evaluates `expr` in an environment like validations.rs' (stdlib, strings, lists, these).
    pub(super) fn eval(expr: &str) -> Result<Value, String> {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .map_err(|e| e.to_string())?;
        env.add_extension(cel::extensions::lists)
            .map_err(|e| e.to_string())?;
        super::register(&mut env).map_err(|e| format!("registration: {e}"))?;
        let program = env.compile(expr).map_err(|e| e.to_string())?;
        let ctx = Context::with_env(Arc::new(env));
        program.execute(&ctx).map_err(|e| e.to_string())
    }

    /// Asserts each expression evaluates to `true`.
    pub(super) fn all_true(exprs: &[&str]) {
        for e in exprs {
            assert_eq!(eval(e), Ok(Value::Bool(true)), "{e}");
        }
    }

    /// Asserts each expression fails with an error containing the text.
    pub(super) fn all_fail(cases: &[(&str, &str)]) {
        for (e, text) in cases {
            match eval(e) {
                Err(m) => assert!(m.contains(text), "{e}: {m}"),
                Ok(v) => panic!("{e}: expected an error, got {v:?}"),
            }
        }
    }

    #[test]
    fn registers_on_the_crate_s_environment_without_conflicts() {
        assert_eq!(eval("true"), Ok(Value::Bool(true)));
    }
}
