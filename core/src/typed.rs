//! Predicates and classifiers on one error type, held without that type.
//!
//! Shared resilience values (a breaker, a retry policy, a fallback) serve
//! calls of many error types, so they cannot be generic over one. A
//! classifier given for one type is kept here behind `&dyn Any`: it answers
//! for errors of its own type and stays silent (`None`) for every other, and
//! the caller then applies its default.

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::runtime::{MaybeSend, MaybeSync};

#[cfg(not(target_arch = "wasm32"))]
type DynFn<R> = dyn Fn(&dyn Any) -> Option<R> + Send + Sync;
#[cfg(target_arch = "wasm32")]
type DynFn<R> = dyn Fn(&dyn Any) -> Option<R>;

/// A function of `&A` for one `A` chosen at construction, callable with any
/// `&dyn Any`: it answers only for values of type `A`.
pub(crate) struct Typed<R>(Arc<DynFn<R>>);

impl<R> Clone for Typed<R> {
    fn clone(&self) -> Self {
        Typed(self.0.clone())
    }
}

impl<R> fmt::Debug for Typed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Typed")
    }
}

impl<R: 'static> Typed<R> {
    /// Wraps `f`, which answers for values of type `A`, seen as themselves
    /// or as a `ManuallyDrop<A>` (as a retry shows its errors: the vtable
    /// of a `&dyn Any` of `A` itself would link `A`'s drop).
    // On wasm32 the closure need not be `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub(crate) fn new<A: 'static>(f: impl Fn(&A) -> R + MaybeSend + MaybeSync + 'static) -> Self {
        Typed(Arc::new(move |value: &dyn Any| {
            let value = value.downcast_ref::<A>().or_else(|| {
                value
                    .downcast_ref::<ManuallyDrop<A>>()
                    .map(|value| &**value)
            });
            value.map(&f)
        }))
    }

    /// `f(value)` when `value` has the type `f` was given for, else `None`.
    #[inline]
    pub(crate) fn apply<A: 'static>(&self, value: &A) -> Option<R> {
        (self.0)(value)
    }

    /// [`apply`](Self::apply) to a value already behind `&dyn Any`.
    pub(crate) fn apply_any(&self, value: &dyn Any) -> Option<R> {
        (self.0)(value)
    }
}
