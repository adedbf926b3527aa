//! The settings a plain retry policy does without: a custom classifier,
//! the `on_retry` hook, observers and the operation's name.
//!
//! They live in one boxed [`Extras`] made by the first builder method that
//! sets one of them, and reached through a trait object whose vtable only
//! that method creates. So a program whose policies set none of them links
//! neither their drop glue (observer lists, boxed closures, the name) nor
//! the allocation of an empty name.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::policy::{Config, Decision};
use crate::observe::Observers;
use crate::runtime::{MaybeSend, MaybeSync};
use crate::typed::Typed;
use crate::{Error, ErrorKind};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) type OnRetry = dyn Fn(u32, ErrorKind, Duration) + Send + Sync;
#[cfg(target_arch = "wasm32")]
pub(crate) type OnRetry = dyn Fn(u32, ErrorKind, Duration);

/// The optional settings, all unset by default.
pub(crate) struct Extras {
    /// Given for `Error<E>` of one error type `E`; answers `None` (the
    /// default decides) for errors of other types and for the errors it
    /// leaves to the default.
    pub(crate) classifier: Option<Typed<Option<Decision>>>,
    pub(crate) on_retry: Option<Box<OnRetry>>,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
}

/// The one way to reach [`Extras`] behind a pointer whose drop is dynamic.
pub(crate) trait Hooks: MaybeSend + MaybeSync {
    fn get(&self) -> &Extras;
    fn get_mut(&mut self) -> &mut Extras;
}

impl Hooks for Extras {
    fn get(&self) -> &Extras {
        self
    }
    fn get_mut(&mut self) -> &mut Extras {
        self
    }
}

/// The extras of a builder, made on first use: only the builder methods
/// that set an extra call this.
pub(crate) fn make(slot: &mut Option<Box<dyn Hooks>>) -> &mut Extras {
    slot.get_or_insert_with(|| {
        Box::new(Extras {
            classifier: None,
            on_retry: None,
            name: Arc::from(""),
            observers: Observers::new(),
        })
    })
    .get_mut()
}

/// Asks the classifier in `config`'s extras about an `Error<E>` behind
/// `&dyn Any`. The loop reaches the classifier only through this function,
/// stored by the builder methods that set one, so a program without a
/// classifier does not link the asking.
pub(crate) type Classify = fn(&Config, &dyn Any) -> Option<Decision>;

/// The [`Classify`] stored with a classifier.
pub(crate) fn classify(config: &Config, error: &dyn Any) -> Option<Decision> {
    let classifier = config.extras()?.classifier.as_ref()?;
    classifier.apply_any(error).flatten()
}

/// A classifier for `Error<E>` from a `retry_if` predicate on `E`: a
/// failing predicate stops, everything else is left to the default.
pub(crate) fn retry_if<E: 'static>(
    retryable: impl Fn(&E) -> bool + MaybeSend + MaybeSync + 'static,
) -> Typed<Option<Decision>> {
    Typed::new(move |error: &Error<E>| match error {
        Error::Inner(e) if !retryable(e) => Some(Decision::Stop),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_made_once_on_first_use_and_start_unset() {
        let mut slot = None;
        assert!(make(&mut slot).classifier.is_none());
        make(&mut slot).name = Arc::from("fetch");
        let extras = slot.as_deref().map(Hooks::get).unwrap();
        assert_eq!(&*extras.name, "fetch");
        assert!(extras.on_retry.is_none());
    }

    #[test]
    fn the_asking_function_is_stored_only_with_a_classifier() {
        let rt = crate::testing::VirtualRuntime::new();
        let plain = super::super::Retry::new(rt.clone());
        assert!(plain.config.classify.is_none());
        let picky = super::super::Retry::builder(rt)
            .retry_if(|e: &u8| *e != 0)
            .build()
            .unwrap();
        let ask = picky.config.classify.unwrap();
        assert_eq!(ask(&picky.config, &Error::Inner(0u8)), Some(Decision::Stop));
        assert_eq!(ask(&picky.config, &Error::Inner(1u8)), None);
        assert_eq!(ask(&plain.config, &Error::Inner(0u8)), None);
    }

    #[test]
    fn a_retry_if_predicate_stops_only_its_own_failing_errors() {
        let classify = retry_if(|e: &u8| *e != 0);
        assert_eq!(
            classify.apply(&Error::Inner(0u8)).flatten(),
            Some(Decision::Stop)
        );
        assert_eq!(classify.apply(&Error::Inner(1u8)).flatten(), None);
        // Another error type: left to the default.
        assert_eq!(classify.apply(&Error::Inner(0u16)).flatten(), None);
    }
}
