//! Descriptors are the process's, not a store's: a budget of sockets shared
//! by every store, which keeps a reserve for the embedder and a few
//! sockets for each store, so that one store at its limit can neither stop
//! the embedder (instantiating a component, reading a file) nor starve the
//! other stores.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Sockets each store can always create, whatever the others hold (fewer
/// when the budget itself is smaller).
pub const DEFAULT_SOCKETS_PER_STORE: usize = 16;

/// How many UDP sockets the stores sharing it may hold together.
///
/// Every [`UdpCtx`](crate::UdpCtx) draws on one: the process's
/// ([`DescriptorBudget::process`]) unless the builder is given another
/// ([`UdpCtxBuilder::descriptor_budget`](crate::UdpCtxBuilder::descriptor_budget)).
/// A store's sockets count against both its own
/// [`max_sockets`](crate::Limits::max_sockets) and the budget; each live
/// store is guaranteed [`DEFAULT_SOCKETS_PER_STORE`] of the budget, and one
/// such guarantee is kept free for a store yet to come, so a store at its
/// limit leaves the others theirs and does not keep the next one from
/// starting. A socket refused by the budget is `new-socket-limit` for the
/// guest and a warning for the host.
///
/// The budget counts only this provider's UDP sockets. Keep it below the
/// process's descriptor limit by what the embedder itself needs: the
/// process budget keeps an eighth of `RLIMIT_NOFILE` (at least 16, at most
/// 256) out of it for that. With N stores of `max_sockets` M each, the
/// stores cannot exhaust the process if N × M fits the budget; when it does
/// not, the budget is what stops them.
#[derive(Clone)]
pub struct DescriptorBudget {
    pool: Arc<Pool>,
}

struct Pool {
    capacity: usize,
    per_store: usize,
    /// Σ over live stores of max(sockets held, guarantee).
    committed: Mutex<usize>,
    /// Where the capacity came from, for messages.
    origin: String,
}

impl DescriptorBudget {
    /// A budget of `sockets` sockets, each store guaranteed
    /// [`DEFAULT_SOCKETS_PER_STORE`] of them.
    pub fn new(sockets: usize) -> Self {
        Self::with_origin(
            sockets,
            DEFAULT_SOCKETS_PER_STORE,
            format!("a budget of {sockets}"),
        )
    }

    /// The same budget with `sockets` guaranteed to each store instead.
    pub fn sockets_per_store(self, sockets: usize) -> Self {
        Self::with_origin(self.pool.capacity, sockets, self.pool.origin.clone())
    }

    fn with_origin(capacity: usize, per_store: usize, origin: String) -> Self {
        Self {
            pool: Arc::new(Pool {
                capacity,
                per_store,
                committed: Mutex::new(0),
                origin,
            }),
        }
    }

    /// The process's budget, shared by every store not given another: the
    /// soft `RLIMIT_NOFILE` when it is first asked for, less a reserve of an
    /// eighth of it (at least 16, at most 256) for everything else the
    /// process opens. Raise the limit before the first store is built for
    /// it to count (the `wasi-udp` CLI raises the soft limit to the hard
    /// one at start).
    pub fn process() -> Self {
        static PROCESS: OnceLock<DescriptorBudget> = OnceLock::new();
        PROCESS
            .get_or_init(|| {
                let limit = descriptor_limit();
                let reserve = (limit / 8).clamp(16, 256);
                let capacity = limit.saturating_sub(reserve);
                Self::with_origin(
                    capacity,
                    DEFAULT_SOCKETS_PER_STORE,
                    format!("RLIMIT_NOFILE {limit} less {reserve} kept for the host"),
                )
            })
            .clone()
    }

    /// Most sockets the stores may hold together.
    pub fn capacity(&self) -> usize {
        self.pool.capacity
    }

    /// Sockets guaranteed to each store.
    pub fn per_store(&self) -> usize {
        self.pool.per_store
    }

    /// Where the capacity comes from, e.g. `RLIMIT_NOFILE 1024 less 128
    /// kept for the host`.
    pub fn origin(&self) -> &str {
        &self.pool.origin
    }

    /// A new store's share: its guarantee, committed now.
    pub(crate) fn join(&self) -> StoreDescriptors {
        let mut committed = self.lock();
        let guarantee = self
            .pool
            .per_store
            .min(self.pool.capacity.saturating_sub(*committed));
        *committed += guarantee;
        StoreDescriptors {
            budget: self.clone(),
            held: Mutex::new(0),
            guarantee,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.pool
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for DescriptorBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DescriptorBudget")
            .field("capacity", &self.pool.capacity)
            .field("per_store", &self.pool.per_store)
            .field("committed", &*self.lock())
            .field("origin", &self.pool.origin)
            .finish()
    }
}

/// One store's part of a [`DescriptorBudget`].
pub(crate) struct StoreDescriptors {
    budget: DescriptorBudget,
    held: Mutex<usize>,
    guarantee: usize,
}

impl StoreDescriptors {
    /// Takes one socket's descriptor; false when the budget has none left
    /// for this store.
    pub(crate) fn claim(&self) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if *held < self.guarantee {
            *held += 1;
            return true;
        }
        // Beyond its guarantee a store may not take the last guarantee's
        // worth: that is kept for a store yet to come.
        let mut committed = self.budget.lock();
        if *committed + 1 + self.budget.pool.per_store > self.budget.pool.capacity {
            return false;
        }
        *committed += 1;
        *held += 1;
        true
    }

    /// Gives one socket's descriptor back.
    pub(crate) fn release(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if *held > self.guarantee {
            *self.budget.lock() -= 1;
        }
        *held = held.saturating_sub(1);
    }

    pub(crate) fn budget(&self) -> &DescriptorBudget {
        &self.budget
    }
}

impl Drop for StoreDescriptors {
    fn drop(&mut self) {
        let held = *self.held.get_mut().unwrap_or_else(PoisonError::into_inner);
        *self.budget.lock() -= held.max(self.guarantee);
    }
}

/// The soft limit on open descriptors, or a conservative 1024 when the
/// platform will not say.
fn descriptor_limit() -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit
            .current
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_at_the_budget_leaves_the_others_their_guarantee() {
        let budget = DescriptorBudget::new(40).sockets_per_store(8);
        let hostile = budget.join();
        let other = budget.join();
        let taken = (0..100).take_while(|_| hostile.claim()).count();
        assert_eq!(
            taken,
            40 - 8 - 8,
            "all but the other store's guarantee and one kept for a newcomer"
        );
        for _ in 0..8 {
            assert!(other.claim(), "the guarantee is there");
        }
        assert!(!other.claim(), "and no more");
        let newcomer = budget.join();
        for _ in 0..8 {
            assert!(newcomer.claim(), "a store built later gets its guarantee");
        }
        hostile.release();
        assert!(
            !other.claim(),
            "a released descriptor is kept for the next newcomer"
        );
        drop(newcomer);
        drop(other);
        drop(hostile);
        assert_eq!(*budget.lock(), 0, "everything given back");
    }

    #[test]
    fn a_store_keeps_its_guarantee_when_it_releases() {
        let budget = DescriptorBudget::new(10).sockets_per_store(4);
        let store = budget.join();
        assert_eq!(*budget.lock(), 4);
        for _ in 0..6 {
            assert!(store.claim());
        }
        assert!(!store.claim(), "the last 4 are kept for a newcomer");
        assert_eq!(*budget.lock(), 6);
        for _ in 0..6 {
            store.release();
        }
        assert_eq!(*budget.lock(), 4, "the guarantee stays committed");
        // Stores beyond the budget get what is left.
        let late: Vec<StoreDescriptors> = (0..3).map(|_| budget.join()).collect();
        assert_eq!(
            late.iter().map(|s| s.guarantee).collect::<Vec<_>>(),
            [4, 2, 0]
        );
    }

    #[test]
    fn the_process_budget_keeps_a_reserve() {
        let budget = DescriptorBudget::process();
        let limit = descriptor_limit();
        assert!(budget.capacity() < limit || limit == usize::MAX);
        assert!(budget.origin().contains("RLIMIT_NOFILE"));
    }
}
