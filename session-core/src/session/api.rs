//! [`AsyncSession`] and its public API in one block, whose signatures
//! `#[publish_signatures]` publishes, so that wrappers such as `async_scoped_session` write
//! their delegating methods from a list of names with `#[proxy_methods]`. Each method delegates
//! to its implementation in `tx.rs`, `ops.rs`, `query.rs` or `mod.rs`.

use std::sync::Arc;

use super::Inner;

/// An async session: tracks the objects it loads and adds, flushes their changes in batches in
/// foreign-key order, and commits or rolls back as one unit.
///
/// Creating a session does no I/O and takes no connection; the first statement checks one out
/// and begins a transaction (SQLAlchemy's autobegin), `commit()` / `rollback()` / `close()`
/// give it back.
///
/// # Cancel safety
/// Every async method may be dropped at any `.await`: the pool never gets a connection back with
/// a transaction open, and the session stays consistent. A flush dropped half-way leaves the
/// session refusing work with [`Error::PendingRollback`](crate::Error::PendingRollback) until `rollback()`.
pub struct AsyncSession {
    pub(crate) inner: Arc<Inner>,
}

#[session_macros::publish_signatures]
impl AsyncSession {
    /// A session bound to `engine`, with the default options (SQLAlchemy's
    /// `AsyncSession(engine)`).
    pub fn new(engine: crate::Engine) -> Self {
        AsyncSession::new_impl(engine)
    }

    /// Starts configuring a session.
    pub fn builder() -> crate::AsyncSessionBuilder {
        AsyncSession::builder_impl()
    }

    /// A session with these options.
    pub fn with_config(config: crate::SessionConfig) -> Self {
        AsyncSession::with_config_impl(config)
    }

    /// The session's number, unique in the process (SQLAlchemy's `hash_key`).
    pub fn id(&self) -> u64 {
        self.id_impl()
    }

    /// The default engine (SQLAlchemy's `session.bind`).
    #[proxy(attribute)]
    pub fn bind(&self) -> Option<crate::Engine> {
        self.bind_impl()
    }

    /// Replaces the default engine for later transactions.
    pub fn set_bind(&self, engine: Option<crate::Engine>) {
        self.set_bind_impl(engine)
    }

    /// Whether queries flush first.
    #[proxy(attribute)]
    pub fn autoflush(&self) -> bool {
        self.autoflush_impl()
    }

    /// Sets autoflush.
    pub fn set_autoflush(&self, autoflush: bool) {
        self.set_autoflush_impl(autoflush)
    }

    /// A copy of the user dictionary.
    #[proxy(attribute)]
    pub fn info(&self) -> crate::Info {
        self.info_impl()
    }

    /// Replaces the user dictionary.
    pub fn set_info(&self, info: crate::Info) {
        self.set_info_impl(info)
    }

    /// Changes the user dictionary in place.
    pub fn update_info(&self, f: impl FnOnce(&mut crate::Info)) {
        self.update_info_impl(f)
    }

    /// The engine an operation on `table` runs on (SQLAlchemy's `get_bind(mapper)`): the router,
    /// then the per-entity binds, then `bind`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) naming the entity when nothing is bound.
    pub fn get_bind(&self, table: Option<&'static crate::Table>) -> crate::Result<crate::Engine> {
        self.get_bind_impl(table)
    }

    /// [`AsyncSession::get_bind`] for entity `T`, honouring `bind_entity::<T>`.
    ///
    /// # Errors
    /// As [`AsyncSession::get_bind`].
    pub fn get_bind_for<T: crate::Entity>(&self) -> crate::Result<crate::Engine> {
        self.get_bind_for_impl::<T>()
    }

    /// Writes pending changes: INSERTs of added objects, UPDATEs of changed columns, DELETEs of
    /// deleted objects, batched per table in foreign-key order (SQLAlchemy's `flush()`).
    ///
    /// # Errors
    /// The database error of the failing batch; the transaction is then rolled back and the
    /// session refuses work with [`Error::PendingRollback`](crate::Error::PendingRollback) until `rollback()`.
    pub async fn flush(&self) -> crate::Result<()> {
        crate::telemetry::traced(self.operation_span("flush"), self.flush_impl()).await
    }

    /// Flushes, then commits the whole transaction, savepoints included (SQLAlchemy's
    /// `commit()`); the connections go back to the pool. With `expire_on_commit` (the default)
    /// every object is expired; deleted objects become detached.
    ///
    /// # Errors
    /// The flush's or COMMIT's error; after a COMMIT error the session is rolled back.
    pub async fn commit(&self) -> crate::Result<()> {
        crate::telemetry::traced(self.operation_span("commit"), self.commit_impl()).await
    }

    /// Rolls back the whole transaction (SQLAlchemy's `rollback()`): objects added in it become
    /// transient, deleted ones come back, every persistent object is expired, and a failed
    /// flush's [`Error::PendingRollback`](crate::Error::PendingRollback) is cleared. Without a transaction it does nothing.
    ///
    /// # Errors
    /// The driver's error when a connection is gone (its transaction is gone with it); the
    /// session is rolled back either way.
    pub async fn rollback(&self) -> crate::Result<()> {
        self.rollback_impl().await
    }

    /// Begins the session's transaction explicitly (SQLAlchemy's `begin()`); end it with
    /// [`AsyncSessionTransaction::commit`](crate::AsyncSessionTransaction::commit) or [`AsyncSessionTransaction::rollback`](crate::AsyncSessionTransaction::rollback), or use
    /// [`AsyncSession::transaction`], which cannot forget to.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) "A transaction is already begun on this Session." when one is
    /// open (also an autobegun one).
    pub async fn begin(&self) -> crate::Result<crate::AsyncSessionTransaction> {
        self.begin_impl(crate::TransactionOptions::new()).await
    }

    /// [`AsyncSession::begin`] with `options` (isolation level, read only, deferrable) over
    /// the session's and the engine's. They travel in the transaction's `BEGIN`, before its
    /// first statement, autoflush included.
    ///
    /// # Errors
    /// As [`AsyncSession::begin`].
    pub async fn begin_with(
        &self,
        options: crate::TransactionOptions,
    ) -> crate::Result<crate::AsyncSessionTransaction> {
        self.begin_impl(options).await
    }

    /// Flushes, then begins a savepoint (SQLAlchemy's `begin_nested()`), beginning the root
    /// transaction first when there is none.
    ///
    /// # Errors
    /// The flush's error, or the server's error for `SAVEPOINT`.
    pub async fn begin_nested(&self) -> crate::Result<crate::AsyncSessionTransaction> {
        self.begin_nested_impl().await
    }

    /// Runs `body` in a transaction: commits when it returns `Ok`, rolls back when it returns
    /// `Err` (SQLAlchemy's `async with session.begin():`).
    ///
    /// # Errors
    /// The body's error (after rolling back), or the commit's.
    pub async fn transaction<T, E, F>(&self, body: F) -> ::std::result::Result<T, E>
    where
        F: AsyncFnOnce(&crate::AsyncSession) -> ::std::result::Result<T, E>,
        E: From<crate::Error>,
    {
        self.transaction_impl::<T, E, F>(body).await
    }

    /// [`AsyncSession::transaction`] in a transaction with `options`, e.g. SERIALIZABLE.
    ///
    /// # Errors
    /// As [`AsyncSession::transaction`].
    pub async fn transaction_with<T, E, F>(
        &self,
        options: crate::TransactionOptions,
        body: F,
    ) -> ::std::result::Result<T, E>
    where
        F: AsyncFnOnce(&crate::AsyncSession) -> ::std::result::Result<T, E>,
        E: From<crate::Error>,
    {
        self.run_block_with(options, body(self)).await
    }

    /// Runs `body` in a savepoint (SQLAlchemy's `with session.begin_nested():`): flushes and
    /// begins a `SAVEPOINT` (and the root transaction first when there is none), releases it
    /// when `body` returns `Ok`, rolls back to it when `body` returns `Err`. Either way the
    /// enclosing transaction stays open: commit or roll it back as usual. Should the body end
    /// the savepoint itself (or roll back the whole transaction), nothing more is done.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct A { #[entity(primary_key)] id: i32, data: String }
    /// let kept: session_core::Result<()> = session
    ///     .nested_transaction(async |s| s.add(&session_core::Obj::new(A::default())))
    ///     .await;
    /// let undone: Result<(), session_core::Error> = session
    ///     .nested_transaction(async |s| {
    ///         s.add(&session_core::Obj::new(A::default()))?;
    ///         Err(session_core::Error::InvalidRequest("changed my mind".into()))
    ///     })
    ///     .await;
    /// assert!(kept.is_ok() && undone.is_err());
    /// session.commit().await?; // stores the first object only
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The body's error (after rolling back to the savepoint), or the flush's, `SAVEPOINT`'s
    /// or `RELEASE`'s.
    pub async fn nested_transaction<T, E, F>(&self, body: F) -> ::std::result::Result<T, E>
    where
        F: AsyncFnOnce(&crate::AsyncSession) -> ::std::result::Result<T, E>,
        E: From<crate::Error>,
    {
        self.nested_transaction_impl::<T, E, F>(body).await
    }

    /// Runs `body` with the session, then closes it whatever the body returned (SQLAlchemy's
    /// `async with AsyncSession(engine) as session:`): like it, this never commits; commit in
    /// the body, or use [`AsyncSession::transaction`].
    pub async fn scope<R>(&self, body: impl AsyncFnOnce(&crate::AsyncSession) -> R) -> R {
        self.scope_impl(body).await
    }

    /// Rolls back and detaches every object, and gives the connections back (SQLAlchemy's
    /// `close()`). The session stays usable unless made with `close_resets_only(false)`.
    ///
    /// The ROLLBACK of a transaction the session owns is sent without waiting for its answer
    /// (whatever runs next on the connection goes out behind it), so closing a session that
    /// only read costs no round trip; use [`AsyncSession::rollback`] to hear its outcome.
    pub async fn close(&self) {
        self.close_impl().await
    }

    /// Same as [`AsyncSession::close`] (for symmetry with SQLAlchemy's `aclose()`).
    pub async fn aclose(&self) {
        self.aclose_impl().await
    }

    /// Like `close()`, but never closes the session for good (SQLAlchemy's `reset()`); a
    /// session closed for good stays closed.
    pub async fn reset(&self) {
        self.reset_impl().await
    }

    /// Like `close()`, and the connections are discarded instead of pooled (SQLAlchemy's
    /// `invalidate()`).
    pub async fn invalidate(&self) {
        self.invalidate_impl().await
    }

    /// Closes every live session of the process (SQLAlchemy's `close_all_sessions()`).
    pub async fn close_all() {
        AsyncSession::close_all_impl().await
    }

    /// True while the session has a transaction (SQLAlchemy's `in_transaction()`).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction_impl()
    }

    /// True while a savepoint is open.
    pub fn in_nested_transaction(&self) -> bool {
        self.in_nested_transaction_impl()
    }

    /// The root transaction, if any.
    pub fn get_transaction(&self) -> Option<crate::TransactionInfo> {
        self.get_transaction_impl()
    }

    /// The innermost savepoint, if any.
    pub fn get_nested_transaction(&self) -> Option<crate::TransactionInfo> {
        self.get_nested_transaction_impl()
    }

    /// False while a failed flush waits for `rollback()` (SQLAlchemy's `is_active`).
    #[proxy(attribute)]
    pub fn is_active(&self) -> bool {
        self.is_active_impl()
    }

    /// Turns autoflush off until the guard drops, then restores the previous value, also on an
    /// early return or a panic (SQLAlchemy's `with session.no_autoflush:`).
    #[proxy(attribute)]
    pub fn no_autoflush(&self) -> crate::NoAutoflush {
        self.no_autoflush_impl()
    }

    /// The connection of the session's transaction for the default bind, begun on first use
    /// (SQLAlchemy's `connection()`). Other operations of this session are refused while the
    /// guard lives.
    ///
    /// # Errors
    /// No bind, a failed checkout, or [`Error::PendingRollback`](crate::Error::PendingRollback).
    pub async fn connection(&self) -> crate::Result<crate::SessionConnection> {
        self.connection_impl().await
    }

    /// Adds `obj` to the session (SQLAlchemy's `add()`): a transient object becomes pending and
    /// is inserted at the next flush; a detached one is attached again. No I/O.
    ///
    /// # Errors
    /// The object belongs to another live session, or was deleted (call
    /// [`AsyncSession::make_transient`] first), or another object with its key is here.
    pub fn add<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.add_impl::<T>(obj)
    }

    /// Adds every object (SQLAlchemy's `add_all()`), stopping at the first error.
    ///
    /// # Errors
    /// As [`AsyncSession::add`].
    pub fn add_all<'a, T: crate::Entity>(
        &self,
        objs: impl IntoIterator<Item = &'a crate::Obj<T>>,
    ) -> crate::Result<()> {
        self.add_all_impl(objs)
    }

    /// [`AsyncSession::add`] for a type-erased handle.
    ///
    /// # Errors
    /// As [`AsyncSession::add`].
    pub fn add_any(&self, obj: &crate::AnyObj) -> crate::Result<()> {
        self.add_any_impl(obj)
    }

    /// Marks a persistent object for deletion at the next flush (SQLAlchemy's `delete()`).
    ///
    /// # Errors
    /// "Instance '...' is not persisted" for a transient or pending object.
    pub fn delete<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.delete_impl::<T>(obj)
    }

    /// Marks every object for deletion (SQLAlchemy 2.1's `delete_all()`), stopping at the
    /// first error (the objects before it stay marked).
    ///
    /// # Errors
    /// As [`AsyncSession::delete`].
    pub fn delete_all<'a, T: crate::Entity>(
        &self,
        objs: impl IntoIterator<Item = &'a crate::Obj<T>>,
    ) -> crate::Result<()> {
        self.delete_all_impl(objs)
    }

    /// Sends a deleted or detached object back to the transient state, so that it can be added
    /// again as a new row (SQLAlchemy's `make_transient()`).
    pub fn make_transient<T: crate::Entity>(obj: &crate::Obj<T>) {
        AsyncSession::make_transient_impl::<T>(obj)
    }

    /// The object with primary key `key`: from the identity map without SQL when it is there
    /// and loaded, else SELECTed (after an autoflush) and added to the identity map
    /// (SQLAlchemy's `get()`). `None` when there is no such row.
    ///
    /// # Errors
    /// No bind, a database error, or [`Error::PendingRollback`](crate::Error::PendingRollback).
    pub async fn get<T: crate::Entity>(&self, key: T::Key) -> crate::Result<Option<crate::Obj<T>>> {
        self.get_impl::<T>(key).await
    }

    /// Like [`AsyncSession::get`], but a missing row is an error (SQLAlchemy's `get_one()`).
    ///
    /// # Errors
    /// [`Error::NoResultFound`](crate::Error::NoResultFound): "No row was found when one was required".
    pub async fn get_one<T: crate::Entity>(&self, key: T::Key) -> crate::Result<crate::Obj<T>> {
        self.get_one_impl::<T>(key).await
    }

    /// [`AsyncSession::get`] with options (SQLAlchemy's `get(..., populate_existing=...,
    /// with_for_update=...)`). With either option the SELECT is always sent, also for an
    /// object already in the identity map: `populate_existing` overwrites that object with
    /// the row, unflushed changes included (with autoflush on, they are flushed first, as in
    /// SQLAlchemy); `with_for_update` appends the row lock (`FOR UPDATE [OF t] [NOWAIT |
    /// SKIP LOCKED]`, ...) and, without `populate_existing`, keeps the loaded object as it is.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct Account { #[entity(primary_key)] id: i32, balance: i64 }
    /// use session_core::{GetOptions, RowLock};
    /// // SELECT ... FROM account WHERE id = $1 FOR UPDATE NOWAIT
    /// let account = session
    ///     .get_with::<Account>(7, GetOptions::new().with_for_update(RowLock::update().nowait()))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AsyncSession::get`]; a contradictory lock (NOWAIT and SKIP LOCKED) is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest); a row held elsewhere under
    /// NOWAIT is the database's `55P03` (`lock_not_available`).
    pub async fn get_with<T: crate::Entity>(
        &self,
        key: T::Key,
        options: crate::GetOptions<T>,
    ) -> crate::Result<Option<crate::Obj<T>>> {
        self.get_with_impl::<T>(key, options).await
    }

    /// [`AsyncSession::get_with`], but a missing row is an error (SQLAlchemy's `get_one()`
    /// with options).
    ///
    /// # Errors
    /// As [`AsyncSession::get_with`], and [`Error::NoResultFound`](crate::Error::NoResultFound).
    pub async fn get_one_with<T: crate::Entity>(
        &self,
        key: T::Key,
        options: crate::GetOptions<T>,
    ) -> crate::Result<crate::Obj<T>> {
        self.get_one_with_impl::<T>(key, options).await
    }

    /// The objects of `keys`, in the same order, `None` for a key without a row (Hibernate's
    /// `multiLoad`): keys whose object is in the identity map are answered without SQL, the
    /// others in one query per [`GET_MANY_CHUNK`](crate::GET_MANY_CHUNK) keys (`WHERE key IN
    /// (SELECT * FROM unnest($1))`), instead of one round trip per key. Autoflushes first when
    /// it sends SQL.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// # use session_core::Entity;
    /// # #[derive(Debug, Clone, Default, Entity)]
    /// # #[entity(table = "account")]
    /// # struct Account { #[entity(primary_key)] id: i32 }
    /// let accounts = session.get_many::<Account>(&[3, 1, 99]).await?;
    /// assert!(accounts[2].is_none(), "no account 99");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The database's error.
    pub async fn get_many<T: crate::Entity>(
        &self,
        keys: &[T::Key],
    ) -> crate::Result<Vec<Option<crate::Obj<T>>>> {
        self.get_many_impl::<T>(keys).await
    }

    /// Loads a relationship of objects already in the session, for all of them in one query
    /// per chunk of keys (SQLAlchemy's `awaitable_attrs` / `refresh(obj, ["bs"])` for a whole
    /// list), e.g. `session.load(&authors, selectinload(Author::C.books))`; afterwards the
    /// relationship is read without I/O. Autoflushes first.
    ///
    /// ```no_run
    /// # use session_core::{AsyncSession, Collection, Entity, select, selectinload};
    /// # #[derive(Debug, Clone, Default, Entity)]
    /// # #[entity(table = "author")]
    /// # struct Author { #[entity(primary_key)] id: i32,
    /// #   #[entity(relationship(foreign_key = "author_id"))] books: Collection<Book> }
    /// # #[derive(Debug, Clone, Default, Entity)]
    /// # #[entity(table = "book")]
    /// # struct Book { #[entity(primary_key)] id: i32,
    /// #   #[entity(foreign_key = "author.id")] author_id: i32 }
    /// # async fn demo(session: &AsyncSession) -> session_core::Result<()> {
    /// let authors = session.scalars(select::<Author>()).await?.all();
    /// session.load(&authors, selectinload(Author::C.books)).await?;
    /// let first_books = authors[0].read()?.books.get()?.len();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The database's error; [`Error::InvalidRequest`](crate::Error::InvalidRequest) for a
    /// `joinedload` (it needs the query's own join: use `selectinload`).
    pub async fn load<T: crate::Entity>(
        &self,
        objs: &[crate::Obj<T>],
        loader: impl Into<crate::Loader<T>>,
    ) -> crate::Result<()> {
        self.load_impl::<T>(objs, loader.into()).await
    }

    /// Reloads the object's attributes from the database (all for `&[]`, or the named ones:
    /// `&[&A::C.data]`), after an autoflush (SQLAlchemy's `refresh()`). The names are the
    /// entity's typed columns, so a misspelled one does not compile.
    ///
    /// # Errors
    /// "Instance '...' is not persistent within this Session", or
    /// "Could not refresh instance '...'" when the row is gone.
    pub async fn refresh<T: crate::Entity>(
        &self,
        obj: &crate::Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
    ) -> crate::Result<()> {
        self.refresh_impl::<T>(obj, attributes).await
    }

    /// [`AsyncSession::refresh`] with a row lock (SQLAlchemy's `refresh(...,
    /// with_for_update=...)`): the reloading SELECT ends with `with_for_update`'s clause, so
    /// the row stays locked until the transaction ends.
    ///
    /// # Errors
    /// As [`AsyncSession::refresh`]; a contradictory lock is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest); `55P03` under NOWAIT.
    pub async fn refresh_with<T: crate::Entity>(
        &self,
        obj: &crate::Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
        with_for_update: crate::RowLock,
    ) -> crate::Result<()> {
        self.refresh_with_impl::<T>(obj, attributes, with_for_update)
            .await
    }

    /// Expires the object's attributes (all for `&[]`, or the named ones: `&[&A::C.data]`):
    /// reading them is then an error until a refresh or a new load (SQLAlchemy's `expire()`).
    /// Unflushed changes to them are discarded. No I/O. A misspelled name does not compile.
    ///
    /// # Errors
    /// "Instance '...' is not persistent within this Session".
    pub fn expire<T: crate::Entity>(
        &self,
        obj: &crate::Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
    ) -> crate::Result<()> {
        self.expire_impl::<T>(obj, attributes)
    }

    /// Expires every object in the identity map (SQLAlchemy's `expire_all()`).
    pub fn expire_all(&self) {
        self.expire_all_impl()
    }

    /// Removes the object from the session (SQLAlchemy's `expunge()`): pending → transient,
    /// persistent → detached.
    ///
    /// # Errors
    /// "Instance ... is not present in this Session".
    pub fn expunge<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.expunge_impl::<T>(obj)
    }

    /// Removes every object from the session (SQLAlchemy's `expunge_all()`).
    pub fn expunge_all(&self) {
        self.expunge_all_impl()
    }

    /// Copies the state of `source` onto the session's object with the same key, loading it
    /// when needed, or onto a new pending object when there is none, and returns that object
    /// (SQLAlchemy's `merge()`). `source` itself is never attached.
    ///
    /// # Errors
    /// As [`AsyncSession::get`].
    pub async fn merge<T: crate::Entity>(
        &self,
        source: &crate::Obj<T>,
    ) -> crate::Result<crate::Obj<T>> {
        self.merge_impl::<T>(source).await
    }

    /// Merges every object (SQLAlchemy 2.1's `merge_all()`) and returns the session's
    /// objects in the same order. Like SQLAlchemy's, it autoflushes once before the first,
    /// then merges with autoflush off, and stops at the first error.
    ///
    /// ```no_run
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct A { #[entity(primary_key)] id: i32, data: String }
    /// # async fn demo(session: &session_core::AsyncSession, detached: Vec<session_core::Obj<A>>)
    /// # -> session_core::Result<()> {
    /// let merged = session.merge_all(&detached).await?;
    /// assert_eq!(merged.len(), detached.len());
    /// session.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AsyncSession::merge`].
    pub async fn merge_all<'a, T: crate::Entity>(
        &self,
        sources: impl IntoIterator<Item = &'a crate::Obj<T>>,
    ) -> crate::Result<Vec<crate::Obj<T>>> {
        self.merge_all_impl(sources).await
    }

    /// True when the object's loaded attributes differ from the database image (SQLAlchemy's
    /// `is_modified()`): false after setting an attribute to the value it had. No I/O.
    pub fn is_modified<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> bool {
        self.is_modified_impl::<T>(obj)
    }

    /// True when the object is pending or persistent in this session (SQLAlchemy's
    /// `obj in session`).
    pub fn contains<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> bool {
        self.contains_impl::<T>(obj)
    }

    /// The pending objects, then the identity map's (SQLAlchemy's `iter(session)`).
    pub fn iter(&self) -> ::std::vec::IntoIter<crate::AnyObj> {
        self.iter_impl()
    }

    /// Pending objects (SQLAlchemy's `session.new`).
    #[proxy(attribute)]
    pub fn new_objects(&self) -> Vec<crate::AnyObj> {
        self.new_objects_impl()
    }

    /// Persistent objects written to since their last flush, not deleted (SQLAlchemy's
    /// optimistic `session.dirty`: a same-value assignment counts; see `is_modified`).
    #[proxy(attribute)]
    pub fn dirty(&self) -> Vec<crate::AnyObj> {
        self.dirty_impl()
    }

    /// Objects marked for deletion (SQLAlchemy's `session.deleted`).
    #[proxy(attribute)]
    pub fn deleted(&self) -> Vec<crate::AnyObj> {
        self.deleted_impl()
    }

    /// Every object in the identity map.
    #[proxy(attribute)]
    pub fn identity_map(&self) -> Vec<crate::AnyObj> {
        self.identity_map_impl()
    }

    /// Replaces the identity map with `objects` (SQLAlchemy's settable `identity_map`): every
    /// object now in it is detached first.
    ///
    /// # Errors
    /// As [`AsyncSession::add`] for each new object.
    pub fn set_identity_map(&self, objects: Vec<crate::AnyObj>) -> crate::Result<()> {
        self.set_identity_map_impl(objects)
    }

    /// The live session owning `obj`, if any (SQLAlchemy's `object_session()`).
    pub fn object_session<T: crate::Entity>(obj: &crate::Obj<T>) -> Option<crate::AsyncSession> {
        AsyncSession::object_session_impl::<T>(obj)
    }

    /// The identity key of entity `T` with primary key `key` (SQLAlchemy's `identity_key()`).
    pub fn identity_key<T: crate::Entity>(key: T::Key) -> crate::IdentityKey<T> {
        AsyncSession::identity_key_impl::<T>(key)
    }

    /// Number of objects in the identity map.
    pub fn len(&self) -> usize {
        self.len_impl()
    }

    /// True when the session holds no object.
    pub fn is_empty(&self) -> bool {
        self.is_empty_impl()
    }

    /// Runs a statement after an autoflush (SQLAlchemy's `execute()`): a [`Select`](crate::Select) returns its
    /// entities through the identity map (an already loaded row gives the same object), a
    /// [`Text`](crate::Text) its rows.
    ///
    /// # Errors
    /// The database's error; the AsyncMethodRequired message for a select asked to stream.
    pub async fn execute<Q: crate::Executable>(&self, statement: Q) -> crate::Result<Q::Output> {
        self.execute_impl::<Q>(statement).await
    }

    /// [`AsyncSession::execute`] with execution options for this call (SQLAlchemy's
    /// `execute(stmt, execution_options={...})`): they win over the statement's, the
    /// session's and the engine's.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// use session_core::{ExecutionOptions, text};
    /// let rows = session
    ///     .execute_with(text("SELECT 1"), ExecutionOptions::new().autoflush(false))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AsyncSession::execute`]; an isolation level the begun transaction does not have.
    pub async fn execute_with<Q: crate::Executable>(
        &self,
        statement: Q,
        options: crate::ExecutionOptions,
    ) -> crate::Result<Q::Output> {
        self.execute_with_impl::<Q>(statement, options).await
    }

    /// The session's own listener registry (SQLAlchemy's `event.listen(session, ...)`): its
    /// listeners hear this session only. The factory's registry
    /// ([`AsyncSessionMaker::events`](crate::AsyncSessionMaker::events)) and
    /// [`events::global`](crate::events::global) reach it too.
    ///
    /// ```no_run
    /// # fn demo(session: &session_core::AsyncSession) {
    /// session.events().after_commit(|_| {
    ///     println!("committed");
    ///     Ok(())
    /// });
    /// # }
    /// ```
    pub fn events(&self) -> crate::Events {
        self.events_impl()
    }

    /// The first value of every row: the entities of a select, the first column of a
    /// `select_columns` or `returning` (SQLAlchemy's `scalars()`).
    ///
    /// # Errors
    /// As [`AsyncSession::execute`].
    pub async fn scalars<Q: crate::ReturnsRows>(&self, statement: Q) -> crate::Result<Q::Scalars> {
        self.scalars_impl::<Q>(statement).await
    }

    /// The first value: the first entity of a select, or the first column of the first row
    /// (SQLAlchemy's `scalar()`).
    ///
    /// # Errors
    /// As [`AsyncSession::execute`].
    pub async fn scalar<Q: crate::ReturnsRows>(&self, statement: Q) -> crate::Result<Q::Scalar> {
        self.scalar_impl::<Q>(statement).await
    }

    /// Streams the entities of a select from a server-side cursor, [`STREAM_CHUNK`](crate::STREAM_CHUNK) rows per
    /// round trip, inside the session's transaction (SQLAlchemy's `stream_scalars()`). The
    /// session refuses other operations while the stream lives. Dropping the stream early is
    /// safe: the cursor closes with the transaction.
    ///
    /// # Errors
    /// As [`AsyncSession::execute`]; items carry the errors of later fetches.
    pub async fn stream_scalars<T: crate::Entity>(
        &self,
        statement: crate::Select<T>,
    ) -> crate::Result<crate::ObjStream<T>> {
        self.stream_scalars_impl::<T>(statement).await
    }

    /// Same as [`AsyncSession::stream_scalars`] (a select of one entity streams one object per
    /// row; SQLAlchemy's `stream()`).
    ///
    /// # Errors
    /// As [`AsyncSession::stream_scalars`].
    pub async fn stream<T: crate::Entity>(
        &self,
        statement: crate::Select<T>,
    ) -> crate::Result<crate::ObjStream<T>> {
        self.stream_impl::<T>(statement).await
    }
}
