//! `get_many` (Hibernate's `multiLoad`): identity-map hits without SQL, the misses in one
//! query per chunk, the objects in key order with `None` for missing keys.

use session_core::{AsyncSession, ObjectState};
use session_tests::model::{A, Item};
use session_tests::support::{a, schema_engine};

#[tokio::test]
async fn get_many_answers_in_key_order_with_none_for_missing_keys() {
    let engine = schema_engine("getmany_order", 2).await;
    let s = AsyncSession::new(engine.clone());
    let objs: Vec<_> = (0..5).map(|i| a(&format!("r{i}"))).collect();
    s.add_all(&objs).unwrap();
    s.commit().await.unwrap();
    let ids: Vec<i32> = {
        let fresh = AsyncSession::new(engine.clone());
        fresh
            .scalars(session_core::select::<A>())
            .await
            .unwrap()
            .all()
            .iter()
            .map(|o| o.read().unwrap().id)
            .collect()
    };

    let fresh = AsyncSession::new(engine.clone());
    // One of them is in the identity map with an unflushed change: returned as it is.
    let held = fresh.get::<A>(ids[1]).await.unwrap().unwrap();
    fresh.set_autoflush(false);
    held.write().unwrap().data = "changed here".into();
    let got = fresh
        .get_many::<A>(&[ids[3], 999_999, ids[1], ids[0], ids[3]])
        .await
        .unwrap();
    let data: Vec<Option<String>> = got
        .iter()
        .map(|o| o.as_ref().map(|o| o.read().unwrap().data.clone()))
        .collect();
    assert_eq!(
        data,
        [
            Some("r3".to_string()),
            None,
            Some("changed here".to_string()),
            Some("r0".to_string()),
            Some("r3".to_string()),
        ]
    );
    assert!(got[2].as_ref().unwrap().ptr_eq(&held));
    assert!(got[0].as_ref().unwrap().ptr_eq(got[4].as_ref().unwrap()));
    assert!(
        got.iter()
            .flatten()
            .all(|o| o.state() == ObjectState::Persistent)
    );
    // They are the session's objects: a second call answers from the identity map.
    let again = fresh.get_many::<A>(&[ids[0]]).await.unwrap();
    assert!(again[0].as_ref().unwrap().ptr_eq(got[3].as_ref().unwrap()));
    assert!(fresh.get_many::<A>(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn get_many_takes_composite_keys_and_many_chunks() {
    let engine = schema_engine("getmany_chunks", 2).await;
    let s = AsyncSession::new(engine.clone());
    let n = 60_000;
    let items: Vec<_> = (0..n)
        .map(|i| {
            session_core::Obj::new(Item {
                shop: format!("shop{}", i % 3),
                sku: i,
                price: Some(i as f64),
            })
        })
        .collect();
    s.add_all(&items).unwrap();
    s.commit().await.unwrap();
    let fresh = AsyncSession::new(engine.clone());
    let mut keys: Vec<(String, i64)> = (0..n)
        .rev()
        .map(|i| (format!("shop{}", i % 3), i))
        .collect();
    keys.push(("shop9".into(), 1));
    let got = fresh.get_many::<Item>(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len());
    assert!(got[keys.len() - 1].is_none());
    for (key, obj) in keys.iter().zip(&got).take(n as usize) {
        let obj = obj.as_ref().expect("every stored key is found");
        let v = obj.read().unwrap();
        assert_eq!((&v.shop, v.sku), (&key.0, key.1));
    }
    assert_eq!(fresh.len(), n as usize);
}
