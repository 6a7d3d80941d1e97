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
    let threads = threads(items.len(), min_per_thread);
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    run(items.chunks(items.len().div_ceil(threads)), |part| {
        part.iter().map(f).collect()
    })
}

/// How many threads a batch of `len` items takes, at least `min_per_thread` each.
pub(super) fn threads(len: usize, min_per_thread: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(super::VERIFY_THREADS)
        .min(len / min_per_thread.max(1))
}

/// `f` of each part on a thread of its own, the results joined in order.
pub(super) fn run<P: Send, R: Send>(
    parts: impl IntoIterator<Item = P>,
    f: impl Fn(P) -> Vec<R> + Sync,
) -> Vec<R> {
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || f(part)))
            .collect();
        let mut out = Vec::new();
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
