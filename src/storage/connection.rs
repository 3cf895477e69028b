//! Opening connections: the file check before SQLite touches anything, and
//! the per-connection pragmas, each with the reason it is set.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StorageError;

/// Every SQLite database file starts with these 16 bytes.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Page cache per connection, in KiB (negative `cache_size` means KiB).
/// The writer's cache must hold the hot pages of all four test_results
/// indexes: inserts land at random positions in two of them, and once they
/// outgrow the cache every insert becomes a page read. 128 MiB keeps that
/// true past 1M results; 256 MiB measured no faster and put a 100k-test
/// execution's peak RSS over 250 MB. See BENCHMARKS.md.
const WRITER_CACHE_KIB: i64 = 131_072;
/// Readers share the OS page cache; theirs only needs the working set of a query.
const READER_CACHE_KIB: i64 = 32_768;
/// Largest WAL file kept after a checkpoint restarts it: 1 GiB, twice the
/// checkpointer's WAL limit.
const JOURNAL_SIZE_LIMIT: i64 = 1 << 30;
/// Page size of new databases, in bytes.
const PAGE_SIZE: i64 = 8192;
/// How long a statement waits on a lock before failing with SQLITE_BUSY
/// (the writer's is configurable: `DB_BUSY_TIMEOUT`).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the one read-write connection (used for migrations, then by the
/// writer thread). Writes wait up to `busy_timeout` for a lock another
/// process holds.
pub(super) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StorageError> {
    refuse_non_sqlite(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure_writer(&conn, busy_timeout).map_err(|e| open_error(path, e))?;
    super::rollup::register_functions(&conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Opens a read-only connection; it never migrates or writes.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure_reader(&conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Opens the background checkpointer's connection: it only copies WAL
/// frames into the database file, so it needs no cache and no schema.
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    let configure = |c: &Connection| -> rusqlite::Result<()> {
        // The checkpoint's fsyncs follow this connection's setting.
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.busy_timeout(BUSY_TIMEOUT)
    };
    configure(&conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Read-pool size: enough to keep every core busy with queries while the
/// writer runs, bounded so memory (one page cache each) stays predictable.
pub(super) fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

pub(super) fn open_error(path: &Path, e: rusqlite::Error) -> StorageError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        return StorageError::NotADatabase {
            path: path.to_owned(),
        };
    }
    StorageError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// SQLite would report a foreign file only at the first statement, and by
/// then `journal_mode=WAL` may have created `-wal`/`-shm` files beside it.
/// Reading the header ourselves refuses it before anything is created.
fn refuse_non_sqlite(path: &Path) -> Result<(), StorageError> {
    let open_err = |e: std::io::Error| StorageError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_err(e)),
    };
    let meta = file.metadata().map_err(open_err)?;
    if meta.is_dir() {
        return Err(StorageError::Open {
            path: path.to_owned(),
            message: "it is a directory".to_owned(),
        });
    }
    // SQLite treats an empty file as a new database.
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    match file.read_exact(&mut header) {
        Ok(()) if &header == SQLITE_HEADER => Ok(()),
        Ok(()) => Err(StorageError::NotADatabase {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(StorageError::NotADatabase {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(open_err(e)),
    }
}

fn configure_writer(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    // 8 KiB pages hold ten result rows instead of five and make the b-trees
    // shallower: 10-20 % more writer throughput than 4 KiB (BENCHMARKS.md).
    // Only takes effect on a new, empty database.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // WAL: readers never block the writer and the writer never blocks them.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    // In WAL mode NORMAL syncs at checkpoints, not on every commit: a process
    // crash loses nothing committed; only an OS crash may lose the last commits.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Sorts and temporary indexes (ANALYZE, big GROUP BYs) stay off the disk.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Results must reference an existing execution; cascades clean up children.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A checkpoint by a reader's connection close can briefly hold the lock;
    // another process may hold it for longer, and then writes fail (503).
    conn.busy_timeout(busy_timeout)?;
    // Truncate the WAL file after a restart only when it outgrew the WAL
    // limit by far: a WAL rewritten in place costs no block allocation,
    // which was a seventh of the writer's time when truncated to 64 MiB.
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    // `PRAGMA optimize` analyzes at most this many rows per index, so it stays
    // fast on big tables while giving the planner the estimates it needs.
    conn.pragma_update(None, "analysis_limit", 1000)?;
    // Write statements are few and repeated; keep all of them prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Belt and braces on top of the read-only open flag.
    conn.pragma_update(None, "query_only", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}
