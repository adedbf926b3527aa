//! [`Padded`]: a value on cache lines of its own, for counters that one
//! side of a queue writes on every item and the other side only reads now
//! and then.

/// Keeps what it holds on its own cache line(s), away from what other
/// threads write (128 bytes: two lines, as adjacent-line prefetchers pair
/// them).
#[repr(align(128))]
#[derive(Default)]
pub(super) struct Padded<T>(pub(super) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
