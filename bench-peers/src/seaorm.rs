//! The SeaORM side, as SeaORM's docs write it: entities derived with `DeriveEntityModel` (the
//! compact format, relations in a `Relation` enum), `ActiveModel`s, `Entity::insert_many(..)
//! .exec_with_returning`, the model loader (`LoaderTrait::load_many`, which the docs recommend
//! over `find_with_related` for one-to-many: one query for the children, no duplicated parent
//! rows) for the eager load, `Column::is_in` for key lists, `DatabaseConnection::begin()` for
//! transactions. SeaORM has no identity map and no unit of work: changed models are written
//! back one `ActiveModel::update` each (`update_many` sets one value for every matched row,
//! which this workload cannot use).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, LoaderTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use session_tools::bench::peers;

/// Table `a`.
pub mod a {
    use sea_orm::entity::prelude::*;

    /// A row of `a`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "a")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Payload.
        pub data: String,
        /// Server default.
        pub create_date: Option<DateTime>,
    }

    /// `a` has many `b`.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The children.
        #[sea_orm(has_many = "super::b::Entity")]
        B,
    }

    impl Related<super::b::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::B.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Table `b`.
pub mod b {
    use sea_orm::entity::prelude::*;

    /// A row of `b`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "b")]
    pub struct Model {
        /// Key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Parent.
        pub a_id: i32,
        /// Payload.
        pub data: String,
    }

    /// `b` belongs to `a`.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// The parent.
        #[sea_orm(
            belongs_to = "super::a::Entity",
            from = "Column::AId",
            to = "super::a::Column::Id"
        )]
        A,
    }

    impl Related<super::a::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::A.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One graph_flush level: a table with a key, an optional parent column and a name.
macro_rules! level {
    ($module:ident, $table:literal $(, $parent:ident)?) => {
        #[doc = concat!("Table `", $table, "` (graph_flush).")]
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[doc = concat!("A row of `", $table, "`.")]
            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                /// Key.
                #[sea_orm(primary_key)]
                pub id: i32,
                $(
                    /// Parent.
                    pub $parent: i32,
                )?
                /// Payload.
                pub name: String,
            }

            /// Relations (none are navigated by the workload).
            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

level!(region, "region");
level!(store, "store", region_id);
level!(shelf, "shelf", store_id);
level!(slot, "slot", shelf_id);

fn err(e: DbErr) -> String {
    format!("sea-orm: {e}")
}

/// The SeaORM side on one database.
pub struct Side {
    db: DatabaseConnection,
}

impl Side {
    /// A connection pool of 10 on `url`, not pinged on checkout (as the other sides), without
    /// sqlx's statement logging.
    pub async fn new(url: &str) -> Result<Self, String> {
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(10)
            .test_before_acquire(false)
            .sqlx_logging(false);
        let db = Database::connect(options).await.map_err(err)?;
        Ok(Side { db })
    }

    /// Runs workload `step` (an index of [`peers::WORKLOADS`]); its time.
    pub async fn step(&self, step: usize, n: usize) -> Result<Duration, String> {
        let db = &self.db;
        match step {
            0 => peers::measure(insert_flush(db, n)).await,
            1 => {
                peers::measure(async {
                    let rows = load_eager(db).await?;
                    assert_eq!(rows.len(), n);
                    assert!(rows.iter().all(|(_, bs)| bs.len() == 2));
                    Ok(())
                })
                .await
            }
            2 => peers::measure(get_by_pk(db, n as i32)).await,
            3 => peers::measure(update_dirty(db)).await,
            4 => {
                let ids = peers::request_ids(n);
                peers::measure(crate::concurrently(ids, |id| {
                    let db = db.clone();
                    async move { request(&db, id).await }
                }))
                .await
            }
            5 => {
                let keys = peers::many_keys(n);
                peers::measure(async {
                    let got = get_many(db, &keys).await?;
                    assert!(got.iter().all(Option::is_some));
                    Ok(())
                })
                .await
            }
            _ => peers::measure(graph_flush(db, peers::graph_chains(n))).await,
        }
    }

    /// Opens all 10 connections of the pool under the `DatabaseConnection`.
    pub async fn warm(&self) -> Result<(), String> {
        crate::warm_sqlx(self.db.get_postgres_connection_pool()).await
    }

    /// Closes the pool.
    pub async fn dispose(self) {
        let _ = self.db.close().await;
    }
}

/// N parents with 2 children each: one `insert_many` per table, models returned.
async fn insert_flush(db: &DatabaseConnection, n: usize) -> Result<(), String> {
    let txn = db.begin().await.map_err(err)?;
    let parents = a::Entity::insert_many((0..n).map(|i| a::ActiveModel {
        data: Set(format!("a{i}")),
        ..Default::default()
    }))
    .exec_with_returning(&txn)
    .await
    .map_err(err)?;
    let children = b::Entity::insert_many(parents.iter().enumerate().flat_map(|(i, p)| {
        [1, 2].map(|k| b::ActiveModel {
            a_id: Set(p.id),
            data: Set(format!("b{i}.{k}")),
            ..Default::default()
        })
    }))
    .exec_with_returning(&txn)
    .await
    .map_err(err)?;
    assert_eq!((parents.len(), children.len()), (n, 2 * n));
    txn.commit().await.map_err(err)
}

/// Every `a` with its `b`s: the parents, then `load_many` (one query for all children).
async fn load_eager(db: &DatabaseConnection) -> Result<Vec<(a::Model, Vec<b::Model>)>, String> {
    let parents = a::Entity::find()
        .order_by_asc(a::Column::Id)
        .all(db)
        .await
        .map_err(err)?;
    let children = parents.load_many(b::Entity, db).await.map_err(err)?;
    Ok(parents.into_iter().zip(children).collect())
}

/// N `find_by_id(id).one()` in one transaction, kept in a map; then N lookups answered from
/// the map (SeaORM has no identity map).
async fn get_by_pk(db: &DatabaseConnection, n: i32) -> Result<usize, String> {
    let txn = db.begin().await.map_err(err)?;
    let mut held: HashMap<i32, Arc<a::Model>> = HashMap::with_capacity(n as usize);
    for id in 1..=n {
        let row = a::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(err)?
            .ok_or("sea-orm: no such row")?;
        held.insert(id, Arc::new(row));
    }
    let hits = (1..=n).filter(|id| held.contains_key(id)).count();
    assert_eq!(hits, n as usize);
    txn.commit().await.map_err(err)?;
    Ok(hits)
}

/// Load every `a`, change `data`, one `ActiveModel::update` per changed model.
async fn update_dirty(db: &DatabaseConnection) -> Result<usize, String> {
    let txn = db.begin().await.map_err(err)?;
    let rows = a::Entity::find().all(&txn).await.map_err(err)?;
    let count = rows.len();
    for row in rows {
        let data = format!("{}!", row.data);
        let mut active = row.into_active_model();
        active.data = Set(data);
        active.update(&txn).await.map_err(err)?;
    }
    txn.commit().await.map_err(err)?;
    Ok(count)
}

/// One request: read an `a` by key and change it, in a transaction.
async fn request(db: &DatabaseConnection, id: i32) -> Result<(), String> {
    let txn = db.begin().await.map_err(err)?;
    let row = a::Entity::find_by_id(id)
        .one(&txn)
        .await
        .map_err(err)?
        .ok_or("sea-orm: no such row")?;
    let mut active = row.into_active_model();
    active.data = Set("r".into());
    active.update(&txn).await.map_err(err)?;
    txn.commit().await.map_err(err)
}

/// The rows of `keys` by `is_in`, in key order, `None` for a missing key.
async fn get_many(
    db: &DatabaseConnection,
    keys: &[i32],
) -> Result<Vec<Option<Arc<a::Model>>>, String> {
    let rows = a::Entity::find()
        .filter(a::Column::Id.is_in(keys.iter().copied()))
        .all(db)
        .await
        .map_err(err)?;
    let by_id: HashMap<i32, Arc<a::Model>> =
        rows.into_iter().map(|r| (r.id, Arc::new(r))).collect();
    Ok(keys.iter().map(|k| by_id.get(k).cloned()).collect())
}

/// graph_flush: the shelves and the even slots loaded, `chains` new chains inserted one
/// `insert_many` per level, every shelf renamed (one `update` each), the even slots deleted
/// with one `delete_many`.
async fn graph_flush(db: &DatabaseConnection, chains: usize) -> Result<(), String> {
    let txn = db.begin().await.map_err(err)?;
    let shelves = shelf::Entity::find().all(&txn).await.map_err(err)?;
    let slots = slot::Entity::find()
        .filter(Expr::cust("id % 2 = 0"))
        .all(&txn)
        .await
        .map_err(err)?;
    let regions = region::Entity::insert_many((0..chains).map(|i| region::ActiveModel {
        name: Set(format!("nr{i}")),
        ..Default::default()
    }))
    .exec_with_returning(&txn)
    .await
    .map_err(err)?;
    let stores =
        store::Entity::insert_many(regions.iter().enumerate().map(|(i, r)| store::ActiveModel {
            region_id: Set(r.id),
            name: Set(format!("ns{i}")),
            ..Default::default()
        }))
        .exec_with_returning(&txn)
        .await
        .map_err(err)?;
    let new_shelves =
        shelf::Entity::insert_many(stores.iter().enumerate().map(|(i, s)| shelf::ActiveModel {
            store_id: Set(s.id),
            name: Set(format!("nh{i}")),
            ..Default::default()
        }))
        .exec_with_returning(&txn)
        .await
        .map_err(err)?;
    slot::Entity::insert_many(
        new_shelves
            .iter()
            .enumerate()
            .map(|(i, h)| slot::ActiveModel {
                shelf_id: Set(h.id),
                name: Set(format!("nx{i}")),
                ..Default::default()
            }),
    )
    .exec(&txn)
    .await
    .map_err(err)?;
    for row in shelves {
        let name = format!("{}!", row.name);
        let mut active = row.into_active_model();
        active.name = Set(name);
        active.update(&txn).await.map_err(err)?;
    }
    slot::Entity::delete_many()
        .filter(slot::Column::Id.is_in(slots.iter().map(|s| s.id)))
        .exec(&txn)
        .await
        .map_err(err)?;
    txn.commit().await.map_err(err)
}
