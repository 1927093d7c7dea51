//! `close_all()` closes every live session of the process (SQLAlchemy's
//! `close_all_sessions()`), so it runs in a test binary of its own: beside other tests it would
//! close their sessions too.

use session_core::AsyncSession;
use session_scoped::{AsyncScopedSession, ScopeKey, async_scoped_session, scope};
use session_tests::support::{a, schema_engine};

#[tokio::test]
async fn close_all_closes_every_live_session_also_through_the_scoped_classmethod() {
    let engine = schema_engine("close_all", 4).await;
    let s1 = AsyncSession::new(engine.clone());
    let s2 = AsyncSession::new(engine.clone());
    let (o1, o2) = (a("o1"), a("o2"));
    s1.add(&o1).unwrap();
    s2.add(&o2).unwrap();
    s2.flush().await.unwrap();
    AsyncSession::close_all().await;
    assert!(!s1.contains(&o1) && !s2.contains(&o2));
    assert!(!s2.in_transaction());

    // The scoped session's classmethod calls AsyncSession::close_all directly.
    let scoped = async_scoped_session(
        session_core::async_sessionmaker(engine.clone()),
        scope::current_task,
    );
    let o3 = a("o3");
    scoped.add(&o3).unwrap();
    AsyncScopedSession::<AsyncSession, ScopeKey>::close_all().await;
    assert!(!scoped.contains(&o3));
    scoped.remove().await;
}
