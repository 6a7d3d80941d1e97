//! A batch's work split over the cores: verifying and analysing the posts of a large
//! batch (a sync fetch brings 256) is most of the cost of storing it, and each post's
//! share is independent of the others'.

/// `f` of every item, in order, on up to [`super::VERIFY_THREADS`] threads with at
/// least `min_per_thread` items each (on this thread alone when the batch is small).
pub(super) fn map<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(super::VERIFY_THREADS)
        .min(items.len() / min_per_thread.max(1));
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                // Propagated as it would have been on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_whatever_the_split() {
        for n in [0usize, 1, 7, 64, 65, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out = super::map(&items, 8, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
