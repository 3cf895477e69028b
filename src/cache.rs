//! `TtlCache`: a bounded concurrent cache whose entries expire, with metrics.
//!
//! quick_cache does the hard part (sharded, scan-resistant eviction, one
//! loader per key); this adds a time to live per entry and the
//! `promptgauge_cache_*` families under the cache's name. It must stay a pure
//! in-memory structure: no IO, no knowledge of what it caches.

use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};

use crate::metrics::CacheMetrics;

/// Where a cache reads the time.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// What a cache did so far.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// The cache (the `cache` label).
    pub name: String,
    /// Lookups that found a fresh entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// hits / lookups (0 before any).
    pub hit_rate: f64,
    /// Entries held.
    pub entries: usize,
    /// Default time to live.
    pub ttl_seconds: f64,
}

/// A value with its expiry instant.
#[derive(Clone)]
struct Entry<V> {
    value: V,
    expires_at: Instant,
}

/// Counts capacity evictions as quick_cache makes them.
#[derive(Clone)]
struct CountEvictions(IntCounter);

impl<K, V> Lifecycle<K, V> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: K, _val: V) {
        self.0.inc();
    }
}

type Inner<K, V> = Cache<K, Entry<V>, UnitWeighter, DefaultHashBuilder, CountEvictions>;

/// A named, bounded cache whose entries live for at most `ttl`.
///
/// Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct TtlCache<K, V> {
    inner: Arc<Inner<K, V>>,
    clock: Clock,
    name: Arc<str>,
    ttl: Duration,
    hits: IntCounter,
    misses: IntCounter,
    expired: IntCounter,
    entries: IntGauge,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// A cache called `name` (the `cache` label) holding at most about
    /// `capacity` entries, each for `ttl`.
    pub fn new(name: &str, capacity: usize, ttl: Duration, metrics: &CacheMetrics) -> Self {
        Self::with_clock(name, capacity, ttl, metrics, Arc::new(Instant::now))
    }

    /// [`TtlCache::new`] reading time from `clock` (a simulation runs hours
    /// of refreshes against real TTLs in a moment).
    pub fn with_clock(
        name: &str,
        capacity: usize,
        ttl: Duration,
        metrics: &CacheMetrics,
        clock: Clock,
    ) -> Self {
        let capacity = capacity.max(1);
        let lifecycle = CountEvictions(metrics.evictions.with_label_values(&[name, "capacity"]));
        let inner = Cache::with(
            capacity,
            capacity as u64,
            UnitWeighter,
            DefaultHashBuilder::default(),
            lifecycle,
        );
        Self {
            inner: Arc::new(inner),
            clock,
            name: name.into(),
            ttl,
            hits: metrics.lookups.with_label_values(&[name, "hit"]),
            misses: metrics.lookups.with_label_values(&[name, "miss"]),
            expired: metrics.evictions.with_label_values(&[name, "expired"]),
            entries: metrics.entries.with_label_values(&[name]),
        }
    }

    /// The entry for `key` if present and not expired; counts a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.lookup(key, (self.clock)());
        match found {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        }
        found
    }

    /// Stores `value` for the cache's time to live.
    pub fn insert(&self, key: K, value: V) {
        self.insert_with_ttl(key, value, self.ttl);
    }

    /// Stores `value` for `ttl` instead of the cache's default.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        let expires_at = (self.clock)() + ttl;
        self.inner.insert(key, Entry { value, expires_at });
        self.entries.set(self.inner.len() as i64);
    }

    /// Removes `key`, returning its value if it was present and fresh.
    pub fn remove(&self, key: &K) -> Option<V> {
        let removed = self.inner.remove(key);
        self.entries.set(self.inner.len() as i64);
        removed
            .filter(|(_, e)| e.expires_at > (self.clock)())
            .map(|(_, e)| e.value)
    }

    /// Returns the cached value, or runs `load` once for concurrent callers of
    /// the same key and caches its `Ok` value. Errors are not cached.
    pub async fn get_or_try_insert_with<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.get_or_try_insert_with_ttl(key, self.ttl, load).await
    }

    /// [`TtlCache::get_or_try_insert_with`] with its own time to live.
    pub async fn get_or_try_insert_with_ttl<E, F>(
        &self,
        key: &K,
        ttl: Duration,
        load: F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.get_or_try_insert_with_expiry(key, async { load.await.map(|v| (v, ttl)) })
            .await
    }

    /// [`TtlCache::get_or_try_insert_with`] where `load` also says how long
    /// its value lives (it may depend on the value: a running execution's
    /// figures expire sooner than a finished one's).
    pub async fn get_or_try_insert_with_expiry<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<(V, Duration), E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        match self.inner.get_value_or_guard_async(key).await {
            // Another caller loaded it while we waited for the guard.
            Ok(entry) if entry.expires_at > (self.clock)() => Ok(entry.value),
            Ok(_) => {
                let (value, ttl) = load.await?;
                self.insert_with_ttl(key.clone(), value.clone(), ttl);
                Ok(value)
            }
            Err(guard) => {
                let (value, ttl) = load.await?;
                let entry = Entry {
                    value: value.clone(),
                    expires_at: (self.clock)() + ttl,
                };
                // Fails only if the entry was replaced meanwhile; ours is as good.
                let _ = guard.insert(entry);
                self.entries.set(self.inner.len() as i64);
                Ok(value)
            }
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.inner.clear();
        self.entries.set(0);
    }

    /// Entries held, fresh or not yet swept.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The default time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Its name, lookups, hits and entries so far.
    pub fn stats(&self) -> CacheStats {
        let (hits, misses) = (self.hits.get(), self.misses.get());
        CacheStats {
            name: self.name.to_string(),
            hits,
            misses,
            hit_rate: if hits + misses > 0 {
                hits as f64 / (hits + misses) as f64
            } else {
                0.0
            },
            entries: self.inner.len(),
            ttl_seconds: self.ttl.as_secs_f64(),
        }
    }

    /// Looks up without counting; removes the entry if it expired.
    fn lookup(&self, key: &K, now: Instant) -> Option<V> {
        let entry = self.inner.get(key)?;
        if entry.expires_at > now {
            return Some(entry.value);
        }
        // Only remove what is still expired: a fresh insert may have raced us.
        if self
            .inner
            .remove_if(key, |e: &Entry<V>| e.expires_at <= now)
            .is_some()
        {
            self.expired.inc();
            self.entries.set(self.inner.len() as i64);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn cache(capacity: usize, ttl: Duration) -> (TtlCache<String, u32>, Metrics) {
        let m = Metrics::new().unwrap();
        (TtlCache::new("test", capacity, ttl, &m.cache), m)
    }

    fn count(m: &Metrics, family: &str, labels: &[&str]) -> i64 {
        let c = &m.cache;
        match family {
            "lookups" => c.lookups.with_label_values(labels).get() as i64,
            "evictions" => c.evictions.with_label_values(labels).get() as i64,
            _ => c.entries.with_label_values(labels).get(),
        }
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let (c, m) = cache(10, Duration::from_secs(60));
        assert_eq!(c.get(&"a".into()), None);
        c.insert("a".into(), 1);
        assert_eq!(c.get(&"a".into()), Some(1));
        assert_eq!(count(&m, "lookups", &["test", "hit"]), 1);
        assert_eq!(count(&m, "lookups", &["test", "miss"]), 1);
        assert_eq!(count(&m, "entries", &["test"]), 1);
    }

    #[test]
    fn expired_entries_are_misses_and_are_removed() {
        let (c, m) = cache(10, Duration::from_secs(60));
        c.insert_with_ttl("a".into(), 1, Duration::ZERO);
        assert_eq!(c.get(&"a".into()), None);
        assert_eq!(c.len(), 0);
        assert_eq!(count(&m, "evictions", &["test", "expired"]), 1);
        assert_eq!(count(&m, "lookups", &["test", "miss"]), 1);
        assert_eq!(count(&m, "entries", &["test"]), 0);
    }

    #[test]
    fn size_stays_bounded_and_evictions_are_counted() {
        let (c, m) = cache(100, Duration::from_secs(60));
        for i in 0..1000 {
            c.insert(format!("k{i}"), i);
        }
        assert!(c.len() <= 110, "held {}", c.len());
        let evicted = count(&m, "evictions", &["test", "capacity"]);
        assert_eq!(evicted as usize + c.len(), 1000);
    }

    #[tokio::test]
    async fn concurrent_loads_of_one_key_run_the_loader_once() {
        let (c, _m) = cache(10, Duration::from_secs(60));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_try_insert_with(&"k".to_string(), async {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(7)
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn load_errors_are_not_cached() {
        let (c, _m) = cache(10, Duration::from_secs(60));
        let first: Result<u32, &str> = c
            .get_or_try_insert_with(&"k".into(), async { Err("down") })
            .await;
        assert_eq!(first, Err("down"));
        let second: Result<u32, &str> =
            c.get_or_try_insert_with(&"k".into(), async { Ok(3) }).await;
        assert_eq!(second, Ok(3));
    }
}
