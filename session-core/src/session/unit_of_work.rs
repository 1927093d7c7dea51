//! The unit of work: what a flush writes and in which order. Pending objects are inserted in
//! waves (an object after every pending object it refers to, so trees and cycles of tables
//! get their keys first), then updates and deletes go out per entity type in foreign-key order;
//! each type's batched SQL is reached through its mapper.

use std::any::TypeId;
use std::collections::HashMap;

/// Sets and maps of object ids (a fast hash: a flush keys tens of thousands of them).
pub(super) type IdSet = std::collections::HashSet<u64, foldhash::fast::RandomState>;
type IdMap<V> = HashMap<u64, V, foldhash::fast::RandomState>;

use super::events::{FlushInfo, Plain};
use super::flights::Ride;
use super::state::{Failed, SessionState};
use super::{AsyncSession, Bound, Phase, PhaseGuard, lock};
use crate::error::{Error, Result};
use crate::flush::{LinkPlan, NullChildren, dependency_order};
use crate::model::{AnyObj, Link, ObjectState, Table};

/// Work found by a flush, grouped per entity type (by `TypeId`) in first-seen order.
#[derive(Default)]
pub(super) struct Plan {
    types: Vec<(TypeId, &'static Table)>,
    pub(super) inserts: Vec<AnyObj>,
    pub(super) updates: HashMap<TypeId, Vec<AnyObj>>,
    pub(super) deletes: HashMap<TypeId, Vec<AnyObj>>,
    /// Link rows of many-to-many collections.
    pub(super) link_rows: LinkPlan,
    /// Children of deleted parents, not in the session, whose foreign key is set to NULL.
    pub(super) nulls: Vec<NullChildren>,
}

#[derive(Clone, Copy)]
enum Kind {
    Update,
    Delete,
}

impl Plan {
    fn note_type(&mut self, obj: &AnyObj) -> TypeId {
        let t = obj.cell.entity_type();
        if !self.types.iter().any(|(id, _)| *id == t) {
            self.types.push((t, obj.table()));
        }
        t
    }

    fn insert(&mut self, obj: AnyObj) {
        self.note_type(&obj);
        self.inserts.push(obj);
    }

    fn push(&mut self, kind: Kind, obj: AnyObj) {
        let t = self.note_type(&obj);
        let map = match kind {
            Kind::Update => &mut self.updates,
            Kind::Delete => &mut self.deletes,
        };
        map.entry(t).or_default().push(obj);
    }

    /// Queues `obj` for an UPDATE.
    pub(super) fn push_update(&mut self, obj: AnyObj) {
        self.push(Kind::Update, obj);
    }

    fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Notes that the children of `parent` in `table` (column `column`) that the session does
    /// not hold get a NULL foreign key.
    fn null_children(&mut self, d: &crate::model::Dependent) {
        let at = self
            .nulls
            .iter()
            .position(|n| n.child_type == d.child_type && n.column == d.fk_column);
        match at {
            Some(i) => self.nulls[i].parents.push(d.parent.clone()),
            None => self.nulls.push(NullChildren {
                table: d.child_table,
                child_type: d.child_type,
                column: d.fk_column,
                parents: vec![d.parent.clone()],
                keys: d.parent_keys,
            }),
        }
    }

    /// The plan's types with their tables in foreign-key order (parents first).
    pub(super) fn ordered_types(&self) -> Vec<(TypeId, &'static Table)> {
        let tables: Vec<&'static Table> = self.types.iter().map(|(_, t)| *t).collect();
        dependency_order(&tables)
            .into_iter()
            .map(|i| self.types[i])
            .collect()
    }
}

/// Splits `inserts` into waves: an object comes in a later wave than every pending object it
/// refers to through a relationship, so that parents of the same table (a tree) or of a
/// cycle of tables get their keys before their children are inserted. Within a wave, tables
/// keep foreign-key order. Refuses a cycle of pending rows, which no order can insert.
pub(super) fn insert_waves(inserts: &[AnyObj], links: &[Link]) -> Result<Waves> {
    let index: IdMap<usize> = inserts
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); inserts.len()];
    let mut waiting = vec![0usize; inserts.len()];
    // Link `l` copies a key into insert `child_of[l]` (when that child is inserted here).
    let mut child_of: Vec<Option<usize>> = Vec::with_capacity(links.len());
    for link in links {
        // A many-to-many pair orders nothing: its link row comes after both.
        let child = link
            .orders
            .then(|| index.get(&link.child.id()).copied())
            .flatten();
        child_of.push(child);
        if let (Some(&p), Some(c)) = (index.get(&link.parent.id()), child) {
            // A repeated edge counts twice on both sides, so it needs no dedup.
            if p != c {
                children[p].push(c);
                waiting[c] += 1;
            }
        }
    }
    let mut wave_of = vec![usize::MAX; inserts.len()];
    let mut wave: Vec<usize> = (0..inserts.len()).filter(|&i| waiting[i] == 0).collect();
    let mut waves: Vec<Vec<AnyObj>> = Vec::new();
    let mut placed = 0;
    while !wave.is_empty() {
        placed += wave.len();
        let mut next = Vec::new();
        for &p in &wave {
            wave_of[p] = waves.len();
            for &c in &children[p] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    next.push(c);
                }
            }
        }
        waves.push(wave.iter().map(|&i| inserts[i].clone()).collect());
        wave = next;
    }
    if placed < inserts.len() {
        let stuck: Vec<String> = (0..inserts.len())
            .filter(|&i| waiting[i] > 0)
            .take(5)
            .map(|i| format!("{:?}", inserts[i]))
            .collect();
        return Err(Error::InvalidRequest(format!(
            "Circular dependency detected between pending objects ({}): each refers to another \
             one that has no key yet, so no insert order works; flush one of them first, or \
             break the cycle with a nullable foreign key set after the flush",
            stuck.join(", ")
        )));
    }
    let mut links_of = vec![Vec::new(); waves.len()];
    for (l, child) in child_of.into_iter().enumerate() {
        if let Some(c) = child {
            links_of[wave_of[c]].push(l);
        }
    }
    Ok(Waves { waves, links_of })
}

/// Inserts in dependency order: `waves[w]` are inserted after every earlier wave, once the
/// links `links_of[w]` (indices into the flush's links) copied their parents' keys in.
pub(super) struct Waves {
    pub(super) waves: Vec<Vec<AnyObj>>,
    pub(super) links_of: Vec<Vec<usize>>,
}

/// The `ON DELETE` action of a foreign-key column other than `NO ACTION` / `RESTRICT`: the
/// database sets the children free itself.
pub(super) fn database_action(fk: &crate::model::Column) -> Option<&'static str> {
    fk.foreign_key
        .as_ref()
        .and_then(|f| f.on_delete)
        .filter(|a| !matches!(*a, "NO ACTION" | "RESTRICT"))
}

/// The link rows of many-to-many collections that the flush writes: those of the new objects,
/// of the changed persistent ones (`queued`) and of the deleted ones (all their rows).
fn link_rows(state: &SessionState, queued: &[AnyObj], me: u64) -> LinkPlan {
    let mut plan = LinkPlan::default();
    for obj in &state.new {
        obj.cell.clone().secondaries(&mut |s| plan.add(s, false));
    }
    let mut seen = IdSet::default();
    for obj in queued {
        if is_flushable_update(obj, me) && seen.insert(obj.id()) {
            obj.cell.clone().secondaries(&mut |s| plan.add(s, false));
        }
    }
    for obj in &state.deleted {
        obj.cell.clone().secondaries(&mut |s| plan.add(s, true));
    }
    plan
}

/// True when `obj` is a persistent object of session `me` that a flush may UPDATE.
pub(super) fn is_flushable_update(obj: &AnyObj, me: u64) -> bool {
    let m = obj.meta();
    m.status == ObjectState::Persistent && m.session == Some(me) && !m.marked_deleted
}

/// Marks the session failed if a flush is dropped before it finishes.
struct FlushGuard<'a> {
    session: &'a AsyncSession,
    level: usize,
    armed: bool,
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.session.state();
            if state.failed.is_none() {
                state.failed = Some(Failed {
                    level: self.level.max(1),
                    cause: "the flush was cancelled before it finished (its future was \
                            dropped); the database transaction is rolled back"
                        .into(),
                });
            }
        }
    }
}

impl AsyncSession {
    /// True when there is anything to flush.
    pub(crate) fn has_changes(&self, state: &SessionState) -> bool {
        !state.new.is_empty() || !state.deleted.is_empty() || !lock(&self.inner.dirty).is_empty()
    }

    /// Implements [`AsyncSession::flush`].
    pub(crate) async fn flush_impl(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.flush_locked(&mut conns).await
    }

    pub(crate) async fn flush_locked(&self, conns: &mut Vec<Bound>) -> Result<()> {
        self.flush_riding(conns, false).await.map(|_| ())
    }

    /// Flushes; with `ride`, COMMIT travels with the last flight where it may
    /// (`flights.rs`): the outcome says whether it did.
    pub(crate) async fn flush_riding(&self, conns: &mut Vec<Bound>, ride: bool) -> Result<Ride> {
        {
            let state = self.state();
            state.check_usable()?;
            if !self.has_changes(&state) {
                return Ok(Ride::NotTaken);
            }
            state.check_autobegin()?;
        }
        // Boxed: the flush's future is large (kilobytes), and every call that may autoflush
        // (get, execute, commit) would otherwise carry it inline and copy it wherever its
        // future moves (`tokio::spawn` included), whether it flushes or not.
        Box::pin(self.flush_changes(conns, ride)).await
    }

    /// The flush itself, once [`AsyncSession::flush_riding`] found changes.
    async fn flush_changes(&self, conns: &mut Vec<Bound>, ride: bool) -> Result<Ride> {
        // The flush's own listeners (before_flush, mapper events, after_flush) may not run
        // SQL through the session: "Session is already flushing".
        let _phase = PhaseGuard::enter(&self.inner, Phase::Flushing);
        self.fire(Plain::BeforeFlush)?;
        let me = self.inner.id;
        let _loaded = if self.state().deleted.is_empty() {
            Vec::new()
        } else {
            self.load_for_delete(conns).await?
        };
        let (plan, links, looked_at, depth) = {
            let mut state = self.state();
            state.check_usable()?;
            let mut queued = self.take_queued();
            let roots = state.new.iter().chain(&queued).cloned().collect();
            let links = self.cascade(&mut state, roots)?;
            self.release_orphans(&mut state, &queued, &links)?;
            let mut plan = Plan::default();
            if !state.deleted.is_empty() {
                self.delete_dependents(&mut state, &mut plan)?;
            }
            // Children whose foreign key was just set to NULL.
            queued.extend(self.take_queued());
            plan.link_rows = link_rows(&state, &queued, me);
            if state.new.is_empty() && state.deleted.is_empty() && queued.is_empty() {
                return Ok(Ride::NotTaken);
            }
            for obj in &state.new {
                plan.insert(obj.clone());
            }
            let mut seen = IdSet::default();
            let mut looked_at = Vec::new();
            for obj in queued {
                if seen.insert(obj.id()) && is_flushable_update(&obj, me) {
                    looked_at.push(obj.clone());
                    plan.push(Kind::Update, obj);
                }
            }
            for obj in &state.deleted {
                plan.push(Kind::Delete, obj.clone());
            }
            if plan.is_empty() {
                return Ok(Ride::NotTaken);
            }
            state.autobegin();
            (plan, links, looked_at, state.depth())
        };
        let info = self.inner.events.is_active().then(|| FlushInfo {
            inserted: plan.inserts.clone(),
            updated: looked_at.clone(),
            deleted: plan.deletes.values().flatten().cloned().collect(),
        });
        let mut guard = FlushGuard {
            session: self,
            level: depth,
            armed: true,
        };
        let ride = ride && self.may_ride(conns);
        let result = self.run_plan(conns, plan, &links, looked_at, ride).await;
        guard.armed = false;
        let ridden = match result {
            Ok(ridden) => ridden,
            Err(e) => {
                self.flush_failed(conns, depth, &e).await;
                let _ = self.fire_pending();
                return Err(e);
            }
        };
        self.fire_pending()?;
        if let Some(info) = info {
            self.fire_flush(false, &info)?;
            self.fire_flush(true, &info)?;
        }
        Ok(ridden)
    }

    /// The objects queued for the next flush, each taken off the queue.
    pub(super) fn take_queued(&self) -> Vec<AnyObj> {
        let queued = std::mem::take(&mut *lock(&self.inner.dirty));
        for obj in &queued {
            obj.meta().queued = false;
        }
        queued
    }

    /// A flush failed at transaction level `depth`: in a savepoint, only the savepoint is rolled
    /// back in the database and the session waits for that savepoint's rollback (SQLAlchemy);
    /// at the root, the database transaction is rolled back now and the session waits for
    /// `rollback()`.
    pub(super) async fn flush_failed(&self, conns: &mut Vec<Bound>, depth: usize, e: &Error) {
        let cause = e.to_string();
        if depth > 1 && !e.is_in_doubt() {
            let mut ok = true;
            for bound in conns.iter_mut() {
                ok &= bound.rollback_level(depth).await.is_ok();
            }
            if ok {
                self.state().failed = Some(Failed {
                    level: depth,
                    cause,
                });
                return;
            }
        }
        self.state().failed = Some(Failed { level: 1, cause });
        if e.is_in_doubt() {
            return; // the connection is gone; rollback() ends the transaction
        }
        // Roll the database back now, so no connection idles in a failed transaction.
        for mut bound in conns.drain(..) {
            let _ = bound.rollback_root().await;
            bound.release().await;
        }
    }

    /// Children taken out of a loaded collection of a parent being updated (and not put into
    /// another parent's in this flush): deleted with `cascade = "delete-orphan"`, otherwise
    /// their foreign key is set to NULL (SQLAlchemy's de-association), or, for a NOT NULL
    /// column, the flush is refused before anything is sent.
    fn release_orphans(
        &self,
        state: &mut SessionState,
        queued: &[AnyObj],
        links: &[Link],
    ) -> Result<()> {
        let me = self.inner.id;
        let mut dependents = Vec::new();
        for parent in queued {
            if is_flushable_update(parent, me) {
                parent.cell.clone().dependents(&mut |d| {
                    if !d.removed.is_empty() {
                        dependents.push(d);
                    }
                });
            }
        }
        for d in dependents {
            for child in &d.removed {
                if !is_flushable_update(child, me) || (d.elsewhere)(child) {
                    continue; // gone, or already pointing elsewhere
                }
                let adopted = links
                    .iter()
                    .any(|l| l.orders && l.child.ptr_eq(child) && !l.parent.ptr_eq(&d.parent));
                if adopted {
                    continue;
                }
                let fk = &d.child_table.columns[d.fk_column];
                if d.delete_orphan {
                    state.delete(child, self.owner(), AsyncSession::is_alive)?;
                } else if fk.nullable {
                    (d.clear)(child);
                } else {
                    return Err(Error::InvalidRequest(format!(
                        "{child:?} was taken out of a collection of {:?}: without \
                         cascade = \"delete-orphan\" its {}.{} is set to NULL (SQLAlchemy's \
                         default), but that column is NOT NULL; add cascade = \"delete-orphan\" \
                         to the relationship, move it to another parent, or delete it",
                        d.parent, d.child_table.name, fk.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// What deleting a parent does to its children (SQLAlchemy's rules), for every object
    /// marked deleted: with `cascade = "delete"` on the relationship, or `ON DELETE CASCADE`
    /// on the foreign key, the children in the session are deleted too (and theirs, in turn);
    /// otherwise their foreign key is set to NULL, or, when that column is NOT NULL, the flush
    /// is refused before anything is sent. Children not in the session were loaded before
    /// (`load_for_delete`) when a delete cascade deletes them; a nullable key is set to NULL
    /// by one UPDATE ([`NullChildren`]); a NOT NULL one makes the parent's DELETE fail on the
    /// database's foreign key. The database's own `ON DELETE` action, or `passive_deletes`,
    /// leaves them to the database.
    fn delete_dependents(&self, state: &mut SessionState, plan: &mut Plan) -> Result<()> {
        let me = self.inner.id;
        let mut queue: Vec<AnyObj> = state.deleted.clone();
        let mut seen = IdSet::default();
        let mut by_type: Option<HashMap<TypeId, Vec<AnyObj>>> = None;
        while let Some(parent) = queue.pop() {
            if !seen.insert(parent.id()) {
                continue;
            }
            let mut dependents = Vec::new();
            parent.cell.clone().dependents(&mut |d| dependents.push(d));
            for d in dependents {
                let candidates = match &d.loaded {
                    Some(children) => children.clone(),
                    None => by_type
                        .get_or_insert_with(|| {
                            let mut map: HashMap<TypeId, Vec<AnyObj>> = HashMap::new();
                            for obj in state.identity.objects() {
                                map.entry(obj.cell.entity_type()).or_default().push(obj);
                            }
                            map
                        })
                        .get(&d.child_type)
                        .cloned()
                        .unwrap_or_default(),
                };
                let children: Vec<AnyObj> = candidates
                    .into_iter()
                    .filter(|c| is_flushable_update(c, me) && (d.belongs)(c))
                    .collect();
                let fk = &d.child_table.columns[d.fk_column];
                let database_cascades = fk
                    .foreign_key
                    .as_ref()
                    .and_then(|f| f.on_delete)
                    .is_some_and(|a| a == "CASCADE");
                if d.loaded.is_none()
                    && !d.cascade_delete
                    && fk.nullable
                    && !d.passive_deletes
                    && database_action(fk).is_none()
                {
                    plan.null_children(&d);
                }
                if children.is_empty() {
                    continue;
                }
                if d.cascade_delete || database_cascades {
                    for child in children {
                        state.delete(&child, self.owner(), AsyncSession::is_alive)?;
                        queue.push(child);
                    }
                } else if fk.nullable {
                    for child in &children {
                        (d.clear)(child);
                    }
                } else {
                    return Err(Error::InvalidRequest(format!(
                        "Deleting {:?} would leave {} object(s) of {} ({:?}, ...) pointing at a \
                         deleted row: without a delete cascade their {}.{} is set to NULL \
                         (SQLAlchemy's default), but that column is NOT NULL; add \
                         cascade = \"delete\" to the relationship, on_delete = \"cascade\" to \
                         the foreign key, or delete or move the children first",
                        d.parent,
                        children.len(),
                        d.child_table.entity,
                        children[0],
                        d.child_table.name,
                        fk.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Walks the relationships of `roots` and of every object added on the way: transient
    /// objects they reach are added (SQLAlchemy's save-update cascade, for `add` and at
    /// flush); returns every parent/child link seen.
    pub(super) fn cascade(
        &self,
        state: &mut SessionState,
        roots: Vec<AnyObj>,
    ) -> Result<Vec<Link>> {
        let mut links = Vec::new();
        let mut queue = roots;
        let mut visited = IdSet::default();
        while let Some(obj) = queue.pop() {
            if !visited.insert(obj.id()) {
                continue;
            }
            let mut found = Vec::new();
            obj.cell.clone().relations(&mut |link| found.push(link));
            for link in found {
                for other in [&link.parent, &link.child] {
                    if other.state() == ObjectState::Transient {
                        state.add(other, self.owner(), AsyncSession::is_alive)?;
                        queue.push(other.clone());
                    }
                }
                links.push(link);
            }
        }
        Ok(links)
    }
}
