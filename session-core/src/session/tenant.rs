//! The session's side of `schema_translate_map` (see the `tenant` module): the map its
//! transactions begin with, and the check that a statement's map is the transaction's.

use super::{AsyncSession, lock};
use crate::connection::AsyncConnection;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::{ExecutionOptions, SchemaTranslateMap};

impl AsyncSession {
    /// The map of the session's transactions on `engine`: the session's (or its factory's)
    /// execution options over the engine's.
    fn schema_map_for(&self, engine: &Engine) -> Option<SchemaTranslateMap> {
        let config = lock(&self.inner.config);
        config
            .execution_options
            .get_schema_translate_map()
            .or(engine.execution_options().get_schema_translate_map())
            .cloned()
    }

    /// Applies the map to the transaction just begun on `conn` (with its deferred `BEGIN`).
    pub(crate) async fn begin_tenant(
        &self,
        conn: &mut AsyncConnection,
        engine: &Engine,
    ) -> Result<()> {
        if let Some(sql) = self
            .schema_map_for(engine)
            .map(|map| map.set_local_sql())
            .transpose()?
            .flatten()
        {
            conn.set_local(&sql).await?;
        }
        Ok(())
    }

    /// Refuses a statement whose map (its own or the call's) is not the transaction's.
    pub(crate) fn check_statement_tenant(
        &self,
        engine: &Engine,
        options: &ExecutionOptions,
    ) -> Result<()> {
        let Some(asked) = options.get_schema_translate_map() else {
            return Ok(());
        };
        let session = self.schema_map_for(engine);
        if session.as_ref() == Some(asked) {
            return Ok(());
        }
        Err(Error::InvalidRequest(format!(
            "schema_translate_map {:?} on a statement differs from the session's ({:?}): a \
             session's transaction works in one schema, set when it begins; give the map to \
             the session or its factory (execution_options), one session per tenant",
            asked.entries().collect::<Vec<_>>(),
            session.as_ref().map(|m| m.entries().collect::<Vec<_>>())
        )))
    }
}
