//! [`Padded`]: a value on cache lines of its own, for state that one
//! thread writes often while others read what lies beside it: the queue's
//! counters, the rate limiter's theoretical arrival time.

/// Keeps what it holds on its own cache line(s), away from what other
/// threads write (128 bytes: two lines, as adjacent-line prefetchers pair
/// them).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
