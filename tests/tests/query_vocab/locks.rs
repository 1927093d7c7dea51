//! Row locks seen from a second session: NOWAIT, SKIP LOCKED, FOR SHARE, OF.

use session_core::tokio_postgres::error::SqlState;
use session_core::{AsyncSession, Error, RowLock, select};

use crate::shop::{Bin, Product, shop};

fn lock_not_available(err: &Error) -> bool {
    err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

#[tokio::test]
async fn row_locks_nowait_skip_locked_of_and_share() {
    let engine = shop("locks").await;
    let holder = AsyncSession::new(engine.clone());
    // The holder locks product 1 (its transaction stays open until it commits).
    let locked = holder
        .scalars(
            select::<Product>()
                .filter(Product::C.id.eq(1))
                .with_for_update(),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(locked.len(), 1);
    // NOWAIT: 55P03 at once, instead of waiting.
    let other = AsyncSession::new(engine.clone());
    let err = other
        .execute(select::<Product>().with_lock(RowLock::update().nowait()))
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    // SKIP LOCKED: the rows nobody holds.
    let free: Vec<i32> = other
        .scalars(
            select::<Product>()
                .order_by(Product::C.id.asc())
                .with_lock(RowLock::update().skip_locked()),
        )
        .await
        .unwrap()
        .all()
        .iter()
        .map(|p| p.read().unwrap().id)
        .collect();
    assert_eq!(free, [2, 3]);
    other.rollback().await.unwrap();
    // FOR SHARE waits for (here: fails on) an exclusive lock too.
    let err = other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(1))
                .with_lock(RowLock::share().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    holder.commit().await.unwrap();

    // Two FOR SHARE locks coexist; FOR UPDATE NOWAIT on a shared row fails.
    holder
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::share()),
        )
        .await
        .unwrap();
    other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::share().nowait()),
        )
        .await
        .unwrap();
    let third = AsyncSession::new(engine.clone());
    let err = third
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    third.rollback().await.unwrap();
    holder.commit().await.unwrap();
    other.commit().await.unwrap();

    // OF bin: a join locks only the bins, so the products stay free.
    holder
        .execute(
            select::<Bin>()
                .join(Bin::C.product)
                .filter(Product::C.id.eq(3))
                .with_lock(RowLock::update().of::<Bin>()),
        )
        .await
        .unwrap();
    other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(3))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .expect("product 3 is not locked");
    let err = third
        .execute(
            select::<Bin>()
                .filter(Bin::C.id.eq(3))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    // NOWAIT and SKIP LOCKED together are refused before anything runs.
    let err = AsyncSession::new(engine.clone())
        .execute(select::<Bin>().with_lock(RowLock::update().nowait().skip_locked()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    for s in [holder, other, third] {
        s.rollback().await.unwrap();
        s.close().await;
    }
}
