//! Running a flush's plan (built in `unit_of_work.rs`) in flights: the INSERTs of each wave
//! (every new row whose parents are inserted already) go out together, then every UPDATE and
//! DELETE together. A flush costs one round trip per foreign-key level of new rows, plus one
//! for its changes, whatever the number of tables and statements.
//!
//! When `commit()` flushes, `COMMIT` travels with the last flight ([`Ride`]) if nothing can
//! happen between the flush and the commit: no listener is registered (after_flush and the
//! mapper's after_* events run between them), the session works on one connection of its own
//! (not a joined external transaction) at its root level. The UPDATE and DELETE statements of
//! that flight check their row counts on the server, so a stale row aborts the transaction
//! instead of being committed; an identity-map clash of a new object is resolved as SQLAlchemy
//! does (a warning before the INSERT, which the database refuses when the row exists; once
//! inserted, the new object replaces the old one in the identity map), so nothing that can fail
//! is left for after the COMMIT.

use std::any::TypeId;

use super::events::Transition;
use super::unit_of_work::{IdSet, Plan, Waves, is_flushable_update};
use super::{AsyncSession, Bound};
use crate::connection::FlightError;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::flush::Work;
use crate::mapper::{self, Mapper};
use crate::mapper_events::MapperEvent;
use crate::model::{AnyObj, Link, Table};

/// What happened to a `COMMIT` that could travel with the flush's last flight.
pub(crate) enum Ride {
    /// Not sent: commit as usual.
    NotTaken,
    /// Sent and committed.
    Committed,
    /// Sent after statements that all succeeded, and refused (e.g. a deferred constraint):
    /// the transaction is over, nothing of it stored.
    CommitFailed(Error),
}

/// One batch of a flight: its objects, their mapper, and its statements until they are
/// answered.
struct Batch {
    /// `None` for link rows (many-to-many), which no mapper event sees.
    mapper: Option<&'static dyn Mapper>,
    objs: Vec<AnyObj>,
    work: Option<Box<dyn Work>>,
    engine: Engine,
}

impl AsyncSession {
    /// True when a COMMIT may travel with this flush's last flight: nothing of the session's
    /// has to run between them (see the module docs).
    pub(super) fn may_ride(&self, conns: &[Bound]) -> bool {
        !self.inner.events.is_active()
            && self.mapper_hooks().is_empty()
            && self.state().depth() == 1
            && conns.len() <= 1
            && conns.iter().all(Bound::owns_transaction)
    }

    /// Runs `plan`; with `ride`, COMMIT goes with the last flight when that flight is on the
    /// session's only connection.
    pub(super) async fn run_plan(
        &self,
        conns: &mut Vec<Bound>,
        mut plan: Plan,
        links: &[Link],
        mut looked_at: Vec<AnyObj>,
        ride: bool,
    ) -> Result<Ride> {
        let me = self.inner.id;
        let types = plan.ordered_types();
        let inserts = std::mem::take(&mut plan.inserts);
        let Waves { waves, links_of } = super::unit_of_work::insert_waves(&inserts, links)?;
        let inserted: IdSet = inserts.iter().map(AnyObj::id).collect();
        // Changes after the INSERTs: UPDATEs, DELETEs, persistent children moved to a new
        // parent (they take its key once it is inserted).
        let changes_follow = !plan.updates.is_empty()
            || !plan.deletes.is_empty()
            || !plan.link_rows.is_empty()
            || !plan.nulls.is_empty()
            || links.iter().any(|l| !inserted.contains(&l.child.id()));
        let last_wave = waves.len();
        let mut outcome = Ride::NotTaken;
        for (w, (wave, wave_links)) in waves.into_iter().zip(links_of).enumerate() {
            // Children take their parents' keys (parents were inserted in earlier waves).
            for l in wave_links {
                links[l].apply();
            }
            let mut by_type: Vec<(TypeId, Vec<AnyObj>)> = Vec::new();
            for obj in wave {
                let t = obj.cell.entity_type();
                match by_type.iter_mut().find(|(id, _)| *id == t) {
                    Some((_, objs)) => objs.push(obj),
                    None => by_type.push((t, vec![obj])),
                }
            }
            let mut batches = Vec::new();
            for &(t, table) in &types {
                let Some(at) = by_type.iter().position(|(id, _)| *id == t) else {
                    continue;
                };
                let objs = by_type.swap_remove(at).1;
                let mapper = mapper::of(&objs[0]);
                mapper.run_hooks(&self.mapper_hooks(), MapperEvent::BeforeInsert, &objs)?;
                self.check_new_identities(mapper, &objs);
                let work = mapper.insert_work(&objs)?;
                batches.push(self.batch(table, t, mapper, objs, work)?);
            }
            let commit = ride && w + 1 == last_wave && !changes_follow;
            let (done, ridden) = self.fly(conns, batches, commit).await?;
            outcome = ridden;
            for (batch, _) in done {
                let objs = &batch.objs;
                let Some(mapper) = batch.mapper else { continue };
                mapper.run_hooks(&self.mapper_hooks(), MapperEvent::AfterInsert, objs)?;
                let mut state = self.state();
                let ids: IdSet = objs.iter().map(AnyObj::id).collect();
                state.new.retain(|o| !ids.contains(&o.id()));
                for obj in objs {
                    mapper.identity_register(obj, &mut state.identity);
                    state.innermost().inserted.push(obj.clone());
                    state.note(Transition::PendingToPersistent, obj);
                }
            }
        }
        // Persistent children moved to a parent get its key now, and are updated below.
        for link in links {
            link.apply();
        }
        let mut seen: IdSet = looked_at.iter().map(AnyObj::id).collect();
        for obj in self.take_queued() {
            let id = obj.id();
            if inserted.contains(&id) {
                // Changed while its INSERT ran: look at it in the next flush.
                obj.meta().enqueue(|| obj.clone());
                continue;
            }
            if seen.insert(id) && is_flushable_update(&obj, me) {
                looked_at.push(obj.clone());
                plan.push_update(obj);
            }
        }
        if !matches!(outcome, Ride::NotTaken) {
            // Committed with the last INSERTs; whatever was changed meanwhile stays queued
            // for the next flush.
            for obj in &looked_at {
                obj.meta().enqueue(|| obj.clone());
            }
            return Ok(outcome);
        }
        let types = plan.ordered_types();
        // An UPDATE that reads a server-generated version back (RETURNING) is not checked on
        // the server, so COMMIT waits for its answer.
        let ride = ride
            && !types
                .iter()
                .any(|(t, table)| table.server_version().is_some() && plan.updates.contains_key(t));
        let checked = ride;
        let mut batches = Vec::new();
        let mut kinds = Vec::new();
        for &(t, table) in &types {
            if let Some(objs) = plan.updates.remove(&t) {
                let mapper = mapper::of(&objs[0]);
                mapper.run_hooks(&self.mapper_hooks(), MapperEvent::BeforeUpdate, &objs)?;
                let work = mapper.update_work(&objs, checked)?;
                batches.push(self.batch(table, t, mapper, objs, work)?);
                kinds.push(Some(MapperEvent::AfterUpdate));
            }
        }
        // Link rows: after the INSERTs (both sides have keys), before the DELETEs of the
        // objects they reference.
        for n in std::mem::take(&mut plan.nulls) {
            batches.push(Batch {
                engine: self.resolve_bind(Some(n.table), Some(n.child_type), true)?,
                mapper: None,
                objs: Vec::new(),
                work: Some(crate::flush::null_children_work(&n)?),
            });
            kinds.push(None);
        }
        for (table, t, work) in std::mem::take(&mut plan.link_rows).works(checked)? {
            batches.push(Batch {
                engine: self.resolve_bind(Some(table), Some(t), true)?,
                mapper: None,
                objs: Vec::new(),
                work: Some(work),
            });
            kinds.push(None);
        }
        for &(t, table) in types.iter().rev() {
            if let Some(objs) = plan.deletes.remove(&t) {
                let mapper = mapper::of(&objs[0]);
                mapper.run_hooks(&self.mapper_hooks(), MapperEvent::BeforeDelete, &objs)?;
                let work = mapper.delete_work(&objs, checked)?;
                batches.push(self.batch(table, t, mapper, objs, work)?);
                kinds.push(Some(MapperEvent::AfterDelete));
            }
        }
        if batches.is_empty() {
            for obj in looked_at {
                obj.cell.flushed();
            }
            return Ok(outcome);
        }
        let (done, ridden) = self.fly(conns, batches, ride).await?;
        for ((batch, updated), kind) in done.into_iter().zip(kinds) {
            let objs = &batch.objs;
            let (Some(mapper), Some(kind)) = (batch.mapper, kind) else {
                continue; // link rows
            };
            mapper.run_hooks(&self.mapper_hooks(), kind, objs)?;
            let mut state = self.state();
            if kind == MapperEvent::AfterUpdate {
                state.innermost().updated.extend(updated);
                continue;
            }
            let ids: IdSet = objs.iter().map(AnyObj::id).collect();
            state.deleted.retain(|o| !ids.contains(&o.id()));
            for obj in objs {
                mapper.identity_remove(obj, &mut state.identity);
                state.innermost().deleted.push(obj.clone());
                state.note(Transition::PersistentToDeleted, obj);
            }
        }
        // What this flush looked at is clean now: its columns were written and its
        // relationships cascaded.
        for obj in looked_at {
            obj.cell.flushed();
        }
        Ok(ridden)
    }

    fn batch(
        &self,
        table: &'static Table,
        t: TypeId,
        mapper: &'static dyn Mapper,
        objs: Vec<AnyObj>,
        work: Box<dyn Work>,
    ) -> Result<Batch> {
        Ok(Batch {
            engine: self.resolve_bind(Some(table), Some(t), true)?,
            mapper: Some(mapper),
            objs,
            work: Some(work),
        })
    }

    /// Warns about new objects whose key (given by the application) is the key of another
    /// object in the identity map, as SQLAlchemy does before its INSERT; the database decides
    /// (a unique violation when the row is there).
    fn check_new_identities(&self, mapper: &'static dyn Mapper, objs: &[AnyObj]) {
        let state = self.state();
        for obj in objs {
            if let Some(other) = mapper.identity_conflict(obj, &state.identity) {
                tracing::warn!(target: "session_core::session",
                    "New instance {obj:?} conflicts with persistent instance {other}");
            }
        }
    }

    /// Sends `batches` in one flight per connection (COMMIT with it when `commit` and the
    /// session has that one connection), and finishes each with its answers. Returns each
    /// batch with the objects it updated, in order.
    async fn fly(
        &self,
        conns: &mut Vec<Bound>,
        mut batches: Vec<Batch>,
        commit: bool,
    ) -> Result<(Vec<(Batch, Vec<AnyObj>)>, Ride)> {
        let mut engines: Vec<Engine> = Vec::new();
        for batch in &batches {
            if !engines.iter().any(|e| e.same_pool(&batch.engine)) {
                engines.push(batch.engine.clone());
            }
        }
        let commit = commit && engines.len() == 1;
        let mut ride = Ride::NotTaken;
        let mut updated: Vec<Vec<AnyObj>> = vec![Vec::new(); batches.len()];
        for engine in &engines {
            let mine: Vec<usize> = (0..batches.len())
                .filter(|&i| batches[i].engine.same_pool(engine))
                .collect();
            self.conn_for(conns, engine).await?;
            let commit = commit && conns.len() == 1 && conns[0].owns_transaction();
            let conn = self.conn_for(conns, engine).await?;
            let commit = commit && conn.transaction_depth() == 1;
            let mut ends = Vec::new();
            let flown = {
                let mut planned = Vec::new();
                for &i in &mine {
                    if let Some(work) = &batches[i].work {
                        planned.extend(work.planned());
                    }
                    ends.push(planned.len());
                }
                conn.run_flight(&planned, commit).await
            };
            let answers = match flown {
                Ok(answers) => answers,
                Err(FlightError {
                    statement: Some(s),
                    error,
                    ..
                }) => {
                    let b = ends.iter().position(|&end| s < end).unwrap_or(0);
                    let first = if b == 0 { 0 } else { ends[b - 1] };
                    let explained = match &batches[mine[b]].work {
                        Some(work) => work.explain(s - first, error),
                        None => error,
                    };
                    return Err(explained);
                }
                Err(FlightError {
                    commit: true,
                    error,
                    ..
                }) => return Ok((Vec::new(), Ride::CommitFailed(error))),
                Err(FlightError { error, .. }) => return Err(error),
            };
            if commit {
                ride = Ride::Committed;
            }
            let mut answers = answers.into_iter();
            let mut start = 0;
            for (&i, end) in mine.iter().zip(ends) {
                let theirs: Vec<_> = answers.by_ref().take(end - start).collect();
                start = end;
                if let Some(work) = batches[i].work.take() {
                    updated[i] = work.finish(theirs)?;
                }
            }
        }
        Ok((batches.into_iter().zip(updated).collect(), ride))
    }
}
